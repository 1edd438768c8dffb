//! Messages between two peers (federation). The link speaks the same framing and codecs as
//! client connections; the peer that dialled sends [`PeerMessage::Hello`] first.

use serde::{Deserialize, Serialize};

use crate::ids::PeerId;
use crate::wire::ErrorCode;

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
    /// Keeps the link's health up to date; answered with a heartbeat of the same sequence.
    Heartbeat {
        /// Incremented by the sender for each heartbeat.
        seq: u64,
    },
    /// Something the other peer sent was refused.
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
    },
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
