//! Portals: watching a universe another peer hosts. A browser subscribes to a remote
//! universe id as if it were local; this peer keeps **one upstream subscription per (remote
//! universe, stream configuration)** over the link to the owner and fans each frame out to
//! every local viewer with that configuration. The owner serves the subscription like any
//! other subscriber of its stream server, so interest management and slow-reader handling
//! are the owner's. Local viewers only observe (interacting through a portal is a passage
//! grant this relay does not carry yet).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use multiverse_core::ids::{PassageId, PeerId, UniverseId};
use multiverse_core::stream::{StreamConfiguration, SubscriberId, ViewMode};
use multiverse_core::wire::{
    Codec, Encoding, PeerMessage, RemoteSubscription, ServerMessage, MAX_SERVER_FRAME_BYTES,
};
use tokio::sync::mpsc;

use crate::host::{Encoded, HostCommand, Outbox, WireFrame, OUTBOX_FRAMES};
use crate::Shared;

/// One upstream stream and its local viewers.
#[derive(Debug)]
struct Upstream {
    peer: PeerId,
    universe: UniverseId,
    config: StreamConfiguration,
    viewers: BTreeMap<SubscriberId, Outbox>,
}

/// A stream this peer serves to another peer.
#[derive(Debug)]
struct Served {
    universe: UniverseId,
    sub: SubscriberId,
    task: tokio::task::JoinHandle<()>,
}

/// Both directions of portal streams.
#[derive(Debug, Default)]
pub struct Relay {
    next_stream: AtomicU64,
    upstreams: Mutex<HashMap<u64, Upstream>>,
    served: Mutex<HashMap<(PeerId, u64), Served>>,
}

fn config_key(config: &StreamConfiguration) -> Vec<u8> {
    bitcode::encode(config)
}

impl Relay {
    /// A local viewer subscribes to remote `universe` (hosted by `peer`). Joins the upstream
    /// with the same configuration, or opens one. Returns false if the link is down.
    pub fn subscribe(
        &self,
        shared: &Shared,
        peer: PeerId,
        universe: UniverseId,
        viewer: SubscriberId,
        config: StreamConfiguration,
        outbox: Outbox,
    ) -> bool {
        let mut upstreams = self.upstreams.lock().expect("relay lock");
        // A new subscription to the same universe replaces the viewer's old one (its
        // configuration may differ); other portals of the viewer stay.
        for up in upstreams.values_mut().filter(|u| u.universe == universe) {
            up.viewers.remove(&viewer);
        }
        upstreams.retain(|stream, up| {
            if up.viewers.is_empty() {
                let _ = shared
                    .federation
                    .send(up.peer, PeerMessage::Unsubscribe { stream: *stream });
                false
            } else {
                true
            }
        });
        let key = config_key(&config);
        let existing = upstreams.iter_mut().find(|(_, u)| {
            u.universe == universe && u.peer == peer && config_key(&u.config) == key
        });
        // A joiner needs a snapshot: asking again makes the owner resync this stream.
        let stream = match existing {
            Some((stream, up)) => {
                // The owner answered `subscribed` once, to the first viewer; a joiner gets
                // its own from what the link lists, then the snapshot the resync brings.
                let info = shared
                    .federation
                    .links()
                    .into_iter()
                    .filter(|l| l.peer_id == peer)
                    .flat_map(|l| l.universes)
                    .find(|u| u.id == universe);
                if let Some(info) = info {
                    let subscribed = ServerMessage::Subscribed {
                        universe: info,
                        mode: ViewMode::Observe,
                        interaction: multiverse_core::stream::InteractionMode::None,
                    };
                    let _ = outbox.offer(&mut Encoded::new(&subscribed));
                }
                up.viewers.insert(viewer, outbox);
                *stream
            }
            None => {
                let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
                upstreams.insert(
                    stream,
                    Upstream {
                        peer,
                        universe,
                        config: config.clone(),
                        viewers: BTreeMap::from([(viewer, outbox)]),
                    },
                );
                stream
            }
        };
        let request = RemoteSubscription {
            passage: PassageId::from_u128(0),
            stream,
            universe,
            config,
            viewport: None,
        };
        shared
            .federation
            .send(peer, PeerMessage::Subscribe(Box::new(request)))
    }

    /// A local viewer stops watching `universe` (or its connection closed).
    pub fn unsubscribe(&self, shared: &Shared, viewer: SubscriberId, universe: Option<UniverseId>) {
        let mut upstreams = self.upstreams.lock().expect("relay lock");
        upstreams.retain(|stream, up| {
            if universe.is_none_or(|u| u == up.universe) {
                up.viewers.remove(&viewer);
            }
            if up.viewers.is_empty() {
                let _ = shared
                    .federation
                    .send(up.peer, PeerMessage::Unsubscribe { stream: *stream });
                false
            } else {
                true
            }
        });
    }

    /// A viewer lost frames: ask the owner for a fresh snapshot of the shared stream.
    pub fn resync(&self, shared: &Shared, viewer: SubscriberId, universe: UniverseId) {
        let upstreams = self.upstreams.lock().expect("relay lock");
        let found = upstreams
            .iter()
            .find(|(_, u)| u.universe == universe && u.viewers.contains_key(&viewer));
        if let Some((stream, up)) = found {
            let request = RemoteSubscription {
                passage: PassageId::from_u128(0),
                stream: *stream,
                universe,
                config: up.config.clone(),
                viewport: None,
            };
            let _ = shared
                .federation
                .send(up.peer, PeerMessage::Subscribe(Box::new(request)));
        }
    }

