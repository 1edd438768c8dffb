//! The per-universe stream server: subscribers, interest groups, snapshots and deltas.
//!
//! Drive it with the universe it serves: after every `Universe::step`, call
//! [`StreamServer::handle_tick`] with the events drained from the universe, then drain
//! [`StreamServer::poll_output`]. Subscriber requests go through `subscribe`,
//! `set_viewport`, `configure`, `resync`, `unsubscribe`; a driver that could not deliver a
//! frame reports it with [`StreamServer::handle_dropped`] and the subscriber is sent a fresh
//! snapshot at its next sync instead of deltas it could not apply.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::diff::{compute_update, ticks_per_update};
use super::grid::Grid;
use super::state::{EntityState, Snapshot};
use super::{
    validate_config, validate_viewport, Interaction, InteractionMode, StreamConfiguration, ViewMode,
};
use crate::ids::{UniverseId, UserId};
use crate::universe::{Rect, Universe, UniverseEvent, UniverseInfo};
use crate::wire::{ErrorCode, ServerMessage};

/// Most events remembered for groups that sync less often than the universe ticks.
const EVENT_MEMORY: usize = 4096;

/// A subscriber of one universe, numbered by the driver (one per connection and universe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriberId(pub u64);

/// A frame for some subscribers: encode once, send to each.
#[derive(Debug, Clone)]
pub struct StreamOutput {
    /// Who gets it.
    pub to: Vec<SubscriberId>,
    /// What they get.
    pub message: Arc<ServerMessage>,
}

/// Why a stream request was refused. The subscription (if any) is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The stream configuration is invalid.
    #[error("invalid stream configuration: {0}")]
    InvalidConfig(String),
    /// The viewport is invalid.
    #[error("invalid viewport: {0}")]
    InvalidViewport(String),
    /// The subscriber has no subscription to this universe.
    #[error("not subscribed to this universe")]
    NotSubscribed,
    /// The subscriber's mode does not permit this.
    #[error("not permitted: {0}")]
    NotPermitted(String),
}

impl StreamError {
    /// The wire error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            StreamError::InvalidConfig(_) | StreamError::InvalidViewport(_) => {
                ErrorCode::InvalidStreamConfig
            }
            StreamError::NotSubscribed => ErrorCode::NotSubscribed,
            StreamError::NotPermitted(_) => ErrorCode::NotPermitted,
        }
    }
}

#[derive(Debug)]
struct Subscriber {
    group: u64,
    viewer: Option<UserId>,
    interaction: InteractionMode,
    needs_snapshot: bool,
}

/// What a group's members see.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Interest {
    pub(super) config: StreamConfiguration,
    pub(super) viewport: Option<Rect>,
    /// Only set when the filter depends on the viewer.
    pub(super) viewer: Option<UserId>,
}

#[derive(Debug, Clone)]
pub(super) struct Known {
    pub(super) state: EntityState,
    /// Tick at which its position was last brought up to date.
    pub(super) pos_tick: u64,
}

/// Subscribers with identical interest and the model of their (identical) mirrors.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) interest: Interest,
    pub(super) members: Vec<SubscriberId>,
    pub(super) known: FxHashMap<u32, Known>,
    pub(super) seq: u64,
    pub(super) last_sync_tick: u64,
    pub(super) next_sync_tick: u64,
    pub(super) event_seq: u64,
}

/// Buffers reused across syncs so a tick allocates little.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    pub(super) selected: Vec<(u32, f32)>,
    pub(super) candidates: Vec<u32>,
    pub(super) bits: Vec<u64>,
    pub(super) gone: Vec<u32>,
}

/// The stream server of one universe. See the module docs.
#[derive(Debug)]
pub struct StreamServer {
    universe: UniverseId,
    max_interaction: InteractionMode,
    subscribers: BTreeMap<SubscriberId, Subscriber>,
    groups: BTreeMap<u64, Group>,
    next_group: u64,
    grid: Grid,
    events: VecDeque<(u64, UniverseEvent)>,
    event_seq: u64,
    scratch: Scratch,
    out: VecDeque<StreamOutput>,
}

