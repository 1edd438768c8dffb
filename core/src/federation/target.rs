//! The target's side of a transfer: validate, store hidden, ack; commit or abort; answer every
//! duplicate the same way; forget tombstones once the source says it settled them.

use std::collections::{BTreeMap, BTreeSet};

use super::journal::{JournalRecord, Outcome, Received, Tombstone};
use super::transfer::{canonical_bytes, checksum, TransferEngine, TransferEvent, ARRIVED_REMOTE};
use super::UniverseAccess;
use crate::ids::{PeerId, TransferId};
use crate::universe::{Entity, PropValue, UniverseEvent, Vec2};
use crate::wire::{NackReason, PeerMessage, TransferControl, TransferPrepare};

/// Decodes and checks an entity's canonical bytes: they decode, re-encode to the same bytes
/// (nothing trailing, no alternative encodings) and every number is finite.
pub fn decode_entity(bytes: &[u8]) -> Result<Entity, NackReason> {
    let entity: Entity = bitcode::decode(bytes).map_err(|_| NackReason::Rejected)?;
    let finite_props = entity.properties.values().all(|v| match v {
        PropValue::Float(f) => f.is_finite(),
        _ => true,
    });
    let finite = entity.position.is_finite()
        && entity.velocity.is_finite()
        && entity.renderable.size.is_finite()
        && finite_props;
    if !finite || canonical_bytes(&entity) != bytes {
        return Err(NackReason::Rejected);
    }
    Ok(entity)
}

/// How transfers ended at this target, kept until their source says they are settled,
/// indexed by source and sequence number so forgetting is logarithmic.
#[derive(Debug, Default)]
pub(super) struct Tombstones {
    by_id: BTreeMap<TransferId, Tombstone>,
    by_seq: BTreeMap<PeerId, BTreeSet<(u64, TransferId)>>,
}

impl Tombstones {
    fn insert(&mut self, transfer: TransferId, t: Tombstone) {
        self.by_seq
            .entry(t.from)
            .or_default()
            .insert((t.seq, transfer));
        if let Some(old) = self.by_id.insert(transfer, t) {
            if let Some(seqs) = self.by_seq.get_mut(&old.from) {
                seqs.remove(&(old.seq, transfer));
            }
        }
    }

    fn get(&self, transfer: &TransferId) -> Option<&Tombstone> {
        self.by_id.get(transfer)
    }

    /// Forgets `from`'s tombstones below sequence number `below`.
    fn forget_below(&mut self, from: PeerId, below: u64) {
        let Some(seqs) = self.by_seq.get_mut(&from) else {
            return;
        };
        while let Some(&(seq, transfer)) = seqs.first().filter(|(seq, _)| *seq < below) {
            seqs.remove(&(seq, transfer));
            self.by_id.remove(&transfer);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&TransferId, &Tombstone)> + '_ {
        self.by_id.iter()
    }
}

impl FromIterator<(TransferId, Tombstone)> for Tombstones {
    fn from_iter<I: IntoIterator<Item = (TransferId, Tombstone)>>(iter: I) -> Self {
        let mut t = Tombstones::default();
        for (transfer, tombstone) in iter {
            t.insert(transfer, tombstone);
        }
        t
    }
}

impl TransferEngine {
    /// Every transfer from `from` below this sequence number is settled at the source.
    fn watermark(&self, from: PeerId) -> u64 {
        self.watermarks.get(&from).copied().unwrap_or(0)
    }

    /// The source says everything below `below` is settled: forget those tombstones (a
    /// prepare that old is stale and will be ignored).
    fn observe_watermark(&mut self, from: PeerId, below: u64) {
        if below > self.watermark(from) {
            self.watermarks.insert(from, below);
            self.settled.forget_below(from, below);
        }
    }

    fn settle(&mut self, transfer: TransferId, from: PeerId, seq: u64, outcome: Outcome) {
        let t = Tombstone { from, seq, outcome };
        self.settled.insert(transfer, t);
    }

    pub(super) fn on_prepare(
        &mut self,
        from: PeerId,
        p: &TransferPrepare,
        universes: &mut impl UniverseAccess,
    ) {
        self.observe_watermark(from, p.settled_below);
        let transfer = p.transfer;
        if let Some(r) = self.incoming.get(&transfer) {
            if r.from == from {
                let entity = r.entity;
                self.send(from, PeerMessage::TransferAck { transfer, entity });
            }
            return;
        }
        if let Some(t) = self.settled.get(&transfer).filter(|t| t.from == from) {
            let answer = match t.outcome {
                Outcome::Done { entity, .. } => PeerMessage::TransferAck { transfer, entity },
                Outcome::Refused { reason } => PeerMessage::TransferNack { transfer, reason },
                Outcome::Aborted => return, // the source is aborting; it waits for abort acks
            };
            self.send(from, answer);
            return;
        }
        if self.settled.get(&transfer).is_some() || p.seq < self.watermark(from) {
            return; // another peer's id, or stale: the source settled it long ago
        }
        match self.admit(from, p, universes) {
            Ok(received) => {
                let entity = received.entity;
                self.journal(JournalRecord::Received(Box::new(received.clone())));
                self.incoming.insert(transfer, received);
                self.send(from, PeerMessage::TransferAck { transfer, entity });
            }
            Err(reason) => {
                let seq = p.seq;
                self.journal(JournalRecord::Refused {
                    transfer,
                    from,
                    seq,
                    reason,
                });
                self.settle(transfer, from, seq, Outcome::Refused { reason });
                self.send(from, PeerMessage::TransferNack { transfer, reason });
            }
        }
    }

