//! Relay latency of chat and cursor messages: 100 clients in one room on loopback while the
//! room's universe streams to all of them (a bench binary).
//!
//! ```sh
//! cargo bench -p multiverse-peer --bench room_latency
//! ```
//!
//! One member moves its cursor every 50 ms and sends a chat message every 250 ms (chat is
//! limited to 5 messages per second per member); the other 99 record how long each took to
//! reach them. Chat is stored durably (fsync) before it is
//! relayed, so it runs twice: with the data dir on disk and on tmpfs (/dev/shm), which shows
//! the relay path without the disk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use multiverse_core::ids::{ClientId, MessageId, RoomId, UniverseId};
use multiverse_core::room::{AccessPolicy, CursorPosition};
use multiverse_core::stream::{StreamConfiguration, ViewMode};
use multiverse_core::universe::Vec2;
use multiverse_core::wire::{
    ClientMessage, Codec, Encoding, Frame, Hello, ServerMessage, MAX_SERVER_FRAME_BYTES,
    PROTOCOL_VERSION,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 100;
/// Cursor moves sent (20 Hz, the rate a pointer is sampled at before the 30 Hz cap).
const CURSOR_SENDS: u32 = 200;
/// Chat messages sent (one every 5th tick: 4 Hz, within the per-member chat limit of 5/s).
const CHAT_EVERY: u32 = 5;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Sent = Arc<Mutex<HashMap<u32, Instant>>>;

fn codec() -> Codec {
    Codec::new(Encoding::Binary, MAX_SERVER_FRAME_BYTES)
}

async fn send(ws: &mut Ws, m: &ClientMessage) {
    let Frame::Binary(b) = codec().encode(m) else {
        unreachable!("binary codec")
    };
    ws.send(Message::Binary(b.into())).await.unwrap();
}

async fn next(ws: &mut Ws) -> ServerMessage {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return codec().decode(&b).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

async fn member(addr: std::net::SocketAddr, n: u128, universe: Option<UniverseId>) -> Ws {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "multiverse.v1.bin".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        display_name: format!("m{n}"),
        client_id: ClientId::from_u128(n + 1),
    };
    send(&mut ws, &ClientMessage::Hello(hello)).await;
    assert!(matches!(next(&mut ws).await, ServerMessage::Welcome(_)));
    send(
        &mut ws,
        &ClientMessage::JoinRoom {
            room: RoomId::new("bench").unwrap(),
            invite: None,
        },
    )
    .await;
    while !matches!(next(&mut ws).await, ServerMessage::RoomJoined(_)) {}
    if let Some(universe) = universe {
        let subscribe = ClientMessage::Subscribe {
            universe,
            config: StreamConfiguration::default(),
            viewport: None,
            mode: ViewMode::Observe,
        };
        send(&mut ws, &subscribe).await;
    }
    ws
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn run(label: &str, data_dir: std::path::PathBuf) {
    let config = multiverse_peer::Config::new(&data_dir)
        .with_bind("127.0.0.1:0".parse().unwrap())
        .with_dist_dir(&data_dir);
    let peer = multiverse_peer::bind(config).await.unwrap();
    let addr = peer.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(peer.serve(async {
        let _ = stopped.await;
    }));
    let list: serde_json::Value = serde_json::from_str(
        &reqwest::get(format!("http://{addr}/api/universes"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let sandbox: UniverseId = list[0]["id"].as_str().unwrap().parse().unwrap();

    let mut owner = member(addr, 10_000, None).await;
    send(
        &mut owner,
        &ClientMessage::ConfigureRoom {
            access: AccessPolicy::Shared,
            max_players: 128,
            multiplayer: true,
        },
    )
    .await;
    while !matches!(next(&mut owner).await, ServerMessage::RoomConfigured(_)) {}

    let chat_sent: Sent = Arc::default();
    let cursor_sent: Sent = Arc::default();
    let chat_lat = Arc::new(Mutex::new(Vec::new()));
    let cursor_lat = Arc::new(Mutex::new(Vec::new()));
    let sender = member(addr, 0, Some(sandbox)).await;
    let mut readers = Vec::new();
    for n in 1..CLIENTS {
        let mut ws = member(addr, n as u128, Some(sandbox)).await;
        let (chat_sent, cursor_sent, chat_lat, cursor_lat) = (
            chat_sent.clone(),
            cursor_sent.clone(),
            chat_lat.clone(),
            cursor_lat.clone(),
        );
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(500 + 50 * u64::from(CURSOR_SENDS) + 2000)
            + Duration::from_secs(CLIENTS as u64 / 10);
        readers.push(tokio::spawn(async move {
            let (mut chats, mut cursors) = (0, 0);
            loop {
                match tokio::time::timeout_at(deadline, next(&mut ws)).await {
                    Ok(ServerMessage::Chat(m)) => {
                        let at = chat_sent
                            .lock()
                            .unwrap()
                            .get(&m.text.parse::<u32>().unwrap())
                            .copied();
                        if let Some(t) = at {
                            chat_lat.lock().unwrap().push(t.elapsed());
                        }
                        chats += 1;
                    }
                    Ok(ServerMessage::Cursors { cursors: list }) => {
                        for c in list {
                            if let Some(CursorPosition::World { at, .. }) = c.position {
                                if let Some(t) =
                                    cursor_sent.lock().unwrap().get(&(at.x as u32)).copied()
                                {
                                    cursor_lat.lock().unwrap().push(t.elapsed());
                                }
                                cursors += 1;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            (chats, cursors)
        }));
    }
    // Drain the sender's own socket so it never stalls.
    let (mut sink, mut stream) = sender.split();
    let drain = tokio::spawn(async move { while stream.next().await.is_some() {} });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    for i in 0..CURSOR_SENDS {
        tick.tick().await;
        if i % CHAT_EVERY == 0 {
            let Frame::Binary(chat) = codec().encode(&ClientMessage::Chat {
                id: MessageId::from_u128(u128::from(i) + 1),
                text: i.to_string(),
            }) else {
                unreachable!()
            };
            chat_sent.lock().unwrap().insert(i, Instant::now());
            sink.send(Message::Binary(chat.into())).await.unwrap();
        }
        let at = Vec2::new(i as f32, 10.0);
        let Frame::Binary(cursor) = codec().encode(&ClientMessage::Cursor {
            position: Some(CursorPosition::World {
                universe: sandbox,
                at,
            }),
        }) else {
            unreachable!()
        };
        cursor_sent.lock().unwrap().insert(i, Instant::now());
        sink.send(Message::Binary(cursor.into())).await.unwrap();
    }
    let mut received = (0, 0);
    for r in readers {
        if let Ok((c, k)) = r.await {
            received = (received.0 + c, received.1 + k);
        }
    }
    let expected = (CLIENTS - 1) as u32;
    eprintln!(
        "[bench] delivered {} of {} chat and {} of {} cursor messages",
        received.0,
        expected * CURSOR_SENDS / CHAT_EVERY,
        received.1,
        expected * CURSOR_SENDS
    );
    drain.abort();
    let (mut chat, mut cursor) = (
        chat_lat.lock().unwrap().clone(),
        cursor_lat.lock().unwrap().clone(),
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<34} chat: {:>6} deliveries p50 {:>6.3} ms p99 {:>6.3} ms | cursor: {:>6} deliveries p50 {:>6.3} ms p99 {:>6.3} ms",
        chat.len(), ms(percentile(&mut chat, 0.5)), ms(percentile(&mut chat, 0.99)),
        cursor.len(), ms(percentile(&mut cursor, 0.5)), ms(percentile(&mut cursor, 0.99)),
    );
    let _ = stop.send(());
    let _ = server.await;
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    println!("{CLIENTS} clients in one room, all streaming the sandbox; one sends {} chat messages (4 Hz) and {CURSOR_SENDS} cursor moves (20 Hz)", CURSOR_SENDS / CHAT_EVERY);
    let disk = tempfile::tempdir().unwrap();
    run("chat stored on disk (fsync)", disk.path().to_path_buf()).await;
    if std::path::Path::new("/dev/shm").is_dir() {
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        run("chat stored on tmpfs", shm.path().to_path_buf()).await;
    }
}
