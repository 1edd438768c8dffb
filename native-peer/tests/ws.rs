//! Real sockets on 127.0.0.1:0: the handshake over both subprotocols, refusals, bad input,
//! the SPA fallback and graceful shutdown.

mod common;

use std::time::Duration;

use common::*;
use futures::SinkExt;
use multiverse_core::wire::{
    ClientMessage, CloseCode, Encoding, ErrorCode, ServerMessage, MAX_CLIENT_FRAME_BYTES,
    PROTOCOL_VERSION,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn hello_gets_welcome_over_both_subprotocols() {
    let peer = TestPeer::start(|_| {}).await;
    for encoding in Encoding::ALL {
        let mut ws = peer.connect(Some(encoding.subprotocol())).await;
        send(&mut ws, encoding, &hello(PROTOCOL_VERSION)).await;
        match recv(&mut ws, encoding).await {
            ServerMessage::Welcome(w) => {
                assert_eq!(w.protocol_version, PROTOCOL_VERSION);
                assert_eq!(w.peer_name, "test-peer");
                assert_eq!(w.max_frame_bytes as usize, MAX_CLIENT_FRAME_BYTES);
            }
            other => panic!("expected welcome, got {other:?}"),
        }
        send(&mut ws, encoding, &ClientMessage::Ping { nonce: 9 }).await;
        assert_eq!(
            recv(&mut ws, encoding).await,
            ServerMessage::Pong { nonce: 9 }
        );
    }
    peer.stop().await;
}

#[tokio::test]
async fn no_subprotocol_means_json_and_unknown_ones_are_refused() {
    let peer = TestPeer::start(|_| {}).await;
    let mut ws = peer.connect(None).await;
    ws.send(Message::Text(r#"{"type":"hello","protocol_version":1,"display_name":"wscat","client_id":"00000000-0000-0000-0000-000000000001"}"#.into())).await.unwrap();
    assert!(matches!(
        recv(&mut ws, Encoding::Json).await,
        ServerMessage::Welcome(_)
    ));

    let mut request = format!("ws://{}/ws", peer.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "multiverse.v9.bin".parse().unwrap(),
    );
    let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    peer.stop().await;
}

#[tokio::test]
async fn wrong_version_gets_an_error_frame_then_a_close() {
    let peer = TestPeer::start(|_| {}).await;
    for encoding in Encoding::ALL {
        let mut ws = peer.connect(Some(encoding.subprotocol())).await;
        send(&mut ws, encoding, &hello(PROTOCOL_VERSION + 1)).await;
        let message = expect_error(&mut ws, encoding, ErrorCode::VersionMismatch).await;
        assert!(message.contains("protocol version"), "{message}");
        assert_eq!(close_code(&mut ws).await, CloseCode::VersionMismatch.code());
    }
    peer.stop().await;
}

#[tokio::test]
async fn garbage_gets_an_error_and_other_clients_are_unaffected() {
    let peer = TestPeer::start(|_| {}).await;
    let mut bad = peer.connect(Some("multiverse.v1.bin")).await;
    bad.send(Message::Binary(vec![0xff, 0x00, 0x13, 0x37].into()))
        .await
        .unwrap();
    expect_error(&mut bad, Encoding::Binary, ErrorCode::MalformedFrame).await;
    bad.send(Message::Text("{not json".into())).await.unwrap();
    expect_error(&mut bad, Encoding::Binary, ErrorCode::MalformedFrame).await;

    let mut good = peer.connect(Some("multiverse.v1.json")).await;
    send(&mut good, Encoding::Json, &hello(PROTOCOL_VERSION)).await;
    assert!(matches!(
        recv(&mut good, Encoding::Json).await,
        ServerMessage::Welcome(_)
    ));

    // The garbage sender itself may still recover by saying hello properly.
    send(&mut bad, Encoding::Binary, &hello(PROTOCOL_VERSION)).await;
    assert!(matches!(
        recv(&mut bad, Encoding::Binary).await,
        ServerMessage::Welcome(_)
    ));
    peer.stop().await;
}

#[tokio::test]
async fn a_flood_of_garbage_is_cut_off() {
    let peer = TestPeer::start(|_| {}).await;
    let mut bad = peer.connect(Some("multiverse.v1.json")).await;
    for _ in 0..8 {
        bad.send(Message::Text("garbage".into())).await.unwrap();
    }
    for _ in 0..8 {
        expect_error(&mut bad, Encoding::Json, ErrorCode::MalformedFrame).await;
    }
    expect_error(&mut bad, Encoding::Json, ErrorCode::TooManyErrors).await;
    assert_eq!(close_code(&mut bad).await, CloseCode::ProtocolError.code());
    peer.stop().await;
}

#[tokio::test]
async fn oversized_frames_are_refused() {
    let peer = TestPeer::start(|_| {}).await;
    let mut ws = peer.connect(Some("multiverse.v1.bin")).await;
    ws.send(Message::Binary(
        vec![0u8; MAX_CLIENT_FRAME_BYTES + 1].into(),
    ))
    .await
    .unwrap();
    let message = expect_error(&mut ws, Encoding::Binary, ErrorCode::FrameTooLarge).await;
    assert!(message.contains("exceeds"), "{message}");
    send(&mut ws, Encoding::Binary, &hello(PROTOCOL_VERSION)).await;
    assert!(
        matches!(
            recv(&mut ws, Encoding::Binary).await,
            ServerMessage::Welcome(_)
        ),
        "still served"
    );

    ws.send(Message::Binary(vec![0u8; 2 * 1024 * 1024].into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, u16::from(WsCloseCode::Size));
    peer.stop().await;
}

#[tokio::test]
async fn handshake_times_out() {
    let peer = TestPeer::start(|c| c.session.handshake_timeout = Duration::from_millis(200)).await;
    let mut ws = peer.connect(Some("multiverse.v1.json")).await;
    expect_error(&mut ws, Encoding::Json, ErrorCode::HandshakeTimeout).await;
    assert_eq!(
        close_code(&mut ws).await,
        CloseCode::HandshakeTimeout.code()
    );
    peer.stop().await;
}

#[tokio::test]
async fn app_routes_serve_index_html_and_unknown_files_are_404() {
    let peer = TestPeer::start(|_| {}).await;
    for path in ["/", "/r/anything", "/r/demo?invite=x"] {
        let response = peer.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.text().await.unwrap(),
            "<html>multiverse test client</html>",
            "{path}"
        );
    }
    assert_eq!(
        peer.get("/app.js").await.text().await.unwrap(),
        "console.log('hi')"
    );
    assert_eq!(peer.get("/missing.js").await.status(), 404);
    let api = peer.get("/api/nothing-here").await;
    assert_eq!(api.status(), 404);
    assert!(api.text().await.unwrap().contains("not_found"));
    let health = peer.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert!(health.text().await.unwrap().contains("\"status\":\"ok\""));
    peer.stop().await;
}

#[tokio::test]
async fn shutdown_says_going_away_to_connected_clients() {
    let peer = TestPeer::start(|_| {}).await;
    let mut ws = peer.connect(Some("multiverse.v1.bin")).await;
    send(&mut ws, Encoding::Binary, &hello(PROTOCOL_VERSION)).await;
    recv(&mut ws, Encoding::Binary).await;
    let closing = tokio::spawn(async move { close_code(&mut ws).await });
    peer.stop().await;
    assert_eq!(closing.await.unwrap(), CloseCode::GoingAway.code());
}

#[tokio::test]
async fn a_missing_client_build_is_explained() {
    let peer = TestPeer::start(|c| c.dist_dir = "/nonexistent-multiverse-dist".into()).await;
    let response = peer.get("/r/demo").await;
    assert_eq!(response.status(), 503);
    assert!(response.text().await.unwrap().contains("scripts/run"));
    peer.stop().await;
}