    /// Validates a prepare and stores the entity, hidden, at the exit.
    fn admit(
        &self,
        from: PeerId,
        p: &TransferPrepare,
        universes: &mut impl UniverseAccess,
    ) -> Result<Received, NackReason> {
        if p.entity.len() > self.config.max_entity_bytes {
            return Err(NackReason::TooLarge);
        }
        if checksum(&p.entity) != p.checksum {
            return Err(NackReason::ChecksumMismatch);
        }
        let mut entity = decode_entity(&p.entity)?;
        if !p.exit.is_finite() || entity.avatar.is_some() {
            // Avatars belong to members of rooms here; none arrives from elsewhere.
            return Err(NackReason::Rejected);
        }
        if universes.universe_mut(p.universe).is_none() {
            return Err(NackReason::UniverseNotFound);
        }
        universes.admit(from, p.passage, p.universe)?;
        let u = universes.universe_mut(p.universe).expect("checked above");
        let b = u.config().physics.bounds;
        entity.position = Vec2::new(
            p.exit.x.clamp(b.x, b.x + b.width.max(0.0)),
            p.exit.y.clamp(b.y, b.y + b.height.max(0.0)),
        );
        let bytes = canonical_bytes(&entity);
        let id = u.spawn(entity).map_err(|_| NackReason::Rejected)?;
        u.set_hidden(id, true).expect("just spawned");
        Ok(Received {
            transfer: p.transfer,
            from,
            seq: p.seq,
            universe: p.universe,
            entity: id,
            bytes,
        })
    }

    pub(super) fn on_commit(
        &mut self,
        from: PeerId,
        c: &TransferControl,
        universes: &mut impl UniverseAccess,
    ) {
        self.observe_watermark(from, c.settled_below);
        let transfer = c.transfer;
        if let Some(r) = self.incoming.get(&transfer).filter(|r| r.from == from) {
            let (universe, entity, seq) = (r.universe, r.entity, r.seq);
            self.incoming.remove(&transfer);
            self.journal(JournalRecord::Done { transfer });
            if let Some(u) = universes.universe_mut(universe) {
                if u.set_hidden(entity, false).is_ok() {
                    let at = u.get(entity).map(|e| e.position);
                    u.emit(UniverseEvent::Custom {
                        name: ARRIVED_REMOTE.into(),
                        entity: Some(entity),
                        at,
                    });
                }
            }
            self.settle(transfer, from, seq, Outcome::Done { universe, entity });
            self.event(TransferEvent::Arrived {
                transfer,
                universe,
                entity,
                from,
            });
            self.send(from, PeerMessage::TransferCommitAck { transfer });
        } else if self
            .settled
            .get(&transfer)
            .is_some_and(|t| t.from == from && matches!(t.outcome, Outcome::Done { .. }))
        {
            self.send(from, PeerMessage::TransferCommitAck { transfer });
        }
    }

    pub(super) fn on_abort(
        &mut self,
        from: PeerId,
        c: &TransferControl,
        universes: &mut impl UniverseAccess,
    ) {
        self.observe_watermark(from, c.settled_below);
        let transfer = c.transfer;
        if let Some(r) = self.incoming.get(&transfer).filter(|r| r.from == from) {
            let (universe, entity, seq) = (r.universe, r.entity, r.seq);
            self.incoming.remove(&transfer);
            if let Some(u) = universes.universe_mut(universe) {
                let _ = u.despawn(entity);
            }
            self.journal(JournalRecord::Aborted {
                transfer,
                from,
                seq,
            });
            self.settle(transfer, from, seq, Outcome::Aborted);
        } else if let Some(t) = self.settled.get(&transfer) {
            if t.from != from || matches!(t.outcome, Outcome::Done { .. }) {
                return; // not theirs, or committed: an abort cannot undo a commit
            }
        } else if c.seq < self.watermark(from) {
            return; // stale
        } else {
            // Never seen: remember the abort, so a late prepare cannot store anything.
            let seq = c.seq;
            self.journal(JournalRecord::Aborted {
                transfer,
                from,
                seq,
            });
            self.settle(transfer, from, seq, Outcome::Aborted);
        }
        self.send(from, PeerMessage::TransferAbortAck { transfer });
    }
}
