//! The HTTPS listener on 127.0.0.1: pages and `/ws` over TLS, verified against the certificate
//! the peer stored in its data dir; garbage and silence on the port; the certificate kept
//! across restarts; a taken port or no `https_port` means plain HTTP only.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{codec, hello};
use futures::{SinkExt, StreamExt};
use multiverse_core::wire::{Encoding, Frame, ServerMessage, PROTOCOL_VERSION};
use multiverse_peer::Config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const WAIT: Duration = Duration::from_secs(5);

/// A peer on 127.0.0.1:0 whose data dir the test chooses (so it can be restarted on it).
struct HttpsPeer {
    http: SocketAddr,
    https: Option<SocketAddr>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpsPeer {
    async fn start(data: &Path, https_port: Option<u16>) -> HttpsPeer {
        let mut config = Config::new(data)
            .with_bind("127.0.0.1:0".parse().unwrap())
            .with_name("test-peer")
            .with_dist_dir(data.join("dist"));
        config.https_port = https_port;
        let peer = multiverse_peer::bind(config).await.unwrap();
        let (http, https) = (peer.local_addr(), peer.https_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            peer.serve(stopped).await.unwrap();
        });
        HttpsPeer {
            http,
            https,
            stop,
            task,
        }
    }

    fn https(&self) -> SocketAddr {
        self.https.expect("the HTTPS listener is up")
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the peer stops within 10 s")
            .unwrap();
    }
}

/// A TLS client trusting only the certificate in `data`'s `tls/cert.pem`.
fn trusting(data: &Path) -> TlsConnector {
    let cert = CertificateDer::from_pem_file(multiverse_peer::tls::cert_file(data)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    tls: &TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    tokio::time::timeout(WAIT, tls.connect(name, tcp))
        .await
        .expect("a handshake within 5 s")
}

/// Everything the other side sends until it closes (a reset also counts as closing).
async fn read_until_closed(stream: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("the peer closes within 5 s");
        match read {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// `GET path` over HTTPS for the host `name`; the whole answer as text.
async fn https_get(tls: &TlsConnector, addr: SocketAddr, name: &str, path: &str) -> String {
    let mut stream = tls_connect(tls, addr, name).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    String::from_utf8(read_until_closed(&mut stream).await).unwrap()
}

fn assert_healthy(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""status":"ok""#), "{answer}");
    assert!(answer.contains(r#""peer_name":"test-peer""#), "{answer}");
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, hello: Frame) {
    let message = match hello {
        Frame::Binary(b) => Message::Binary(b.into()),
        Frame::Text(t) => Message::Text(t.into()),
    };
    ws.send(message).await.unwrap();
}

async fn recv<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> ServerMessage {
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame");
        match next.expect("socket open").expect("no socket error") {
            Message::Binary(b) => return codec(Encoding::Binary).decode(&b).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn healthz_and_wss_with_the_stored_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let peer = HttpsPeer::start(dir.path(), Some(0)).await;
    let https = peer.https();
    assert_eq!(
        https.ip(),
        peer.http.ip(),
        "HTTPS listens on the --bind address"
    );
    assert_ne!(https.port(), peer.http.port());
    let tls = trusting(dir.path());
    for name in ["localhost", "127.0.0.1"] {
        assert_healthy(&https_get(&tls, https, name, "/healthz").await);
    }
    let err = tls_connect(&tls, https, "example.com").await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");

    let stream = tls_connect(&tls, https, "localhost").await.unwrap();
    let mut request = format!("wss://localhost:{}/ws", https.port())
        .into_client_request()
        .unwrap();
    let subprotocol = Encoding::Binary.subprotocol().parse().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", subprotocol);
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    send(
        &mut ws,
        codec(Encoding::Binary).encode(&hello(PROTOCOL_VERSION)),
    )
    .await;
    match recv(&mut ws).await {
        ServerMessage::Welcome(w) => {
            assert_eq!(w.protocol_version, PROTOCOL_VERSION);
            assert_eq!(w.peer_name, "test-peer");
        }
        other => panic!("expected welcome, got {other:?}"),
    }

    // Shutdown reaches sessions opened over TLS too: "going away", then the peer stops.
    let closed = async {
        loop {
            let next = tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("a close");
            match next {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    };
    let ((), code) = tokio::join!(peer.stop(), closed);
    assert_eq!(code, 1001);
}

#[tokio::test]
async fn garbage_and_silence_on_the_https_port_hurt_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let peer = HttpsPeer::start(dir.path(), Some(0)).await;
    let tls = trusting(dir.path());
    // A client that never starts its handshake does not hold up the others.
    let _silent = TcpStream::connect(peer.https()).await.unwrap();
    let mut plain = TcpStream::connect(peer.https()).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut plain).await;
    assert!(!answer.starts_with(b"HTTP"), "plain HTTP got an answer");
    assert_healthy(&https_get(&tls, peer.https(), "localhost", "/healthz").await);
    let plain_http = reqwest::get(format!("http://{}/healthz", peer.http))
        .await
        .unwrap();
    assert_eq!(plain_http.status(), 200);
    peer.stop().await;
}

#[tokio::test]
async fn a_restart_reuses_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert_file = multiverse_peer::tls::cert_file(dir.path());
    let first = HttpsPeer::start(dir.path(), Some(0)).await;
    let cert = std::fs::read(&cert_file).unwrap();
    let tls = trusting(dir.path());
    first.stop().await;

    let second = HttpsPeer::start(dir.path(), Some(0)).await;
    assert_eq!(std::fs::read(&cert_file).unwrap(), cert, "same bytes");
    // A browser that accepted the first certificate still trusts the restarted peer.
    assert_healthy(&https_get(&tls, second.https(), "localhost", "/healthz").await);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = cert_file.with_file_name("key.pem");
        let mode = std::fs::metadata(key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is private");
    }
    second.stop().await;
}

#[tokio::test]
async fn without_https_or_with_its_port_taken_the_peer_serves_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let off = HttpsPeer::start(&dir.path().join("off"), None).await;
    assert_eq!(off.https, None);
    assert!(!multiverse_peer::tls::cert_file(&dir.path().join("off")).exists());
    off.stop().await;

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let peer = HttpsPeer::start(&dir.path().join("taken"), Some(port)).await;
    assert_eq!(peer.https, None, "a taken port means no HTTPS, not no peer");
    let answer = reqwest::get(format!("http://{}/healthz", peer.http))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    peer.stop().await;
}
