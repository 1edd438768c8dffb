//! Rooms: who is here, what they said, where they point.
//!
//! A [`Room`] is a sans-IO state machine per room: members join (subject to the access policy,
//! invites and the player limit) and leave; presence goes active → away (the tab is hidden)
//! → gone (two missed heartbeats); chat gets one total order by server sequence number and
//! resends are recognised by the sender's message id; cursors are coalesced to 30 Hz and
//! removed exactly once, with their member.
//!
//! Drain [`Room::poll_output`] after every call. A [`RoomOutput::Persist`] comes before the
//! frames that announce or acknowledge the same chat message, so a driver that completes each
//! output in order never acknowledges a message it has not stored.

mod chat;
mod types;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

pub use chat::{
    ChatLog, ChatMessage, RateLimit, CHAT_MEMORY, HISTORY_ON_JOIN, MAX_BACKFILL, MAX_CHAT_CHARS,
};
pub use types::{
    AccessPolicy, CursorPosition, MemberCursor, MemberInfo, Presence, RoomConfig, RoomError,
    RoomWelcome,
};

use crate::clock::Moment;
use crate::ids::{ClientId, MessageId};
use crate::wire::ServerMessage;

/// How often clients send a heartbeat (`presence`).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A member without a heartbeat for this long is gone (two missed heartbeats).
pub const GONE_AFTER: Duration = Duration::from_secs(11);
/// Cursor batches go out at most this often (30 Hz).
pub const CURSOR_PERIOD: Duration = Duration::from_millis(33);
/// Chat messages a member may send at once, and per second after that.
pub const CHAT_BURST: u32 = 10;
/// Sustained chat rate per member, messages per second.
pub const CHAT_PER_SECOND: f64 = 5.0;
/// Longest invite token accepted.
pub const MAX_INVITE_LEN: usize = 64;
/// Invites a room keeps at once.
pub const MAX_INVITES: usize = 32;

/// What the driver must do, in order.
#[derive(Debug, Clone)]
pub enum RoomOutput {
    /// Store this message durably; complete before handling the next output.
    Persist(ChatMessage),
    /// Store the room's settings (owner, invites, access); they changed.
    PersistSettings(RoomRecord),
    /// Send a frame to these members.
    Send {
        /// Who.
        to: Vec<u64>,
        /// What.
        message: Arc<ServerMessage>,
    },
}

/// What of a room outlives its members: settings, owner and open invites.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoomRecord {
    /// Settings.
    pub config: RoomConfig,
    /// Who owns it (the first member ever to join).
    pub owner: Option<ClientId>,
    /// Invite tokens not yet revoked.
    pub invites: Vec<String>,
}

#[derive(Debug)]
struct Member {
    info: MemberInfo,
    heartbeat: Moment,
    chat_limit: RateLimit,
    cursor: Option<CursorPosition>,
    cursor_dirty: bool,
}

/// One room's state machine. See the module docs.
#[derive(Debug)]
pub struct Room {
    config: RoomConfig,
    owner: Option<ClientId>,
    members: BTreeMap<u64, Member>,
    chat: ChatLog,
    invites: BTreeSet<String>,
    cursor_flush: Option<Moment>,
    /// When the last cursor batch went out (batches are at least [`CURSOR_PERIOD`] apart).
    last_cursor_batch: Option<Moment>,
    out: VecDeque<RoomOutput>,
}

impl Room {
    /// A room with `config` and the chat `history` loaded from the store.
    pub fn new(config: RoomConfig, history: Vec<ChatMessage>) -> Self {
        Room {
            config,
            owner: None,
            members: BTreeMap::new(),
            chat: ChatLog::restore(history),
            invites: BTreeSet::new(),
            cursor_flush: None,
            last_cursor_batch: None,
            out: VecDeque::new(),
        }
    }

    /// A room brought back from its stored record and chat history.
    pub fn from_record(record: RoomRecord, history: Vec<ChatMessage>) -> Self {
        let mut room = Room::new(record.config, history);
        room.owner = record.owner;
        room.invites = record.invites.into_iter().collect();
        room
    }

    /// The settings worth storing.
    pub fn record(&self) -> RoomRecord {
        RoomRecord {
            config: self.config.clone(),
            owner: self.owner,
            invites: self.invites.iter().cloned().collect(),
        }
    }

    fn settings_changed(&mut self) {
        let record = self.record();
        self.out.push_back(RoomOutput::PersistSettings(record));
    }

