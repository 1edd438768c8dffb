//! One task per hosted universe: ticks the core `Universe` and its `StreamServer`, applies
//! subscriber requests, and fans frames out to sessions without ever waiting on one.
//!
//! Each session owns a bounded [`Outbox`]. The host only `try_send`s: when a session's queue
//! is full (a slow or stalled client) the frame is dropped and the core is told, so that
//! subscriber gets a fresh snapshot later instead of an unbounded backlog. Frames shared by
//! a whole interest group are encoded once per encoding.

mod avatars;
mod outbox;
mod transfers;

pub use avatars::{AvatarCommand, AvatarPositions};

pub use outbox::{Encoded, Outbox, WireFrame};

pub use transfers::{endpoint, universe_of, Envelope, TransferContext};

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use multiverse_core::federation::{TransferEngine, TransferError, TransferRequest};
use multiverse_core::ids::{TransferId, UserId};
use multiverse_core::stream::{
    Interaction, StreamConfiguration, StreamError, StreamServer, SubscriberId, ViewMode,
};
use multiverse_core::universe::{
    EventBus, EventKind, Rect, Universe, UniverseInfo, UniverseSnapshot,
};
use multiverse_core::wire::{ErrorCode, ServerMessage};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Frames queued per session before the host starts dropping (and later resyncing).
pub const OUTBOX_FRAMES: usize = 32;
/// How many recent `(seq, entities)` pairs are kept per subscriber for `/api`.
const VIEW_HISTORY: usize = 64;

/// Requests from sessions to a host.
#[derive(Debug)]
pub enum HostCommand {
    /// Start or replace a subscription.
    Subscribe {
        /// The subscriber (one per session and universe).
        sub: SubscriberId,
        /// The user acting, if known.
        viewer: Option<UserId>,
        /// What to stream.
        config: StreamConfiguration,
        /// What part of the world.
        viewport: Option<Rect>,
        /// Observe or participate.
        mode: ViewMode,
        /// Where frames go.
        outbox: Outbox,
    },
    /// Move the viewport.
    SetViewport(SubscriberId, Option<Rect>),
    /// Replace the configuration.
    Configure(SubscriberId, StreamConfiguration),
    /// Send a fresh snapshot.
    Resync(SubscriberId),
    /// End a subscription, answering `unsubscribed`.
    Unsubscribe(SubscriberId),
    /// Forget a subscriber whose connection is gone.
    Remove(SubscriberId),
    /// Act on the universe.
    Interact(SubscriberId, Interaction),
    /// Report per-subscriber view sizes.
    Views(oneshot::Sender<Vec<SubscriberView>>),
    /// Choose which events of the universe's event bus a session receives.
    SubscribeEvents {
        /// The session's subscriber number.
        sub: SubscriberId,
        /// Kinds wanted (empty: none).
        kinds: Vec<EventKind>,
        /// Where `events` messages go.
        outbox: Outbox,
    },
    /// Copy the universe as it is now, with the transfer checkpoint that is valid together
    /// with it (`None` when transfers are halted: keep the journal as it is).
    Snapshot(
        oneshot::Sender<(
            UniverseSnapshot,
            Option<Vec<multiverse_core::federation::JournalRecord>>,
        )>,
    ),
    /// Put another universe in its place (reload from a save); every viewer is resynced.
    Replace(Box<Universe>),
    /// Tell every viewer why, then stop (the world was deleted).
    Stop(String),
    /// A visitor from a linked peer acts here through a passage (already authorised).
    Visit {
        /// Who, as this peer knows them.
        viewer: UserId,
        /// What they do.
        interaction: Interaction,
    },
    /// A transfer message for this universe's engine from another universe's engine.
    Transfer(Box<Envelope>),
    /// A member's avatar: spawn, walk or remove (from the room task of a room showing it).
    Avatar(AvatarCommand),
    /// Send one of this universe's entities to another universe.
    StartTransfer {
        /// What, where.
        request: TransferRequest,
        /// The transfer id once its start is durable, or why it could not start. Dropped
        /// unanswered if the journal cannot be written.
        reply: oneshot::Sender<Result<TransferId, TransferError>>,
    },
}

/// What `/api/universes/{id}/views` reports for one subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriberView {
    /// The subscriber number.
    pub subscriber: u64,
    /// Recent `[seq, entities]` pairs, oldest first: the mirror size after each frame.
    pub recent: Vec<(u64, usize)>,
}

