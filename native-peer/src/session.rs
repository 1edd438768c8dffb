//! The driver of one client WebSocket: pumps frames and timers into a core
//! [`ClientSession`] and carries out what it asks. No protocol decisions live here.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use multiverse_core::ids::SessionId;
use multiverse_core::session::{ClientSession, SessionOutput};
use multiverse_core::wire::{CloseCode, Encoding, Frame, ServerMessage};

use crate::Shared;

/// Serves one client connection until it closes or the peer shuts down.
pub async fn run(socket: WebSocket, encoding: Encoding, shared: Arc<Shared>) {
    let session_id = SessionId::from_u128(uuid::Uuid::new_v4().as_u128());
    let _guard = shared.connection_opened();
    let span = tracing::info_span!("session", id = %session_id, ?encoding);
    let _enter = span.enter();
    let mut session = ClientSession::new(
        shared.session_config.clone(),
        shared.identity.clone(),
        session_id,
        encoding,
        shared.clock.now(),
    );
    drop(_enter);
    let (mut tx, mut rx) = socket.split();
    loop {
        while let Some(output) = session.poll_output() {
            match output {
                SessionOutput::Send(message) => {
                    if let ServerMessage::Error { code, message } = &message {
                        tracing::warn!(parent: &span, ?code, "refused client frame: {message}");
                    }
                    if tx
                        .send(to_ws(session.codec().encode(&message)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                SessionOutput::Opened {
                    client_id,
                    display_name,
                } => {
                    tracing::info!(parent: &span, %client_id, %display_name, "client joined");
                }
                SessionOutput::Received(message) => {
                    tracing::debug!(parent: &span, ?message, "no handler yet for message");
                }
                SessionOutput::Close { code, reason } => {
                    tracing::info!(parent: &span, ?code, %reason, "closing session");
                    let _ = tx.send(close(code, reason)).await;
                    return;
                }
            }
        }
        let deadline = session.poll_timeout().map(|t| shared.clock.instant(t));
        tokio::select! {
            _ = shared.shutdown.cancelled() => session.handle_shutdown(),
            _ = sleep_until(deadline) => session.handle_timeout(shared.clock.now()),
            inbound = rx.next() => match inbound {
                Some(Ok(Message::Binary(bytes))) => session.handle_frame(&bytes, shared.clock.now()),
                Some(Ok(Message::Text(text))) => session.handle_frame(text.as_bytes(), shared.clock.now()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => {
                    tracing::info!(parent: &span, "client left");
                    return;
                }
                Some(Err(e)) => {
                    let text = e.to_string();
                    tracing::warn!(parent: &span, "WebSocket error: {text}");
                    if text.contains("too long") || text.contains("Space limit") {
                        let _ = tx.send(close(CloseCode::MessageTooBig, "frame exceeds 1 MiB".into())).await;
                    }
                    return;
                }
            },
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn to_ws(frame: Frame) -> Message {
    match frame {
        Frame::Binary(bytes) => Message::Binary(bytes.into()),
        Frame::Text(text) => Message::Text(text.into()),
    }
}

fn close(code: CloseCode, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.code(),
        reason: reason.into(),
    }))
}
