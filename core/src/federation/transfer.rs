//! The transfer engine: one per peer, both roles. This file holds the engine's driving API;
//! `source.rs` the source's side (the coordinator), `target.rs` the target's. The protocol
//! is described in the [module docs](super).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::journal::{JournalRecord, Phase, Received, Replay, Started};
use super::source::{Outbox, Outgoing};
use super::target::Tombstones;
use super::UniverseAccess;
use crate::backoff::{Backoff, BackoffConfig};
use crate::clock::Moment;
use crate::ids::{EntityId, PassageId, PeerId, TransferId, UniverseId};
use crate::rng::Rng;
use crate::universe::{Entity, Vec2};
use crate::wire::{NackReason, PeerMessage};

/// Largest entity (canonical bytes) a target accepts by default: 16 KiB, a quarter of a
/// peer frame, far above any entity the demo universes make (≈ 100 bytes).
pub const MAX_ENTITY_BYTES: usize = 16 * 1024;
/// How long the source waits for an ack (resending the prepare) before it aborts.
pub const PREPARE_DEADLINE: Duration = Duration::from_secs(30);
/// Resend delays of prepares, commits and aborts: 250 ms doubling to 4 s, ±20 %.
pub const RETRY_BACKOFF: BackoffConfig = BackoffConfig {
    initial: Duration::from_millis(250),
    max: Duration::from_secs(4),
    factor: 2,
    jitter: 0.2,
};
/// Name of the [`crate::universe::UniverseEvent::Custom`] the source universe records when an entity leaves.
pub const DEPARTED_REMOTE: &str = "entity:departed_remote";
/// Name of the [`crate::universe::UniverseEvent::Custom`] the target universe records when an entity arrives.
pub const ARRIVED_REMOTE: &str = "entity:arrived_remote";

/// Tunables of a [`TransferEngine`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransferConfig {
    /// Largest entity accepted as a target ([`MAX_ENTITY_BYTES`]).
    pub max_entity_bytes: usize,
    /// Source: give up waiting for an ack after this long ([`PREPARE_DEADLINE`]).
    pub prepare_deadline: Duration,
    /// Source: resend delays ([`RETRY_BACKOFF`]).
    pub retry: BackoffConfig,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            max_entity_bytes: MAX_ENTITY_BYTES,
            prepare_deadline: PREPARE_DEADLINE,
            retry: RETRY_BACKOFF,
        }
    }
}

/// What to send where.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRequest {
    /// The source universe (hosted here).
    pub universe: UniverseId,
    /// The entity to send.
    pub entity: EntityId,
    /// The target peer.
    pub target: PeerId,
    /// The passage it goes through.
    pub passage: PassageId,
    /// The target universe.
    pub target_universe: UniverseId,
    /// Where it appears there.
    pub exit: Vec2,
}

/// Why a transfer could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// No such universe here.
    #[error("no universe {0} here")]
    NoSuchUniverse(UniverseId),
    /// No such live entity.
    #[error("no entity {0}")]
    NoSuchEntity(EntityId),
    /// The entity is already in transit (or arriving, not committed).
    #[error("entity {0} is already in transit")]
    InTransit(EntityId),
    /// The exit position is not finite.
    #[error("the exit position must be finite")]
    BadExit,
    /// The target is this peer (move it locally instead).
    #[error("the target is this peer")]
    LocalTarget,
    /// The entity is a room member's avatar: it stays with its member.
    #[error("entity {0} is a member's avatar; avatars cannot travel")]
    Avatar(EntityId),
}

/// What happened, for the UI and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferEvent {
    /// Source: the entity left for good.
    Departed {
        /// Which transfer.
        transfer: TransferId,
        /// Source universe.
        universe: UniverseId,
        /// Its id there (now gone).
        entity: EntityId,
        /// The target peer.
        to: PeerId,
        /// Its id at the target.
        remote: EntityId,
    },
    /// Target: the entity arrived and is visible.
    Arrived {
        /// Which transfer.
        transfer: TransferId,
        /// Target universe.
        universe: UniverseId,
        /// Its id here.
        entity: EntityId,
        /// The source peer.
        from: PeerId,
    },
    /// Source: the transfer failed and the entity is visible again where it was.
    Returned {
        /// Which transfer.
        transfer: TransferId,
        /// Source universe.
        universe: UniverseId,
        /// The entity.
        entity: EntityId,
        /// The target's nack, or `None` when the source gave up waiting.
        reason: Option<NackReason>,
    },
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferOutput {
    /// Make this record durable before performing any later output (several records may
    /// share one durable write).
    Journal(JournalRecord),
    /// Send `message` to peer `to`.
    Send {
        /// The peer.
        to: PeerId,
        /// The message.
        message: PeerMessage,
    },
    /// Tell the UI. Not durable: a restart between a journal record and its event loses
    /// the event (the universe's own `entity:*_remote` events are as durable as its saves).
    Event(TransferEvent),
}

