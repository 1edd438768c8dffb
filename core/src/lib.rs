//! # multiverse-core
//!
//! The sans-IO heart of Multiverse: every type and state machine that both the native peer
//! and the browser client share. Nothing here reads a clock, opens a socket or spawns a task;
//! time arrives as a [`clock::Moment`] argument and output is drained from `poll_*` methods,
//! the way str0m's `Rtc` and quinn-proto's `Connection` work. The same crate compiles for
//! x86_64 and wasm32-unknown-unknown.
//!
//! ## Layout
//! | module | holds |
//! |---|---|
//! | [`ids`] | newtype identifiers (peers, sessions, clients, rooms, universes, entities, …) |
//! | [`clock`] | [`clock::Moment`], the driver-supplied notion of "now" |
//! | [`backoff`] | capped exponential backoff with deterministic jitter (reconnects) |
//! | [`rng`] | the deterministic random number generator of simulations |
//! | [`universe`] | entities, components, the seeded `step`, events, change tracking, demo universes |
//! | [`room`] | rooms: membership, invites, presence, chat order and dedupe, coalesced cursors |
//! | [`stream`] | interest management, snapshot + deltas ([`stream::StreamServer`]) and the client mirror |
//! | [`federation`] | passages between peers (compatibility, policy, lifecycle) and exactly-once entity transfers with a journal |
//! | [`voice`] | who hears whom: avatar-distance hearing sets with hysteresis, panner geometry |
//! | [`wire`] | one message enum per direction, [`wire::PROTOCOL_VERSION`], the two codecs, limits |
//! | [`session`] | the peer's side of one client connection: handshake, strikes, timeouts |
//! | [`connection`] | the client's side: connect, handshake, reconnect with backoff, incompatibility |
//!
//! ## The drain rule
//! Every state machine follows one rule: after **any** `handle_*` call, the driver drains
//! `poll_output()` until it returns `None`, then asks `poll_timeout()` when to call
//! `handle_timeout` next. Drivers hold no protocol logic of their own.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backoff;
pub mod clock;
pub mod connection;
pub mod federation;
pub mod ids;
pub mod rng;
pub mod room;
pub mod session;
pub mod stream;
#[cfg(test)]
mod testing;
pub mod universe;
pub mod voice;
pub mod wire;
#[cfg(feature = "json")]
pub mod world;