impl StreamServer {
    /// A server for `universe` whose participants may do at most `max_interaction`.
    pub fn new(universe: UniverseId, max_interaction: InteractionMode) -> Self {
        StreamServer {
            universe,
            max_interaction,
            subscribers: BTreeMap::new(),
            groups: BTreeMap::new(),
            next_group: 0,
            grid: Grid::default(),
            events: VecDeque::new(),
            event_seq: 0,
            scratch: Scratch::default(),
            out: VecDeque::new(),
        }
    }

    /// Number of subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }

    /// Number of interest groups (distinct views being computed).
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Whether `sub` is subscribed.
    pub fn is_subscribed(&self, sub: SubscriberId) -> bool {
        self.subscribers.contains_key(&sub)
    }

    /// Starts (or replaces) a subscription: answers `subscribed` and a snapshot.
    pub fn subscribe(
        &mut self,
        sub: SubscriberId,
        viewer: Option<UserId>,
        config: StreamConfiguration,
        viewport: Option<Rect>,
        mode: ViewMode,
        universe: &Universe,
    ) -> Result<(), StreamError> {
        validate_config(&config).map_err(StreamError::InvalidConfig)?;
        if let Some(v) = &viewport {
            validate_viewport(v).map_err(StreamError::InvalidViewport)?;
        }
        self.detach(sub);
        let interaction = match mode {
            ViewMode::Observe => InteractionMode::None,
            ViewMode::Participate => self.max_interaction,
        };
        let interest = interest(config, viewport, viewer);
        let existing = self
            .groups
            .iter()
            .find(|(_, g)| g.interest == interest)
            .map(|(id, _)| *id);
        let group_id = match existing {
            Some(id) => id,
            None => self.new_group(interest, universe),
        };
        self.groups
            .get_mut(&group_id)
            .expect("group exists")
            .members
            .push(sub);
        self.subscribers.insert(
            sub,
            Subscriber {
                group: group_id,
                viewer,
                interaction,
                needs_snapshot: false,
            },
        );
        let subscribed = ServerMessage::Subscribed {
            universe: UniverseInfo::of(universe),
            mode,
            interaction,
        };
        self.emit(vec![sub], subscribed);
        self.send_snapshot(group_id, vec![sub], universe, Vec::new());
        Ok(())
    }

    /// Ends a subscription.
    pub fn unsubscribe(&mut self, sub: SubscriberId) -> Result<(), StreamError> {
        if !self.detach(sub) {
            return Err(StreamError::NotSubscribed);
        }
        self.emit(
            vec![sub],
            ServerMessage::Unsubscribed {
                universe: self.universe,
                reason: "unsubscribed".into(),
            },
        );
        Ok(())
    }

    /// Forgets a subscriber without answering it (its connection is gone).
    pub fn remove(&mut self, sub: SubscriberId) {
        self.detach(sub);
    }

    /// Moves a subscriber's viewport; entities entering and leaving it follow at once.
    pub fn set_viewport(
        &mut self,
        sub: SubscriberId,
        viewport: Option<Rect>,
        universe: &Universe,
    ) -> Result<(), StreamError> {
        if let Some(v) = &viewport {
            validate_viewport(v).map_err(StreamError::InvalidViewport)?;
        }
        self.change_interest(sub, universe, |i| i.viewport = viewport)
    }

    /// Replaces a subscriber's configuration; takes effect at once.
    pub fn configure(
        &mut self,
        sub: SubscriberId,
        config: StreamConfiguration,
        universe: &Universe,
    ) -> Result<(), StreamError> {
        validate_config(&config).map_err(StreamError::InvalidConfig)?;
        let viewer = self
            .subscribers
            .get(&sub)
            .ok_or(StreamError::NotSubscribed)?
            .viewer;
        self.change_interest(sub, universe, |i| {
            i.viewer = viewer.filter(|_| config.filter.owned_by_viewer);
            i.config = config;
        })
    }

    /// The subscriber's mirror is out of step: send it a snapshot now.
    pub fn resync(&mut self, sub: SubscriberId, universe: &Universe) -> Result<(), StreamError> {
        let group = self
            .subscribers
            .get(&sub)
            .ok_or(StreamError::NotSubscribed)?
            .group;
        self.send_snapshot(group, vec![sub], universe, Vec::new());
        Ok(())
    }

