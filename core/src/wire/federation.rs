//! Messages between two peers (federation). The link speaks the same framing and codecs as
//! client connections; the peer that dialled sends [`PeerMessage::Hello`] first.
//!
//! | concern | messages | state machine |
//! |---|---|---|
//! | identity | `hello`, `welcome`, `error` | the driver (a version mismatch is an error) |
//! | discovery | `list_universes` → `universes`, `get_config` → `config` | the driver |
//! | passages | `passage_open` → `passage_pending`? → `passage_accept` / `passage_reject`; `passage_close`; `heartbeat` → `heartbeat_ack` | [`crate::federation::Passage`] |
//! | portals | `subscribe`, `unsubscribe`, `stream_frame` | the owner's [`crate::stream::StreamServer`] |
//! | transfers | `transfer_prepare` → `transfer_ack` / `transfer_nack`; `transfer_commit` → `transfer_commit_ack`; `transfer_abort` → `transfer_abort_ack` | [`crate::federation::TransferEngine`] |
//! | routing | `routed`: a transfer message between two universes' engines | the driver |

use serde::{Deserialize, Serialize};

use crate::federation::CrossingCost;
use crate::ids::{EntityId, PassageId, PeerId, TransferId, UniverseId};
use crate::stream::{InteractionMode, StreamConfiguration, ViewMode};
use crate::universe::{Rect, UniverseConfig, UniverseInfo, Vec2};
use crate::wire::{ErrorCode, ServerMessage};

/// Peer ↔ peer, in both directions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PeerMessage {
    /// Opens a link; sent by the dialling peer.
    Hello(PeerHello),
    /// Accepts a link; sent by the accepting peer with its own identity.
    Welcome(PeerHello),
    /// Something the other peer sent was refused.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
    },
    /// Asks for the universes the other peer lists (public ones).
    ListUniverses,
    /// Answers `list_universes`.
    Universes {
        /// One entry per listed universe.
        universes: Vec<UniverseInfo>,
    },
    /// Asks for one universe's configuration (to compute compatibility before a passage).
    GetConfig {
        /// Which universe.
        universe: UniverseId,
    },
    /// Answers `get_config`; `None` when the universe is unknown or not visible to the asker.
    Config {
        /// The universe asked about.
        universe: UniverseId,
        /// Its configuration.
        config: Option<Box<UniverseConfig>>,
    },
    /// Asks the owner of `to_universe` to open a passage (sent again to reconnect).
    PassageOpen(Box<PassageRequest>),
    /// The owner must approve the passage first; an accept or reject follows later.
    PassagePending {
        /// Which passage.
        passage: PassageId,
    },
    /// The passage is open, with what the owner granted.
    PassageAccept(Box<PassageGrant>),
    /// The passage was refused.
    PassageReject {
        /// Which passage.
        passage: PassageId,
        /// Machine-readable reason.
        reason: PassageRejectReason,
        /// Human-readable explanation, e.g. which physics differ most.
        message: String,
    },
    /// Either side closes the passage for good.
    PassageClose {
        /// Which passage.
        passage: PassageId,
        /// Why, for people.
        reason: String,
    },
    /// Keeps a passage's health up to date; answered with `heartbeat_ack` of the same `seq`.
    Heartbeat {
        /// Which passage.
        passage: PassageId,
        /// Incremented by the sender for each heartbeat.
        seq: u64,
    },
    /// Answers a heartbeat.
    HeartbeatAck {
        /// Which passage.
        passage: PassageId,
        /// The sequence number of the heartbeat answered.
        seq: u64,
    },
    /// Starts (or replaces) a relayed stream of a remote universe, seen through a passage.
    Subscribe(Box<RemoteSubscription>),
    /// Ends a relayed stream.
    Unsubscribe {
        /// The subscriber's stream number.
        stream: u64,
    },
    /// One frame of a relayed stream: a [`ServerMessage::Snapshot`] or
    /// [`ServerMessage::Update`] as the owner's stream server produced it.
    StreamFrame {
        /// The subscriber's stream number.
        stream: u64,
        /// The frame.
        frame: Box<ServerMessage>,
    },
    /// Source → target: phase one of a transfer. Resent until answered.
    TransferPrepare(Box<TransferPrepare>),
    /// Target → source: the entity is stored, hidden, at `entity`. Sent again for every
    /// duplicate prepare, always with the same `entity`.
    TransferAck {
        /// Which transfer.
        transfer: TransferId,
        /// The entity's id in the target universe.
        entity: EntityId,
    },
    /// Target → source: refused; nothing was stored and the entity goes home.
    TransferNack {
        /// Which transfer.
        transfer: TransferId,
        /// Why.
        reason: NackReason,
    },
    /// Source → target: the source deleted its copy; make the entity visible.
    TransferCommit(TransferControl),
    /// Target → source: the entity is visible at the target.
    TransferCommitAck {
        /// Which transfer.
        transfer: TransferId,
    },
    /// Source → target: the source gave up before an ack; drop anything stored.
    TransferAbort(TransferControl),
    /// Target → source: nothing of the transfer remains at the target.
    TransferAbortAck {
        /// Which transfer.
        transfer: TransferId,
    },
    /// A visitor acts in a universe it sees through a passage (a portal in participate
    /// mode). The owner checks the passage's grant before anything happens.
    Interact(Box<Visit>),
    /// A message between two universes' transfer engines (each universe runs its own,
    /// addressed by its id), carried over the link of the peers that host them.
    Routed {
        /// The sending universe.
        from: UniverseId,
        /// The receiving universe.
        to: UniverseId,
        /// The engine's message (a `transfer_*` message), bitcode-encoded: the codecs
        /// cannot nest a message inside itself. See [`PeerMessage::routed`].
        payload: Vec<u8>,
    },
}

