//! The Multiverse wire protocol: one message enum per direction and two codecs.
//!
//! | direction | enum |
//! |---|---|
//! | client → peer | [`ClientMessage`] |
//! | peer → client | [`ServerMessage`] |
//! | peer ↔ peer | [`PeerMessage`] |
//!
//! A connection picks its encoding with the WebSocket subprotocol: [`Encoding::Binary`]
//! (`multiverse.v1.bin`, bitcode, what the web client uses) or [`Encoding::Json`]
//! (`multiverse.v1.json`, serde_json, for third-party clients and debugging). Both carry the
//! same messages; docs/PROTOCOL.md is the reference for the JSON form. The first message on
//! every connection is a hello carrying [`PROTOCOL_VERSION`]; a mismatch is refused with an
//! error frame and close code [`CloseCode::VersionMismatch`].

mod client;
mod codec;
mod federation;
mod server;

pub use client::{ClientMessage, Hello, ValidationError, MAX_DISPLAY_NAME_CHARS};
pub use codec::{Codec, CodecError, Frame, WireMessage};
pub use federation::{
    NackReason, PassageGrant, PassageRejectReason, PassageRequest, PeerHello, PeerMessage,
    RemoteSubscription, TransferControl, TransferPrepare, Visit,
};
pub use server::{CloseCode, ErrorCode, MediaKind, ServerMessage, VoiceTrack, Welcome};

/// The protocol version spoken by this build. Bumped on every incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame a peer accepts from a client or another peer, in bytes (64 KiB).
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;

/// Largest frame a client accepts from its peer, in bytes (4 MiB: snapshots can be large).
pub const MAX_SERVER_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// How a connection encodes its messages, chosen by WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// bitcode in binary WebSocket frames: compact and fast. Subprotocol `multiverse.v1.bin`.
    Binary,
    /// serde_json in text WebSocket frames. Subprotocol `multiverse.v1.json`.
    Json,
}

impl Encoding {
    /// Every encoding, in the peer's order of preference.
    pub const ALL: [Encoding; 2] = [Encoding::Binary, Encoding::Json];

    /// The WebSocket subprotocol name that selects this encoding.
    pub const fn subprotocol(self) -> &'static str {
        match self {
            Encoding::Binary => "multiverse.v1.bin",
            Encoding::Json => "multiverse.v1.json",
        }
    }

    /// The encoding a subprotocol name selects, if it is one of ours.
    pub fn from_subprotocol(name: &str) -> Option<Encoding> {
        Encoding::ALL
            .into_iter()
            .find(|e| e.subprotocol() == name.trim())
    }
}

#[cfg(test)]
mod tests;