/// Live numbers of a host, published every tick.
#[derive(Debug, Clone, Serialize)]
pub struct HostStats {
    /// The universe.
    pub info: UniverseInfo,
    /// Subscribers.
    pub subscribers: usize,
    /// Distinct views computed per sync.
    pub groups: usize,
    /// Duration of the last tick (step + diff + encode + fan-out), microseconds.
    pub last_tick_micros: u64,
    /// Frames dropped because a session's queue was full, since start.
    pub dropped_frames: u64,
    /// Moving average of the tick duration (1/32 weight per tick), microseconds.
    pub avg_tick_micros: u64,
    /// Longest tick of the last [`MAX_WINDOW_TICKS`] ticks, microseconds.
    pub max_tick_micros: u64,
    /// Transfers this universe is sending that are not settled.
    pub transfers_out: usize,
    /// Transfers arriving here, stored hidden until the source commits.
    pub transfers_in: usize,
}

/// Ticks over which [`HostStats::max_tick_micros`] is taken.
pub const MAX_WINDOW_TICKS: u64 = 200;

/// A handle to a running host.
#[derive(Debug, Clone)]
pub struct HostHandle {
    /// Requests to the host.
    pub commands: mpsc::Sender<HostCommand>,
    /// Latest stats (and universe info).
    pub stats: watch::Receiver<HostStats>,
    /// Every avatar's position, republished after a tick only when one moved, came or went:
    /// `avatars.borrow()` reads them, `avatars.changed().await` waits for the next tick that
    /// changed them (the voice forwarder computes hearing sets there).
    pub avatars: watch::Receiver<AvatarPositions>,
}

/// Starts a host task for `universe`, stopping when `shutdown` is cancelled. `journal` is
/// the universe's transfer journal: in-flight transfers resume (and the universe is
/// repaired to agree with them) before the first tick.
pub fn spawn(
    tracker: &tokio_util::task::TaskTracker,
    mut universe: Universe,
    stream: StreamServer,
    shutdown: CancellationToken,
    transfer_ctx: TransferContext,
    journal: Vec<multiverse_core::federation::JournalRecord>,
) -> HostHandle {
    let transfers = transfers::engine_for(&mut universe, journal, &transfer_ctx);
    let (commands, rx) = mpsc::channel(1024);
    let stats = HostStats {
        info: UniverseInfo::of(&universe),
        subscribers: 0,
        groups: 0,
        last_tick_micros: 0,
        dropped_frames: 0,
        avg_tick_micros: 0,
        max_tick_micros: 0,
        transfers_out: transfers.outgoing_count(),
        transfers_in: transfers.incoming_count(),
    };
    let (stats_tx, stats_rx) = watch::channel(stats);
    let (avatars, avatars_rx) = avatars::Avatars::new(&universe);
    let host = Host {
        universe,
        stream,
        outboxes: BTreeMap::new(),
        history: BTreeMap::new(),
        dropped: 0,
        bus: EventBus::default(),
        bus_outboxes: BTreeMap::new(),
        timing: Timing::default(),
        transfers,
        transfer_ctx,
        transfers_halted: false,
        started_replies: Vec::new(),
        avatars,
    };
    tracker.spawn(host.run(rx, stats_tx, shutdown));
    HostHandle {
        commands,
        stats: stats_rx,
        avatars: avatars_rx,
    }
}

/// Where a transfer's start is answered.
type StartReply = oneshot::Sender<Result<TransferId, TransferError>>;

struct Host {
    universe: Universe,
    stream: StreamServer,
    outboxes: BTreeMap<SubscriberId, Outbox>,
    history: BTreeMap<SubscriberId, VecDeque<(u64, usize)>>,
    dropped: u64,
    bus: EventBus<SubscriberId>,
    bus_outboxes: BTreeMap<SubscriberId, Outbox>,
    timing: Timing,
    transfers: TransferEngine,
    transfer_ctx: TransferContext,
    transfers_halted: bool,
    started_replies: Vec<(StartReply, Result<TransferId, TransferError>)>,
    avatars: avatars::Avatars,
}

/// Tick-duration statistics.
#[derive(Debug, Default)]
struct Timing {
    ticks: u64,
    avg_micros: f64,
    window_max: u64,
    last_window_max: u64,
}

impl Timing {
    fn record(&mut self, micros: u64) {
        self.ticks += 1;
        self.avg_micros = if self.ticks == 1 {
            micros as f64
        } else {
            self.avg_micros + (micros as f64 - self.avg_micros) / 32.0
        };
        self.window_max = self.window_max.max(micros);
        if self.ticks.is_multiple_of(MAX_WINDOW_TICKS) {
            self.last_window_max = self.window_max;
            self.window_max = 0;
        }
    }

    fn max(&self) -> u64 {
        self.window_max.max(self.last_window_max)
    }
}

