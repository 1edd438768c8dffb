//! The transfer journal: what each side records durably before it answers, and how a
//! restarted engine rebuilds its state and repairs its universes from those records.
//!
//! ## Records
//! | side | record | written when | universe fact it implies |
//! |---|---|---|---|
//! | source | `started` | before the first prepare | the entity exists, hidden |
//! | source | `committed` | on the first ack, before deleting and sending commit | the entity is gone |
//! | source | `aborting` | on giving up, before the first abort | — |
//! | source | `returned` | on a nack or abort ack | the entity exists, visible |
//! | source | `finished` | on the commit ack | — |
//! | target | `received` | before the first ack | the new entity exists, hidden |
//! | target | `done` | on the commit, before the commit ack | the new entity exists, visible |
//! | target | `aborted` | on an abort, before the abort ack | the new entity (if any) is gone |
//! | target | `refused` | before the first nack | — |
//! | either | `relocated` | a restart had to move an entity to another id | the fact moves along |
//! | either | `checkpoint`, `settled` | only in [`TransferEngine::checkpoint`](super::TransferEngine::checkpoint) output | — |
//!
//! ## Restore
//! Records are replayed in order; for every entity the *last* fact wins (an entity that
//! arrived, then left again, is gone). The universe may come from a save older or newer than
//! any record, so facts are applied idempotently: removals first
//! ([`Universe::retire`](crate::universe::Universe::retire): despawned if live, and the id is
//! never issued again, so one id never names two entities in a journal), then presences (set the hidden flag if live; otherwise
//! [`Universe::insert_with_id`](crate::universe::Universe::insert_with_id) from the recorded
//! bytes; an id whose slot was reused later is left alone; an id whose slot holds an older,
//! unjournaled entity is re-inserted at a fresh id and a `relocated` record is written).
//!
//! ## Compaction
//! The journal only grows. A driver may replace it with the engine's
//! [`checkpoint`](super::TransferEngine::checkpoint) *at the moment it saves every universe
//! the engine touches* (after draining the engine, with every journal output durable), and
//! only once that save is durable: the checkpoint keeps in-flight transfers, the target's
//! tombstones and the sequence numbers; the save holds everything settled.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::UniverseAccess;
use crate::ids::{EntityId, PassageId, PeerId, TransferId, UniverseId};
use crate::universe::{Entity, UniverseError, Vec2};
use crate::wire::NackReason;

/// Source: a transfer begins (the entity is hidden in its universe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
pub struct Started {
    /// Which transfer.
    pub transfer: TransferId,
    /// Its sequence number at the source.
    pub seq: u64,
    /// The target peer.
    pub target: PeerId,
    /// The passage it travels through.
    pub passage: PassageId,
    /// The source universe.
    pub universe: UniverseId,
    /// The entity in the source universe.
    pub entity: EntityId,
    /// The target universe.
    pub target_universe: UniverseId,
    /// Where it appears there.
    pub exit: Vec2,
    /// The entity's canonical bytes (bitcode of [`Entity`]).
    pub bytes: Vec<u8>,
}

/// Target: an entity arrived and is stored, hidden, at `entity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
pub struct Received {
    /// Which transfer.
    pub transfer: TransferId,
    /// The source peer.
    pub from: PeerId,
    /// The transfer's sequence number at the source.
    pub seq: u64,
    /// The target universe.
    pub universe: UniverseId,
    /// The new entity's id.
    pub entity: EntityId,
    /// The entity as stored (exit position applied), canonical bytes.
    pub bytes: Vec<u8>,
}

/// How a transfer ended at the target (kept as a tombstone so late duplicates are answered
/// the same way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Committed: the entity lives at `entity`.
    Done {
        /// The target universe.
        universe: UniverseId,
        /// The entity.
        entity: EntityId,
    },
    /// Aborted by the source; nothing remains.
    Aborted,
    /// Refused with a nack.
    Refused {
        /// Why.
        reason: NackReason,
    },
}