    /// Whether a viewer watches `universe` through a portal.
    pub fn watches(&self, viewer: SubscriberId, universe: UniverseId) -> bool {
        let upstreams = self.upstreams.lock().expect("relay lock");
        upstreams
            .values()
            .any(|u| u.universe == universe && u.viewers.contains_key(&viewer))
    }

    /// A frame of upstream `stream` from `peer`: to every local viewer of it.
    pub fn frame(&self, peer: PeerId, stream: u64, frame: &ServerMessage) {
        let upstreams = self.upstreams.lock().expect("relay lock");
        let Some(up) = upstreams.get(&stream).filter(|u| u.peer == peer) else {
            return;
        };
        let mut encoded = Encoded::new(frame);
        for outbox in up.viewers.values() {
            // A full viewer queue drops the frame; its mirror notices the gap and resyncs.
            let _ = outbox.offer(&mut encoded);
        }
    }

    /// The link to `peer` went down: its portals end (viewers are told) and what we served
    /// it stops.
    pub fn link_down(&self, shared: &Shared, peer: PeerId) {
        let mut upstreams = self.upstreams.lock().expect("relay lock");
        upstreams.retain(|_, up| {
            if up.peer != peer {
                return true;
            }
            let gone = ServerMessage::Unsubscribed {
                universe: up.universe,
                reason: "the peer hosting this universe is unreachable".into(),
            };
            let mut encoded = Encoded::new(&gone);
            for outbox in up.viewers.values() {
                let _ = outbox.offer(&mut encoded);
            }
            false
        });
        drop(upstreams);
        let mut served = self.served.lock().expect("relay lock");
        let keys: Vec<_> = served.keys().filter(|(p, _)| *p == peer).copied().collect();
        for key in keys {
            if let Some(s) = served.remove(&key) {
                stop_served(shared, s);
            }
        }
    }

    /// Owner side: `peer` asks for a stream of one of our universes.
    pub async fn serve(
        &self,
        shared: &std::sync::Arc<Shared>,
        peer: PeerId,
        request: RemoteSubscription,
    ) {
        let key = (peer, request.stream);
        let existing = {
            let served = self.served.lock().expect("relay lock");
            served
                .get(&key)
                .filter(|s| s.universe == request.universe)
                .map(|s| s.sub)
        };
        if let Some(sub) = existing {
            if let Some(host) = shared.universes.get(request.universe) {
                let _ = host.commands.send(HostCommand::Resync(sub)).await;
            }
            return;
        }
        let refuse = |message: String| {
            tracing::info!(%peer, universe = %request.universe, "portal refused: {message}");
            let frame = ServerMessage::Unsubscribed {
                universe: request.universe,
                reason: message,
            };
            let _ = shared.federation.send(
                peer,
                PeerMessage::StreamFrame {
                    stream: request.stream,
                    frame: Box::new(frame),
                },
            );
        };
        if !shared.universes.is_listed(request.universe) {
            return refuse("that universe is not shared with other peers".into());
        }
        let Some(host) = shared.universes.get(request.universe) else {
            return refuse("no such universe here".into());
        };
        let sub = shared.next_subscriber();
        let (tx, mut frames) = mpsc::channel(OUTBOX_FRAMES);
        let outbox = Outbox {
            tx,
            encoding: Encoding::Binary,
        };
        let subscribe = HostCommand::Subscribe {
            sub,
            viewer: None,
            config: request.config,
            viewport: request.viewport,
            mode: ViewMode::Observe,
            outbox,
        };
        if host.commands.send(subscribe).await.is_err() {
            return refuse("the universe stopped".into());
        }
        let (shared2, stream) = (shared.clone(), request.stream);
        let task = tokio::spawn(async move {
            let codec = Codec::new(Encoding::Binary, MAX_SERVER_FRAME_BYTES);
            while let Some(frame) = frames.recv().await {
                let WireFrame::Binary(bytes) = frame else {
                    continue;
                };
                let Ok(message) = codec.decode::<ServerMessage>(&bytes) else {
                    continue;
                };
                if !shared2.federation.send(
                    peer,
                    PeerMessage::StreamFrame {
                        stream,
                        frame: Box::new(message),
                    },
                ) {
                    tracing::debug!(%peer, "portal frame dropped: link full or down");
                }
            }
        });
        let old = self.served.lock().expect("relay lock").insert(
            key,
            Served {
                universe: request.universe,
                sub,
                task,
            },
        );
        if let Some(old) = old {
            stop_served(shared, old);
        }
        tracing::info!(%peer, universe = %request.universe, "serving a portal");
    }

    /// Owner side: `peer` no longer needs `stream`.
    pub fn stop_serving(&self, shared: &Shared, peer: PeerId, stream: u64) {
        if let Some(s) = self
            .served
            .lock()
            .expect("relay lock")
            .remove(&(peer, stream))
        {
            stop_served(shared, s);
        }
    }
}

fn stop_served(shared: &Shared, served: Served) {
    served.task.abort();
    if let Some(host) = shared.universes.get(served.universe) {
        let _ = host.commands.try_send(HostCommand::Remove(served.sub));
    }
}
