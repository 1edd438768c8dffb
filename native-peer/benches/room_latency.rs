//! Relay latency of chat and cursor messages: 100 clients in one room on loopback while the
//! room's universe streams to all of them (a bench binary).
//!
//! ```sh
//! cargo bench -p multiverse-peer --bench room_latency
//! ```
//!
//! One member moves its cursor every 50 ms and sends a chat message every 250 ms (chat is
//! limited to 5 messages per second per member); the other 99 record how long each took to
//! reach them. The peer is the release binary in its own process; the clients share one
//! thread of this process. Chat is stored durably (fsync) before it is relayed, so the
//! streaming case runs twice: data dir on disk and on tmpfs (/dev/shm). A "floor" row runs
//! the same fan-out through the simplest relay possible (raw TCP, one thread, no WebSocket)
//! to show what this machine allows at all; a last row runs without the universe stream.
//!
//! `BENCH_CLIENTS=n` changes the room size; `BENCH_PEER_THREADS=n` sets the peer's tokio
//! worker threads.

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

#[path = "support/peer_process.rs"]
mod peer_process;

use peer_process::start_peer;

const CLIENTS: usize = 100;

/// Members in the room (`BENCH_CLIENTS` overrides [`CLIENTS`], to see how latency scales).
fn clients() -> usize {
    std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CLIENTS)
        .clamp(2, 1000)
}
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
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        request,
        Some(
            tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(16 * 1024),
        ),
        true,
    )
    .await
    .unwrap();
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