    /// The room's settings.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// Members present.
    pub fn members(&self) -> impl Iterator<Item = &MemberInfo> + '_ {
        self.members.values().map(|m| &m.info)
    }

    /// Number of members present.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether nobody is here.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sequence number of the newest chat message.
    pub fn last_seq(&self) -> u64 {
        self.chat.last_seq()
    }

    /// A connection asks to join. The first member of a room owns it.
    pub fn join(
        &mut self,
        member: u64,
        client: ClientId,
        name: String,
        invite: Option<&str>,
        now: Moment,
    ) -> Result<(), RoomError> {
        let is_owner = self.owner.is_none() || self.owner == Some(client);
        let invited = invite.is_some_and(|t| self.invites.contains(t));
        if self.config.access == AccessPolicy::Private && !is_owner && !invited {
            return Err(RoomError::InviteRequired);
        }
        if !self.members.contains_key(&member) && self.members.len() >= self.config.capacity() {
            return Err(RoomError::Full(self.config.capacity()));
        }
        if self.owner.is_none() {
            self.owner = Some(client);
            self.settings_changed();
        }
        let info = MemberInfo {
            member,
            client,
            name,
            colour: colour_of(client),
            presence: Presence::Active,
            owner: is_owner,
        };
        let replaced = self.members.insert(
            member,
            Member {
                info: info.clone(),
                heartbeat: now,
                chat_limit: RateLimit::new(CHAT_BURST, CHAT_PER_SECOND, now),
                cursor: None,
                cursor_dirty: false,
            },
        );
        let welcome = RoomWelcome {
            config: self.config.clone(),
            you: member,
            members: self.members().cloned().collect(),
            history: self.chat.last(HISTORY_ON_JOIN),
        };
        self.send(vec![member], ServerMessage::RoomJoined(Box::new(welcome)));
        if replaced.is_none() {
            let others = self.others(member);
            self.send(others, ServerMessage::MemberJoined(info));
        }
        Ok(())
    }

    /// A member leaves (its connection closed, or it asked to).
    pub fn leave(&mut self, member: u64, reason: &str) {
        if self.members.remove(&member).is_some() {
            let everyone = self.others(member);
            self.send(
                everyone,
                ServerMessage::MemberLeft {
                    member,
                    reason: reason.to_owned(),
                },
            );
        }
    }

    /// A heartbeat; `active` says whether the member's tab is visible and in use.
    pub fn presence(&mut self, member: u64, active: bool, now: Moment) -> Result<(), RoomError> {
        let m = self.members.get_mut(&member).ok_or(RoomError::NotInRoom)?;
        m.heartbeat = now;
        let presence = if active {
            Presence::Active
        } else {
            Presence::Away
        };
        if m.info.presence != presence {
            m.info.presence = presence;
            let everyone = self.everyone();
            self.send(
                everyone,
                ServerMessage::PresenceChanged { member, presence },
            );
        }
        Ok(())
    }

    /// A chat message. A resend (same id) is acknowledged again and never duplicated.
    pub fn chat(
        &mut self,
        member: u64,
        id: MessageId,
        text: &str,
        wall_ms: u64,
        now: Moment,
    ) -> Result<(), RoomError> {
        let m = self.members.get_mut(&member).ok_or(RoomError::NotInRoom)?;
        if let Some(seq) = self.chat.seq_of(id) {
            self.send(vec![member], ServerMessage::ChatAck { id, seq });
            return Ok(());
        }
        let text = text.trim();
        if text.is_empty()
            || text.chars().count() > MAX_CHAT_CHARS
            || text.chars().any(|c| c.is_control() && c != '\n')
        {
            return Err(RoomError::BadChat);
        }
        if !m.chat_limit.try_take(now) {
            return Err(RoomError::RateLimited);
        }
        let (client, name) = (m.info.client, m.info.name.clone());
        let message = self.chat.append(id, client, name, text.to_owned(), wall_ms);
        self.out.push_back(RoomOutput::Persist(message.clone()));
        self.send(
            vec![member],
            ServerMessage::ChatAck {
                id,
                seq: message.seq,
            },
        );
        let everyone = self.everyone();
        self.send(everyone, ServerMessage::Chat(message));
        Ok(())
    }

    /// Messages after `since`, for a member that reconnected or scrolled back.
    pub fn backfill(&mut self, member: u64, since: u64) -> Result<(), RoomError> {
        if !self.members.contains_key(&member) {
            return Err(RoomError::NotInRoom);
        }
        let messages = self.chat.since(since);
        self.send(vec![member], ServerMessage::ChatHistory { messages });
        Ok(())
    }

    /// Where a member points now (`None` hides the cursor). Coalesced to 30 Hz.
    pub fn cursor(
        &mut self,
        member: u64,
        position: Option<CursorPosition>,
        now: Moment,
    ) -> Result<(), RoomError> {
        if position.is_some_and(|p| !p.is_valid()) {
            return Err(RoomError::BadCursor);
        }
        let m = self.members.get_mut(&member).ok_or(RoomError::NotInRoom)?;
        if m.cursor != position {
            m.cursor = position;
            m.cursor_dirty = true;
            // Leading edge: after a quiet period the batch goes out at once; during motion
            // faster than 30 Hz, moves are coalesced into the next batch.
            let earliest = self
                .last_cursor_batch
                .map_or(now, |t| t.plus(CURSOR_PERIOD));
            self.cursor_flush.get_or_insert(earliest.max(now));
            if earliest <= now {
                self.handle_timeout(now);
            }
        }
        Ok(())
    }

    /// The owner creates an invite; `token` is fresh randomness from the driver.
    pub fn create_invite(&mut self, member: u64, token: String) -> Result<(), RoomError> {
        self.require_owner(member)?;
        if token.is_empty() || token.len() > MAX_INVITE_LEN || self.invites.len() >= MAX_INVITES {
            return Err(RoomError::BadInvite);
        }
        self.invites.insert(token.clone());
        self.settings_changed();
        self.send(vec![member], ServerMessage::InviteCreated { token });
        Ok(())
    }

    /// The owner revokes an invite; members already inside stay.
    pub fn revoke_invite(&mut self, member: u64, token: &str) -> Result<(), RoomError> {
        self.require_owner(member)?;
        if !self.invites.remove(token) {
            return Err(RoomError::BadInvite);
        }
        self.settings_changed();
        self.send(
            vec![member],
            ServerMessage::InviteRevoked {
                token: token.to_owned(),
            },
        );
        Ok(())
    }

    /// The owner changes who may enter and how many. Members already inside stay, even if
    /// the new limit is lower.
    pub fn configure(
        &mut self,
        member: u64,
        access: AccessPolicy,
        max_players: u32,
        multiplayer: bool,
    ) -> Result<(), RoomError> {
        self.require_owner(member)?;
        if !(1..=256).contains(&max_players) {
            return Err(RoomError::BadLimit);
        }
        self.config.access = access;
        self.config.max_players = max_players;
        self.config.multiplayer = multiplayer;
        self.settings_changed();
        let everyone = self.everyone();
        self.send(everyone, ServerMessage::RoomConfigured(self.config.clone()));
        Ok(())
    }

    /// Time passed: flush cursors, drop members that stopped sending heartbeats.
    pub fn handle_timeout(&mut self, now: Moment) {
        let gone: Vec<u64> = self
            .members
            .iter()
            .filter(|(_, m)| now.since(m.heartbeat) >= GONE_AFTER)
            .map(|(k, _)| *k)
            .collect();
        for member in gone {
            self.leave(member, "gone");
        }
        if self.cursor_flush.is_some_and(|t| now >= t) {
            self.cursor_flush = None;
            self.last_cursor_batch = Some(now);
            let cursors: Vec<MemberCursor> = self
                .members
                .iter_mut()
                .filter(|(_, m)| m.cursor_dirty)
                .map(|(k, m)| {
                    m.cursor_dirty = false;
                    MemberCursor {
                        member: *k,
                        position: m.cursor,
                    }
                })
                .collect();
            if !cursors.is_empty() {
                let everyone = self.everyone();
                self.send(everyone, ServerMessage::Cursors { cursors });
            }
        }
    }

    /// When [`Room::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Moment> {
        let gone = self
            .members
            .values()
            .map(|m| m.heartbeat.plus(GONE_AFTER))
            .min();
        match (gone, self.cursor_flush) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<RoomOutput> {
        self.out.pop_front()
    }

    fn require_owner(&self, member: u64) -> Result<(), RoomError> {
        let m = self.members.get(&member).ok_or(RoomError::NotInRoom)?;
        if Some(m.info.client) == self.owner {
            Ok(())
        } else {
            Err(RoomError::NotOwner)
        }
    }

    fn everyone(&self) -> Vec<u64> {
        self.members.keys().copied().collect()
    }

    fn others(&self, member: u64) -> Vec<u64> {
        self.members
            .keys()
            .copied()
            .filter(|k| *k != member)
            .collect()
    }

    fn send(&mut self, to: Vec<u64>, message: ServerMessage) {
        if !to.is_empty() {
            self.out.push_back(RoomOutput::Send {
                to,
                message: Arc::new(message),
            });
        }
    }
}

/// A pleasant, stable colour per client.
pub fn colour_of(client: ClientId) -> u32 {
    const PALETTE: [u32; 10] = [
        0xff6b6b, 0xffd93d, 0x6bcb77, 0x4d96ff, 0xc77dff, 0xff9f45, 0x4ecdc4, 0xf783ac, 0xa9e34b,
        0x74c0fc,
    ];
    PALETTE[(client.as_u128() % PALETTE.len() as u128) as usize]
}

#[cfg(test)]
mod tests;
