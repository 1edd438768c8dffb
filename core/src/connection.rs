//! The client's side of a connection to its peer, sans-IO.
//!
//! A [`Connection`] decides when to open a socket, what to say first, what the user should
//! see ([`ConnectionState`]) and when to try again. The browser drives it with WebSocket
//! events and timers; tests drive it with a fake clock. A version mismatch is final: the
//! client stops retrying and tells the user to reload, since hammering a peer that will
//! never accept it helps nobody.

use std::collections::VecDeque;

use crate::backoff::{Backoff, BackoffConfig};
use crate::clock::Moment;
use crate::ids::{ClientId, PeerId, SessionId};
use crate::wire::{
    ClientMessage, CloseCode, Codec, CodecError, Encoding, ErrorCode, Hello, ServerMessage,
    MAX_SERVER_FRAME_BYTES, PROTOCOL_VERSION,
};

/// What the user should see about the link to the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// A socket is being opened or the handshake is under way.
    Connecting {
        /// 0 for the first connection, then the number of the retry.
        attempt: u32,
    },
    /// The handshake completed.
    Connected {
        /// The peer's stable id.
        peer_id: PeerId,
        /// The peer's display name.
        peer_name: String,
        /// This connection's id.
        session_id: SessionId,
    },
    /// The link dropped; a new attempt starts at `retry_at`.
    Reconnecting {
        /// Number of the coming attempt.
        attempt: u32,
        /// When the next attempt starts.
        retry_at: Moment,
    },
    /// The peer speaks another protocol version; retrying cannot help.
    Incompatible {
        /// The peer's explanation.
        reason: String,
    },
}

impl ConnectionState {
    /// A short machine-friendly name, used as `data-state` in the web client.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionState::Connecting { .. } => "connecting",
            ConnectionState::Connected { .. } => "connected",
            ConnectionState::Reconnecting { .. } => "reconnecting",
            ConnectionState::Incompatible { .. } => "incompatible",
        }
    }
}

/// What the driver must do next, drained with [`Connection::poll_output`].
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionOutput {
    /// Open a WebSocket to the peer with subprotocol [`Connection::encoding`]; report
    /// `handle_open` / `handle_close` for it.
    OpenSocket,
    /// Encode with [`Connection::codec`] and send on the open socket.
    Send(ClientMessage),
    /// A message for the application (everything after the handshake).
    Received(ServerMessage),
    /// A frame from the peer could not be decoded; worth a console warning, nothing more.
    Undecodable(CodecError),
}

/// The client's connection state machine. See the module docs.
#[derive(Debug)]
pub struct Connection {
    hello: Hello,
    codec: Codec,
    state: ConnectionState,
    backoff: Backoff,
    attempt: u32,
    out: VecDeque<ConnectionOutput>,
}