/// One durable step of a transfer. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum JournalRecord {
    /// Source: the transfer began.
    Started(Box<Started>),
    /// Source: the target acked; the entity is deleted here.
    Committed {
        /// Which transfer.
        transfer: TransferId,
        /// The entity's id at the target.
        remote: EntityId,
    },
    /// Source: gave up waiting for an ack; aborting.
    Aborting {
        /// Which transfer.
        transfer: TransferId,
    },
    /// Source: the entity is back (nack or abort ack).
    Returned {
        /// Which transfer.
        transfer: TransferId,
        /// The nack reason (`None`: aborted after the deadline).
        reason: Option<NackReason>,
    },
    /// Source: the target confirmed the commit; the transfer is over.
    Finished {
        /// Which transfer.
        transfer: TransferId,
    },
    /// Target: the entity is stored, hidden.
    Received(Box<Received>),
    /// Target: committed; the entity is visible.
    Done {
        /// Which transfer.
        transfer: TransferId,
    },
    /// Target: aborted; any stored entity was removed.
    Aborted {
        /// Which transfer.
        transfer: TransferId,
        /// The source peer.
        from: PeerId,
        /// The transfer's sequence number at the source.
        seq: u64,
    },
    /// Target: refused with a nack.
    Refused {
        /// Which transfer.
        transfer: TransferId,
        /// The source peer.
        from: PeerId,
        /// The transfer's sequence number at the source.
        seq: u64,
        /// Why.
        reason: NackReason,
    },
    /// A restore moved an entity to a fresh id (its slot held an older entity).
    Relocated {
        /// The universe.
        universe: UniverseId,
        /// The recorded id.
        from: EntityId,
        /// The id it has now.
        to: EntityId,
    },
    /// Compaction: a target tombstone.
    Settled {
        /// Which transfer.
        transfer: TransferId,
        /// The source peer.
        from: PeerId,
        /// The transfer's sequence number at the source.
        seq: u64,
        /// How it ended.
        outcome: Outcome,
    },
    /// Compaction: counters.
    Checkpoint {
        /// The next sequence number this engine hands out.
        next_seq: u64,
        /// Per source peer: every transfer below this sequence number is settled.
        watermarks: Vec<(PeerId, u64)>,
    },
}

/// Why stored bytes are not a journal record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt journal record: {0}")]
pub struct JournalError(String);

impl JournalRecord {
    /// The bitcode encoding a driver stores.
    pub fn encode(&self) -> Vec<u8> {
        bitcode::encode(self)
    }

    /// Reads what [`JournalRecord::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, JournalError> {
        bitcode::decode(bytes).map_err(|e| JournalError(e.to_string()))
    }
}

/// The source's phase of an outgoing transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for an ack (prepare resent with backoff until the deadline).
    Preparing,
    /// Acked and deleted here; commit resent until confirmed.
    Committed(EntityId),
    /// Gave up; abort resent until confirmed.
    Aborting,
}

/// A target tombstone.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Tombstone {
    pub(super) from: PeerId,
    pub(super) seq: u64,
    pub(super) outcome: Outcome,
}

#[derive(Debug, Clone)]
enum Fact {
    Present { bytes: Vec<u8>, hidden: bool },
    Absent,
}

/// Engine state rebuilt from records, and the universe facts they imply.
#[derive(Debug, Default)]
pub(super) struct Replay {
    pub(super) next_seq: u64,
    pub(super) watermarks: BTreeMap<PeerId, u64>,
    pub(super) outgoing: BTreeMap<TransferId, (Started, Phase)>,
    pub(super) incoming: BTreeMap<TransferId, Received>,
    pub(super) settled: BTreeMap<TransferId, Tombstone>,
    facts: BTreeMap<(UniverseId, EntityId), Fact>,
}

impl Replay {
    /// Folds the records, in order.
    pub(super) fn new(records: impl IntoIterator<Item = JournalRecord>) -> Self {
        let mut r = Replay::default();
        for record in records {
            r.apply(record);
        }
        r
    }

    fn present(&mut self, universe: UniverseId, entity: EntityId, bytes: &[u8], hidden: bool) {
        let bytes = bytes.to_vec();
        self.facts
            .insert((universe, entity), Fact::Present { bytes, hidden });
    }

