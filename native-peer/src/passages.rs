//! Passages between a universe here and one on a linked peer: one task drives every core
//! [`Passage`] (handshake, heartbeats, health, reconnects) and stores each in the store so
//! they come back after a restart. The owner's side admits requests with the universe's
//! [`PassagePolicy`] (access, password / allow-list / approval, compatibility score).
//! Which passage an entity may cross through, on either side of a transfer, is decided in
//! `passages/crossing.rs` ([`transfer_passage`], [`admit_arrival`], re-exported here).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use multiverse_core::federation::{
    Admission, Passage, PassageOutput, PassagePolicy, PassageRole, PassageState,
};
use multiverse_core::ids::{PassageId, PeerId, UniverseId};
use multiverse_core::stream::{InteractionMode, ViewMode};
use multiverse_core::wire::{PassageGrant, PassageRejectReason, PassageRequest, PeerMessage};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;
use crate::Shared;

mod crossing;

pub use crossing::{admit_arrival, reconnecting, transfer_passage, CrossingError};

/// What `/api/passages` shows of a passage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PassageView {
    /// The passage.
    pub id: PassageId,
    /// This end's role.
    pub role: PassageRole,
    /// The peer at the other end.
    pub remote: PeerId,
    /// The opener's universe.
    pub from_universe: UniverseId,
    /// The owner's universe.
    pub to_universe: UniverseId,
    /// Where it is in its life.
    pub state: PassageState,
    /// 0–1, from heartbeats.
    pub health: f32,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// What the owner granted.
    pub grant: Option<PassageGrant>,
}

/// A stored passage: enough to bring it back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PassageRecord {
    /// The request (its password removed).
    pub request: PassageRequest,
    /// The other peer.
    pub remote: PeerId,
    /// This end's role.
    pub role: PassageRole,
    /// The grant, once open.
    pub grant: Option<PassageGrant>,
    /// The last state.
    pub state: PassageState,
}

/// Requests to the passages task.
#[derive(Debug)]
pub enum PassageCommand {
    /// Open a passage (opener side).
    Open(Box<PassageRequest>, PeerId, oneshot::Sender<PassageId>),
    /// A passage message from a linked peer.
    Message(PeerId, PeerMessage),
    /// A link came up.
    LinkUp(PeerId),
    /// A link went down.
    LinkDown(PeerId),
    /// The owner approves (`true`) or declines a passage waiting for approval.
    Decide(PassageId, bool, oneshot::Sender<Result<(), String>>),
    /// Close a passage.
    Close(PassageId, oneshot::Sender<bool>),
}

/// Every passage as last published, shared with the hosts (which refuse arrivals through a
/// passage that is not open).
pub type PassageTable = Arc<Mutex<BTreeMap<PassageId, PassageView>>>;

/// Whether `interaction` in `universe` is within what passage `passage` (from `peer`)
/// grants; the reason when not.
pub fn authorize(
    table: &PassageTable,
    passage: PassageId,
    peer: PeerId,
    universe: UniverseId,
    interaction: &multiverse_core::stream::Interaction,
) -> Result<(), String> {
    let table = table.lock().expect("passages lock");
    let p = table
        .get(&passage)
        .filter(|p| p.remote == peer && p.to_universe == universe)
        .ok_or("no such passage into that universe")?;
    if !matches!(p.state, PassageState::Connected | PassageState::Degraded) {
        return Err("the passage is not open".into());
    }
    let grant = p.grant.as_ref().ok_or("the passage has no grant")?;
    let needed = interaction.required_mode();
    if grant.view != Some(ViewMode::Participate) || grant.interaction < needed {
        return Err(format!(
            "the passage grants {:?} with {:?}; {needed:?} is needed",
            grant.view, grant.interaction
        ));
    }
    Ok(())
}

/// The opener's open passage into remote `universe` that grants `interaction`, if any.
pub fn passage_for(
    table: &PassageTable,
    universe: UniverseId,
    interaction: &multiverse_core::stream::Interaction,
) -> Result<(PassageId, PeerId), String> {
    let table = table.lock().expect("passages lock");
    let needed = interaction.required_mode();
    let mut reason =
        "open a passage into that universe (view: participate) to act in it".to_owned();
    for p in table
        .values()
        .filter(|p| p.role == PassageRole::Opener && p.to_universe == universe)
    {
        let open = matches!(p.state, PassageState::Connected | PassageState::Degraded);
        match &p.grant {
            Some(g) if open && g.view == Some(ViewMode::Participate) && g.interaction >= needed => {
                return Ok((p.id, p.remote));
            }
            Some(g) if open => {
                reason = format!(
                    "the passage grants {:?} with {:?}; {needed:?} is needed",
                    g.view, g.interaction
                );
            }
            _ => {}
        }
    }
    Err(reason)
}

/// The handle the rest of the peer uses.
#[derive(Debug)]
pub struct Passages {
    /// Requests to the task.
    pub commands: mpsc::Sender<PassageCommand>,
    views: PassageTable,
    policies: Mutex<HashMap<UniverseId, PassagePolicy>>,
}