impl PeerMessage {
    /// Wraps an engine's message for the universe `to`.
    pub fn routed(from: UniverseId, to: UniverseId, message: &PeerMessage) -> PeerMessage {
        PeerMessage::Routed {
            from,
            to,
            payload: super::codec::encode_bitcode(message),
        }
    }

    /// The message inside a [`PeerMessage::Routed`] payload.
    pub fn unroute(payload: &[u8]) -> Result<PeerMessage, bitcode::Error> {
        super::codec::decode_bitcode(payload)
    }
}

/// A visitor's interaction through a passage (see [`PeerMessage::Interact`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Visit {
    /// The passage the visitor came through.
    pub passage: PassageId,
    /// The owner's universe.
    pub universe: UniverseId,
    /// The visitor, as the opener's peer knows them.
    pub user: crate::ids::UserId,
    /// What they do.
    pub interaction: crate::stream::Interaction,
}

/// A peer's identity, exchanged when a link opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PeerHello {
    /// The [`crate::wire::PROTOCOL_VERSION`] the sender speaks.
    pub protocol_version: u32,
    /// The sender's stable id.
    pub peer_id: PeerId,
    /// The sender's display name.
    pub peer_name: String,
}

/// What the opener of a passage asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PassageRequest {
    /// Chosen by the opener; stable across reconnects.
    pub passage: PassageId,
    /// The opener's universe.
    pub from_universe: UniverseId,
    /// Its configuration, for the compatibility score.
    pub from_config: UniverseConfig,
    /// The owner's universe.
    pub to_universe: UniverseId,
    /// How the opener wants to see the remote universe (`None`: not at all).
    pub view: Option<ViewMode>,
    /// What the opener wants to do there.
    pub interaction: InteractionMode,
    /// Frames per second of the portal view, 1–60.
    pub sync_hz: u32,
    /// The passage password, if the owner requires one. Only its hash is ever stored.
    pub password: Option<String>,
}

/// What the owner granted (never more than was asked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PassageGrant {
    /// Which passage.
    pub passage: PassageId,
    /// The granted view.
    pub view: Option<ViewMode>,
    /// The granted interaction.
    pub interaction: InteractionMode,
    /// The compatibility score of the two universes (0 = identical).
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub score: f32,
    /// What creating and crossing the passage costs.
    pub costs: CrossingCost,
}

/// Why a passage was refused.
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
pub enum PassageRejectReason {
    /// The owner hosts no such universe.
    UniverseNotFound,
    /// The two universes' laws differ too much (score above the limit).
    Incompatible,
    /// Wrong or missing password, or the opener is not on the allow-list.
    Unauthorized,
    /// The universe is private and admits no passages.
    Private,
    /// The owner declined the request.
    Denied,
    /// The request itself is malformed (e.g. `sync_hz` out of range).
    Invalid,
}

/// A relayed stream of a remote universe, seen through a passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RemoteSubscription {
    /// The passage whose granted view mode applies.
    pub passage: PassageId,
    /// Chosen by the subscriber; names the stream in `stream_frame` and `unsubscribe`.
    pub stream: u64,
    /// The universe to stream.
    pub universe: UniverseId,
    /// What to stream and how.
    pub config: StreamConfiguration,
    /// The visible part of the world, if limited.
    pub viewport: Option<Rect>,
}

/// Phase one of a transfer: the entity itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TransferPrepare {
    /// Which transfer (minted by the source).
    pub transfer: TransferId,
    /// The source's sequence number of this transfer.
    pub seq: u64,
    /// Every transfer from the sender to the receiver with a lower `seq` is settled.
    pub settled_below: u64,
    /// The passage it travels through.
    pub passage: PassageId,
    /// The target universe.
    pub universe: UniverseId,
    /// Where it appears in the target universe (clamped into its bounds).
    pub exit: Vec2,
    /// The entity's canonical encoding (bitcode of [`crate::universe::Entity`]).
    pub entity: Vec<u8>,
    /// blake3 of `entity`.
    pub checksum: [u8; 32],
}

/// Phase two of a transfer (commit or abort), from the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TransferControl {
    /// Which transfer.
    pub transfer: TransferId,
    /// Its sequence number.
    pub seq: u64,
    /// Every transfer from the sender to the receiver with a lower `seq` is settled.
    pub settled_below: u64,
}

/// Why a target refused a transfer.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    bitcode::Encode,
    bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NackReason {
    /// The entity's bytes do not match their checksum.
    ChecksumMismatch,
    /// The target hosts no such universe.
    UniverseNotFound,
    /// The passage is closed or unknown at the target.
    PassageClosed,
    /// Refused for what it is: malformed, non-finite numbers, or no room.
    Rejected,
    /// The entity is larger than the target accepts.
    TooLarge,
}