async fn run(label: &str, data_dir: std::path::PathBuf, stream: bool) {
    let (_peer, addr) = start_peer(&data_dir);
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
    let sender = member(addr, 0, stream.then_some(sandbox)).await;
    let expected_chats = (CURSOR_SENDS / CHAT_EVERY) as usize;
    let mut readers = Vec::new();
    for n in 1..clients() {
        let mut ws = member(addr, n as u128, stream.then_some(sandbox)).await;
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(500 + 50 * u64::from(CURSOR_SENDS) + 2000)
            + Duration::from_secs(clients() as u64 / 10);
        // Each reader notes (what, when) as a frame arrives, before decoding it, and keeps
        // its notes to itself until the end: the clients share one thread, so any work
        // they do per frame would be counted as the peer's latency.
        readers.push(tokio::spawn(async move {
            let (mut chats, mut cursors) = (Vec::new(), Vec::new());
            let stop = tokio::time::sleep_until(deadline);
            tokio::pin!(stop);
            while chats.len() < expected_chats || cursors.len() < CURSOR_SENDS as usize {
                let frame = tokio::select! {
                    _ = &mut stop => break,
                    frame = ws.next() => frame,
                };
                let arrived = Instant::now();
                let bytes = match frame {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(_)) => continue,
                    _ => break,
                };
                match codec().decode(&bytes) {
                    Ok(ServerMessage::Chat(m)) => {
                        chats.push((m.text.parse::<u32>().unwrap(), arrived));
                    }
                    Ok(ServerMessage::Cursors { cursors: list }) => {
                        for c in list {
                            if let Some(CursorPosition::World { at, .. }) = c.position {
                                cursors.push((at.x as u32, arrived));
                            }
                        }
                    }
                    _ => {}
                }
            }
            let _ = ws.close(None).await;
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
    let latencies = |notes: &[(u32, Instant)], sent: &Sent| -> Vec<Duration> {
        let sent = sent.lock().unwrap();
        notes
            .iter()
            .filter_map(|(key, arrived)| Some(arrived.duration_since(*sent.get(key)?)))
            .collect()
    };
    let (mut chat, mut cursor) = (Vec::new(), Vec::new());
    for r in readers {
        if let Ok((chats, cursors)) = r.await {
            chat.extend(latencies(&chats, &chat_sent));
            cursor.extend(latencies(&cursors, &cursor_sent));
        }
    }
    let expected = clients() - 1;
    eprintln!(
        "[bench] delivered {} of {} chat and {} of {} cursor messages",
        chat.len(),
        expected * expected_chats,
        cursor.len(),
        expected * CURSOR_SENDS as usize
    );
    drain.abort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<34} chat: {:>6} deliveries p50 {:>6.3} ms p99 {:>6.3} ms | cursor: {:>6} deliveries p50 {:>6.3} ms p99 {:>6.3} ms",
        chat.len(), ms(percentile(&mut chat, 0.5)), ms(percentile(&mut chat, 0.99)),
        cursor.len(), ms(percentile(&mut cursor, 0.5)), ms(percentile(&mut cursor, 0.99)),
    );
}

/// The floor this machine sets: the same fan-out (one sender, `clients() - 1` readers, 20 Hz)
/// through the simplest relay there is — raw TCP, 4-byte messages, one thread that writes
/// each message straight to every reader socket. No WebSocket, no room, no actors.
async fn floor() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let readers_wanted = clients() - 1;
    let relay = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (mut sender, _) = listener.accept().await.unwrap();
            sender.set_nodelay(true).unwrap();
            let mut readers = Vec::new();
            for _ in 0..readers_wanted {
                let (s, _) = listener.accept().await.unwrap();
                s.set_nodelay(true).unwrap();
                readers.push(s);
            }
            let mut buf = [0u8; 4];
            while sender.read_exact(&mut buf).await.is_ok() {
                for r in &mut readers {
                    let _ = r.write_all(&buf).await;
                }
            }
        });
    });
    let mut sender = tokio::net::TcpStream::connect(addr).await.unwrap();
    sender.set_nodelay(true).unwrap();
    let sent: Arc<Mutex<HashMap<u32, Instant>>> = Arc::default();
    let mut readers = Vec::new();
    for _ in 0..readers_wanted {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        readers.push(tokio::spawn(async move {
            let mut notes = Vec::new();
            let mut buf = [0u8; 4];
            while notes.len() < CURSOR_SENDS as usize {
                let read = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf));
                match read.await {
                    Ok(Ok(_)) => notes.push((u32::from_le_bytes(buf), Instant::now())),
                    _ => break,
                }
            }
            notes
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    for i in 0..CURSOR_SENDS {
        tick.tick().await;
        sent.lock().unwrap().insert(i, Instant::now());
        sender.write_all(&i.to_le_bytes()).await.unwrap();
    }
    let mut lat = Vec::new();
    for r in readers {
        let notes = r.await.unwrap();
        let sent = sent.lock().unwrap();
        lat.extend(
            notes
                .iter()
                .filter_map(|(k, at)| Some(at.duration_since(*sent.get(k)?))),
        );
    }
    drop(sender);
    let _ = relay.join();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:<34} raw:  {:>6} deliveries p50 {:>6.3} ms p99 {:>6.3} ms",
        "floor: raw TCP relay, one thread",
        lat.len(),
        ms(percentile(&mut lat, 0.5)),
        ms(percentile(&mut lat, 0.99)),
    );
}

/// The clients share one thread, so the peer process has the other core to itself.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    println!("{} clients in one room, all streaming the sandbox; one sends {} chat messages (4 Hz) and {CURSOR_SENDS} cursor moves (20 Hz)", clients(), CURSOR_SENDS / CHAT_EVERY);
    let disk = tempfile::tempdir().unwrap();
    run(
        "streaming, chat on disk (fsync)",
        disk.path().to_path_buf(),
        true,
    )
    .await;
    if std::path::Path::new("/dev/shm").is_dir() {
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        run("streaming, chat on tmpfs", shm.path().to_path_buf(), true).await;
    }
    floor().await;
    let quiet = tempfile::tempdir().unwrap();
    run(
        "no stream, chat on disk (fsync)",
        quiet.path().to_path_buf(),
        false,
    )
    .await;
}