    /// The driver could not deliver a frame to `sub` (its queue was full): it gets a snapshot
    /// instead of deltas at its group's next sync.
    pub fn handle_dropped(&mut self, sub: SubscriberId) {
        if let Some(s) = self.subscribers.get_mut(&sub) {
            s.needs_snapshot = true;
        }
    }

    /// Checks that `sub` may perform `interaction`; returns the viewer to act as.
    pub fn authorize(
        &self,
        sub: SubscriberId,
        interaction: &Interaction,
    ) -> Result<Option<UserId>, StreamError> {
        let s = self
            .subscribers
            .get(&sub)
            .ok_or(StreamError::NotSubscribed)?;
        let needed = interaction.required_mode();
        if s.interaction < needed {
            return Err(StreamError::NotPermitted(format!(
                "this subscription may interact at level {:?}; {:?} is needed",
                s.interaction, needed
            )));
        }
        Ok(s.viewer)
    }

    /// After a universe step: syncs every group that is due. `events` are the universe's
    /// events since the previous call.
    pub fn handle_tick(&mut self, universe: &Universe, events: &[UniverseEvent]) {
        for e in events {
            self.event_seq += 1;
            self.events.push_back((self.event_seq, e.clone()));
        }
        while self.events.len() > EVENT_MEMORY {
            self.events.pop_front();
        }
        let tick = universe.tick();
        let due: Vec<u64> = self
            .groups
            .iter()
            .filter(|(_, g)| tick >= g.next_sync_tick)
            .map(|(id, _)| *id)
            .collect();
        if due
            .iter()
            .any(|id| self.groups[id].interest.viewport.is_some())
        {
            self.grid.rebuild(universe);
        }
        for id in due {
            self.sync(id, universe);
        }
        let oldest = self
            .groups
            .values()
            .map(|g| g.event_seq)
            .min()
            .unwrap_or(self.event_seq);
        while self.events.front().is_some_and(|(seq, _)| *seq <= oldest) {
            self.events.pop_front();
        }
    }

    /// The next frame to send, if any.
    pub fn poll_output(&mut self) -> Option<StreamOutput> {
        self.out.pop_front()
    }

    /// `(seq, tick, entity count)` of `sub`'s view: what its mirror holds after the frame
    /// with that sequence number.
    pub fn view_summary(&self, sub: SubscriberId) -> Option<(u64, u64, usize)> {
        let group = &self.groups[&self.subscribers.get(&sub)?.group];
        Some((group.seq, group.last_sync_tick, group.known.len()))
    }

    /// The server's model of `sub`'s mirror, ordered by entity id (what the mirror must equal).
    pub fn view_of(&self, sub: SubscriberId) -> Option<Vec<EntityState>> {
        let group = &self.groups[&self.subscribers.get(&sub)?.group];
        Some(sorted_states(group))
    }

    fn emit(&mut self, to: Vec<SubscriberId>, message: ServerMessage) {
        if !to.is_empty() {
            self.out.push_back(StreamOutput {
                to,
                message: Arc::new(message),
            });
        }
    }

    /// Removes `sub` from its group (dropping an emptied group). Returns whether it was there.
    fn detach(&mut self, sub: SubscriberId) -> bool {
        let Some(s) = self.subscribers.remove(&sub) else {
            return false;
        };
        let group = self
            .groups
            .get_mut(&s.group)
            .expect("a subscriber's group exists");
        group.members.retain(|m| *m != sub);
        if group.members.is_empty() {
            self.groups.remove(&s.group);
        }
        true
    }

    fn new_group(&mut self, interest: Interest, universe: &Universe) -> u64 {
        let id = self.next_group;
        self.next_group += 1;
        let mut group = Group {
            interest,
            members: Vec::new(),
            known: FxHashMap::default(),
            seq: 0,
            last_sync_tick: 0,
            next_sync_tick: 0,
            event_seq: self.event_seq,
        };
        if group.interest.viewport.is_some() {
            self.grid.rebuild(universe);
        }
        compute_update(
            &mut group,
            universe,
            &self.grid,
            &mut self.scratch,
            &self.events,
            true,
        );
        self.groups.insert(id, group);
        id
    }

