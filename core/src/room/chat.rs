//! The chat log of a room: one total order by server sequence number, duplicates recognised by
//! the sender's message id, history for late joiners and backfill after reconnects.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::clock::Moment;
use crate::ids::{ClientId, MessageId};

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 500;
/// Messages a room keeps in memory for backfill (older ones stay in the store).
pub const CHAT_MEMORY: usize = 1000;
/// Messages sent to a member when it joins.
pub const HISTORY_ON_JOIN: usize = 50;
/// Most messages in one backfill answer.
pub const MAX_BACKFILL: usize = 200;

/// One chat message as everyone sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ChatMessage {
    /// Position in the room's total order, from 1.
    pub seq: u64,
    /// The sender's id for this message (a resend carries the same id).
    pub id: MessageId,
    /// Who sent it.
    pub from: ClientId,
    /// Their display name at the time.
    pub name: String,
    /// The text.
    pub text: String,
    /// Milliseconds since the Unix epoch when the peer accepted it (for display only; the order
    /// is `seq`).
    pub at_ms: u64,
}

/// The ordered, de-duplicated chat of one room.
#[derive(Debug, Default)]
pub struct ChatLog {
    next_seq: u64,
    recent: VecDeque<ChatMessage>,
    by_id: HashMap<MessageId, u64>,
}

impl ChatLog {
    /// A log continuing after `history` (loaded from the store, ordered by seq).
    pub fn restore(history: Vec<ChatMessage>) -> Self {
        let mut log = ChatLog::default();
        for m in history {
            log.next_seq = log.next_seq.max(m.seq);
            log.remember(m);
        }
        log
    }

    /// Sequence number of the newest message (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.next_seq
    }

    /// The seq already given to message `id`, if it was accepted before (a resend).
    pub fn seq_of(&self, id: MessageId) -> Option<u64> {
        self.by_id.get(&id).copied()
    }

    /// Accepts a new message, giving it the next sequence number.
    pub fn append(
        &mut self,
        id: MessageId,
        from: ClientId,
        name: String,
        text: String,
        at_ms: u64,
    ) -> ChatMessage {
        self.next_seq += 1;
        let message = ChatMessage {
            seq: self.next_seq,
            id,
            from,
            name,
            text,
            at_ms,
        };
        self.remember(message.clone());
        message
    }

    /// The newest `n` messages, oldest first.
    pub fn last(&self, n: usize) -> Vec<ChatMessage> {
        self.recent
            .iter()
            .skip(self.recent.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Messages after `since`, oldest first, at most [`MAX_BACKFILL`].
    pub fn since(&self, since: u64) -> Vec<ChatMessage> {
        self.recent
            .iter()
            .filter(|m| m.seq > since)
            .take(MAX_BACKFILL)
            .cloned()
            .collect()
    }

    fn remember(&mut self, message: ChatMessage) {
        self.by_id.insert(message.id, message.seq);
        self.recent.push_back(message);
        if self.recent.len() > CHAT_MEMORY {
            if let Some(old) = self.recent.pop_front() {
                self.by_id.remove(&old.id);
            }
        }
    }
}

/// A token bucket: `burst` messages at once, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct RateLimit {
    burst: f64,
    per_second: f64,
    tokens: f64,
    last: Moment,
}

impl RateLimit {
    /// A full bucket at `now`.
    pub fn new(burst: u32, per_second: f64, now: Moment) -> Self {
        RateLimit {
            burst: f64::from(burst),
            per_second,
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes a token if one is available.
    pub fn try_take(&mut self, now: Moment) -> bool {
        let elapsed = now.since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
