//! WebSocket adapters for links: axum's socket (inbound) and tokio-tungstenite's (outbound)
//! both become a [`Wire`] of binary payloads, so the link logic is written once.

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;

/// Frames in and out of one WebSocket, whatever library holds it.
pub struct Wire {
    /// Binary payloads received (ends when the socket closes).
    pub incoming: mpsc::Receiver<Vec<u8>>,
    /// Binary payloads to send.
    pub outgoing: mpsc::Sender<Vec<u8>>,
}

/// Pumps any WebSocket (axum's or tokio-tungstenite's) into a [`Wire`]: `bytes_of` picks
/// binary payloads out of its messages (`Err` ends the link), `message_of` wraps payloads.
fn pump<S, M, E>(
    socket: S,
    bytes_of: fn(M) -> Result<Option<Vec<u8>>, ()>,
    message_of: fn(Vec<u8>) -> M,
) -> Wire
where
    S: futures::Stream<Item = Result<M, E>> + futures::Sink<M> + Send + 'static,
    M: Send + 'static,
    E: Send + 'static,
{
    let (mut sink, mut stream) = socket.split();
    let (in_tx, incoming) = mpsc::channel(256);
    let (outgoing, mut out_rx) = mpsc::channel::<Vec<u8>>(256);
    tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            match bytes_of(m) {
                Ok(Some(bytes)) => {
                    if in_tx.send(bytes).await.is_err() {
                        break;
                    }
                }
                Ok(None) => continue,
                Err(()) => break,
            }
        }
    });
    tokio::spawn(async move {
        while let Some(b) = out_rx.recv().await {
            if sink.send(message_of(b)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    Wire { incoming, outgoing }
}

/// Adapts an axum WebSocket (inbound links).
pub fn axum_wire(socket: axum::extract::ws::WebSocket) -> Wire {
    use axum::extract::ws::Message;
    pump(
        socket,
        |m| match m {
            Message::Binary(b) => Ok(Some(b.to_vec())),
            Message::Close(_) => Err(()),
            _ => Ok(None),
        },
        |b| Message::Binary(b.into()),
    )
}

type ClientSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Adapts a tokio-tungstenite WebSocket (outbound links).
pub fn client_wire(socket: ClientSocket) -> Wire {
    use tokio_tungstenite::tungstenite::Message;
    pump(
        socket,
        |m| match m {
            Message::Binary(b) => Ok(Some(b.to_vec())),
            Message::Close(_) => Err(()),
            _ => Ok(None),
        },
        |b| Message::Binary(b.into()),
    )
}
