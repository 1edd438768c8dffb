//! The source's side of a transfer (the coordinator): transfers in flight indexed by due
//! time and by target, resends, and the answers from the target.

use std::collections::{BTreeMap, BTreeSet};

use super::journal::{JournalRecord, Phase, Started};
use super::transfer::{TransferEngine, TransferEvent, DEPARTED_REMOTE};
use super::UniverseAccess;
use crate::backoff::Backoff;
use crate::clock::Moment;
use crate::ids::{EntityId, PeerId, TransferId};
use crate::universe::UniverseEvent;
use crate::wire::{NackReason, PeerMessage, TransferControl, TransferPrepare};

/// A transfer in flight at its source.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) started: Started,
    pub(super) checksum: [u8; 32],
    pub(super) phase: Phase,
    /// Preparing: when to give up and abort.
    pub(super) deadline: Moment,
    /// When to resend the phase's message.
    pub(super) next_send: Moment,
    pub(super) backoff: Backoff,
    /// The due time under which [`Outbox`] files it.
    scheduled: Moment,
}

impl Outgoing {
    /// A new transfer: the first prepare goes out at `now`.
    pub(super) fn new(started: Started, deadline: Moment, now: Moment, backoff: Backoff) -> Self {
        Outgoing {
            checksum: super::transfer::checksum(&started.bytes),
            started,
            phase: Phase::Preparing,
            deadline,
            next_send: now,
            backoff,
            scheduled: now,
        }
    }

    fn due_at(&self) -> Moment {
        match self.phase {
            Phase::Preparing => self.next_send.min(self.deadline),
            _ => self.next_send,
        }
    }
}

/// Transfers in flight at their source, indexed so that every operation a message or a
/// timeout needs is logarithmic, however many are in flight.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    by_id: BTreeMap<TransferId, Outgoing>,
    /// `(due time, transfer)`.
    timers: BTreeSet<(Moment, TransferId)>,
    /// Per target, the sequence numbers in flight (the least is the watermark).
    seqs: BTreeMap<PeerId, BTreeSet<u64>>,
}

impl Outbox {
    pub(super) fn insert(&mut self, transfer: TransferId, mut o: Outgoing) {
        o.scheduled = o.due_at();
        self.timers.insert((o.scheduled, transfer));
        let target = o.started.target;
        self.seqs.entry(target).or_default().insert(o.started.seq);
        self.by_id.insert(transfer, o);
    }

    pub(super) fn remove(&mut self, transfer: TransferId) -> Option<Outgoing> {
        let o = self.by_id.remove(&transfer)?;
        self.timers.remove(&(o.scheduled, transfer));
        let target = o.started.target;
        if let Some(seqs) = self.seqs.get_mut(&target) {
            seqs.remove(&o.started.seq);
            if seqs.is_empty() {
                self.seqs.remove(&target);
            }
        }
        Some(o)
    }

    pub(super) fn get(&self, transfer: TransferId) -> Option<&Outgoing> {
        self.by_id.get(&transfer)
    }

    /// For changes to the phase or the times: follow with [`Outbox::reschedule`].
    pub(super) fn get_mut(&mut self, transfer: TransferId) -> Option<&mut Outgoing> {
        self.by_id.get_mut(&transfer)
    }

    /// Files the transfer under its current due time.
    fn reschedule(&mut self, transfer: TransferId) {
        let o = self.by_id.get_mut(&transfer).expect("in flight");
        self.timers.remove(&(o.scheduled, transfer));
        o.scheduled = o.due_at();
        self.timers.insert((o.scheduled, transfer));
    }

    /// Transfers due at `now`.
    pub(super) fn due(&self, now: Moment) -> Vec<TransferId> {
        self.timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    pub(super) fn next_due(&self) -> Option<Moment> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Every transfer to `target` below this sequence number is settled.
    fn settled_below(&self, target: PeerId, next_seq: u64) -> u64 {
        self.seqs
            .get(&target)
            .and_then(|s| s.first().copied())
            .unwrap_or(next_seq)
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&TransferId, &Outgoing)> + '_ {
        self.by_id.iter()
    }
}

