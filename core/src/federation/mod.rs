//! Federation: passages between universes on different peers, and entities moving through
//! them exactly once. Sans-IO like the rest of the crate: the native peer's driver turns
//! sockets, timers and its store into calls here and performs what comes out.
//!
//! ## Layout
//! | file | holds |
//! |---|---|
//! | `compat` | [`Compatibility`]: the documented score between two universe configurations, [`CrossingCost`] |
//! | `policy` | the owner's [`PassagePolicy`] (access, [`PassageAuth`]: password hash, allow-list, approval) → [`Admission`] |
//! | `passage` | [`Passage`]: one end of a passage — lifecycle, heartbeats, health, reconnects, enforcement of the grant |
//! | `transfer` | [`TransferEngine`]: both roles of exactly-once transfers, the driving API |
//! | `source` | the source's side (the coordinator): transfers in flight, resends, answers |
//! | `target` | the target's side: validation ([`decode_entity`]), pending entities, tombstones |
//! | [`journal`] | [`JournalRecord`]s, restore (replay + universe repair), compaction |
//!
//! The messages are [`crate::wire::PeerMessage`]s.
//!
//! ## Exactly-once transfer
//! A two-phase commit in which the **source is the coordinator**. Every arrow is resent until
//! answered (prepare only until a deadline); every answer is idempotent.
//!
//! ```text
//!  source (coordinator)                                      target
//!  start: hide entity, J(started)
//!        ── prepare{id, seq, bytes, blake3, exit} ────────▶ size, checksum, decode, universe, passage
//!                                                            spawn hidden at exit, J(received)
//!        ◀──────────────────────────── ack{id, new id} ──   (or J(refused), nack{reason})
//!  J(committed), delete, "entity:departed_remote"
//!        ── commit{id} ────────────────────────────────────▶ J(done), show, "entity:arrived_remote"
//!        ◀──────────────────────────────── commit_ack{id} ──
//!  J(finished), forget
//!
//!  nack{reason}:        J(returned), show the entity again where it was
//!  no ack by deadline:  J(aborting) ── abort{id} ──────────▶ remove the pending entity if any, J(aborted)
//!                       J(returned), show ◀── abort_ack{id} ──
//! ```
//!
//! * **Idempotence.** A duplicate prepare is answered from the target's state: the same
//!   `ack` with the same new entity id, or the same `nack`. A commit for a done transfer is
//!   acked again. An abort for a transfer never seen leaves a tombstone, so a prepare that
//!   arrives late cannot store anything.
//! * **Decisions are final.** Once the source journaled `committed` it only ever resends
//!   commit (no deadline); once it journaled `aborting` it ignores acks.
//! * **Forgetting.** Every message from a source carries `settled_below`: every transfer it
//!   sent to this target with a smaller sequence number is settled. The target drops those
//!   tombstones and ignores prepares that old, so its memory stays bounded however
//!   messages are duplicated or delayed.
//!
//! ## Durability: the driver's rules
//! 1. Drain [`TransferEngine::poll_output`] after every call, in order. A
//!    [`TransferOutput::Journal`] record must be durable before any **later** output is
//!    performed (above all a `Send`): nothing is ever acknowledged that a restart could
//!    forget. Consecutive records may share one durable write.
//! 2. Save a universe only between drains, when every journal record output so far is
//!    durable. (Hidden flags are not saved; the journal restores them.)
//! 3. After a restart, load the universes (from any save, however old), then call
//!    [`TransferEngine::restore`] with every record, before stepping or streaming them.
//! 4. To compact, replace the journal with [`TransferEngine::checkpoint`] taken together
//!    with a save of every universe the engine touches, once that save is durable.

mod compat;
pub mod journal;
mod passage;
mod policy;
mod source;
mod target;
mod transfer;

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

pub use compat::{
    Compatibility, CrossingCost, Law, BASE_COST_UNIT, CREATION_SHARE, MAX_COMPATIBLE_SCORE,
    MAX_DIFFERENCE, TRAVERSAL_SHARE,
};
pub use journal::{JournalError, JournalRecord, Outcome, Received, Started};
pub use passage::{
    Passage, PassageError, PassageOutput, PassageRole, PassageState, DEGRADED_BELOW,
    HEARTBEAT_INTERVAL, LOST_AFTER_MISSED, MAX_RECONNECT_ATTEMPTS, RECONNECT_BACKOFF,
};
pub use policy::{least_view, Admission, PassageAuth, PassagePolicy, PasswordHash};
pub use target::decode_entity;
pub use transfer::{
    canonical_bytes, checksum, TransferConfig, TransferEngine, TransferError, TransferEvent,
    TransferOutput, TransferRequest, ARRIVED_REMOTE, DEPARTED_REMOTE, MAX_ENTITY_BYTES,
    PREPARE_DEADLINE, RETRY_BACKOFF,
};

use crate::ids::{PassageId, PeerId, UniverseId};
use crate::universe::Universe;
use crate::wire::NackReason;

/// How the transfer engine reaches the universes a peer hosts.
pub trait UniverseAccess {
    /// The universe with this id, if hosted here.
    fn universe_mut(&mut self, id: UniverseId) -> Option<&mut Universe>;

    /// Whether an entity from `from` may enter `universe` through `passage` now; answered
    /// with [`NackReason::PassageClosed`] or [`NackReason::Rejected`] when not. By default
    /// every entity is admitted.
    fn admit(
        &self,
        from: PeerId,
        passage: PassageId,
        universe: UniverseId,
    ) -> Result<(), NackReason> {
        let _ = (from, passage, universe);
        Ok(())
    }
}

impl UniverseAccess for Universe {
    fn universe_mut(&mut self, id: UniverseId) -> Option<&mut Universe> {
        (self.config().id == id).then_some(self)
    }
}

impl UniverseAccess for BTreeMap<UniverseId, Universe> {
    fn universe_mut(&mut self, id: UniverseId) -> Option<&mut Universe> {
        self.get_mut(&id)
    }
}

impl<S: BuildHasher> UniverseAccess for HashMap<UniverseId, Universe, S> {
    fn universe_mut(&mut self, id: UniverseId) -> Option<&mut Universe> {
        self.get_mut(&id)
    }
}

#[cfg(test)]
mod tests;