    fn change_interest(
        &mut self,
        sub: SubscriberId,
        universe: &Universe,
        change: impl FnOnce(&mut Interest),
    ) -> Result<(), StreamError> {
        let gid = self
            .subscribers
            .get(&sub)
            .ok_or(StreamError::NotSubscribed)?
            .group;
        let group = &self.groups[&gid];
        let mut wanted = group.interest.clone();
        change(&mut wanted);
        if wanted == group.interest {
            return Ok(());
        }
        let gid = if group.members.len() > 1 {
            // Leave the group with a copy of its model: that copy is exactly our mirror.
            let mut copy = group.clone();
            copy.members = vec![sub];
            self.groups
                .get_mut(&gid)
                .expect("exists")
                .members
                .retain(|m| *m != sub);
            let id = self.next_group;
            self.next_group += 1;
            self.groups.insert(id, copy);
            self.subscribers.get_mut(&sub).expect("checked").group = id;
            id
        } else {
            gid
        };
        self.groups.get_mut(&gid).expect("exists").interest = wanted;
        if self.groups[&gid].interest.viewport.is_some() {
            self.grid.rebuild(universe);
        }
        self.sync(gid, universe);
        Ok(())
    }

    /// Brings a group's model up to date and sends the frames.
    fn sync(&mut self, gid: u64, universe: &Universe) {
        let group = self
            .groups
            .get_mut(&gid)
            .expect("syncing an existing group");
        let mut update = compute_update(
            group,
            universe,
            &self.grid,
            &mut self.scratch,
            &self.events,
            false,
        );
        let interval = sync_interval(&group.interest.config, universe);
        group.next_sync_tick = universe.tick() + interval;
        let (stale, fresh): (Vec<SubscriberId>, Vec<SubscriberId>) = group
            .members
            .iter()
            .partition(|m| self.subscribers[m].needs_snapshot);
        if !group.interest.config.delta_only {
            group.seq += 1;
            let events = std::mem::take(&mut update.events);
            let members = self.groups[&gid].members.clone();
            self.send_snapshot(gid, members, universe, events);
        } else {
            if !update.is_empty() {
                group.seq += 1;
                update.universe = self.universe;
                update.seq = group.seq;
                update.base_seq = group.seq - 1;
                update.tick = universe.tick();
                self.emit(fresh, ServerMessage::Update(Box::new(update)));
            }
            self.send_snapshot(gid, stale, universe, Vec::new());
        }
    }

    fn send_snapshot(
        &mut self,
        gid: u64,
        to: Vec<SubscriberId>,
        universe: &Universe,
        events: Vec<UniverseEvent>,
    ) {
        if to.is_empty() {
            return;
        }
        for sub in &to {
            if let Some(s) = self.subscribers.get_mut(sub) {
                s.needs_snapshot = false;
            }
        }
        let group = &self.groups[&gid];
        let snapshot = Snapshot {
            universe: self.universe,
            seq: group.seq,
            tick: group.last_sync_tick,
            entities: sorted_states(group),
            terrain: if group.interest.config.include_terrain {
                universe.terrain().to_vec()
            } else {
                Vec::new()
            },
            events,
        };
        self.emit(to, ServerMessage::Snapshot(Box::new(snapshot)));
    }
}

fn sorted_states(group: &Group) -> Vec<EntityState> {
    let mut states: Vec<EntityState> = group.known.values().map(|k| k.state.clone()).collect();
    states.sort_by_key(|s| s.id);
    states
}

fn interest(
    config: StreamConfiguration,
    viewport: Option<Rect>,
    viewer: Option<UserId>,
) -> Interest {
    let viewer = viewer.filter(|_| config.filter.owned_by_viewer);
    Interest {
        config,
        viewport,
        viewer,
    }
}

/// Ticks between two syncs of a configuration.
fn sync_interval(config: &StreamConfiguration, universe: &Universe) -> u64 {
    ticks_per_update(universe.config().tick_rate, config.sync_hz)
}