impl TransferEngine {
    /// Sends the message of the transfer's phase and schedules the next resend.
    pub(super) fn send_phase(&mut self, transfer: TransferId, now: Moment) {
        let target = self
            .outgoing
            .get(transfer)
            .expect("in flight")
            .started
            .target;
        let settled_below = self.outgoing.settled_below(target, self.next_seq);
        let o = self.outgoing.get_mut(transfer).expect("in flight");
        o.next_send = now.plus(o.backoff.next_delay());
        let s = &o.started;
        let control = TransferControl {
            transfer,
            seq: s.seq,
            settled_below,
        };
        let message = match o.phase {
            Phase::Preparing => PeerMessage::TransferPrepare(Box::new(TransferPrepare {
                transfer,
                seq: s.seq,
                settled_below,
                passage: s.passage,
                universe: s.target_universe,
                exit: s.exit,
                entity: s.bytes.clone(),
                checksum: o.checksum,
            })),
            Phase::Committed(_) => PeerMessage::TransferCommit(control),
            Phase::Aborting => PeerMessage::TransferAbort(control),
        };
        self.outgoing.reschedule(transfer);
        self.send(target, message);
    }

    /// Time passed: resend what is due; prepares past their deadline turn into aborts.
    pub(super) fn resend_due(&mut self, now: Moment) {
        for transfer in self.outgoing.due(now) {
            let o = self.outgoing.get_mut(transfer).expect("due");
            if o.phase == Phase::Preparing && now >= o.deadline {
                // Decided: this transfer will never commit. Durable before the first abort.
                o.phase = Phase::Aborting;
                o.backoff.reset();
                self.journal(JournalRecord::Aborting { transfer });
            }
            self.send_phase(transfer, now);
        }
    }

    pub(super) fn on_ack(
        &mut self,
        from: PeerId,
        transfer: TransferId,
        remote: EntityId,
        universes: &mut impl UniverseAccess,
        now: Moment,
    ) {
        let Some(o) = self.outgoing.get_mut(transfer) else {
            return; // settled: a late duplicate
        };
        if o.started.target != from || o.phase != Phase::Preparing {
            return; // committing already, or aborting: never commit after deciding to abort
        }
        o.phase = Phase::Committed(remote);
        o.backoff.reset();
        let (universe, entity) = (o.started.universe, o.started.entity);
        self.journal(JournalRecord::Committed { transfer, remote });
        if let Some(u) = universes.universe_mut(universe) {
            let at = u.get(entity).map(|e| e.position);
            if u.despawn(entity).is_ok() {
                u.emit(UniverseEvent::Custom {
                    name: DEPARTED_REMOTE.into(),
                    entity: Some(entity),
                    at,
                });
            }
        }
        self.event(TransferEvent::Departed {
            transfer,
            universe,
            entity,
            to: from,
            remote,
        });
        self.send_phase(transfer, now);
    }

    /// A nack (`reason`) or an abort ack (`None`): the entity comes back.
    pub(super) fn on_return(
        &mut self,
        from: PeerId,
        transfer: TransferId,
        reason: Option<NackReason>,
        universes: &mut impl UniverseAccess,
    ) {
        let Some(o) = self.outgoing.get(transfer) else {
            return;
        };
        let expected = match reason {
            // A nack means the target stored nothing: fine whether we prepare or abort.
            Some(_) => matches!(o.phase, Phase::Preparing | Phase::Aborting),
            None => o.phase == Phase::Aborting,
        };
        if o.started.target != from || !expected {
            return;
        }
        let o = self.outgoing.remove(transfer).expect("checked above");
        let (universe, entity) = (o.started.universe, o.started.entity);
        self.journal(JournalRecord::Returned { transfer, reason });
        if let Some(u) = universes.universe_mut(universe) {
            let _ = u.set_hidden(entity, false);
        }
        self.event(TransferEvent::Returned {
            transfer,
            universe,
            entity,
            reason,
        });
    }

    pub(super) fn on_commit_ack(&mut self, from: PeerId, transfer: TransferId) {
        let committed = self
            .outgoing
            .get(transfer)
            .is_some_and(|o| o.started.target == from && matches!(o.phase, Phase::Committed(_)));
        if committed {
            self.outgoing.remove(transfer);
            self.journal(JournalRecord::Finished { transfer });
        }
    }
}