impl Passages {
    /// The table hosts check arrivals against.
    pub fn table(&self) -> PassageTable {
        self.views.clone()
    }

    /// Every passage as last published.
    pub fn list(&self) -> Vec<PassageView> {
        self.views
            .lock()
            .expect("passages lock")
            .values()
            .cloned()
            .collect()
    }

    /// The owner's policy for passages into `universe` (the default: shared, no password).
    pub fn policy(&self, universe: UniverseId) -> PassagePolicy {
        self.policies
            .lock()
            .expect("policies lock")
            .get(&universe)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the policy for `universe`.
    pub fn set_policy(&self, universe: UniverseId, policy: PassagePolicy) {
        self.policies
            .lock()
            .expect("policies lock")
            .insert(universe, policy);
    }

    /// Whether an open passage connects these two universes (either direction).
    pub fn is_open_between(&self, a: UniverseId, b: UniverseId) -> bool {
        self.views.lock().expect("passages lock").values().any(|p| {
            matches!(p.state, PassageState::Connected | PassageState::Degraded)
                && ((p.from_universe == a && p.to_universe == b)
                    || (p.from_universe == b && p.to_universe == a))
        })
    }
}

/// Creates the handle and the receiver the task runs on.
pub fn channel() -> (Passages, mpsc::Receiver<PassageCommand>) {
    let (commands, rx) = mpsc::channel(1024);
    (
        Passages {
            commands,
            views: Arc::default(),
            policies: Mutex::default(),
        },
        rx,
    )
}

fn view_of(p: &Passage) -> PassageView {
    PassageView {
        id: p.id(),
        role: p.role(),
        remote: p.remote(),
        from_universe: p.request().from_universe,
        to_universe: p.request().to_universe,
        state: p.state(),
        health: p.health(),
        error: p.error().map(str::to_owned),
        grant: p.grant().cloned(),
    }
}

fn record_of(p: &Passage) -> PassageRecord {
    let mut request = p.request().clone();
    request.password = None;
    PassageRecord {
        request,
        remote: p.remote(),
        role: p.role(),
        grant: p.grant().cloned(),
        state: p.state(),
    }
}

/// Runs every passage until shutdown.
pub async fn run(shared: Arc<Shared>, mut commands: mpsc::Receiver<PassageCommand>) {
    let clock = shared.clock;
    let mut passages: BTreeMap<PassageId, Passage> = BTreeMap::new();
    match shared.store.passages() {
        Ok(records) => {
            for r in records
                .into_iter()
                .filter(|r| !matches!(r.state, PassageState::Closed | PassageState::Error))
            {
                let seed = r.request.passage.as_u128() as u64;
                let now = clock.now();
                let p = match (r.role, r.grant) {
                    (PassageRole::Owner, Some(grant)) => {
                        Passage::accepted(r.request, r.remote, grant, now, seed)
                    }
                    (PassageRole::Owner, None) => Passage::pending(r.request, r.remote, seed),
                    (PassageRole::Opener, _) => Passage::open(r.request, r.remote, now, seed),
                };
                passages.insert(p.id(), p);
            }
        }
        Err(e) => tracing::error!("cannot load passages: {e}"),
    }
    loop {
        for p in passages.values_mut() {
            drain(&shared, p).await;
        }
        publish(&shared, &passages);
        let next = passages
            .values()
            .filter_map(Passage::poll_timeout)
            .min()
            .map(|t| clock.instant(t));
        let command = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = crate::clock::sleep_until(next) => {
                let now = clock.now();
                for p in passages.values_mut() {
                    if p.poll_timeout().is_some_and(|t| t <= now) {
                        p.handle_timeout(now);
                    }
                }
                continue;
            }
            c = commands.recv() => match c { Some(c) => c, None => return },
        };
        let now = clock.now();
        match command {
            PassageCommand::Open(request, remote, reply) => {
                let p = Passage::open(*request, remote, now, now.as_millis());
                let _ = reply.send(p.id());
                passages.insert(p.id(), p);
            }
            PassageCommand::Message(from, message) => {
                let Some(id) = passage_of(&message) else {
                    continue;
                };
                match passages.get_mut(&id) {
                    Some(p) if p.remote() == from => p.handle_message(&message, now),
                    Some(_) => {
                        tracing::warn!(%from, passage = %id, "a peer spoke for a passage it is not part of")
                    }
                    None => {
                        if let PeerMessage::PassageOpen(request) = &message {
                            if let Some(p) = admit(&shared, from, request).await {
                                passages.insert(p.id(), p);
                            }
                        } else if !matches!(
                            message,
                            PeerMessage::HeartbeatAck { .. } | PeerMessage::PassageClose { .. }
                        ) {
                            let close = PeerMessage::PassageClose {
                                passage: id,
                                reason: "unknown passage".into(),
                            };
                            shared.federation.send(from, close);
                        }
                    }
                }
            }
            PassageCommand::LinkUp(peer) => passages
                .values_mut()
                .filter(|p| p.remote() == peer)
                .for_each(|p| p.handle_link_up(now)),
            PassageCommand::LinkDown(peer) => passages
                .values_mut()
                .filter(|p| p.remote() == peer)
                .for_each(|p| p.handle_link_down(now)),
            PassageCommand::Close(id, reply) => {
                let found = passages
                    .get_mut(&id)
                    .map(|p| p.close("closed by its owner here"))
                    .is_some();
                let _ = reply.send(found);
            }
            PassageCommand::Decide(id, approve, reply) => {
                let answer = decide(&shared, passages.get_mut(&id), approve).await;
                let _ = reply.send(answer);
            }
        }
    }
}

