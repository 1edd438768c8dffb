//! One passage's lifecycle, on either end: handshake, heartbeats, health, reconnects, and the
//! owner's enforcement of what was granted.
//!
//! ```text
//!            open / reconnect                accept            missed heartbeat
//!  (opener) ─────────────────▶ Connecting ──────────▶ Connected ◀──────────────▶ Degraded
//!                                │   ▲  pending         ▲   health ≥ 0.75           │
//!                                │   │      ▼           │ approve                   │ 3 missed,
//!                                │   │  PendingApproval ┘                           │ link down
//!                                │   └──────────────────────────────────────────────┘
//!                                └─ reject / too many attempts ─▶ Error     close ─▶ Closed
//! ```
//!
//! Both ends send a heartbeat every [`HEARTBEAT_INTERVAL`] and answer the other's. Health
//! starts at 1.0, halves for every heartbeat not answered by the time the next is due, and
//! regains 0.25 (up to 1.0) for every answer: below [`DEGRADED_BELOW`] the passage is
//! *degraded*; after [`LOST_AFTER_MISSED`] unanswered heartbeats in a row it is lost. The
//! opener then reconnects — resends its `passage_open` — after delays from the crate's capped
//! backoff with jitter, and gives up after [`MAX_RECONNECT_ATTEMPTS`]; the owner just waits
//! for that `passage_open` (the driver gives it to [`Passage::handle_message`], which
//! re-accepts with the original grant).
//!
//! Drain [`Passage::poll_output`] after every call; every [`PassageOutput::Send`] goes to
//! the passage's remote peer.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::{Backoff, BackoffConfig};
use crate::clock::Moment;
use crate::ids::{PassageId, PeerId};
use crate::stream::{Interaction, InteractionMode, ViewMode};
use crate::wire::{PassageGrant, PassageRejectReason, PassageRequest, PeerMessage};

/// How often each end sends a heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Health below which a passage is degraded.
pub const DEGRADED_BELOW: f32 = 0.75;
/// Unanswered heartbeats in a row after which the passage is lost and reconnects.
pub const LOST_AFTER_MISSED: u32 = 3;
/// Reconnect attempts (unanswered `passage_open`s) before the opener gives up.
pub const MAX_RECONNECT_ATTEMPTS: u32 = 20;

/// Delays between reconnect attempts: 1 s doubling to 30 s, ±20 %.
pub const RECONNECT_BACKOFF: BackoffConfig = BackoffConfig {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(30),
    factor: 2,
    jitter: 0.2,
};

/// Where a passage is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassageState {
    /// Handshake (or reconnect) under way.
    Connecting,
    /// The owner has to approve the request.
    PendingApproval,
    /// Open and healthy.
    Connected,
    /// Open, but heartbeats go unanswered.
    Degraded,
    /// Refused, or unreachable for good; see [`Passage::error`]. Terminal.
    Error,
    /// Closed by either end. Terminal.
    Closed,
}

/// Which end of the passage this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassageRole {
    /// Asked for the passage; reconnects it.
    Opener,
    /// Owns the target universe; enforces the grant.
    Owner,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum PassageOutput {
    /// Send this to the remote peer.
    Send(PeerMessage),
    /// The state changed (show it; store it).
    State(PassageState),
}

/// Why the owner refused something a passage's visitor tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PassageError {
    /// The passage is not open.
    #[error("the passage is not open")]
    NotOpen,
    /// The grant does not allow it.
    #[error("not permitted through this passage: {0}")]
    NotPermitted(String),
}

/// One end of one passage. See the module docs.
#[derive(Debug)]
pub struct Passage {
    role: PassageRole,
    request: PassageRequest,
    remote: PeerId,
    grant: Option<PassageGrant>,
    state: PassageState,
    error: Option<String>,
    health: f32,
    missed: u32,
    heartbeat_seq: u64,
    outstanding: Option<u64>,
    next_heartbeat: Option<Moment>,
    reconnect_at: Option<Moment>,
    backoff: Backoff,
    out: VecDeque<PassageOutput>,
}

impl Passage {
    fn new(role: PassageRole, request: PassageRequest, remote: PeerId, seed: u64) -> Self {
        Passage {
            role,
            request,
            remote,
            grant: None,
            state: PassageState::Connecting,
            error: None,
            health: 0.0,
            missed: 0,
            heartbeat_seq: 0,
            outstanding: None,
            next_heartbeat: None,
            reconnect_at: None,
            backoff: Backoff::new(RECONNECT_BACKOFF, seed),
            out: VecDeque::new(),
        }
    }

