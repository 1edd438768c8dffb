//! The peer's side of one client connection, sans-IO.
//!
//! A [`ClientSession`] owns the handshake and the protocol discipline of one WebSocket:
//! it decodes frames with the connection's [`Codec`], insists on a hello first, refuses a
//! wrong [`PROTOCOL_VERSION`], answers pings, counts refused frames and gives up on a client
//! that keeps sending garbage. The driver (a tokio task in the peer) feeds it frames and
//! timeouts and carries out its [`SessionOutput`]s; it decides nothing itself.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::Moment;
use crate::ids::{ClientId, PeerId, SessionId};
use crate::wire::{
    ClientMessage, CloseCode, Codec, CodecError, Encoding, ErrorCode, Hello, ServerMessage,
    Welcome, MAX_CLIENT_FRAME_BYTES, PROTOCOL_VERSION,
};

/// Tunables of client sessions. Defaults suit browsers on a LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// How long a new connection may take to send its hello (default 10 s).
    pub handshake_timeout: Duration,
    /// Refused frames tolerated before the connection is closed (default 8).
    pub max_errors: u32,
    /// Largest inbound frame, in bytes (default [`MAX_CLIENT_FRAME_BYTES`]).
    pub max_frame_bytes: usize,
    /// Protocol version this peer speaks (default [`PROTOCOL_VERSION`]; tests change it to
    /// exercise the mismatch path end to end).
    pub protocol_version: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            handshake_timeout: Duration::from_secs(10),
            max_errors: 8,
            max_frame_bytes: MAX_CLIENT_FRAME_BYTES,
            protocol_version: PROTOCOL_VERSION,
        }
    }
}

/// Who the peer is, as told to every client in its welcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The peer's stable id.
    pub peer_id: PeerId,
    /// The peer's display name.
    pub peer_name: String,
}

