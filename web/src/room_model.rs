//! The room as this page knows it: members, chat (with our own pending messages), cursors and
//! invites. A plain struct fed with peer messages; the panels render snapshots of it.

use std::collections::BTreeMap;

use multiverse_core::ids::{MessageId, RoomId};
use multiverse_core::room::{ChatMessage, CursorPosition, MemberInfo, RoomConfig, MAX_BACKFILL};
use multiverse_core::wire::{ClientMessage, ErrorCode, ServerMessage};

/// One line of the chat panel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatLine {
    /// Server order, `None` while ours is not yet acknowledged.
    pub seq: Option<u64>,
    /// The message id.
    pub id: MessageId,
    /// Sender's display name.
    pub name: String,
    /// Text.
    pub text: String,
    /// Sender's colour.
    pub colour: u32,
}

/// Everything the room panels show.
#[derive(Debug, Default)]
pub struct RoomModel {
    /// The room this page is for.
    pub room: Option<RoomId>,
    /// Invite token from the link, if any.
    pub invite: Option<String>,
    /// Our membership id, once joined.
    pub you: Option<u64>,
    /// The room's settings, once joined.
    pub config: Option<RoomConfig>,
    /// Who is here.
    pub members: BTreeMap<u64, MemberInfo>,
    /// Chat by seq.
    pub chat: BTreeMap<u64, ChatMessage>,
    /// Our messages not yet acknowledged, in the order we sent them (kept across reconnects).
    pub pending: Vec<(MessageId, String)>,
    /// Where the others point.
    pub cursors: BTreeMap<u64, CursorPosition>,
    /// Invite tokens we created.
    pub invites: Vec<String>,
    /// Why we could not join, or the last refusal.
    pub problem: Option<(ErrorCode, String)>,
}

impl RoomModel {
    /// The connection (re)opened: join again; members and cursors will be resent.
    pub fn on_connected(&mut self) -> Vec<ClientMessage> {
        self.you = None;
        self.members.clear();
        self.cursors.clear();
        match &self.room {
            Some(room) => vec![ClientMessage::JoinRoom {
                room: room.clone(),
                invite: self.invite.clone(),
            }],
            None => Vec::new(),
        }
    }

    /// Queues a chat message of ours; returns what to send now.
    pub fn say(&mut self, id: MessageId, text: String) -> Vec<ClientMessage> {
        self.pending.push((id, text.clone()));
        if self.you.is_some() {
            vec![ClientMessage::Chat { id, text }]
        } else {
            Vec::new() // sent after (re)joining
        }
    }

    /// The highest seq below which nothing is missing.
    pub fn contiguous(&self) -> u64 {
        let first = self.chat.keys().next().copied().unwrap_or(1);
        let mut n = first.saturating_sub(1);
        while self.chat.contains_key(&(n + 1)) {
            n += 1;
        }
        n
    }

    /// Applies a room message; returns requests to send (backfill, resends). `false` in the
    /// second place means the message was not about rooms.
    pub fn handle(&mut self, message: &ServerMessage) -> (Vec<ClientMessage>, bool) {
        let mut out = Vec::new();
        match message {
            ServerMessage::RoomJoined(w) => {
                self.you = Some(w.you);
                self.config = Some(w.config.clone());
                self.members = w.members.iter().map(|m| (m.member, m.clone())).collect();
                let newest_before = self.chat.keys().next_back().copied().unwrap_or(0);
                self.absorb(&w.history);
                self.problem = None;
                // Whatever happened while we were away, then whatever we still owe.
                if newest_before > 0 {
                    out.push(ClientMessage::ChatBackfill {
                        since: newest_before,
                    });
                }
                out.extend(self.pending.iter().map(|(id, text)| ClientMessage::Chat {
                    id: *id,
                    text: text.clone(),
                }));
            }
            ServerMessage::MemberJoined(m) => {
                self.members.insert(m.member, m.clone());
            }
            ServerMessage::MemberLeft { member, .. } => {
                self.members.remove(member);
                self.cursors.remove(member);
            }
            ServerMessage::PresenceChanged { member, presence } => {
                if let Some(m) = self.members.get_mut(member) {
                    m.presence = *presence;
                }
            }
            ServerMessage::Chat(m) => {
                let gap = self
                    .chat
                    .keys()
                    .next_back()
                    .is_some_and(|last| m.seq > last + 1);
                self.absorb(std::slice::from_ref(m));
                if gap {
                    out.push(ClientMessage::ChatBackfill {
                        since: self.contiguous(),
                    });
                }
            }
            ServerMessage::ChatHistory { messages } => {
                self.absorb(messages);
                if messages.len() == MAX_BACKFILL {
                    out.push(ClientMessage::ChatBackfill {
                        since: self.contiguous(),
                    });
                }
            }
            ServerMessage::ChatAck { id, .. } => self.pending.retain(|(p, _)| p != id),
            ServerMessage::Cursors { cursors } => {
                for c in cursors {
                    match c.position {
                        Some(p) if Some(c.member) != self.you => {
                            self.cursors.insert(c.member, p);
                        }
                        _ => {
                            self.cursors.remove(&c.member);
                        }
                    }
                }
            }
            ServerMessage::InviteCreated { token } => self.invites.push(token.clone()),
            ServerMessage::InviteRevoked { token } => self.invites.retain(|t| t != token),
            ServerMessage::RoomConfigured(config) => self.config = Some(config.clone()),
            ServerMessage::Error { code, message } if is_room_error(*code) => {
                self.problem = Some((*code, message.clone()));
            }
            _ => return (out, false),
        }
        (out, true)
    }

