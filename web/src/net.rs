//! Drives the core's sans-IO [`Connection`] with a gloo-net WebSocket and browser timers.
//!
//! One task per room page: it opens the socket when the core asks, feeds it frames and close
//! events, sleeps until the core's retry time, and publishes the [`ConnectionState`] as a
//! signal. It makes no decisions of its own.
//!
//! Authentication sits beside the core's handshake: the core's `Connection` only knows
//! `hello`/`welcome`, so on each socket the driver sends `authenticate` with the session
//! token itself, the moment the connection reports `Connected` and before anything the UI
//! queues (the UI only learns of the new state after this send). The answer (`authenticated`,
//! or an `invalid_token` error after which the connection simply acts for nobody) is logged
//! here and not passed on, so neither touches the connection state or the page.

use std::rc::Rc;
use std::time::Duration;

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::future::{select, Either};
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use leptos::prelude::*;
use leptos::task::spawn_local;
use multiverse_core::backoff::BackoffConfig;
use multiverse_core::clock::Moment;
use multiverse_core::connection::{Connection, ConnectionOutput, ConnectionState};
use multiverse_core::ids::ClientId;
use multiverse_core::wire::{ClientMessage, Encoding, ErrorCode, Frame, ServerMessage};

/// Requests from the UI to the net task.
#[derive(Debug)]
enum Command {
    /// Send a message if connected (dropped otherwise: the app re-sends its state on connect).
    Send(ClientMessage),
    /// Close the socket and end the task.
    Stop,
}

/// Called with every application message from the peer; returns replies to send.
pub type Handler = Rc<dyn Fn(ServerMessage) -> Vec<ClientMessage>>;

/// A running connection: its state for the UI and a handle to stop it.
#[derive(Clone, Copy)]
pub struct Net {
    /// What the connection badge shows.
    pub state: ReadSignal<ConnectionState>,
    commands: StoredValue<UnboundedSender<Command>>,
}

impl Net {
    /// Starts connecting to the peer this page was loaded from; `handler` gets every
    /// application message. With a session `token`, every connection authenticates with it
    /// right after the handshake.
    pub fn start(
        display_name: String,
        client_id: ClientId,
        token: Option<String>,
        handler: Handler,
    ) -> Net {
        let seed = (js_sys::Math::random() * 2f64.powi(53)) as u64;
        let conn = Connection::new(
            display_name,
            client_id,
            Encoding::Binary,
            BackoffConfig::default(),
            seed,
        );
        let (state, set_state) = signal(conn.state().clone());
        let (tx, rx) = unbounded();
        spawn_local(drive(conn, token, set_state, rx, handler));
        Net {
            state,
            commands: StoredValue::new(tx),
        }
    }

    /// Sends a message to the peer if connected.
    pub fn send(&self, message: ClientMessage) {
        if let Some(tx) = self.commands.try_get_value() {
            let _ = tx.unbounded_send(Command::Send(message));
        }
    }

    /// Closes the connection for good (the page is being left).
    pub fn stop(&self) {
        if let Some(tx) = self.commands.try_get_value() {
            let _ = tx.unbounded_send(Command::Stop);
        }
    }
}

/// Milliseconds since page load, monotonic (`performance.now()`): the page's one clock.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// [`now_ms`] as the core's [`Moment`].
fn now() -> Moment {
    Moment::from_millis(now_ms() as u64)
}

/// `ws://host/ws` (or `wss://` on https) for the origin this page came from.
fn ws_url() -> String {
    let location = web_sys::window().expect("a window").location();
    let scheme = if location.protocol().as_deref() == Ok("https:") {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{}/ws", location.host().unwrap_or_default())
}

fn publish(conn: &Connection, set_state: WriteSignal<ConnectionState>) {
    let new = conn.state().clone();
    set_state.maybe_update(|s| {
        let changed = *s != new;
        *s = new;
        changed
    });
}

async fn drive(
    mut conn: Connection,
    token: Option<String>,
    set_state: WriteSignal<ConnectionState>,
    mut commands: UnboundedReceiver<Command>,
    handler: Handler,
) {
    let url = ws_url();
    loop {
        let mut open = false;
        while let Some(output) = conn.poll_output() {
            open |= output == ConnectionOutput::OpenSocket;
        }
        publish(&conn, set_state);
        if open {
            let socket = Socket {
                url: &url,
                token: token.as_deref(),
                set_state,
                handler: &handler,
            };
            if run_socket(&mut conn, socket, &mut commands)
                .await
                .is_break()
            {
                return;
            }
            publish(&conn, set_state);
            continue;
        }
        let Some(retry_at) = conn.poll_timeout() else {
            return; // incompatible: nothing more to do
        };
        let wait = Duration::from_millis(retry_at.as_millis().saturating_sub(now().as_millis()));
        let sleep = gloo_timers::future::sleep(wait);
        let mut sleep = Box::pin(sleep);
        loop {
            match select(sleep, commands.next()).await {
                Either::Left(_) => break,
                Either::Right((Some(Command::Send(_)), still_sleeping)) => sleep = still_sleeping,
                Either::Right((Some(Command::Stop) | None, _)) => return,
            }
        }
        conn.handle_timeout(now());
    }
}

/// What one socket needs besides the connection and the command queue.
struct Socket<'a> {
    url: &'a str,
    token: Option<&'a str>,
    set_state: WriteSignal<ConnectionState>,
    handler: &'a Handler,
}

