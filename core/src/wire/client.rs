//! Messages from a client (browser or third-party program) to its peer.

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, MessageId, RoomId, UniverseId};
use crate::room::{AccessPolicy, CursorPosition};
use crate::stream::{Interaction, StreamConfiguration, ViewMode};
use crate::universe::{Rect, Vec2};

/// The longest display name accepted, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 48;

/// Client → peer. Every connection starts with [`ClientMessage::Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientMessage {
    /// Opens the session; must be the first frame. Answered by `welcome` or an error + close.
    Hello(Hello),
    /// Liveness probe; the peer answers with `pong` carrying the same nonce.
    Ping {
        /// Echoed back unchanged.
        nonce: u32,
    },
    /// Asks for the universes this peer hosts; answered by `universe_list`.
    ListUniverses,
    /// Starts streaming a universe (or replaces this connection's subscription to it).
    /// Answered by `subscribed` and a `snapshot`, then `update`s.
    Subscribe {
        /// Which universe.
        universe: UniverseId,
        /// What to stream and how.
        config: StreamConfiguration,
        /// The part of the world in view; `null` for all of it.
        viewport: Option<Rect>,
        /// Observe (read-only) or participate.
        mode: ViewMode,
    },
    /// Stops streaming a universe; answered by `unsubscribed`.
    Unsubscribe {
        /// Which universe.
        universe: UniverseId,
    },
    /// Proves who the user is with the session token `POST /api/session` issued; answered
    /// by `authenticated`. Until then the connection acts for nobody in particular.
    Authenticate {
        /// The signed session token.
        token: String,
    },
    /// Chooses which events of a universe this connection receives as `events` messages
    /// (the universe's event bus); an empty list stops them.
    SubscribeEvents {
        /// Which universe.
        universe: UniverseId,
        /// The kinds wanted.
        kinds: Vec<crate::universe::EventKind>,
    },
    /// Moves the viewport of a subscription (pan and zoom).
    SetViewport {
        /// Which universe.
        universe: UniverseId,
        /// The new viewport; `null` for the whole world.
        viewport: Option<Rect>,
    },
    /// Replaces the stream configuration of a subscription.
    Configure {
        /// Which universe.
        universe: UniverseId,
        /// The new configuration.
        config: StreamConfiguration,
    },
    /// The client's mirror detected a gap; asks for a fresh snapshot.
    Resync {
        /// Which universe.
        universe: UniverseId,
    },
    /// Acts on a universe (click, command) if the subscription's mode permits.
    Interact {
        /// Which universe.
        universe: UniverseId,
        /// What to do.
        interaction: Interaction,
    },
    /// Enters a room (leaving any other); answered by `room_joined` or an error.
    JoinRoom {
        /// Which room.
        room: RoomId,
        /// The invite token from the link, for private rooms.
        invite: Option<String>,
    },
    /// Leaves the current room.
    LeaveRoom,
    /// Says something in the room. Resending with the same `id` never duplicates.
    Chat {
        /// Chosen by the client, kept across resends.
        id: MessageId,
        /// 1–500 characters.
        text: String,
    },
    /// Asks for the chat messages after `since` (a `seq`), e.g. after a reconnect.
    ChatBackfill {
        /// The last `seq` the client has.
        since: u64,
    },
    /// Where the pointer is (up to 30 times a second; `null` hides it).
    Cursor {
        /// World or viewport-normalised position.
        position: Option<CursorPosition>,
    },
    /// Heartbeat every 5 s, and whenever the tab becomes visible or hidden.
    Presence {
        /// Whether the tab is visible and in use.
        active: bool,
    },
    /// The owner asks for an invite token for a private room.
    CreateInvite,
    /// The owner revokes an invite token.
    RevokeInvite {
        /// The token.
        token: String,
    },
    /// The owner changes who may enter and how many.
    ConfigureRoom {
        /// Who may enter.
        access: AccessPolicy,
        /// Most members at once (1–256).
        max_players: u32,
        /// `false` makes it a single-player room.
        multiplayer: bool,
    },
    /// Walks your avatar in the room's universe towards `to` (click-to-move, or one step of
    /// the arrow keys / WASD). Needs a joined room; the peer clamps `to` to the world.
    MoveAvatar {
        /// Where the avatar should go, in world coordinates.
        to: Vec2,
    },
    /// Starts voice in the current room with the browser's SDP offer (an Opus audio
    /// transceiver and a VP8 video transceiver, both send-only). Answered by `voice_answer`,
    /// then `voice_tracks` and `voice_offer` whenever other members' tracks come and go.
    VoiceOffer {
        /// The offer, as SDP text.
        sdp: String,
    },
    /// Answers a peer's `voice_offer` (renegotiation).
    VoiceAnswer {
        /// The answer, as SDP text.
        sdp: String,
    },
    /// Stops voice (and video) for this connection; the room carries on.
    VoiceLeave,
}

/// The client's side of the handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Hello {
    /// The [`crate::wire::PROTOCOL_VERSION`] the client speaks.
    pub protocol_version: u32,
    /// The name other members see: 1–48 characters, no control characters.
    pub display_name: String,
    /// Stable id of this client install, generated by the client.
    pub client_id: ClientId,
}

impl Hello {
    /// Checks the fields a peer must not trust blindly.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let name = self.display_name.trim();
        if name.is_empty() {
            return Err(ValidationError::EmptyDisplayName);
        }
        if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(ValidationError::DisplayNameTooLong {
                max: MAX_DISPLAY_NAME_CHARS,
            });
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::ControlCharacters);
        }
        Ok(())
    }
}

/// A field of a message was well-formed but not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The display name is empty or only whitespace.
    #[error("display_name must not be empty")]
    EmptyDisplayName,
    /// The display name is longer than the limit.
    #[error("display_name is longer than {max} characters")]
    DisplayNameTooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// The display name contains control characters.
    #[error("display_name must not contain control characters")]
    ControlCharacters,
}