impl Host {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<HostCommand>,
        stats: watch::Sender<HostStats>,
        shutdown: CancellationToken,
    ) {
        let period =
            Duration::from_secs_f64(1.0 / f64::from(self.universe.config().tick_rate.max(1)));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Relocations found while restoring the journal are written (and resends go out)
        // before the first tick.
        self.flush_transfers().await;
        loop {
            let clock = self.transfer_ctx.clock;
            let transfer_due = self.transfers.poll_timeout().map(|t| clock.instant(t));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = crate::clock::sleep_until(transfer_due) => {
                    self.transfers.handle_timeout(clock.now());
                    self.flush_transfers().await;
                }
                _ = ticks.tick() => {
                    let started = Instant::now();
                    self.universe.step();
                    let events = self.universe.drain_events();
                    self.stream.handle_tick(&self.universe, &events);
                    self.publish_events(&events);
                    self.flush();
                    self.publish(&stats, started.elapsed());
                    self.avatars.publish(&self.universe);
                }
                command = commands.recv() => match command {
                    Some(command) => {
                        if self.handle_batch(command, &mut commands).await {
                            return;
                        }
                    }
                    None => return,
                },
            }
        }
    }

    /// Handles `first` and whatever else is queued (so one journal write covers a batch),
    /// then performs the outputs. Returns whether the host must stop.
    async fn handle_batch(
        &mut self,
        first: HostCommand,
        commands: &mut mpsc::Receiver<HostCommand>,
    ) -> bool {
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(command) = next.take() {
            match command {
                HostCommand::Stop(reason) => {
                    self.flush_transfers().await;
                    self.stop(&reason);
                    return true;
                }
                HostCommand::Snapshot(reply) => {
                    // A save must not include effects whose journal records are not durable.
                    self.flush_transfers().await;
                    let checkpoint = if self.transfers_halted {
                        None
                    } else {
                        Some(self.transfers.checkpoint())
                    };
                    let _ = reply.send((self.universe.snapshot(), checkpoint));
                }
                command => self.handle(command),
            }
            handled += 1;
            if handled < 256 {
                next = commands.try_recv().ok();
            }
        }
        self.flush_transfers().await;
        self.flush();
        false
    }

    fn handle(&mut self, command: HostCommand) {
        let (sub, result) = match command {
            HostCommand::Subscribe {
                sub,
                viewer,
                config,
                viewport,
                mode,
                outbox,
            } => {
                self.outboxes.insert(sub, outbox);
                (
                    sub,
                    self.stream
                        .subscribe(sub, viewer, config, viewport, mode, &self.universe)
                        .map_err(refusal),
                )
            }
            HostCommand::SetViewport(sub, viewport) => (
                sub,
                self.stream
                    .set_viewport(sub, viewport, &self.universe)
                    .map_err(refusal),
            ),
            HostCommand::Configure(sub, config) => (
                sub,
                self.stream
                    .configure(sub, config, &self.universe)
                    .map_err(refusal),
            ),
            HostCommand::Resync(sub) => (
                sub,
                self.stream.resync(sub, &self.universe).map_err(refusal),
            ),
            HostCommand::Unsubscribe(sub) => (sub, self.stream.unsubscribe(sub).map_err(refusal)),
            HostCommand::Remove(sub) => {
                self.stream.remove(sub);
                self.forget(sub);
                self.bus.unsubscribe(&sub);
                self.bus_outboxes.remove(&sub);
                return;
            }
            HostCommand::SubscribeEvents { sub, kinds, outbox } => {
                self.bus.subscribe(sub, kinds.iter().copied());
                if kinds.is_empty() {
                    self.bus_outboxes.remove(&sub);
                } else {
                    self.bus_outboxes.insert(sub, outbox);
                }
                return;
            }
            HostCommand::Snapshot(_) | HostCommand::Stop(_) => {
                unreachable!("handled in handle_batch")
            }
            HostCommand::Replace(mut universe) => {
                universe.adopt_avatars(&self.universe); // the members are still there
                self.universe = *universe;
                let subs: Vec<SubscriberId> = self.outboxes.keys().copied().collect();
                for sub in subs {
                    if let Err(e) = self.stream.resync(sub, &self.universe) {
                        tracing::debug!(subscriber = sub.0, "no resync after reload: {e}");
                    }
                }
                return;
            }
            HostCommand::Visit {
                viewer,
                interaction,
            } => {
                if let Err(e) = self.universe.interact(Some(viewer), &interaction) {
                    tracing::info!(universe = %self.universe.config().id, "visitor's interaction refused: {e}");
                }
                return;
            }
            HostCommand::Transfer(envelope) => {
                let now = self.transfer_ctx.clock.now();
                if envelope.held_back(&self.transfer_ctx.passages) {
                    return;
                }
                if !self.transfers_halted {
                    let mut access = transfers::Admitting {
                        universe: &mut self.universe,
                        passages: &self.transfer_ctx.passages,
                        via: envelope.via,
                    };
                    self.transfers.handle_message(
                        endpoint(envelope.from),
                        &envelope.message,
                        &mut access,
                        now,
                    );
                }
                return;
            }
            HostCommand::Avatar(command) => {
                self.avatars.apply(&mut self.universe, command);
                return;
            }
            HostCommand::StartTransfer { request, reply } => {
                let now = self.transfer_ctx.clock.now();
                let result = if self.transfers_halted {
                    Err(TransferError::NoSuchUniverse(self.universe.config().id))
                } else {
                    self.transfers.start(request, &mut self.universe, now)
                };
                // Answered once its `started` record is durable (see `flush_transfers`).
                self.started_replies.push((reply, result));
                return;
            }
            HostCommand::Interact(sub, interaction) => (sub, self.interact(sub, &interaction)),
            HostCommand::Views(reply) => {
                let views = self
                    .history
                    .iter()
                    .map(|(sub, recent)| SubscriberView {
                        subscriber: sub.0,
                        recent: recent.iter().copied().collect(),
                    })
                    .collect();
                let _ = reply.send(views);
                return;
            }
        };
        if let Err((code, message)) = result {
            tracing::info!(
                subscriber = sub.0,
                ?code,
                "stream request refused: {message}"
            );
            if let Some(outbox) = self.outboxes.get(&sub) {
                outbox.try_error(code, message);
            }
        }
        if !self.stream.is_subscribed(sub) {
            // Unsubscribed, or a first subscribe that was refused: send what is pending, then forget.
            self.flush();
            self.forget(sub);
        }
    }

    fn forget(&mut self, sub: SubscriberId) {
        self.outboxes.remove(&sub);
        self.history.remove(&sub);
    }

    fn interact(
        &mut self,
        sub: SubscriberId,
        interaction: &Interaction,
    ) -> Result<(), (ErrorCode, String)> {
        let viewer = self.stream.authorize(sub, interaction).map_err(refusal)?;
        self.universe
            .interact(viewer, interaction)
            .map_err(|e| (ErrorCode::InvalidInteraction, e.to_string()))
    }

    /// Sends every pending frame; a full queue is reported back to the stream server.
    fn flush(&mut self) {
        while let Some(out) = self.stream.poll_output() {
            let mut encoded = Encoded::new(&out.message);
            for sub in &out.to {
                let Some(outbox) = self.outboxes.get(sub) else {
                    continue;
                };
                match outbox.offer(&mut encoded) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.dropped += 1;
                        self.stream.handle_dropped(*sub);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => self.stream.remove(*sub),
                }
            }
        }
        for (sub, recent) in self.history.iter_mut() {
            if let Some((seq, _, len)) = self.stream.view_summary(*sub) {
                if recent.back().is_none_or(|(s, _)| *s != seq) {
                    recent.push_back((seq, len));
                    if recent.len() > VIEW_HISTORY {
                        recent.pop_front();
                    }
                }
            }
        }
        for sub in self.outboxes.keys() {
            if !self.history.contains_key(sub) {
                if let Some((seq, _, len)) = self.stream.view_summary(*sub) {
                    self.history.insert(*sub, VecDeque::from([(seq, len)]));
                }
            }
        }
    }

    /// Hands this tick's events to the event bus subscribers (best effort: a full queue
    /// drops the batch, as events are notifications, not state).
    fn publish_events(&mut self, events: &[multiverse_core::universe::UniverseEvent]) {
        if self.bus.is_empty() {
            return;
        }
        let universe = self.universe.config().id;
        let tick = self.universe.tick();
        for (sub, events) in self.bus.publish(events) {
            let Some(outbox) = self.bus_outboxes.get(&sub) else {
                continue;
            };
            let message = ServerMessage::Events {
                universe,
                tick,
                events,
            };
            if outbox.offer(&mut Encoded::new(&message)).is_err() {
                self.dropped += 1;
            }
        }
    }

    fn stop(&mut self, reason: &str) {
        let message = ServerMessage::Unsubscribed {
            universe: self.universe.config().id,
            reason: reason.to_owned(),
        };
        let mut encoded = Encoded::new(&message);
        for outbox in self.outboxes.values() {
            let _ = outbox.offer(&mut encoded);
        }
        tracing::info!(universe = %self.universe.config().id, "host stopped: {reason}");
    }

    fn publish(&mut self, stats: &watch::Sender<HostStats>, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.timing.record(micros);
        stats.send_replace(HostStats {
            info: UniverseInfo::of(&self.universe),
            subscribers: self.stream.subscriber_count(),
            groups: self.stream.group_count(),
            last_tick_micros: micros,
            dropped_frames: self.dropped,
            avg_tick_micros: self.timing.avg_micros.round() as u64,
            max_tick_micros: self.timing.max(),
            transfers_out: self.transfers.outgoing_count(),
            transfers_in: self.transfers.incoming_count(),
        });
    }
}

fn refusal(e: StreamError) -> (ErrorCode, String) {
    (e.code(), e.to_string())
}