    fn apply(&mut self, record: JournalRecord) {
        use JournalRecord as J;
        match record {
            J::Started(s) => {
                self.next_seq = self.next_seq.max(s.seq + 1);
                self.present(s.universe, s.entity, &s.bytes, true);
                self.outgoing.insert(s.transfer, (*s, Phase::Preparing));
            }
            J::Committed { transfer, remote } => {
                if let Some((s, phase)) = self.outgoing.get_mut(&transfer) {
                    *phase = Phase::Committed(remote);
                    let key = (s.universe, s.entity);
                    self.facts.insert(key, Fact::Absent);
                }
            }
            J::Aborting { transfer } => {
                if let Some((_, phase)) = self.outgoing.get_mut(&transfer) {
                    *phase = Phase::Aborting;
                }
            }
            J::Returned { transfer, .. } => {
                if let Some((s, _)) = self.outgoing.remove(&transfer) {
                    self.present(s.universe, s.entity, &s.bytes, false);
                }
            }
            J::Finished { transfer } => {
                self.outgoing.remove(&transfer);
            }
            J::Received(r) => {
                self.present(r.universe, r.entity, &r.bytes, true);
                self.incoming.insert(r.transfer, *r);
            }
            J::Done { transfer } => {
                if let Some(r) = self.incoming.remove(&transfer) {
                    self.present(r.universe, r.entity, &r.bytes, false);
                    let outcome = Outcome::Done {
                        universe: r.universe,
                        entity: r.entity,
                    };
                    self.tombstone(transfer, r.from, r.seq, outcome);
                }
            }
            J::Aborted {
                transfer,
                from,
                seq,
            } => {
                if let Some(r) = self.incoming.remove(&transfer) {
                    self.facts.insert((r.universe, r.entity), Fact::Absent);
                }
                self.tombstone(transfer, from, seq, Outcome::Aborted);
            }
            J::Refused {
                transfer,
                from,
                seq,
                reason,
            } => self.tombstone(transfer, from, seq, Outcome::Refused { reason }),
            J::Relocated { universe, from, to } => self.relocate(universe, from, to),
            J::Settled {
                transfer,
                from,
                seq,
                outcome,
            } => self.tombstone(transfer, from, seq, outcome),
            J::Checkpoint {
                next_seq,
                watermarks,
            } => {
                self.next_seq = self.next_seq.max(next_seq);
                for (peer, w) in watermarks {
                    let known = self.watermarks.entry(peer).or_default();
                    *known = (*known).max(w);
                }
            }
        }
    }

    fn tombstone(&mut self, transfer: TransferId, from: PeerId, seq: u64, outcome: Outcome) {
        let t = Tombstone { from, seq, outcome };
        self.settled.insert(transfer, t);
    }

    /// An entity moved from `from` to `to`: its fact and every mention follow it.
    fn relocate(&mut self, universe: UniverseId, from: EntityId, to: EntityId) {
        if let Some(fact) = self.facts.insert((universe, from), Fact::Absent) {
            self.facts.insert((universe, to), fact);
        }
        for (s, _) in self.outgoing.values_mut() {
            if (s.universe, s.entity) == (universe, from) {
                s.entity = to;
            }
        }
        for r in self.incoming.values_mut() {
            if (r.universe, r.entity) == (universe, from) {
                r.entity = to;
            }
        }
        for t in self.settled.values_mut() {
            if t.outcome
                == (Outcome::Done {
                    universe,
                    entity: from,
                })
            {
                t.outcome = Outcome::Done {
                    universe,
                    entity: to,
                };
            }
        }
    }

    /// Makes every universe agree with the facts (see the module docs). Returns the
    /// `relocated` records to journal.
    pub(super) fn repair(&mut self, universes: &mut impl UniverseAccess) -> Vec<JournalRecord> {
        let facts = std::mem::take(&mut self.facts);
        for ((universe, id), _) in facts.iter().filter(|(_, f)| matches!(f, Fact::Absent)) {
            if let Some(u) = universes.universe_mut(*universe) {
                // Gone, and its id never issued again: the universe may come from a save
                // older than the journal, with generations rolled back.
                u.retire(*id);
            }
        }
        let mut displaced = Vec::new();
        for ((universe, id), fact) in &facts {
            let Fact::Present { bytes, hidden } = fact else {
                continue;
            };
            let Some(u) = universes.universe_mut(*universe) else {
                continue;
            };
            if u.get(*id).is_none() {
                let Ok(entity) = bitcode::decode::<Entity>(bytes) else {
                    continue; // Our own bytes; cannot happen short of disk corruption.
                };
                match u.insert_with_id(*id, entity.clone()) {
                    Ok(()) => {}
                    Err(UniverseError::SlotTaken(_))
                        if u.get_by_index(id.index).is_some_and(|(live, _)| live < *id) =>
                    {
                        displaced.push((*universe, *id, entity, *hidden));
                        continue;
                    }
                    // Superseded: removed after the record; full: nothing better to do.
                    Err(_) => continue,
                }
            }
            let _ = u.set_hidden(*id, *hidden);
        }
        let mut relocated = Vec::new();
        for (universe, from, entity, hidden) in displaced {
            let u = universes.universe_mut(universe).expect("looked up above");
            let Ok(to) = u.spawn(entity) else { continue };
            let _ = u.set_hidden(to, hidden);
            self.relocate(universe, from, to);
            relocated.push(JournalRecord::Relocated { universe, from, to });
        }
        self.facts.clear();
        relocated
    }
}