    /// The opener's end: sends `passage_open` now. `seed` seeds the reconnect jitter.
    pub fn open(request: PassageRequest, remote: PeerId, now: Moment, seed: u64) -> Self {
        let mut p = Passage::new(PassageRole::Opener, request, remote, seed);
        p.send_open(now);
        p
    }

    /// The owner's end of an admitted request ([`super::Admission::Accept`]).
    pub fn accepted(
        request: PassageRequest,
        remote: PeerId,
        grant: PassageGrant,
        now: Moment,
        seed: u64,
    ) -> Self {
        let mut p = Passage::new(PassageRole::Owner, request, remote, seed);
        p.accept(grant, now);
        p
    }

    /// The owner's end of a request awaiting approval ([`super::Admission::Pending`]).
    pub fn pending(request: PassageRequest, remote: PeerId, seed: u64) -> Self {
        let mut p = Passage::new(PassageRole::Owner, request, remote, seed);
        let passage = p.id();
        p.set_state(PassageState::PendingApproval);
        p.send(PeerMessage::PassagePending { passage });
        p
    }

    /// The passage's id.
    pub fn id(&self) -> PassageId {
        self.request.passage
    }

    /// Which end this is.
    pub fn role(&self) -> PassageRole {
        self.role
    }

    /// The remote peer.
    pub fn remote(&self) -> PeerId {
        self.remote
    }

    /// What was asked for.
    pub fn request(&self) -> &PassageRequest {
        &self.request
    }

    /// What was granted, once accepted.
    pub fn grant(&self) -> Option<&PassageGrant> {
        self.grant.as_ref()
    }

    /// Where the passage is in its life.
    pub fn state(&self) -> PassageState {
        self.state
    }

    /// Why the passage is in [`PassageState::Error`].
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// 0.0 (lost) ..= 1.0 (every heartbeat answered).
    pub fn health(&self) -> f32 {
        self.health
    }

    /// Whether entities and views may pass now.
    pub fn is_open(&self) -> bool {
        matches!(self.state, PassageState::Connected | PassageState::Degraded)
    }

    /// The owner approves a pending request.
    pub fn approve(&mut self, grant: PassageGrant, now: Moment) {
        if self.role == PassageRole::Owner && self.state == PassageState::PendingApproval {
            self.accept(grant, now);
        }
    }

    /// The owner declines a pending request.
    pub fn deny(&mut self, message: &str) {
        if self.role == PassageRole::Owner && self.state == PassageState::PendingApproval {
            self.send(PeerMessage::PassageReject {
                passage: self.id(),
                reason: PassageRejectReason::Denied,
                message: message.to_owned(),
            });
            self.fail(message);
        }
    }

    /// Closes the passage for good and tells the remote end.
    pub fn close(&mut self, reason: &str) {
        if !self.is_terminal() {
            self.send(PeerMessage::PassageClose {
                passage: self.id(),
                reason: reason.to_owned(),
            });
            self.set_state(PassageState::Closed);
        }
    }

    /// The link to the remote peer dropped: the opener reconnects after a backoff delay,
    /// the owner waits for the opener.
    pub fn handle_link_down(&mut self, now: Moment) {
        let waiting =
            self.role == PassageRole::Opener && self.state == PassageState::PendingApproval;
        if self.is_open() || self.state == PassageState::Connecting || waiting {
            self.lose(now);
        }
    }

    /// The link to the remote peer is back: the opener reconnects at once.
    pub fn handle_link_up(&mut self, now: Moment) {
        if self.role == PassageRole::Opener && self.state == PassageState::Connecting {
            self.send_open(now);
        }
    }

    /// A message for this passage from its remote peer.
    pub fn handle_message(&mut self, message: &PeerMessage, now: Moment) {
        if self.is_terminal() {
            return;
        }
        match message {
            PeerMessage::PassageAccept(grant) if self.role == PassageRole::Opener => {
                self.accept((**grant).clone(), now);
            }
            PeerMessage::PassagePending { .. } if self.role == PassageRole::Opener => {
                self.reconnect_at = None;
                self.set_state(PassageState::PendingApproval);
            }
            PeerMessage::PassageReject { message, .. } => self.fail(message),
            PeerMessage::PassageClose { .. } => self.set_state(PassageState::Closed),
            PeerMessage::PassageOpen(_) if self.role == PassageRole::Owner => {
                // The opener reconnects (or repeats itself): same passage, same answer.
                if self.state == PassageState::PendingApproval {
                    let passage = self.id();
                    self.send(PeerMessage::PassagePending { passage });
                } else if let Some(grant) = self.grant.clone() {
                    self.accept(grant, now);
                }
            }
            PeerMessage::Heartbeat { seq, .. } => {
                let (passage, seq) = (self.id(), *seq);
                self.send(PeerMessage::HeartbeatAck { passage, seq });
            }
            PeerMessage::HeartbeatAck { seq, .. } if self.outstanding == Some(*seq) => {
                self.outstanding = None;
                self.missed = 0;
                self.health = (self.health + 0.25).min(1.0);
                self.update_health_state();
            }
            _ => {}
        }
    }