/// One socket's life. `Break` means the UI asked to stop.
async fn run_socket(
    conn: &mut Connection,
    socket: Socket<'_>,
    commands: &mut UnboundedReceiver<Command>,
) -> std::ops::ControlFlow<()> {
    use std::ops::ControlFlow::{Break, Continue};
    let Socket {
        url,
        token,
        set_state,
        handler,
    } = socket;
    let ws = match WebSocket::open_with_protocol(url, conn.encoding().subprotocol()) {
        Ok(ws) => ws,
        Err(e) => {
            leptos::logging::warn!("cannot open {url}: {e}");
            conn.handle_close(None, now());
            return Continue(());
        }
    };
    let (mut tx, mut rx) = ws.split();
    conn.handle_open(now());
    let mut authenticated = token.is_none();
    loop {
        if !authenticated && matches!(conn.state(), ConnectionState::Connected { .. }) {
            authenticated = true;
            if let Some(token) = token {
                let token = token.to_owned();
                send(&mut tx, conn, &ClientMessage::Authenticate { token }).await;
            }
        }
        while let Some(output) = conn.poll_output() {
            match output {
                ConnectionOutput::Send(message) => send(&mut tx, conn, &message).await,
                ConnectionOutput::Received(ServerMessage::Authenticated { user }) => {
                    leptos::logging::log!("authenticated as user {user}")
                }
                ConnectionOutput::Received(ServerMessage::Error {
                    code: ErrorCode::InvalidToken,
                    message,
                }) => leptos::logging::warn!("session token refused, acting for nobody: {message}"),
                ConnectionOutput::Received(message) => {
                    for reply in handler(message) {
                        send(&mut tx, conn, &reply).await;
                    }
                }
                ConnectionOutput::Undecodable(e) => {
                    leptos::logging::warn!("undecodable frame from peer: {e}")
                }
                ConnectionOutput::OpenSocket => {}
            }
        }
        publish(conn, set_state);
        match select(rx.next(), commands.next()).await {
            Either::Left((Some(Ok(Message::Bytes(bytes))), _)) => conn.handle_frame(&bytes, now()),
            Either::Left((Some(Ok(Message::Text(text))), _)) => {
                conn.handle_frame(text.as_bytes(), now())
            }
            Either::Left((Some(Err(WebSocketError::ConnectionClose(event))), _)) => {
                conn.handle_close(Some(event.code), now());
                return Continue(());
            }
            Either::Left((Some(Err(e)), _)) => leptos::logging::warn!("WebSocket error: {e}"),
            Either::Left((None, _)) => {
                conn.handle_close(None, now());
                return Continue(());
            }
            Either::Right((Some(Command::Send(message)), _)) => {
                if matches!(conn.state(), ConnectionState::Connected { .. }) {
                    send(&mut tx, conn, &message).await;
                }
            }
            Either::Right((Some(Command::Stop) | None, _)) => {
                let _ = tx.close().await;
                return Break(());
            }
        }
    }
}

async fn send(
    tx: &mut futures::stream::SplitSink<WebSocket, Message>,
    conn: &Connection,
    message: &ClientMessage,
) {
    let frame = match conn.codec().encode(message) {
        Frame::Binary(b) => Message::Bytes(b),
        Frame::Text(t) => Message::Text(t),
    };
    if let Err(e) = tx.send(frame).await {
        leptos::logging::warn!("send failed: {e}");
    }
}