/// Both roles of exactly-once transfers for one peer. See the module docs.
#[derive(Debug)]
pub struct TransferEngine {
    pub(super) local: PeerId,
    pub(super) config: TransferConfig,
    rng: Rng,
    pub(super) next_seq: u64,
    pub(super) outgoing: Outbox,
    pub(super) incoming: BTreeMap<TransferId, Received>,
    pub(super) settled: Tombstones,
    pub(super) watermarks: BTreeMap<PeerId, u64>,
    out: VecDeque<TransferOutput>,
}

/// blake3 of an entity's canonical bytes.
pub fn checksum(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// An entity's canonical bytes: its bitcode encoding (deterministic: fixed field order,
/// sorted property map, no hash maps).
pub fn canonical_bytes(entity: &Entity) -> Vec<u8> {
    bitcode::encode(entity)
}

fn transfer_id(local: PeerId, seq: u64) -> TransferId {
    let mut h = blake3::Hasher::new_derive_key("multiverse 2026 transfer id v1");
    h.update(&local.as_u128().to_le_bytes());
    h.update(&seq.to_le_bytes());
    let bytes: [u8; 16] = h.finalize().as_bytes()[..16]
        .try_into()
        .expect("16 of 32 bytes");
    TransferId::from_u128(u128::from_le_bytes(bytes))
}

impl TransferEngine {
    /// A fresh engine. `local` is its endpoint id, unique across the federation and stable
    /// across restarts: the peer's id, or one id per universe when each universe runs its
    /// own engine. Transfer ids are minted from it and a sequence number, and targets know
    /// sources by it. `seed` seeds the resend jitter.
    pub fn new(local: PeerId, config: TransferConfig, seed: u64) -> Self {
        TransferEngine {
            local,
            config,
            rng: Rng::new(seed),
            next_seq: 0,
            outgoing: Outbox::default(),
            incoming: BTreeMap::new(),
            settled: Tombstones::default(),
            watermarks: BTreeMap::new(),
            out: VecDeque::new(),
        }
    }

    /// The engine a restarted peer continues with: state rebuilt from every journal record
    /// (in the order written) and the universes repaired to agree with it (see
    /// [`super::journal`]). Call it right after loading the universes, before stepping them.
    /// Sources resend at once; prepare deadlines start again at `now`.
    pub fn restore(
        local: PeerId,
        config: TransferConfig,
        seed: u64,
        records: impl IntoIterator<Item = JournalRecord>,
        universes: &mut impl UniverseAccess,
        now: Moment,
    ) -> Self {
        let mut replay = Replay::new(records);
        let relocated = replay.repair(universes);
        let mut engine = TransferEngine::new(local, config, seed);
        engine.next_seq = replay.next_seq;
        engine.watermarks = replay.watermarks;
        engine.incoming = replay.incoming;
        engine.settled = replay.settled.into_iter().collect();
        for (transfer, (started, phase)) in replay.outgoing {
            let mut o = engine.outgoing_for(started, now);
            o.phase = phase;
            engine.outgoing.insert(transfer, o);
        }
        engine
            .out
            .extend(relocated.into_iter().map(TransferOutput::Journal));
        engine
    }

    /// This peer.
    pub fn local(&self) -> PeerId {
        self.local
    }

    /// Transfers this peer is sending that are not settled.
    pub fn outgoing_count(&self) -> usize {
        self.outgoing.len()
    }

    /// Transfers this peer received and holds pending (hidden), awaiting commit or abort.
    pub fn incoming_count(&self) -> usize {
        self.incoming.len()
    }

    /// Outcomes this target remembers to answer late duplicates (bounded: forgotten once
    /// their source reports them settled).
    pub fn tombstone_count(&self) -> usize {
        self.settled.len()
    }

    /// Whether nothing is in flight either way.
    pub fn is_idle(&self) -> bool {
        self.outgoing.len() == 0 && self.incoming.is_empty()
    }

    /// The minimal journal equivalent to this engine's state (see [`super::journal`] on
    /// compaction).
    pub fn checkpoint(&self) -> Vec<JournalRecord> {
        let mut records = vec![JournalRecord::Checkpoint {
            next_seq: self.next_seq,
            watermarks: self.watermarks.iter().map(|(p, w)| (*p, *w)).collect(),
        }];
        for (transfer, o) in self.outgoing.iter() {
            records.push(JournalRecord::Started(Box::new(o.started.clone())));
            let transfer = *transfer;
            match o.phase {
                Phase::Preparing => {}
                Phase::Committed(remote) => {
                    records.push(JournalRecord::Committed { transfer, remote });
                }
                Phase::Aborting => records.push(JournalRecord::Aborting { transfer }),
            }
        }
        records.extend(
            self.incoming
                .values()
                .map(|r| JournalRecord::Received(Box::new(r.clone()))),
        );
        records.extend(
            self.settled
                .iter()
                .map(|(transfer, t)| JournalRecord::Settled {
                    transfer: *transfer,
                    from: t.from,
                    seq: t.seq,
                    outcome: t.outcome.clone(),
                }),
        );
        records
    }

    /// Source: starts sending an entity. It is hidden at once; a `started` record and the
    /// first prepare follow in [`TransferEngine::poll_output`]. Whether the passage allows
    /// it ([`super::Passage::allows_transfers`]) is the driver's to check first.
    pub fn start(
        &mut self,
        request: TransferRequest,
        universes: &mut impl UniverseAccess,
        now: Moment,
    ) -> Result<TransferId, TransferError> {
        if request.target == self.local {
            return Err(TransferError::LocalTarget);
        }
        if !request.exit.is_finite() {
            return Err(TransferError::BadExit);
        }
        let u = universes
            .universe_mut(request.universe)
            .ok_or(TransferError::NoSuchUniverse(request.universe))?;
        let entity = u
            .get(request.entity)
            .ok_or(TransferError::NoSuchEntity(request.entity))?;
        if u.is_hidden(request.entity) {
            return Err(TransferError::InTransit(request.entity));
        }
        if entity.avatar.is_some() {
            return Err(TransferError::Avatar(request.entity));
        }
        let bytes = canonical_bytes(entity);
        u.set_hidden(request.entity, true).expect("checked live");
        let seq = self.next_seq;
        self.next_seq += 1;
        let transfer = transfer_id(self.local, seq);
        let started = Started {
            transfer,
            seq,
            target: request.target,
            passage: request.passage,
            universe: request.universe,
            entity: request.entity,
            target_universe: request.target_universe,
            exit: request.exit,
            bytes,
        };
        self.journal(JournalRecord::Started(Box::new(started.clone())));
        let o = self.outgoing_for(started, now);
        self.outgoing.insert(transfer, o);
        self.send_phase(transfer, now);
        Ok(transfer)
    }

    /// A message from peer `from`. Returns whether it was a transfer message (others are
    /// ignored and left to the caller).
    pub fn handle_message(
        &mut self,
        from: PeerId,
        message: &PeerMessage,
        universes: &mut impl UniverseAccess,
        now: Moment,
    ) -> bool {
        match message {
            PeerMessage::TransferPrepare(p) => self.on_prepare(from, p, universes),
            PeerMessage::TransferCommit(c) => self.on_commit(from, c, universes),
            PeerMessage::TransferAbort(c) => self.on_abort(from, c, universes),
            PeerMessage::TransferAck { transfer, entity } => {
                self.on_ack(from, *transfer, *entity, universes, now);
            }
            PeerMessage::TransferNack { transfer, reason } => {
                self.on_return(from, *transfer, Some(*reason), universes);
            }
            PeerMessage::TransferCommitAck { transfer } => self.on_commit_ack(from, *transfer),
            PeerMessage::TransferAbortAck { transfer } => {
                self.on_return(from, *transfer, None, universes);
            }
            _ => return false,
        }
        true
    }

    /// Time passed: resends, and aborts of prepares past their deadline.
    pub fn handle_timeout(&mut self, now: Moment) {
        self.resend_due(now);
    }

    /// When [`TransferEngine::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Moment> {
        self.outgoing.next_due()
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<TransferOutput> {
        self.out.pop_front()
    }

    pub(super) fn journal(&mut self, record: JournalRecord) {
        self.out.push_back(TransferOutput::Journal(record));
    }

    pub(super) fn send(&mut self, to: PeerId, message: PeerMessage) {
        self.out.push_back(TransferOutput::Send { to, message });
    }

    pub(super) fn event(&mut self, event: TransferEvent) {
        self.out.push_back(TransferOutput::Event(event));
    }

    fn outgoing_for(&mut self, started: Started, now: Moment) -> Outgoing {
        let deadline = now.plus(self.config.prepare_deadline);
        let backoff = Backoff::new(self.config.retry, self.rng.next_u64());
        Outgoing::new(started, deadline, now, backoff)
    }
}
