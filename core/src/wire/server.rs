//! Messages from a peer to its clients, error codes and close codes.

use serde::{Deserialize, Serialize};

use crate::ids::MessageId;
use crate::ids::{PeerId, SessionId, UniverseId};
use crate::room::{ChatMessage, MemberCursor, MemberInfo, Presence, RoomConfig, RoomWelcome};
use crate::stream::{InteractionMode, Snapshot, StreamUpdate, ViewMode};
use crate::universe::UniverseInfo;

/// Peer → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMessage {
    /// Accepts the client's hello: the session is open.
    Welcome(Welcome),
    /// Answers a `ping`.
    Pong {
        /// The nonce of the ping being answered.
        nonce: u32,
    },
    /// Something the client sent was refused. Whether the connection closes afterwards is
    /// given by [`ErrorCode::is_fatal`]; a fatal error is followed by a close frame.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable explanation, safe to show to the user.
        message: String,
    },
    /// The universes this peer hosts (answers `list_universes`).
    UniverseList {
        /// One entry per universe.
        universes: Vec<UniverseInfo>,
    },
    /// A subscription started; a `snapshot` follows.
    Subscribed {
        /// The universe.
        universe: UniverseInfo,
        /// The granted view mode.
        mode: ViewMode,
        /// What the subscriber may do.
        interaction: InteractionMode,
    },
    /// The whole view of a subscription.
    Snapshot(Box<Snapshot>),
    /// Changes to a subscription's view.
    Update(Box<StreamUpdate>),
    /// The session token was valid: this connection now acts for `user`.
    Authenticated {
        /// The user.
        user: crate::ids::UserId,
    },
    /// Events from a universe's event bus, in the order they happened.
    Events {
        /// The universe.
        universe: UniverseId,
        /// The tick they happened by.
        tick: u64,
        /// What happened.
        events: Vec<crate::universe::UniverseEvent>,
    },
    /// A subscription ended.
    Unsubscribed {
        /// The universe.
        universe: UniverseId,
        /// Why.
        reason: String,
    },
    /// You are in the room: its settings, its members and recent chat.
    RoomJoined(Box<RoomWelcome>),
    /// Someone entered the room.
    MemberJoined(MemberInfo),
    /// Someone left (`left`, `disconnected` or `gone` after missed heartbeats); their cursor
    /// goes with them.
    MemberLeft {
        /// Who.
        member: u64,
        /// Why.
        reason: String,
    },
    /// A member became active or away.
    PresenceChanged {
        /// Who.
        member: u64,
        /// Now.
        presence: Presence,
    },
    /// A chat message, in the room's one order.
    Chat(ChatMessage),
    /// Your message `id` is stored with sequence number `seq`.
    ChatAck {
        /// Your message id.
        id: MessageId,
        /// Its place in the order.
        seq: u64,
    },
    /// Chat messages answering `chat_backfill`, oldest first.
    ChatHistory {
        /// The messages.
        messages: Vec<ChatMessage>,
    },
    /// Cursors that moved since the last batch.
    Cursors {
        /// One entry per moved cursor.
        cursors: Vec<MemberCursor>,
    },
    /// A new invite token (owner only).
    InviteCreated {
        /// Put it in the link as `?invite=<token>`.
        token: String,
    },
    /// An invite token no longer works.
    InviteRevoked {
        /// The token.
        token: String,
    },
    /// The room's settings changed (its owner configured it).
    RoomConfigured(RoomConfig),
    /// Answers `voice_offer`: voice is connecting (ICE on the peer's UDP port).
    VoiceAnswer {
        /// The answer, as SDP text.
        sdp: String,
    },
    /// The peer renegotiates: other members' tracks were added or removed. Answer with
    /// `voice_answer`. A `voice_tracks` naming the new media lines comes first.
    VoiceOffer {
        /// The offer, as SDP text.
        sdp: String,
    },
    /// Which member each received media line carries (the whole list, after every change).
    VoiceTracks {
        /// One entry per forwarded track.
        tracks: Vec<VoiceTrack>,
    },
    /// Whose voices this connection receives now: the speakers in its hearing set.
    VoiceHearing {
        /// Member numbers, ascending.
        members: Vec<u64>,
    },
    /// Voice stopped for this connection (asked, or the connection's media failed).
    VoiceEnded {
        /// Why.
        reason: String,
    },
}

/// One media line the peer forwards to a listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct VoiceTrack {
    /// The media line's `mid` in the SDP.
    pub mid: String,
    /// The member whose media it carries.
    pub member: u64,
    /// That member's client (the avatar's marker).
    pub client: crate::ids::ClientId,
    /// `audio` or `video`.
    pub kind: MediaKind,
}