    /// Time passed: heartbeats, health, reconnects.
    pub fn handle_timeout(&mut self, now: Moment) {
        if self.reconnect_at.is_some_and(|t| now >= t) {
            self.reconnect_at = None;
            if self.backoff.attempt() >= MAX_RECONNECT_ATTEMPTS {
                let message = format!("no answer after {MAX_RECONNECT_ATTEMPTS} attempts");
                self.fail(&message);
                return;
            }
            self.send_open(now);
        }
        if self.is_open() && self.next_heartbeat.is_some_and(|t| now >= t) {
            if self.outstanding.is_some() {
                self.missed += 1;
                self.health *= 0.5;
                if self.missed >= LOST_AFTER_MISSED {
                    self.lose(now);
                    return;
                }
                self.update_health_state();
            }
            self.heartbeat_seq += 1;
            self.outstanding = Some(self.heartbeat_seq);
            let (passage, seq) = (self.id(), self.heartbeat_seq);
            self.send(PeerMessage::Heartbeat { passage, seq });
            self.next_heartbeat = Some(now.plus(HEARTBEAT_INTERVAL));
        }
    }

    /// When [`Passage::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Moment> {
        let heartbeat = self.next_heartbeat.filter(|_| self.is_open());
        match (heartbeat, self.reconnect_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<PassageOutput> {
        self.out.pop_front()
    }

    /// Owner's side: the view a visitor through this passage may have now.
    pub fn allowed_view(&self) -> Option<ViewMode> {
        self.grant.as_ref().filter(|_| self.is_open())?.view
    }

    /// Owner's side: checks that a visitor through this passage may perform `interaction`.
    pub fn authorize(&self, interaction: &Interaction) -> Result<(), PassageError> {
        let grant = self
            .grant
            .as_ref()
            .filter(|_| self.is_open())
            .ok_or(PassageError::NotOpen)?;
        let needed = interaction.required_mode();
        if grant.view != Some(ViewMode::Participate) || grant.interaction < needed {
            return Err(PassageError::NotPermitted(format!(
                "granted {:?} with {:?}; {needed:?} is needed",
                grant.view, grant.interaction
            )));
        }
        Ok(())
    }

    /// Whether entities may cross now: the passage is open and grants at least full
    /// interaction.
    pub fn allows_transfers(&self) -> bool {
        self.is_open()
            && self
                .grant
                .as_ref()
                .is_some_and(|g| g.interaction >= InteractionMode::Full)
    }

    fn is_terminal(&self) -> bool {
        matches!(self.state, PassageState::Error | PassageState::Closed)
    }

    fn accept(&mut self, grant: PassageGrant, now: Moment) {
        if self.role == PassageRole::Owner {
            self.send(PeerMessage::PassageAccept(Box::new(grant.clone())));
        }
        self.grant = Some(grant);
        self.health = 1.0;
        self.missed = 0;
        self.outstanding = None;
        self.reconnect_at = None;
        self.backoff.reset();
        self.next_heartbeat = Some(now.plus(HEARTBEAT_INTERVAL));
        self.set_state(PassageState::Connected);
    }

    fn lose(&mut self, now: Moment) {
        self.health = 0.0;
        self.missed = 0;
        self.outstanding = None;
        self.next_heartbeat = None;
        if self.role == PassageRole::Opener {
            self.reconnect_at = Some(now.plus(self.backoff.next_delay()));
        }
        self.set_state(PassageState::Connecting);
    }

    fn send_open(&mut self, now: Moment) {
        self.send(PeerMessage::PassageOpen(Box::new(self.request.clone())));
        self.reconnect_at = Some(now.plus(self.backoff.next_delay()));
        self.set_state(PassageState::Connecting);
    }

    fn fail(&mut self, message: &str) {
        self.error = Some(message.to_owned());
        self.reconnect_at = None;
        self.next_heartbeat = None;
        self.health = 0.0;
        self.set_state(PassageState::Error);
    }

    fn update_health_state(&mut self) {
        let state = if self.health >= DEGRADED_BELOW {
            PassageState::Connected
        } else {
            PassageState::Degraded
        };
        self.set_state(state);
    }

    fn set_state(&mut self, state: PassageState) {
        if self.state != state {
            self.state = state;
            self.out.push_back(PassageOutput::State(state));
        }
    }

    fn send(&mut self, message: PeerMessage) {
        self.out.push_back(PassageOutput::Send(message));
    }
}
