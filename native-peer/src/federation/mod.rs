//! Links between peers (federation): dialled with `--peer ws://host:port` or from the API,
//! accepted at `/peer`. A link says hello (protocol version, peer id, name), lists the
//! universes each side offers, keeps itself alive with heartbeats, and carries transfer
//! messages between universes' engines. Dialled links reconnect with capped backoff.
//!
//! The router takes [`Envelope`]s from hosts: to a universe hosted here they go straight to
//! its host; to a remote one, over the link of the peer that hosts it (learned from its
//! universe list, or from the messages that universe sent us).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use multiverse_core::backoff::{Backoff, BackoffConfig};
use multiverse_core::ids::{PassageId, PeerId, UniverseId};
use multiverse_core::universe::UniverseInfo;
use multiverse_core::wire::{
    Codec, Encoding, ErrorCode, Frame, PeerHello, PeerMessage, MAX_SERVER_FRAME_BYTES,
    PROTOCOL_VERSION,
};
use serde::Serialize;
use tokio::sync::mpsc;

mod dispatch;
mod wire;

pub use dispatch::config_of;
use dispatch::handle;

pub use wire::{axum_wire, client_wire, Wire};

use crate::host::{Envelope, HostCommand};
use crate::passages::PassageCommand;
use crate::Shared;

/// The passage id of the link's own heartbeats (passages use their own ids).
pub const LINK: PassageId = PassageId::from_u128(0);
/// How often a link sends a heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// A link that hears nothing for this long is considered lost.
pub const LOST_AFTER: Duration = Duration::from_secs(7);
/// How long the other side has to say hello.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages queued per link before the router drops (the engines resend).
pub const LINK_QUEUE: usize = 4096;
/// Reconnect delays of dialled links.
pub const REDIAL: BackoffConfig = BackoffConfig {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(10),
    factor: 2,
    jitter: 0.2,
};

/// Which side opened a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We dialled it.
    Outbound,
    /// It dialled us.
    Inbound,
}

/// A live link, as `/api/peers` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LinkInfo {
    /// The other peer.
    pub peer_id: PeerId,
    /// Its name.
    pub name: String,
    /// Who dialled.
    pub direction: Direction,
    /// The address dialled (outbound links).
    pub address: Option<String>,
    /// The universes it lists.
    pub universes: Vec<UniverseInfo>,
}

/// A dialled address and how it is doing.
#[derive(Debug, Clone, Serialize)]
pub struct DialStatus {
    /// `ws://host:port/peer`.
    pub address: String,
    /// `connecting`, `connected` or `retrying`.
    pub state: &'static str,
    /// The peer at the other end, once known.
    pub peer_id: Option<PeerId>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

struct Link {
    tx: mpsc::Sender<PeerMessage>,
    info: LinkInfo,
    generation: u64,
}

/// Every link of this peer and the routes to remote universes.
#[derive(Default)]
pub struct Federation {
    links: Mutex<BTreeMap<PeerId, Link>>,
    routes: Mutex<HashMap<UniverseId, PeerId>>,
    dials: Mutex<BTreeMap<String, DialStatus>>,
    generation: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("links", &self.links.lock().map(|l| l.len()).unwrap_or(0))
            .finish()
    }
}

impl Federation {
    /// Live links.
    pub fn links(&self) -> Vec<LinkInfo> {
        let links = self.links.lock().expect("links lock");
        links.values().map(|l| l.info.clone()).collect()
    }

    /// Dialled addresses.
    pub fn dials(&self) -> Vec<DialStatus> {
        let dials = self.dials.lock().expect("dials lock");
        dials.values().cloned().collect()
    }

    /// The peer hosting a remote universe, if known.
    pub fn route(&self, universe: UniverseId) -> Option<PeerId> {
        self.routes
            .lock()
            .expect("routes lock")
            .get(&universe)
            .copied()
    }

    fn learn_route(&self, universe: UniverseId, peer: PeerId) {
        self.routes
            .lock()
            .expect("routes lock")
            .insert(universe, peer);
    }

    fn set_dial(
        &self,
        address: &str,
        state: &'static str,
        peer_id: Option<PeerId>,
        error: Option<String>,
    ) {
        let mut dials = self.dials.lock().expect("dials lock");
        let entry = dials
            .entry(address.to_owned())
            .or_insert_with(|| DialStatus {
                address: address.to_owned(),
                state,
                peer_id: None,
                last_error: None,
            });
        entry.state = state;
        if peer_id.is_some() {
            entry.peer_id = peer_id;
        }
        if error.is_some() {
            entry.last_error = error;
        }
    }