/// What a forwarded track carries.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    bitcode::Encode,
    bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Opus voice.
    Audio,
    /// VP8 camera video.
    Video,
}

/// The peer's side of the handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Welcome {
    /// The protocol version the peer speaks (equal to the client's, or there is no welcome).
    pub protocol_version: u32,
    /// The peer's stable id.
    pub peer_id: PeerId,
    /// The peer's display name (its `--name`).
    pub peer_name: String,
    /// Id of this connection, for logs and later resumption.
    pub session_id: SessionId,
    /// Largest frame, in bytes, the peer accepts from this client.
    pub max_frame_bytes: u32,
}

/// Why the peer refused something. Serialised in `snake_case`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    bitcode::Encode,
    bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The hello carried another protocol version. Fatal.
    VersionMismatch,
    /// A message other than hello arrived before the handshake. Fatal.
    HandshakeRequired,
    /// No hello arrived in time. Fatal.
    HandshakeTimeout,
    /// A field of the hello is unacceptable (for example an empty display name). Fatal.
    InvalidHello,
    /// The frame could not be decoded.
    MalformedFrame,
    /// The frame is larger than the limit.
    FrameTooLarge,
    /// The message is valid but not allowed now (for example a second hello).
    UnexpectedMessage,
    /// Too many refused frames on this connection. Fatal.
    TooManyErrors,
    /// No universe with that id is hosted here.
    UnknownUniverse,
    /// A stream configuration or viewport is invalid; the subscription is unchanged.
    InvalidStreamConfig,
    /// The request names a universe this connection is not subscribed to.
    NotSubscribed,
    /// The subscription's mode does not allow this.
    NotPermitted,
    /// The interaction was allowed but the universe refused it (unknown command, limits).
    InvalidInteraction,
    /// The room has no free place.
    RoomFull,
    /// The room is private and the request carries no valid invite.
    InviteRequired,
    /// The request needs a room this connection has not joined.
    NotInRoom,
    /// Only the room's owner may do this.
    NotOwner,
    /// Too many messages too fast; wait a moment.
    RateLimited,
    /// A field is out of range (empty or over-long chat, bad cursor, bad invite).
    InvalidRequest,
    /// The session token is forged, damaged or from another peer.
    InvalidToken,
    /// A voice offer or answer was not valid SDP, or not one the peer can accept.
    BadSdp,
    /// Voice is not available on this peer (its UDP socket could not be opened) or for this
    /// connection right now.
    VoiceUnavailable,
}

impl ErrorCode {
    /// Whether the peer closes the connection right after sending this error.
    pub const fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorCode::VersionMismatch
                | ErrorCode::HandshakeRequired
                | ErrorCode::HandshakeTimeout
                | ErrorCode::InvalidHello
                | ErrorCode::TooManyErrors
        )
    }

    /// The WebSocket close code that follows a fatal error.
    pub const fn close_code(self) -> CloseCode {
        match self {
            ErrorCode::VersionMismatch => CloseCode::VersionMismatch,
            ErrorCode::HandshakeTimeout => CloseCode::HandshakeTimeout,
            ErrorCode::InvalidHello => CloseCode::InvalidHello,
            _ => CloseCode::ProtocolError,
        }
    }
}

/// WebSocket close codes used by Multiverse (4000–4999 are application-defined).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: the session ended normally.
    Normal = 1000,
    /// 1001: the peer is shutting down; reconnect later.
    GoingAway = 1001,
    /// 1009: a frame exceeded the transport's hard limit.
    MessageTooBig = 1009,
    /// 4000: the client broke the protocol (see the preceding error frame).
    ProtocolError = 4000,
    /// 4001: client and peer speak different protocol versions; do not retry blindly.
    VersionMismatch = 4001,
    /// 4002: no hello within the handshake timeout.
    HandshakeTimeout = 4002,
    /// 4003: the hello was refused (see the preceding error frame).
    InvalidHello = 4003,
    /// 4004: the client could not keep up with its room's traffic; reconnect and backfill.
    TooSlow = 4004,
}

impl CloseCode {
    /// The numeric close code.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The close code with this number, if it is one of ours.
    pub fn from_code(code: u16) -> Option<CloseCode> {
        [
            CloseCode::Normal,
            CloseCode::GoingAway,
            CloseCode::MessageTooBig,
            CloseCode::ProtocolError,
            CloseCode::VersionMismatch,
            CloseCode::HandshakeTimeout,
            CloseCode::InvalidHello,
            CloseCode::TooSlow,
        ]
        .into_iter()
        .find(|c| c.code() == code)
    }
}