/// Approves or declines a passage waiting for this (owner) peer's approval. The grant is
/// worked out again from the policy, so an approval after a restart grants the same.
async fn decide(
    shared: &Arc<Shared>,
    passage: Option<&mut Passage>,
    approve: bool,
) -> Result<(), String> {
    let p = passage.ok_or("no such passage")?;
    if p.role() != PassageRole::Owner || p.state() != PassageState::PendingApproval {
        return Err("that passage is not waiting for this peer's approval".into());
    }
    if !approve {
        p.deny("the owner declined");
        return Ok(());
    }
    let request = p.request().clone();
    let local = crate::federation::config_of(shared, request.to_universe).await;
    match shared
        .passages
        .policy(request.to_universe)
        .evaluate(p.remote(), &request, local.as_ref())
    {
        Admission::Pending(grant) | Admission::Accept(grant) => {
            p.approve(grant, shared.clock.now());
            Ok(())
        }
        Admission::Reject { message, .. } => {
            p.deny(&message);
            Err(format!(
                "the request no longer passes the policy: {message}"
            ))
        }
    }
}

async fn admit(shared: &Arc<Shared>, from: PeerId, request: &PassageRequest) -> Option<Passage> {
    let universe = request.to_universe;
    let local = if shared.universes.get(universe).is_some() {
        crate::federation::config_of(shared, universe).await
    } else {
        None
    };
    let policy = shared.passages.policy(universe);
    let seed = request.passage.as_u128() as u64;
    match policy.evaluate(from, request, local.as_ref()) {
        Admission::Accept(grant) => {
            tracing::info!(%from, passage = %request.passage, score = grant.score, "passage accepted");
            Some(Passage::accepted(
                request.clone(),
                from,
                grant,
                shared.clock.now(),
                seed,
            ))
        }
        Admission::Pending(_) => Some(Passage::pending(request.clone(), from, seed)),
        Admission::Reject { reason, message } => {
            tracing::info!(%from, passage = %request.passage, ?reason, "passage refused: {message}");
            let reject = PeerMessage::PassageReject {
                passage: request.passage,
                reason,
                message,
            };
            shared.federation.send(from, reject);
            None
        }
    }
}

fn passage_of(message: &PeerMessage) -> Option<PassageId> {
    Some(match message {
        PeerMessage::PassageOpen(r) => r.passage,
        PeerMessage::PassagePending { passage }
        | PeerMessage::PassageReject { passage, .. }
        | PeerMessage::PassageClose { passage, .. }
        | PeerMessage::Heartbeat { passage, .. }
        | PeerMessage::HeartbeatAck { passage, .. } => *passage,
        PeerMessage::PassageAccept(g) => g.passage,
        _ => return None,
    })
}

async fn drain(shared: &Arc<Shared>, p: &mut Passage) {
    let mut changed = false;
    while let Some(output) = p.poll_output() {
        match output {
            PassageOutput::Send(message) => {
                // A message that cannot go now is resent by the passage (reconnect/heartbeat).
                let _ = shared.federation.send(p.remote(), message);
            }
            PassageOutput::State(state) => {
                tracing::info!(passage = %p.id(), ?state, "passage state");
                changed = true;
            }
        }
    }
    if changed {
        let (store, record) = (shared.store.clone(), record_of(p));
        let stored = tokio::task::spawn_blocking(move || store.put_passage(&record))
            .await
            .map_err(|e| StoreError::Storage(e.to_string()))
            .and_then(|r| r);
        if let Err(e) = stored {
            tracing::error!(passage = %p.id(), "cannot store the passage: {e}");
        }
    }
}

fn publish(shared: &Shared, passages: &BTreeMap<PassageId, Passage>) {
    let views: BTreeMap<PassageId, PassageView> =
        passages.iter().map(|(id, p)| (*id, view_of(p))).collect();
    *shared.passages.views.lock().expect("passages lock") = views;
}

/// The request for a new passage from `from_universe` here to `to_universe` on `remote`.
pub fn request(
    from_config: multiverse_core::universe::UniverseConfig,
    to_universe: UniverseId,
    view: Option<ViewMode>,
    interaction: InteractionMode,
    sync_hz: u32,
    password: Option<String>,
) -> PassageRequest {
    PassageRequest {
        passage: PassageId::from_u128(uuid::Uuid::new_v4().as_u128()),
        from_universe: from_config.id,
        from_config,
        to_universe,
        view,
        interaction,
        sync_hz,
        password,
    }
}

/// Rejections a caller may want to show (re-exported for the API).
pub type RejectReason = PassageRejectReason;
