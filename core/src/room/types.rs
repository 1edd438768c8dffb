//! The room's data: settings, members, presence, cursors, and why requests are refused.

use serde::{Deserialize, Serialize};

use super::{ChatMessage, CHAT_PER_SECOND, MAX_CHAT_CHARS};
use crate::ids::{ClientId, RoomId, UniverseId};
use crate::universe::Vec2;
use crate::wire::ErrorCode;

/// Who may enter a room.
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
pub enum AccessPolicy {
    /// Only with an invite token in the link (`?invite=…`).
    Private,
    /// Anyone with the link; not listed.
    Shared,
    /// Anyone; listed on the peer.
    Public,
}

/// A room's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RoomConfig {
    /// The room's id (its link).
    pub id: RoomId,
    /// `false`: a single-player room (one member at a time).
    pub multiplayer: bool,
    /// Most members at once (1–256).
    pub max_players: u32,
    /// Who may enter.
    pub access: AccessPolicy,
    /// The universe the room shows.
    pub universe: Option<UniverseId>,
}

impl RoomConfig {
    /// A shared multiplayer room for 16 showing `universe`.
    pub fn new(id: RoomId, universe: Option<UniverseId>) -> Self {
        RoomConfig {
            id,
            multiplayer: true,
            max_players: 16,
            access: AccessPolicy::Shared,
            universe,
        }
    }

    pub(super) fn capacity(&self) -> usize {
        if self.multiplayer {
            self.max_players.clamp(1, 256) as usize
        } else {
            1
        }
    }
}

/// Whether a member is looking.
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
pub enum Presence {
    /// The tab is visible and in use.
    Active,
    /// The tab is hidden or idle.
    Away,
}

/// A member as the others see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MemberInfo {
    /// This membership (one per connection).
    pub member: u64,
    /// The member's client.
    pub client: ClientId,
    /// Display name.
    pub name: String,
    /// 0xRRGGBB, for the cursor and the member list.
    pub colour: u32,
    /// Active or away.
    pub presence: Presence,
    /// Whether this member owns the room.
    pub owner: bool,
}

/// Where a member points: in the world of the room's universe, or (off the canvas) in
/// viewport-normalised coordinates 0–1.
#[derive(
    Debug, Clone, Copy, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(tag = "space", rename_all = "snake_case")]
pub enum CursorPosition {
    /// World coordinates in a universe.
    World {
        /// Which universe.
        universe: UniverseId,
        /// Where.
        at: Vec2,
    },
    /// Normalised page coordinates, each 0–1.
    Viewport {
        /// 0 = left edge, 1 = right edge.
        #[cfg_attr(test, proptest(strategy = "0f32..=1.0"))]
        x: f32,
        /// 0 = top, 1 = bottom.
        #[cfg_attr(test, proptest(strategy = "0f32..=1.0"))]
        y: f32,
    },
}

impl CursorPosition {
    pub(super) fn is_valid(&self) -> bool {
        match self {
            CursorPosition::World { at, .. } => {
                at.is_finite() && at.x.abs() < 1e7 && at.y.abs() < 1e7
            }
            CursorPosition::Viewport { x, y } => (0.0..=1.0).contains(x) && (0.0..=1.0).contains(y),
        }
    }
}

/// One member's cursor in a batch; `None` hides it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MemberCursor {
    /// Whose.
    pub member: u64,
    /// Where, or hidden.
    pub position: Option<CursorPosition>,
}

/// What a joining member learns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RoomWelcome {
    /// The room's settings.
    pub config: RoomConfig,
    /// Your membership id.
    pub you: u64,
    /// Everyone present, you included.
    pub members: Vec<MemberInfo>,
    /// The newest chat messages (up to 50), oldest first.
    pub history: Vec<ChatMessage>,
}

/// Why a join or request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The room has as many members as it allows.
    #[error("room full: {0} of {0} places taken")]
    Full(usize),
    /// The room is private and the link has no valid invite.
    #[error("this room is private: ask its owner for an invite link")]
    InviteRequired,
    /// The member is not in this room.
    #[error("not in this room")]
    NotInRoom,
    /// Only the owner may do this.
    #[error("only the room's owner may do that")]
    NotOwner,
    /// Too many messages too fast.
    #[error("slow down: at most {CHAT_PER_SECOND} messages per second")]
    RateLimited,
    /// The message is empty or too long.
    #[error("chat messages are 1-{MAX_CHAT_CHARS} characters")]
    BadChat,
    /// The cursor position is not finite or out of range.
    #[error("cursor coordinates must be finite (viewport ones within 0-1)")]
    BadCursor,
    /// The invite token is malformed or there are too many.
    #[error("invalid invite request")]
    BadInvite,
    /// The player limit is out of range.
    #[error("max_players must be 1-256")]
    BadLimit,
}

impl RoomError {
    /// The wire error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            RoomError::Full(_) => ErrorCode::RoomFull,
            RoomError::InviteRequired => ErrorCode::InviteRequired,
            RoomError::NotInRoom => ErrorCode::NotInRoom,
            RoomError::NotOwner => ErrorCode::NotOwner,
            RoomError::RateLimited => ErrorCode::RateLimited,
            RoomError::BadChat
            | RoomError::BadCursor
            | RoomError::BadInvite
            | RoomError::BadLimit => ErrorCode::InvalidRequest,
        }
    }
}
