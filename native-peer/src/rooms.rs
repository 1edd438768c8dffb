//! One task per room, driving a core [`Room`]: joins, chat (stored before it is
//! acknowledged), presence, cursors and invites. Rooms start on first join and stop when
//! the last member leaves.
//!
//! Every client in a room has an avatar in the room's universe (two tabs of one client share
//! it): the task asks the universe's host for one when a client's first member joins and
//! gives it back when its last member leaves, however they leave (asked, disconnected, gone
//! after missed heartbeats, too slow). Members walk their avatar with `move_avatar`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use multiverse_core::ids::{ClientId, MessageId, RoomId, UniverseId};
use multiverse_core::room::{
    AccessPolicy, CursorPosition, Room, RoomConfig, RoomError, RoomOutput,
};
use multiverse_core::universe::Vec2;
use multiverse_core::wire::{ErrorCode, ServerMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::chat_store::ChatStore;
use crate::clock::Clock;
use crate::host::{AvatarCommand, Encoded, HostCommand, Outbox};
use crate::universes::HostDirectory;

/// Room frames queued per connection before that connection is closed as too slow.
pub const ROOM_OUTBOX_FRAMES: usize = 256;
/// How long an empty room keeps its task (and its invites) before stopping.
pub const EMPTY_ROOM_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

type Registry = Arc<Mutex<HashMap<RoomId, mpsc::Sender<RoomCommand>>>>;

/// Where a room sends one member's frames, and how it disconnects a member that cannot keep up.
#[derive(Debug, Clone)]
pub struct RoomOutbox {
    /// The connection's room queue.
    pub queue: Outbox,
    /// Cancelled to close a connection whose queue overflowed.
    pub kick: CancellationToken,
}

/// Requests from sessions to a room.
#[derive(Debug)]
pub enum RoomCommand {
    /// Enter the room.
    Join {
        /// The membership (the session's number).
        member: u64,
        /// Who.
        client: ClientId,
        /// Display name.
        name: String,
        /// Invite token from the link.
        invite: Option<String>,
        /// Where frames go.
        outbox: RoomOutbox,
    },
    /// Leave (asked, or the connection closed).
    Leave(u64, &'static str),
    /// A chat message.
    Chat(u64, MessageId, String),
    /// Messages after a seq.
    Backfill(u64, u64),
    /// Cursor moved.
    Cursor(u64, Option<CursorPosition>),
    /// Heartbeat.
    Presence(u64, bool),
    /// Owner: make an invite.
    CreateInvite(u64),
    /// Owner: revoke an invite.
    RevokeInvite(u64, String),
    /// Owner: change access.
    Configure(u64, AccessPolicy, u32, bool),
    /// Walk the member's avatar towards a point of the room's universe.
    MoveAvatar(u64, Vec2),
}

/// Summary of a room for `/api/rooms`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoomSummary {
    /// The room id.
    pub id: RoomId,
    /// Members present.
    pub members: usize,
    /// Who may enter.
    pub access: AccessPolicy,
    /// The memberships present (not published: member numbers are per connection).
    #[serde(skip)]
    pub member_ids: Vec<u64>,
}

/// Every live room.
#[derive(Debug)]
pub struct Rooms {
    live: Registry,
    summaries: Arc<Mutex<BTreeMap<RoomId, RoomSummary>>>,
    store: Arc<dyn ChatStore>,
    clock: Clock,
    shutdown: CancellationToken,
    default_universe: Option<UniverseId>,
    bindings: Mutex<HashMap<RoomId, UniverseId>>,
    /// Where room tasks find their universe's host (for avatars).
    hosts: HostDirectory,
}

impl Rooms {
    /// No rooms yet; chat goes to `store`; avatars go to the hosts of `hosts`.
    pub fn new(
        store: Arc<dyn ChatStore>,
        clock: Clock,
        shutdown: CancellationToken,
        default_universe: Option<UniverseId>,
        hosts: HostDirectory,
    ) -> Self {
        Rooms {
            live: Arc::default(),
            summaries: Arc::default(),
            store,
            clock,
            shutdown,
            default_universe,
            bindings: Mutex::default(),
            hosts,
        }
    }

    /// The room's task, started (with its stored history) if it is not running.
    pub fn get_or_start(&self, id: &RoomId) -> mpsc::Sender<RoomCommand> {
        let mut live = self.live.lock().expect("rooms lock");
        if let Some(tx) = live.get(id).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let history = self.store.load(id).unwrap_or_else(|e| {
            tracing::error!(room = %id, "cannot load chat history: {e}");
            Vec::new()
        });
        let settings = self.store.load_settings(id).unwrap_or_else(|e| {
            tracing::error!(room = %id, "cannot load room settings: {e}");
            None
        });
        let bound = self
            .bindings
            .lock()
            .expect("bindings lock")
            .get(id)
            .copied();
        let universe = bound.or(self.default_universe);
        let room = match settings {
            Some(mut record) => {
                record.config.universe = universe;
                Room::from_record(record, history)
            }
            None => Room::new(RoomConfig::new(id.clone(), universe), history),
        };
        let (tx, rx) = mpsc::channel(1024);
        let task = RoomTask {
            room,
            outboxes: BTreeMap::new(),
            store: self.store.clone(),
            clock: self.clock,
            summaries: self.summaries.clone(),
            registry: self.live.clone(),
            hosts: self.hosts.clone(),
            avatars: BTreeSet::new(),
        };
        tokio::spawn(task.run(rx, self.shutdown.clone()));
        live.insert(id.clone(), tx.clone());
        tx
    }

    /// Makes room `room` show `universe` (a world's room) when it next starts.
    pub fn bind(&self, room: RoomId, universe: UniverseId) {
        self.bindings
            .lock()
            .expect("bindings lock")
            .insert(room, universe);
    }

    /// Forgets a binding (the world was deleted).
    pub fn unbind(&self, room: &RoomId) {
        self.bindings.lock().expect("bindings lock").remove(room);
    }

    /// The universe a room is bound to, if it is a world's room.
    pub fn binding(&self, room: &RoomId) -> Option<UniverseId> {
        self.bindings
            .lock()
            .expect("bindings lock")
            .get(room)
            .copied()
    }

    /// The universe room `room` shows: its world's, or the default one.
    pub fn universe_of(&self, room: &RoomId) -> Option<UniverseId> {
        self.binding(room).or(self.default_universe)
    }

    /// Whether connection `member` is in room `room` now (it joined and was admitted).
    pub fn has_member(&self, room: &RoomId, member: u64) -> bool {
        self.summaries
            .lock()
            .expect("summaries lock")
            .get(room)
            .is_some_and(|s| s.member_ids.contains(&member))
    }

    /// Rooms running now.
    pub fn live_count(&self) -> usize {
        self.summaries.lock().expect("summaries lock").len()
    }

    /// Public rooms with members.
    pub fn list_public(&self) -> Vec<RoomSummary> {
        let summaries = self.summaries.lock().expect("summaries lock");
        summaries
            .values()
            .filter(|s| s.access == AccessPolicy::Public && s.members > 0)
            .cloned()
            .collect()
    }
}

struct RoomTask {
    room: Room,
    outboxes: BTreeMap<u64, RoomOutbox>,
    store: Arc<dyn ChatStore>,
    clock: Clock,
    summaries: Arc<Mutex<BTreeMap<RoomId, RoomSummary>>>,
    registry: Registry,
    hosts: HostDirectory,
    /// Clients whose avatar this room asked for and has not given back.
    avatars: BTreeSet<ClientId>,
}

impl RoomTask {
    async fn run(mut self, mut commands: mpsc::Receiver<RoomCommand>, shutdown: CancellationToken) {
        let id = self.room.config().id.clone();
        let mut empty_since = Some(tokio::time::Instant::now());
        loop {
            let deadline = self.room.poll_timeout().map(|t| self.clock.instant(t));
            let reap = empty_since.map(|t| t + EMPTY_ROOM_GRACE);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = crate::clock::sleep_until(deadline) => self.room.handle_timeout(self.clock.now()),
                _ = crate::clock::sleep_until(reap) => {
                    // Leave the registry only if nobody is about to talk to us: under its lock
                    // no new sender is handed out, and an empty queue means no join is pending.
                    let mut live = self.registry.lock().expect("rooms lock");
                    if self.room.is_empty() && commands.is_empty() {
                        live.remove(&id);
                        tracing::info!(room = %id, "room stayed empty; stopping its task");
                        break;
                    }
                }
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
            }
            // A batch that is already due (the first cursor move after a quiet spell) goes out
            // now rather than after a trip through the timer wheel, which rounds up to the
            // next millisecond.
            let now = self.clock.now();
            if self.room.poll_timeout().is_some_and(|t| t <= now) {
                self.room.handle_timeout(now);
            }
            // Membership and avatars are published before anyone hears of a join, so a
            // member acting on its welcome (turning voice on) is already known as one.
            self.sync_avatars();
            self.publish();
            self.flush().await;
            self.sync_avatars();
            self.publish();
            empty_since = match (self.room.is_empty(), empty_since) {
                (true, None) => Some(tokio::time::Instant::now()),
                (true, since) => since,
                (false, _) => None,
            };
        }
        self.summaries.lock().expect("summaries lock").remove(&id);
    }

    fn handle(&mut self, command: RoomCommand) {
        let now = self.clock.now();
        let (member, result) = match command {
            RoomCommand::Join {
                member,
                client,
                name,
                invite,
                outbox,
            } => {
                let result = self.room.join(member, client, name, invite.as_deref(), now);
                if result.is_ok() {
                    self.outboxes.insert(member, outbox);
                } else if let Err(e) = &result {
                    tracing::info!(room = %self.room.config().id, member, "join refused: {e}");
                    outbox.queue.try_error(e.code(), e.to_string());
                    return;
                }
                (member, result)
            }
            RoomCommand::Leave(member, reason) => {
                self.room.leave(member, reason);
                self.outboxes.remove(&member);
                return;
            }
            RoomCommand::Chat(member, id, text) => {
                (member, self.room.chat(member, id, &text, wall_ms(), now))
            }
            RoomCommand::Backfill(member, since) => (member, self.room.backfill(member, since)),
            RoomCommand::Cursor(member, position) => {
                (member, self.room.cursor(member, position, now))
            }
            RoomCommand::Presence(member, active) => {
                (member, self.room.presence(member, active, now))
            }
            RoomCommand::CreateInvite(member) => {
                (member, self.room.create_invite(member, new_token()))
            }
            RoomCommand::RevokeInvite(member, token) => {
                (member, self.room.revoke_invite(member, &token))
            }
            RoomCommand::Configure(member, access, max, multi) => {
                (member, self.room.configure(member, access, max, multi))
            }
            RoomCommand::MoveAvatar(member, to) => {
                self.move_avatar(member, to);
                return;
            }
        };
        if let Err(e) = result {
            self.refuse(member, &e);
        }
    }

    /// Hands a member's walk to the universe's host; refusals go back to the member.
    fn move_avatar(&self, member: u64, to: Vec2) {
        let client = self
            .room
            .members()
            .find(|m| m.member == member)
            .map(|m| m.client);
        let (Some(client), Some(outbox)) = (client, self.outboxes.get(&member)) else {
            return; // not (or no longer) a member
        };
        if !to.is_finite() {
            let message = "coordinates must be finite numbers".to_owned();
            outbox
                .queue
                .try_error(ErrorCode::InvalidInteraction, message);
            return;
        }
        let errors = Some(outbox.queue.clone());
        self.to_host(AvatarCommand::Move { client, to, errors });
    }

    /// Asks the host for an avatar for each client that arrived and gives back those of
    /// clients whose last member left (whichever way they left).
    fn sync_avatars(&mut self) {
        let mut present: BTreeMap<ClientId, String> = BTreeMap::new();
        for m in self.room.members() {
            present.entry(m.client).or_insert_with(|| m.name.clone());
        }
        let gone: Vec<ClientId> = self
            .avatars
            .iter()
            .filter(|c| !present.contains_key(c))
            .copied()
            .collect();
        for client in gone {
            self.avatars.remove(&client);
            self.to_host(AvatarCommand::Remove(client));
        }
        for (client, name) in present {
            if self.avatars.insert(client) {
                let owner = None;
                self.to_host(AvatarCommand::Spawn {
                    client,
                    name,
                    owner,
                });
            }
        }
    }

    /// Sends an avatar request to the host of the room's universe, if it is hosted here.
    fn to_host(&self, command: AvatarCommand) {
        let room = &self.room.config().id;
        let Some(universe) = self.room.config().universe else {
            return;
        };
        let Some(host) = self.hosts.get(universe) else {
            tracing::debug!(%room, %universe, "universe not hosted here; no avatars");
            return;
        };
        if let Err(e) = host.commands.try_send(HostCommand::Avatar(command)) {
            tracing::warn!(%room, %universe, "avatar request dropped: {e}");
        }
    }

    fn refuse(&self, member: u64, e: &RoomError) {
        tracing::info!(room = %self.room.config().id, member, "request refused: {e}");
        if let Some(outbox) = self.outboxes.get(&member) {
            outbox.queue.try_error(e.code(), e.to_string());
        }
    }

    /// Carries out the room's outputs in order: a message is on disk before anyone hears of it.
    async fn flush(&mut self) {
        while let Some(output) = self.room.poll_output() {
            match output {
                RoomOutput::Persist(message) => {
                    let store = self.store.clone();
                    let room = self.room.config().id.clone();
                    let stored =
                        tokio::task::spawn_blocking(move || store.append(&room, &message)).await;
                    if let Err(e) | Ok(Err(e)) = stored.map_err(std::io::Error::other) {
                        // Nothing is acknowledged that is not stored: stop this room loudly.
                        tracing::error!(room = %self.room.config().id, "cannot store chat; closing the room: {e}");
                        for outbox in self.outboxes.values() {
                            outbox.kick.cancel();
                        }
                        self.outboxes.clear();
                        return;
                    }
                }
                RoomOutput::PersistSettings(record) => {
                    let store = self.store.clone();
                    let stored =
                        tokio::task::spawn_blocking(move || store.save_settings(&record)).await;
                    if let Err(e) | Ok(Err(e)) = stored.map_err(std::io::Error::other) {
                        tracing::error!(room = %self.room.config().id, "cannot store room settings: {e}");
                    }
                }
                RoomOutput::Send { to, message } => self.deliver(&to, &message),
            }
        }
    }

    fn deliver(&mut self, to: &[u64], message: &ServerMessage) {
        let mut encoded = Encoded::new(message);
        let mut too_slow = Vec::new();
        for member in to {
            let Some(outbox) = self.outboxes.get(member) else {
                continue;
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = outbox.queue.offer(&mut encoded) {
                too_slow.push(*member);
            }
        }
        for member in too_slow {
            tracing::warn!(room = %self.room.config().id, member, "member cannot keep up; disconnecting it");
            if let Some(outbox) = self.outboxes.remove(&member) {
                outbox.kick.cancel();
            }
            self.room.leave(member, "disconnected");
        }
    }

    fn publish(&self) {
        let config = self.room.config();
        let summary = RoomSummary {
            id: config.id.clone(),
            members: self.room.len(),
            access: config.access,
            member_ids: self.room.members().map(|m| m.member).collect(),
        };
        self.summaries
            .lock()
            .expect("summaries lock")
            .insert(config.id.clone(), summary);
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
