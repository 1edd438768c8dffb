//! One task per hosted universe: ticks the core `Universe` and its `StreamServer`, applies
//! subscriber requests, and fans frames out to sessions without ever waiting on one.
//!
//! Each session owns a bounded [`Outbox`]. The host only `try_send`s: when a session's queue
//! is full (a slow or stalled client) the frame is dropped and the core is told, so that
//! subscriber gets a fresh snapshot later instead of an unbounded backlog. Frames shared by
//! a whole interest group are encoded once per encoding.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use multiverse_core::ids::UserId;
use multiverse_core::stream::{
    Interaction, StreamConfiguration, StreamError, StreamServer, SubscriberId, ViewMode,
};
use multiverse_core::universe::{Rect, Universe, UniverseInfo};
use multiverse_core::wire::{
    Codec, Encoding, ErrorCode, Frame, ServerMessage, MAX_SERVER_FRAME_BYTES,
};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Frames queued per session before the host starts dropping (and later resyncing).
pub const OUTBOX_FRAMES: usize = 32;
/// How many recent `(seq, entities)` pairs are kept per subscriber for `/api`.
const VIEW_HISTORY: usize = 64;

/// An encoded frame, cheap to clone for every recipient.
#[derive(Debug, Clone)]
pub enum WireFrame {
    /// A binary WebSocket message.
    Binary(Bytes),
    /// A text WebSocket message.
    Text(Utf8Bytes),
}

impl WireFrame {
    /// Encodes a message for one encoding.
    pub fn encode(encoding: Encoding, message: &ServerMessage) -> WireFrame {
        match Codec::new(encoding, MAX_SERVER_FRAME_BYTES).encode(message) {
            Frame::Binary(b) => WireFrame::Binary(Bytes::from(b)),
            Frame::Text(t) => WireFrame::Text(Utf8Bytes::from(t)),
        }
    }
}

/// A message being fanned out: encoded at most once per encoding, on first need.
#[derive(Debug)]
pub struct Encoded<'a> {
    message: &'a ServerMessage,
    frames: [Option<WireFrame>; 2],
}

impl<'a> Encoded<'a> {
    /// Nothing encoded yet.
    pub fn new(message: &'a ServerMessage) -> Self {
        Encoded {
            message,
            frames: [None, None],
        }
    }

    /// The frame for `encoding`, encoding it the first time.
    pub fn frame(&mut self, encoding: Encoding) -> WireFrame {
        let slot = &mut self.frames[usize::from(encoding == Encoding::Json)];
        slot.get_or_insert_with(|| WireFrame::encode(encoding, self.message))
            .clone()
    }
}

/// Where hosts and rooms send one session's frames. Nobody ever waits on it: a full queue
/// is the sender's to handle (drop and resync, or disconnect).
#[derive(Debug, Clone)]
pub struct Outbox {
    /// The session's bounded queue.
    pub tx: mpsc::Sender<WireFrame>,
    /// The session's encoding.
    pub encoding: Encoding,
}

impl Outbox {
    /// Queues `message` (encoded through `encoded`, shared by all recipients) without waiting.
    pub fn offer(
        &self,
        encoded: &mut Encoded<'_>,
    ) -> Result<(), mpsc::error::TrySendError<WireFrame>> {
        self.tx.try_send(encoded.frame(self.encoding))
    }

    /// Queues an error frame without waiting; returns whether it was queued.
    pub fn try_error(&self, code: ErrorCode, message: String) -> bool {
        let error = ServerMessage::Error { code, message };
        self.offer(&mut Encoded::new(&error)).is_ok()
    }
}

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
}

/// A handle to a running host.
#[derive(Debug, Clone)]
pub struct HostHandle {
    /// Requests to the host.
    pub commands: mpsc::Sender<HostCommand>,
    /// Latest stats (and universe info).
    pub stats: watch::Receiver<HostStats>,
}

/// Starts a host task for `universe`, stopping when `shutdown` is cancelled.
pub fn spawn(universe: Universe, stream: StreamServer, shutdown: CancellationToken) -> HostHandle {
    let (commands, rx) = mpsc::channel(256);
    let stats = HostStats {
        info: UniverseInfo::of(&universe),
        subscribers: 0,
        groups: 0,
        last_tick_micros: 0,
        dropped_frames: 0,
    };
    let (stats_tx, stats_rx) = watch::channel(stats);
    let host = Host {
        universe,
        stream,
        outboxes: BTreeMap::new(),
        history: BTreeMap::new(),
        dropped: 0,
    };
    tokio::spawn(host.run(rx, stats_tx, shutdown));
    HostHandle {
        commands,
        stats: stats_rx,
    }
}

struct Host {
    universe: Universe,
    stream: StreamServer,
    outboxes: BTreeMap<SubscriberId, Outbox>,
    history: BTreeMap<SubscriberId, VecDeque<(u64, usize)>>,
    dropped: u64,
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
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {
                    let started = Instant::now();
                    self.universe.step();
                    let events = self.universe.drain_events();
                    self.stream.handle_tick(&self.universe, &events);
                    self.flush();
                    self.publish(&stats, started.elapsed());
                }
                command = commands.recv() => match command {
                    Some(command) => {
                        self.handle(command);
                        self.flush();
                    }
                    None => return,
                },
            }
        }
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

    fn publish(&self, stats: &watch::Sender<HostStats>, took: Duration) {
        stats.send_replace(HostStats {
            info: UniverseInfo::of(&self.universe),
            subscribers: self.stream.subscriber_count(),
            groups: self.stream.group_count(),
            last_tick_micros: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            dropped_frames: self.dropped,
        });
    }
}

fn refusal(e: StreamError) -> (ErrorCode, String) {
    (e.code(), e.to_string())
}