    /// Queues a message on the link to `peer`; false when there is no link or it is full.
    pub fn send(&self, peer: PeerId, message: PeerMessage) -> bool {
        let links = self.links.lock().expect("links lock");
        links
            .get(&peer)
            .is_some_and(|l| l.tx.try_send(message).is_ok())
    }
}

/// Normalises a peer address: `host:port`, `http://…` or `ws://…` become `ws://host:port/peer`.
pub fn peer_address(input: &str) -> Result<String, String> {
    let trimmed = input.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("ws://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed);
    let host = rest.strip_suffix("/peer").unwrap_or(rest);
    if host.is_empty()
        || host.contains('/')
        || host.contains(char::is_whitespace)
        || !host.contains(':')
    {
        return Err(format!(
            "{input:?} is not a peer address; use ws://host:port"
        ));
    }
    if trimmed.starts_with("wss://") || trimmed.starts_with("https://") {
        return Err("TLS links are not supported on a LAN peer; use ws://".into());
    }
    Ok(format!("ws://{host}/peer"))
}

fn codec() -> Codec {
    Codec::new(Encoding::Binary, MAX_SERVER_FRAME_BYTES)
}

fn encode(message: &PeerMessage) -> Vec<u8> {
    match codec().encode(message) {
        Frame::Binary(b) => b,
        Frame::Text(t) => t.into_bytes(),
    }
}

/// Delivers envelopes from hosts: locally, or over the link to the universe's peer.
pub async fn run_router(shared: Arc<Shared>, mut envelopes: mpsc::Receiver<Envelope>) {
    loop {
        let envelope = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            e = envelopes.recv() => match e { Some(e) => e, None => return },
        };
        deliver(&shared, envelope).await;
    }
}

async fn deliver(shared: &Shared, envelope: Envelope) {
    if let Some(host) = shared.universes.get(envelope.to) {
        let _ = host
            .commands
            .send(HostCommand::Transfer(Box::new(envelope)))
            .await;
        return;
    }
    let Some(peer) = shared.federation.route(envelope.to) else {
        tracing::debug!(to = %envelope.to, "no route to universe; the engine will resend");
        return;
    };
    let routed = PeerMessage::routed(envelope.from, envelope.to, &envelope.message);
    if !shared.federation.send(peer, routed) {
        tracing::debug!(%peer, "link down or full; the engine will resend");
    }
}