/// What the driver must do next, drained with [`ClientSession::poll_output`].
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOutput {
    /// Encode this message with [`ClientSession::codec`] and send it.
    Send(ServerMessage),
    /// The handshake succeeded: this client is now a member of the peer.
    Opened {
        /// The client's stable id.
        client_id: ClientId,
        /// The display name, trimmed.
        display_name: String,
    },
    /// A valid message for the layers above the handshake (rooms, streams, …).
    Received(ClientMessage),
    /// Send a close frame with this code and reason, then drop the connection.
    Close {
        /// The WebSocket close code.
        code: CloseCode,
        /// Why, for the client's `CloseEvent.reason` (kept under 123 bytes).
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    AwaitingHello { deadline: Moment },
    Open,
    Closed,
}

/// The peer's state machine for one client connection. See the module docs.
#[derive(Debug)]
pub struct ClientSession {
    config: SessionConfig,
    identity: PeerIdentity,
    session_id: SessionId,
    codec: Codec,
    phase: Phase,
    errors: u32,
    out: VecDeque<SessionOutput>,
}

impl ClientSession {
    /// A session for a connection that was accepted at `now` with the given encoding.
    pub fn new(
        config: SessionConfig,
        identity: PeerIdentity,
        session_id: SessionId,
        encoding: Encoding,
        now: Moment,
    ) -> Self {
        let deadline = now.plus(config.handshake_timeout);
        ClientSession {
            codec: Codec::new(encoding, config.max_frame_bytes),
            config,
            identity,
            session_id,
            phase: Phase::AwaitingHello { deadline },
            errors: 0,
            out: VecDeque::new(),
        }
    }

    /// The codec of this connection: the driver encodes outgoing messages with it.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// This connection's id.
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// Whether the handshake has completed and the session is not closed.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether the session has asked to be closed; further input is ignored.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// One inbound WebSocket message payload (text or binary).
    pub fn handle_frame(&mut self, payload: &[u8], _now: Moment) {
        if self.is_closed() {
            return;
        }
        match self.codec.decode::<ClientMessage>(payload) {
            Ok(message) => self.handle_message(message),
            Err(e @ CodecError::TooLarge { .. }) => {
                self.refuse(ErrorCode::FrameTooLarge, e.to_string())
            }
            Err(e) => self.refuse(ErrorCode::MalformedFrame, e.to_string()),
        }
    }

    /// Time has passed; call at or after [`ClientSession::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Moment) {
        if let Phase::AwaitingHello { deadline } = self.phase {
            if now >= deadline {
                let secs = self.config.handshake_timeout.as_secs_f32();
                self.refuse(
                    ErrorCode::HandshakeTimeout,
                    format!("no hello within {secs} s"),
                );
            }
        }
    }

    /// The peer is shutting down: close with "going away" so clients reconnect later.
    pub fn handle_shutdown(&mut self) {
        if !self.is_closed() {
            self.close(CloseCode::GoingAway, "peer is shutting down".into());
        }
    }

    /// The next thing the driver must do, if any.
    pub fn poll_output(&mut self) -> Option<SessionOutput> {
        self.out.pop_front()
    }

    /// When [`ClientSession::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Moment> {
        match self.phase {
            Phase::AwaitingHello { deadline } => Some(deadline),
            _ => None,
        }
    }

    fn handle_message(&mut self, message: ClientMessage) {
        match (&self.phase, message) {
            (Phase::AwaitingHello { .. }, ClientMessage::Hello(hello)) => self.handle_hello(hello),
            (Phase::AwaitingHello { .. }, _) => self.refuse(
                ErrorCode::HandshakeRequired,
                "the first message must be a hello".into(),
            ),
            (Phase::Open, ClientMessage::Hello(_)) => self.refuse(
                ErrorCode::UnexpectedMessage,
                "hello was already received on this connection".into(),
            ),
            (Phase::Open, ClientMessage::Ping { nonce }) => {
                self.out
                    .push_back(SessionOutput::Send(ServerMessage::Pong { nonce }));
            }
            // Every message above the handshake (rooms, streams, …) goes to the driver.
            #[allow(unreachable_patterns)]
            (Phase::Open, other) => self.out.push_back(SessionOutput::Received(other)),
            (Phase::Closed, _) => {}
        }
    }

    fn handle_hello(&mut self, hello: Hello) {
        let ours = self.config.protocol_version;
        if hello.protocol_version != ours {
            let message = format!(
                "this peer speaks protocol version {ours}, the client sent {}; reload the page or update the client",
                hello.protocol_version
            );
            return self.refuse(ErrorCode::VersionMismatch, message);
        }
        if let Err(e) = hello.validate() {
            return self.refuse(ErrorCode::InvalidHello, e.to_string());
        }
        self.phase = Phase::Open;
        self.out
            .push_back(SessionOutput::Send(ServerMessage::Welcome(Welcome {
                protocol_version: ours,
                peer_id: self.identity.peer_id,
                peer_name: self.identity.peer_name.clone(),
                session_id: self.session_id,
                max_frame_bytes: u32::try_from(self.config.max_frame_bytes).unwrap_or(u32::MAX),
            })));
        self.out.push_back(SessionOutput::Opened {
            client_id: hello.client_id,
            display_name: hello.display_name.trim().to_owned(),
        });
    }

    fn refuse(&mut self, code: ErrorCode, message: String) {
        self.errors += 1;
        self.out
            .push_back(SessionOutput::Send(ServerMessage::Error {
                code,
                message: message.clone(),
            }));
        if code.is_fatal() {
            self.close(code.close_code(), message);
        } else if self.errors >= self.config.max_errors {
            let message = format!("{} refused frames; closing", self.errors);
            self.out
                .push_back(SessionOutput::Send(ServerMessage::Error {
                    code: ErrorCode::TooManyErrors,
                    message: message.clone(),
                }));
            self.close(CloseCode::ProtocolError, message);
        }
    }

    fn close(&mut self, code: CloseCode, mut reason: String) {
        // A WebSocket close reason must fit in 123 bytes.
        while reason.len() > 120 {
            reason.pop();
        }
        self.phase = Phase::Closed;
        self.out.push_back(SessionOutput::Close { code, reason });
    }
}

#[cfg(test)]
mod tests;