impl Connection {
    /// A connection that will introduce itself as `display_name`/`client_id`. It asks for
    /// a socket straight away (drain [`Connection::poll_output`]).
    pub fn new(
        display_name: String,
        client_id: ClientId,
        encoding: Encoding,
        backoff: BackoffConfig,
        jitter_seed: u64,
    ) -> Self {
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            display_name,
            client_id,
        };
        Connection {
            hello,
            codec: Codec::new(encoding, MAX_SERVER_FRAME_BYTES),
            state: ConnectionState::Connecting { attempt: 0 },
            backoff: Backoff::new(backoff, jitter_seed),
            attempt: 0,
            out: VecDeque::from([ConnectionOutput::OpenSocket]),
        }
    }

    /// What the user should see now.
    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    /// The codec for outgoing messages and the subprotocol to request.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The subprotocol's encoding.
    pub fn encoding(&self) -> Encoding {
        self.codec.encoding()
    }

    /// Changes the display name used by the next hello.
    pub fn set_display_name(&mut self, name: String) {
        self.hello.display_name = name;
    }

    /// The socket opened: introduce ourselves.
    pub fn handle_open(&mut self, _now: Moment) {
        if matches!(self.state, ConnectionState::Connecting { .. }) {
            self.out
                .push_back(ConnectionOutput::Send(ClientMessage::Hello(
                    self.hello.clone(),
                )));
        }
    }

    /// One frame from the peer.
    pub fn handle_frame(&mut self, payload: &[u8], _now: Moment) {
        match self.codec.decode::<ServerMessage>(payload) {
            Ok(ServerMessage::Welcome(w)) if w.protocol_version != PROTOCOL_VERSION => {
                self.state = ConnectionState::Incompatible {
                    reason: format!(
                        "peer speaks protocol {}, this page speaks {PROTOCOL_VERSION}",
                        w.protocol_version
                    ),
                };
            }
            Ok(ServerMessage::Welcome(w)) => {
                self.backoff.reset();
                self.attempt = 0;
                self.state = ConnectionState::Connected {
                    peer_id: w.peer_id,
                    peer_name: w.peer_name,
                    session_id: w.session_id,
                };
            }
            Ok(ServerMessage::Error {
                code: ErrorCode::VersionMismatch,
                message,
            }) => self.state = ConnectionState::Incompatible { reason: message },
            Ok(other) => self.out.push_back(ConnectionOutput::Received(other)),
            Err(e) => self.out.push_back(ConnectionOutput::Undecodable(e)),
        }
    }

    /// The socket closed (or failed to open); `code` is the close code if one was received.
    pub fn handle_close(&mut self, code: Option<u16>, now: Moment) {
        if code == Some(CloseCode::VersionMismatch.code()) {
            if !matches!(self.state, ConnectionState::Incompatible { .. }) {
                self.state = ConnectionState::Incompatible {
                    reason: "the peer speaks another protocol version".into(),
                };
            }
            return;
        }
        if matches!(
            self.state,
            ConnectionState::Incompatible { .. } | ConnectionState::Reconnecting { .. }
        ) {
            return;
        }
        self.attempt += 1;
        let retry_at = now.plus(self.backoff.next_delay());
        self.state = ConnectionState::Reconnecting {
            attempt: self.attempt,
            retry_at,
        };
    }

    /// Time has passed; call at or after [`Connection::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Moment) {
        if let ConnectionState::Reconnecting { attempt, retry_at } = self.state {
            if now >= retry_at {
                self.state = ConnectionState::Connecting { attempt };
                self.out.push_back(ConnectionOutput::OpenSocket);
            }
        }
    }

    /// The next thing the driver must do, if any.
    pub fn poll_output(&mut self) -> Option<ConnectionOutput> {
        self.out.pop_front()
    }

    /// When [`Connection::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Moment> {
        match self.state {
            ConnectionState::Reconnecting { retry_at, .. } => Some(retry_at),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Welcome;
    use std::time::Duration;

    fn connection() -> Connection {
        let backoff = BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        };
        Connection::new(
            "Ada".into(),
            ClientId::from_u128(5),
            Encoding::Binary,
            backoff,
            1,
        )
    }

    fn drain(c: &mut Connection) -> Vec<ConnectionOutput> {
        std::iter::from_fn(|| c.poll_output()).collect()
    }

    fn welcome(version: u32) -> Vec<u8> {
        let w = ServerMessage::Welcome(Welcome {
            protocol_version: version,
            peer_id: PeerId::from_u128(1),
            peer_name: "kitchen".into(),
            session_id: SessionId::from_u128(2),
            max_frame_bytes: 1024,
        });
        Codec::new(Encoding::Binary, usize::MAX)
            .encode(&w)
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn opens_says_hello_and_connects() {
        let mut c = connection();
        assert_eq!(drain(&mut c), [ConnectionOutput::OpenSocket]);
        assert_eq!(c.state().name(), "connecting");
        c.handle_open(Moment(0));
        assert!(
            matches!(&drain(&mut c)[..], [ConnectionOutput::Send(ClientMessage::Hello(h))]
            if h.display_name == "Ada" && h.protocol_version == PROTOCOL_VERSION)
        );
        c.handle_frame(&welcome(PROTOCOL_VERSION), Moment(5));
        assert_eq!(c.state().name(), "connected");
    }

    #[test]
    fn reconnects_with_growing_delays_and_resets_after_success() {
        let mut c = connection();
        drain(&mut c);
        let mut now = Moment(0);
        let mut delays = Vec::new();
        for _ in 0..4 {
            c.handle_close(Some(1006), now);
            let retry_at = c.poll_timeout().expect("a retry is scheduled");
            delays.push(retry_at.since(now));
            assert_eq!(c.state().name(), "reconnecting");
            c.handle_timeout(retry_at);
            assert_eq!(drain(&mut c), [ConnectionOutput::OpenSocket]);
            now = retry_at;
        }
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000]);
        c.handle_open(now);
        c.handle_frame(&welcome(PROTOCOL_VERSION), now);
        c.handle_close(None, now);
        assert_eq!(
            c.poll_timeout().map(|t| t.since(now).as_millis()),
            Some(500)
        );
    }

    #[test]
    fn version_mismatch_is_final() {
        let mut c = connection();
        drain(&mut c);
        c.handle_open(Moment(0));
        let err = ServerMessage::Error {
            code: ErrorCode::VersionMismatch,
            message: "peer speaks 2".into(),
        };
        let frame = Codec::new(Encoding::Binary, usize::MAX).encode(&err);
        c.handle_frame(frame.as_bytes(), Moment(1));
        c.handle_close(Some(4001), Moment(2));
        assert_eq!(
            c.state(),
            &ConnectionState::Incompatible {
                reason: "peer speaks 2".into()
            }
        );
        assert_eq!(c.poll_timeout(), None);
        let mut c = connection();
        c.handle_frame(&welcome(PROTOCOL_VERSION + 1), Moment(0));
        assert_eq!(c.state().name(), "incompatible");
        let mut c = connection();
        c.handle_close(Some(4001), Moment(0));
        assert_eq!(c.state().name(), "incompatible");
    }

    #[test]
    fn undecodable_frames_are_reported_not_fatal() {
        let mut c = connection();
        drain(&mut c);
        c.handle_frame(b"\xff\xfe", Moment(0));
        assert!(matches!(
            &drain(&mut c)[..],
            [ConnectionOutput::Undecodable(_)]
        ));
        assert_eq!(c.state().name(), "connecting");
    }
}
