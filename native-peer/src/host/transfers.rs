//! The host's half of exactly-once transfers: each universe runs its own core
//! [`TransferEngine`], addressed by the universe's id (as the engine's endpoint id), so
//! sequence numbers and watermarks are per universe pair and no engine ever needs another
//! host's universe. Journal records are written to the store in one transaction per batch
//! before any message of that batch leaves (the engine's durability rule).

use std::sync::Arc;

use multiverse_core::federation::{
    JournalRecord, TransferConfig, TransferEngine, TransferEvent, TransferOutput,
};
use multiverse_core::ids::{PeerId, UniverseId};
use multiverse_core::universe::Universe;
use multiverse_core::wire::PeerMessage;
use tokio::sync::mpsc;

use super::Host;
use crate::clock::Clock;
use crate::store::Store;

/// A transfer message between two universes' engines, on this peer or across a link.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The sending universe.
    pub from: UniverseId,
    /// The receiving universe.
    pub to: UniverseId,
    /// The message.
    pub message: PeerMessage,
    /// The linked peer it came over; `None` from a universe hosted here. Arrivals over a
    /// link must name an open passage with that peer (see [`crate::passages::admit_arrival`]).
    pub via: Option<PeerId>,
}

impl Envelope {
    /// Whether this is a prepare, over a link, through a passage that was open and is
    /// reconnecting: the host drops it (the source resends it until its deadline) rather
    /// than refuse an entity over a passing outage.
    pub(super) fn held_back(&self, passages: &crate::passages::PassageTable) -> bool {
        let held = match (&self.message, self.via) {
            (PeerMessage::TransferPrepare(p), Some(peer)) => {
                crate::passages::reconnecting(passages, peer, p.passage)
            }
            _ => false,
        };
        if held {
            tracing::debug!(from = %self.from, "prepare held back: its passage is reconnecting");
        }
        held
    }
}

/// What a host needs to take part in transfers.
#[derive(Debug, Clone)]
pub struct TransferContext {
    /// Where journal records go.
    pub store: Arc<Store>,
    /// Where outgoing transfer messages go (the federation router).
    pub router: mpsc::Sender<Envelope>,
    /// Time for the engine.
    pub clock: Clock,
    /// Passages known here: arrivals through one that is not open are refused.
    pub passages: crate::passages::PassageTable,
    /// Where every transfer event goes (UI, logs, benches); nobody listening is fine.
    pub events: tokio::sync::broadcast::Sender<(UniverseId, TransferEvent)>,
}

/// The engine endpoint id of a universe.
pub fn endpoint(universe: UniverseId) -> PeerId {
    PeerId::from_u128(universe.as_u128())
}

/// The universe of an engine endpoint id.
pub fn universe_of(endpoint: PeerId) -> UniverseId {
    UniverseId::from_u128(endpoint.as_u128())
}

/// The engine for `universe`, rebuilt from its journal (repairing the universe), or fresh.
pub fn engine_for(
    universe: &mut Universe,
    journal: Vec<JournalRecord>,
    ctx: &TransferContext,
) -> TransferEngine {
    let id = universe.config().id;
    let seed = id.as_u128() as u64 ^ 0x7EA5_F3E5;
    if journal.is_empty() {
        return TransferEngine::new(endpoint(id), TransferConfig::default(), seed);
    }
    tracing::info!(universe = %id, records = journal.len(), "resuming transfers from the journal");
    TransferEngine::restore(
        endpoint(id),
        TransferConfig::default(),
        seed,
        journal,
        universe,
        ctx.clock.now(),
    )
}

/// A universe as the engine sees it, with arrivals checked against the passages.
pub(super) struct Admitting<'a> {
    pub(super) universe: &'a mut Universe,
    pub(super) passages: &'a crate::passages::PassageTable,
    /// The linked peer the message came over (`None`: from a universe of this peer, which
    /// needs no passage).
    pub(super) via: Option<PeerId>,
}

impl multiverse_core::federation::UniverseAccess for Admitting<'_> {
    fn universe_mut(&mut self, id: UniverseId) -> Option<&mut Universe> {
        (self.universe.config().id == id).then_some(&mut *self.universe)
    }

    fn admit(
        &self,
        from: PeerId,
        passage: multiverse_core::ids::PassageId,
        universe: UniverseId,
    ) -> Result<(), multiverse_core::wire::NackReason> {
        let Some(peer) = self.via else {
            return Ok(()); // between two universes of this peer: no passage needed
        };
        crate::passages::admit_arrival(self.passages, peer, passage, universe_of(from), universe)
    }
}

impl Host {
    /// Performs the engine's outputs: every journal record first, durably in one write,
    /// then the messages and events in order. If the journal cannot be written, nothing is
    /// sent and transfers stop for this universe (the engine's state is ahead of the disk).
    pub(super) async fn flush_transfers(&mut self) {
        let mut journal = Vec::new();
        let mut rest = Vec::new();
        while let Some(output) = self.transfers.poll_output() {
            match output {
                TransferOutput::Journal(record) => journal.push(record),
                other => rest.push(other),
            }
        }
        let replies = std::mem::take(&mut self.started_replies);
        if self.transfers_halted {
            return;
        }
        if !journal.is_empty() {
            let (store, id) = (self.transfer_ctx.store.clone(), self.universe.config().id);
            let written = tokio::task::spawn_blocking(move || store.append_journal(id, &journal))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            if let Err(e) = written {
                tracing::error!(universe = %id, "cannot write the transfer journal; transfers stop here: {e}");
                self.transfers_halted = true;
                return;
            }
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
        let from = self.universe.config().id;
        for output in rest {
            match output {
                TransferOutput::Send { to, message } => {
                    let envelope = Envelope {
                        from,
                        to: universe_of(to),
                        message,
                        via: None,
                    };
                    // A full router drops the message; the engine resends it.
                    if self.transfer_ctx.router.try_send(envelope).is_err() {
                        tracing::debug!(universe = %from, "router busy; the engine will resend");
                    }
                }
                TransferOutput::Event(event) => {
                    log_event(&event);
                    let _ = self.transfer_ctx.events.send((from, event));
                }
                TransferOutput::Journal(_) => unreachable!("journal records were taken out"),
            }
        }
    }
}

fn log_event(event: &TransferEvent) {
    match event {
        TransferEvent::Departed {
            transfer,
            universe,
            entity,
            remote,
            ..
        } => {
            tracing::info!(%transfer, %universe, %entity, %remote, "entity departed");
        }
        TransferEvent::Arrived {
            transfer,
            universe,
            entity,
            ..
        } => {
            tracing::info!(%transfer, %universe, %entity, "entity arrived");
        }
        TransferEvent::Returned {
            transfer,
            universe,
            entity,
            reason,
        } => {
            tracing::info!(%transfer, %universe, %entity, ?reason, "entity returned home");
        }
    }
}