/// Dials `address` until the peer shuts down, running the link whenever it is up.
pub async fn dial(shared: Arc<Shared>, address: String) {
    let seed = shared.identity.peer_id.as_u128() as u64;
    let mut backoff = Backoff::new(REDIAL, seed ^ address.len() as u64);
    loop {
        shared
            .federation
            .set_dial(&address, "connecting", None, None);
        let attempt = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            tokio_tungstenite::connect_async_with_config(address.as_str(), None, true),
        );
        let result = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = attempt => r,
        };
        let error = match result {
            Ok(Ok((socket, _))) => {
                match run_link(
                    &shared,
                    client_wire(socket),
                    Direction::Outbound,
                    Some(&address),
                )
                .await
                {
                    LinkEnd::Closed(reason) => {
                        // The link was up: the next outage starts from the shortest delay.
                        backoff.reset();
                        reason
                    }
                    LinkEnd::Refused(reason) => reason,
                }
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 5 s".to_owned(),
        };
        if shared.shutdown.is_cancelled() {
            return;
        }
        let delay = backoff.next_delay();
        tracing::info!(%address, "peer link down ({error}); retrying in {delay:?}");
        shared
            .federation
            .set_dial(&address, "retrying", None, Some(error));
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// How a link ended.
#[derive(Debug)]
pub enum LinkEnd {
    /// The handshake failed; why.
    Refused(String),
    /// The link was up, then ended; why.
    Closed(String),
}

/// Runs one link until it closes.
pub async fn run_link(
    shared: &Arc<Shared>,
    wire: Wire,
    direction: Direction,
    address: Option<&str>,
) -> LinkEnd {
    match link(shared, wire, direction, address).await {
        Ok(Ok(())) => LinkEnd::Closed("the link closed".into()),
        Ok(Err(reason)) => LinkEnd::Closed(reason),
        Err(reason) => LinkEnd::Refused(reason),
    }
}

/// The handshake (errors: `Err`), then the link (`Ok` of how it ended).
async fn link(
    shared: &Arc<Shared>,
    mut wire: Wire,
    direction: Direction,
    address: Option<&str>,
) -> Result<Result<(), String>, String> {
    let me = PeerHello {
        protocol_version: PROTOCOL_VERSION,
        peer_id: shared.identity.peer_id,
        peer_name: shared.identity.peer_name.clone(),
    };
    if direction == Direction::Outbound {
        let _ = wire
            .outgoing
            .send(encode(&PeerMessage::Hello(me.clone())))
            .await;
    }
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, wire.incoming.recv())
        .await
        .map_err(|_| "no hello within 5 s".to_owned())?
        .ok_or("closed during the handshake")?;
    let them = match (direction, codec().decode::<PeerMessage>(&first)) {
        (Direction::Inbound, Ok(PeerMessage::Hello(h)))
        | (Direction::Outbound, Ok(PeerMessage::Welcome(h))) => h,
        (_, Ok(PeerMessage::Error { message, .. })) => return Err(format!("refused: {message}")),
        (_, Ok(other)) => return Err(format!("expected a hello, got {other:?}")),
        (_, Err(e)) => return Err(format!("undecodable handshake: {e}")),
    };
    if them.protocol_version != PROTOCOL_VERSION {
        let m = format!(
            "protocol version {} is not {PROTOCOL_VERSION}",
            them.protocol_version
        );
        tracing::warn!(peer = %them.peer_id, "refusing a peer link: {m}");
        return refuse(&wire.outgoing, ErrorCode::VersionMismatch, m).await;
    }
    if them.peer_id == me.peer_id {
        return refuse(
            &wire.outgoing,
            ErrorCode::UnexpectedMessage,
            "that is this peer itself".into(),
        )
        .await;
    }
    if direction == Direction::Inbound {
        let _ = wire.outgoing.send(encode(&PeerMessage::Welcome(me))).await;
    }
    let (tx, mut queue) = mpsc::channel(LINK_QUEUE);
    let generation = shared
        .federation
        .generation
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let peer = them.peer_id;
    shared.federation.links.lock().expect("links lock").insert(
        peer,
        Link {
            tx: tx.clone(),
            info: LinkInfo {
                peer_id: peer,
                name: them.peer_name.clone(),
                direction,
                address: address.map(str::to_owned),
                universes: Vec::new(),
            },
            generation,
        },
    );
    if let Some(a) = address {
        shared.federation.set_dial(a, "connected", Some(peer), None);
    }
    tracing::info!(%peer, name = %them.peer_name, ?direction, "peer link up");
    let _ = tx.try_send(PeerMessage::ListUniverses);
    let _ = shared
        .passages
        .commands
        .send(PassageCommand::LinkUp(peer))
        .await;
    let result = link_loop(shared, peer, &mut wire, &mut queue).await;
    let ours = {
        let mut links = shared.federation.links.lock().expect("links lock");
        let ours = links.get(&peer).is_some_and(|l| l.generation == generation);
        if ours {
            links.remove(&peer);
        }
        ours
    };
    if ours {
        shared.relay.link_down(shared, peer);
        let _ = shared
            .passages
            .commands
            .send(PassageCommand::LinkDown(peer))
            .await;
    }
    tracing::info!(%peer, "peer link down");
    Ok(result)
}

async fn refuse<T>(
    out: &mpsc::Sender<Vec<u8>>,
    code: ErrorCode,
    message: String,
) -> Result<T, String> {
    let error = PeerMessage::Error {
        code,
        message: message.clone(),
    };
    let _ = out.send(encode(&error)).await;
    Err(message)
}

async fn link_loop(
    shared: &Arc<Shared>,
    peer: PeerId,
    wire: &mut Wire,
    queue: &mut mpsc::Receiver<PeerMessage>,
) -> Result<(), String> {
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    let mut heard = tokio::time::Instant::now();
    let mut seq = 0;
    let link = LINK;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return Ok(()),
            _ = heartbeat.tick() => {
                if heard.elapsed() > LOST_AFTER {
                    return Err(format!("nothing heard for {LOST_AFTER:?}"));
                }
                seq += 1;
                let _ = wire.outgoing.send(encode(&PeerMessage::Heartbeat { passage: link, seq })).await;
            }
            out = queue.recv() => {
                let Some(message) = out else { return Ok(()) };
                if wire.outgoing.send(encode(&message)).await.is_err() {
                    return Err("the socket closed".into());
                }
            }
            frame = wire.incoming.recv() => {
                let Some(bytes) = frame else { return Err("the socket closed".into()) };
                heard = tokio::time::Instant::now();
                match codec().decode::<PeerMessage>(&bytes) {
                    Ok(message) => handle(shared, peer, message, &wire.outgoing).await,
                    Err(e) => {
                        tracing::warn!(%peer, "undecodable peer frame: {e}");
                        let error = PeerMessage::Error { code: ErrorCode::MalformedFrame, message: e.to_string() };
                        let _ = wire.outgoing.send(encode(&error)).await;
                    }
                }
            }
        }
    }
}