    fn absorb(&mut self, messages: &[ChatMessage]) {
        for m in messages {
            self.pending.retain(|(p, _)| *p != m.id);
            self.chat.insert(m.seq, m.clone());
        }
        while self.chat.len() > 500 {
            self.chat.pop_first();
        }
    }

    /// Chat lines to show: the stored order, then our pending messages.
    pub fn lines(&self) -> Vec<ChatLine> {
        let colour_of = |client| multiverse_core::room::colour_of(client);
        let mut lines: Vec<ChatLine> = self
            .chat
            .values()
            .map(|m| ChatLine {
                seq: Some(m.seq),
                id: m.id,
                name: m.name.clone(),
                text: m.text.clone(),
                colour: colour_of(m.from),
            })
            .collect();
        let me = self.you.and_then(|y| self.members.get(&y));
        for (id, text) in &self.pending {
            let (name, colour) =
                me.map_or(("me".to_owned(), 0x98a2c8), |m| (m.name.clone(), m.colour));
            lines.push(ChatLine {
                seq: None,
                id: *id,
                name,
                text: text.clone(),
                colour,
            });
        }
        lines
    }

    /// Whether we own the room.
    pub fn is_owner(&self) -> bool {
        self.you
            .and_then(|y| self.members.get(&y))
            .is_some_and(|m| m.owner)
    }
}

fn is_room_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RoomFull
            | ErrorCode::InviteRequired
            | ErrorCode::NotInRoom
            | ErrorCode::NotOwner
            | ErrorCode::RateLimited
            | ErrorCode::InvalidRequest
    )
}

/// What the panels render, rebuilt after each room message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomSnapshot {
    /// Members, by membership id.
    pub members: Vec<MemberInfo>,
    /// Chat lines, oldest first.
    pub lines: Vec<ChatLine>,
    /// Our membership id.
    pub you: Option<u64>,
    /// Whether we own the room.
    pub owner: bool,
    /// Whether the room is private.
    pub private: bool,
    /// Invite tokens we created.
    pub invites: Vec<String>,
    /// Why we are not in, or the last refusal.
    pub problem: Option<String>,
    /// The others' cursors with their owner.
    pub cursors: Vec<(MemberInfo, CursorPosition)>,
}

impl RoomModel {
    /// The current state for the panels.
    pub fn snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            members: self.members.values().cloned().collect(),
            lines: self.lines(),
            you: self.you,
            owner: self.is_owner(),
            private: self
                .config
                .as_ref()
                .is_some_and(|c| c.access == multiverse_core::room::AccessPolicy::Private),
            invites: self.invites.clone(),
            problem: self.problem.as_ref().map(|(_, m)| m.clone()),
            cursors: self
                .cursors
                .iter()
                .filter_map(|(member, p)| Some((self.members.get(member)?.clone(), *p)))
                .collect(),
        }
    }
}
