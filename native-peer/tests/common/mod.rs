//! Shared harness for the peer's socket tests: a peer on 127.0.0.1:0 and a WebSocket client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use multiverse_core::ids::ClientId;
use multiverse_core::wire::{
    ClientMessage, Codec, Encoding, ErrorCode, Hello, ServerMessage, MAX_SERVER_FRAME_BYTES,
    PROTOCOL_VERSION,
};
use multiverse_peer::Config;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A peer running on 127.0.0.1:0 with a fixture client in a temp dir.
pub struct TestPeer {
    pub addr: SocketAddr,
    /// The peer's state, for tests that drive it below the API (e.g. forging a transfer).
    pub shared: std::sync::Arc<multiverse_peer::Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestPeer {
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> TestPeer {
        let dir = tempfile::tempdir().unwrap();
        let dist = dir.path().join("dist");
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(
            dist.join("index.html"),
            "<html>multiverse test client</html>",
        )
        .unwrap();
        std::fs::write(dist.join("app.js"), "console.log('hi')").unwrap();
        let mut config = Config::new(dir.path().join("data"))
            .with_bind("127.0.0.1:0".parse().unwrap())
            .with_name("test-peer")
            .with_dist_dir(&dist);
        tweak(&mut config);
        let peer = multiverse_peer::bind(config).await.unwrap();
        let (addr, shared) = (peer.local_addr(), peer.shared());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            peer.serve(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestPeer {
            addr,
            shared,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    pub async fn connect(&self, subprotocol: Option<&str>) -> Ws {
        let mut request = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(p) = subprotocol {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", p.parse().unwrap());
        }
        let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        let chosen = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_owned());
        // RFC 6455: the peer echoes the offered subprotocol, and names none if none was offered.
        assert_eq!(chosen.as_deref(), subprotocol);
        ws
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

pub fn hello(version: u32) -> ClientMessage {
    ClientMessage::Hello(Hello {
        protocol_version: version,
        display_name: "Ada".into(),
        client_id: ClientId::from_u128(7),
    })
}

pub fn codec(encoding: Encoding) -> Codec {
    Codec::new(encoding, MAX_SERVER_FRAME_BYTES)
}

pub async fn send(ws: &mut Ws, encoding: Encoding, m: &ClientMessage) {
    let frame = match codec(encoding).encode(m) {
        multiverse_core::wire::Frame::Binary(b) => Message::Binary(b.into()),
        multiverse_core::wire::Frame::Text(t) => Message::Text(t.into()),
    };
    ws.send(frame).await.unwrap();
}

/// The next message frame, decoded; panics on close or after 5 s.
pub async fn recv(ws: &mut Ws, encoding: Encoding) -> ServerMessage {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s");
        match next.expect("socket open").expect("no socket error") {
            Message::Binary(b) => {
                assert_eq!(
                    encoding,
                    Encoding::Binary,
                    "binary frame on a JSON connection"
                );
                return codec(encoding).decode(&b).unwrap();
            }
            Message::Text(t) => {
                assert_eq!(
                    encoding,
                    Encoding::Json,
                    "text frame on a binary connection"
                );
                return codec(encoding).decode(t.as_bytes()).unwrap();
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a message frame, got {other:?}"),
        }
    }
}

/// Waits for the close frame and returns its code.
pub async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a close within 5 s");
        match next {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error instead of a close: {e}"),
        }
    }
}

pub async fn expect_error(ws: &mut Ws, encoding: Encoding, want: ErrorCode) -> String {
    match recv(ws, encoding).await {
        ServerMessage::Error { code, message } if code == want => message,
        other => panic!("expected error {want:?}, got {other:?}"),
    }
}

/// A connected client that has completed the handshake.
pub async fn joined(peer: &TestPeer, encoding: Encoding) -> Ws {
    let mut ws = peer.connect(Some(encoding.subprotocol())).await;
    send(&mut ws, encoding, &hello(PROTOCOL_VERSION)).await;
    assert!(matches!(
        recv(&mut ws, encoding).await,
        ServerMessage::Welcome(_)
    ));
    ws
}
