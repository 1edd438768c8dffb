//! Memory of a peer with one subscriber that never reads (a bench binary; runs 60 s).
//!
//! ```sh
//! cargo bench -p multiverse-peer --bench slow_client
//! ```
//!
//! The stalled client asks for the heaviest stream there is — a full JSON snapshot of the
//! sandbox at every tick — and then stops reading. The peer's memory must stay bounded: the
//! session's queue holds at most `OUTBOX_FRAMES` frames, the rest are dropped and replaced by
//! a resync once the client reads again. A second, healthy client keeps reading throughout.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use multiverse_core::ids::ClientId;
use multiverse_core::stream::{StreamConfiguration, ViewMode};
use multiverse_core::wire::{
    ClientMessage, Codec, Encoding, Hello, ServerMessage, MAX_SERVER_FRAME_BYTES, PROTOCOL_VERSION,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const RUN: Duration = Duration::from_secs(60);

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn client(addr: std::net::SocketAddr, encoding: Encoding, config: StreamConfiguration) -> Ws {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        encoding.subprotocol().parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let codec = Codec::new(encoding, MAX_SERVER_FRAME_BYTES);
    let send = |m: &ClientMessage| match codec.encode(m) {
        multiverse_core::wire::Frame::Binary(b) => Message::Binary(b.into()),
        multiverse_core::wire::Frame::Text(t) => Message::Text(t.into()),
    };
    let hello = ClientMessage::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        display_name: "bench".into(),
        client_id: ClientId::from_u128(1),
    });
    ws.send(send(&hello)).await.unwrap();
    ws.send(send(&ClientMessage::ListUniverses)).await.unwrap();
    let universe = loop {
        let Some(Ok(m)) = ws.next().await else {
            panic!("closed")
        };
        let bytes = match &m {
            Message::Binary(b) => b.to_vec(),
            Message::Text(t) => t.as_bytes().to_vec(),
            _ => continue,
        };
        if let Ok(ServerMessage::UniverseList { universes }) = codec.decode::<ServerMessage>(&bytes)
        {
            break universes
                .into_iter()
                .find(|u| u.name == "sandbox")
                .unwrap()
                .id;
        }
    };
    ws.send(send(&ClientMessage::Subscribe {
        universe,
        config,
        viewport: None,
        mode: ViewMode::Observe,
    }))
    .await
    .unwrap();
    ws
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = multiverse_peer::Config::new(dir.path())
        .with_bind("127.0.0.1:0".parse().unwrap())
        .with_dist_dir(dir.path());
    let peer = multiverse_peer::bind(config).await.unwrap();
    let addr = peer.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(peer.serve(async {
        let _ = stopped.await;
    }));

    let baseline = rss_mib();
    let heavy = StreamConfiguration {
        delta_only: false,
        sync_hz: 60,
        ..StreamConfiguration::default()
    };
    let stalled = client(addr, Encoding::Json, heavy).await;
    let mut healthy = client(addr, Encoding::Binary, StreamConfiguration::default()).await;
    let reader = tokio::spawn(async move {
        let mut frames = 0u64;
        let mut worst = Duration::ZERO;
        let mut last = Instant::now();
        while let Some(Ok(_)) = healthy.next().await {
            frames += 1;
            worst = worst.max(last.elapsed());
            last = Instant::now();
            if frames > 1 && last.elapsed() > RUN {
                break;
            }
        }
        (frames, worst)
    });
    println!("baseline RSS {baseline:.1} MiB (peer + bench client in one process)");
    println!(
        "{:>5}  {:>9}  {:>14}",
        "t (s)", "RSS (MiB)", "dropped frames"
    );
    let started = Instant::now();
    let mut peak = baseline;
    let mut stats = serde_json::Value::Null;
    while started.elapsed() < RUN {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let list: serde_json::Value = serde_json::from_str(
            &reqwest::get(format!("http://{addr}/api/universes"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        let id = list
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == "sandbox")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        stats = serde_json::from_str(
            &reqwest::get(format!("http://{addr}/api/universes/{id}"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        let rss = rss_mib();
        peak = peak.max(rss);
        println!(
            "{:>5}  {:>9.1}  {:>14}",
            started.elapsed().as_secs(),
            rss,
            stats["dropped_frames"]
        );
    }
    println!(
        "peak RSS {peak:.1} MiB, growth over baseline {:.1} MiB; last tick {} µs",
        peak - baseline,
        stats["last_tick_micros"]
    );
    drop(stalled);
    reader.abort();
    let _ = stop.send(());
    let _ = server.await;
}
