//! # multiverse-peer
//!
//! The native Multiverse peer. It serves the web client, speaks the wire protocol of
//! `multiverse-core` with browsers over `/ws`, and (as issues land) hosts universes, rooms,
//! federation links and the WebRTC SFU. Every protocol decision lives in the core's sans-IO
//! state machines; this crate only drives them with sockets and timers.
//!
//! ## Layout
//! | module | does |
//! |---|---|
//! | [`config`] | [`Config`]: bind address, data dir, name, client folder, session tunables |
//! | [`http`] | axum router: static client with SPA fallback, `/ws`, `/healthz`, 404s |
//! | [`https`] | the same router over TLS on a second port, for the microphone on other devices |
//! | [`tls`] | the self-signed certificate in the data dir, made again when addresses change |
//! | [`session`] | one task per WebSocket driving a core `ClientSession`, routing stream requests |
//! | [`host`] | one task per universe: ticks it, streams it, fans frames out without blocking |
//! | [`universes`] | the hosted universes: public demos and users' worlds |
//! | [`templates`] | read-only templates: built-in plus the templates folder |
//! | [`worlds`] | users' worlds: create from a template, save, reload, delete, autosave, expiry |
//! | [`auth`] | signed session tokens (HMAC-SHA256, key in the data dir) |
//! | [`federation`] | links to other peers (`--peer`, `/peer`), heartbeats, the transfer router |
//! | [`passages`] | passages: open, admit by policy and compatibility, heartbeats, stored |
//! | [`relay`] | portals: one upstream stream per remote universe and configuration, fanned out |
//! | [`voice`] | the str0m SFU: one UDP socket, signalling over `/ws`, hearing sets by avatar distance |
//! | [`api`] | the REST API of docs/API.md: sessions, templates, worlds, stats, metrics |
//! | [`rooms`] | one task per room driving a core `Room`: members, chat, cursors, invites, avatars |
//! | [`chat_store`] | the `ChatStore` seam rooms write chat through |
//! | [`store`] | the redb store: universes, worlds, users, rooms, chat |
//! | [`identity`] | the stable `PeerId` kept in the data dir |
//! | [`links`] | room links (http and https) for every LAN address, the host name |
//! | [`clock`] | tokio time ↔ core `Moment` |
//!
//! ## Use as a library
//! [`bind`] opens the listener (so tests can bind `127.0.0.1:0` and learn the port) and
//! [`Peer::serve`] runs until the given shutdown future completes:
//! ```no_run
//! # async fn demo() -> Result<(), multiverse_peer::PeerError> {
//! let config = multiverse_peer::Config::new("data").with_bind("127.0.0.1:0".parse().unwrap());
//! let peer = multiverse_peer::bind(config).await?;
//! println!("listening on {}", peer.local_addr());
//! peer.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod chat_store;
pub mod clock;
pub mod config;
pub mod federation;
pub mod host;
pub mod http;
pub mod https;
pub mod identity;
pub mod links;
pub mod passages;
pub mod relay;
pub mod rooms;
pub mod session;
pub mod store;
pub mod templates;
pub mod tls;
pub mod universes;
pub mod voice;
pub mod worlds;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use multiverse_core::ids::{PeerId, RoomId};
use multiverse_core::session::{PeerIdentity, SessionConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

/// How long shutdown waits for sessions to say goodbye before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the peer could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The listen address could not be bound (in use, or not an address of this host).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the configuration.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The data dir could not be created or read.
    #[error("data dir {path}: {source}")]
    DataDir {
        /// The data dir from the configuration.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    /// Serving failed after start-up.
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}

/// State shared by every task of a running peer.
#[derive(Debug)]
pub struct Shared {
    /// Who this peer is.
    pub identity: PeerIdentity,
    /// Tunables handed to each client session.
    pub session_config: SessionConfig,
    /// The built web client.
    pub dist_dir: PathBuf,
    /// Monotonic time for the core.
    pub clock: clock::Clock,
    /// Cancelled when the peer shuts down; every task watches it.
    pub shutdown: CancellationToken,
    /// Every session task, so shutdown can wait for their goodbyes.
    pub tracker: TaskTracker,
    /// The hosted universes.
    pub universes: universes::Universes,
    /// The live rooms.
    pub rooms: rooms::Rooms,
    /// The durable store.
    pub store: Arc<store::Store>,
    /// Read-only templates.
    pub templates: templates::Templates,
    /// Issues and checks session tokens.
    pub keys: auth::SessionKeys,
    /// Links to other peers and routes to their universes.
    pub federation: federation::Federation,
    /// Portal streams: remote universes watched here, and ours watched elsewhere.
    pub relay: relay::Relay,
    /// Passages between our universes and linked peers' universes.
    pub passages: passages::Passages,
    /// Voice and video: the forwarder's handle.
    pub voice: voice::Voice,
    /// When the peer started.
    pub started: std::time::Instant,
    /// The address the listener is bound to (for the addresses other peers can dial).
    pub local_addr: SocketAddr,
    autosave: Duration,
    anonymous_ttl: Duration,
    connections: AtomicUsize,
    subscribers: AtomicU64,
}

impl Shared {
    /// Open client connections right now.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// A fresh subscriber number for a session.
    pub fn next_subscriber(&self) -> multiverse_core::stream::SubscriberId {
        multiverse_core::stream::SubscriberId(self.subscribers.fetch_add(1, Ordering::Relaxed))
    }

    fn connection_opened(&self) -> ConnectionGuard<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(&self.connections)
    }
}

struct ConnectionGuard<'a>(&'a AtomicUsize);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A peer whose listener is bound but which does not serve yet.
#[derive(Debug)]
pub struct Peer {
    listener: TcpListener,
    local_addr: SocketAddr,
    default_room: RoomId,
    shared: Arc<Shared>,
    router: tokio::sync::mpsc::Receiver<host::Envelope>,
    passages: tokio::sync::mpsc::Receiver<passages::PassageCommand>,
    peers: Vec<String>,
    voice: Option<voice::VoiceSocket>,
    https: Option<https::HttpsListener>,
}

/// Loads the peer's identity and binds its listener.
pub async fn bind(config: Config) -> Result<Peer, PeerError> {
    let data_dir_error = |source| PeerError::DataDir {
        path: config.data_dir.clone(),
        source,
    };
    let peer_id = identity::load_or_create_peer_id(&config.data_dir).map_err(data_dir_error)?;
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| PeerError::Bind {
            addr: config.bind,
            source,
        })?;
    let local_addr = listener.local_addr()?;
    let voice_port = config.voice_port.unwrap_or(local_addr.port());
    let (voice, voice_socket) = voice::bind(local_addr.ip(), voice_port);
    let https = match config.https_port {
        Some(port) => {
            https::bind_or_warn(SocketAddr::new(local_addr.ip(), port), &config.data_dir).await
        }
        None => None,
    };
    if !config.dist_dir.join("index.html").exists() {
        tracing::warn!(
            "{} has no index.html: the web client is not built (run scripts/run)",
            config.dist_dir.display()
        );
    }
    let shutdown = CancellationToken::new();
    let store = Arc::new(store::Store::open(&config.data_dir)?);
    let keys = auth::SessionKeys::load_or_create(&config.data_dir).map_err(data_dir_error)?;
    let templates = templates::Templates::load(&config.templates_dir);
    let clock = clock::Clock::start();
    let (router_tx, router_rx) = tokio::sync::mpsc::channel(4096);
    let (passages, passages_rx) = passages::channel();
    let passage_table = passages.table();
    let transfer_ctx = host::TransferContext {
        store: store.clone(),
        router: router_tx,
        clock,
        passages: passage_table,
        events: tokio::sync::broadcast::channel(4096).0,
    };
    // Hosts outlive the shutdown signal until the final save (see `Peer::serve`).
    let universes =
        universes::Universes::start_demos(peer_id, &CancellationToken::new(), transfer_ctx);
    let sandbox = universes.list().first().map(|u| u.id);
    let hosts = universes.directory();
    let rooms = rooms::Rooms::new(store.clone(), clock, shutdown.clone(), sandbox, hosts);
    let shared = Arc::new(Shared {
        identity: PeerIdentity {
            peer_id,
            peer_name: config.name,
        },
        session_config: config.session,
        dist_dir: config.dist_dir,
        clock,
        shutdown,
        tracker: TaskTracker::new(),
        universes,
        rooms,
        store,
        templates,
        keys,
        federation: federation::Federation::default(),
        relay: relay::Relay::default(),
        passages,
        voice,
        started: std::time::Instant::now(),
        local_addr,
        autosave: config.autosave,
        anonymous_ttl: config.anonymous_ttl,
        connections: AtomicUsize::new(0),
        subscribers: AtomicU64::new(0),
    });
    let worlds = worlds::restore_all(&shared)?;
    if worlds > 0 {
        tracing::info!("brought back {worlds} worlds");
    }
    Ok(Peer {
        listener,
        local_addr,
        default_room: config.default_room,
        shared,
        router: router_rx,
        passages: passages_rx,
        peers: config.peers,
        voice: voice_socket,
        https,
    })
}

impl Peer {
    /// The address actually bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the HTTPS listener, if HTTPS is on and could start.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().map(https::HttpsListener::local_addr)
    }

    /// The state every task shares (for embedding the peer and for benches).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// This peer's stable id.
    pub fn peer_id(&self) -> PeerId {
        self.shared.identity.peer_id
    }

    /// Links to the default room, one per reachable address, loopback last.
    pub fn room_links(&self) -> Vec<String> {
        let addrs = links::reachable_addresses(self.local_addr.ip(), &links::interface_addresses());
        links::room_links(&addrs, self.local_addr.port(), &self.default_room)
    }

    /// HTTPS links to the default room, one per reachable address, loopback last; none when
    /// HTTPS is off.
    pub fn https_room_links(&self) -> Vec<String> {
        let Some(addr) = self.https_addr() else {
            return Vec::new();
        };
        let addrs = links::reachable_addresses(addr.ip(), &links::interface_addresses());
        links::https_room_links(&addrs, addr.port(), &self.default_room)
    }

    /// Serves until `shutdown` completes, then closes every session with "going away" and
    /// waits (at most a few seconds) for them to finish.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), PeerError> {
        let shared = self.shared.clone();
        let token = shared.shutdown.clone();
        let background = TaskTracker::new();
        background.spawn(federation::run_router(shared.clone(), self.router));
        background.spawn(passages::run(shared.clone(), self.passages));
        if let Some(socket) = self.voice {
            background.spawn(voice::run(shared.clone(), socket));
        }
        for address in self.peers {
            background.spawn(federation::dial(shared.clone(), address));
        }
        let maintenance = tokio::spawn(worlds::maintain(
            shared.clone(),
            shared.autosave,
            shared.anonymous_ttl,
        ));
        let app = http::router(self.shared);
        if let Some(https) = self.https {
            background.spawn(https.serve(app.clone(), shared.shutdown.clone()));
        }
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down");
            token.cancel();
        };
        // Chat, cursors and stream deltas are small frames that must leave at once: Nagle's
        // algorithm would hold them back behind unacknowledged bytes.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await?;
        shared.shutdown.cancel();
        shared.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some sessions did not finish within {SHUTDOWN_GRACE:?}");
        }
        let _ = maintenance.await;
        let saved = worlds::save_all(&shared).await;
        tracing::info!("saved {saved} worlds");
        shared.universes.stop_all().await;
        background.close();
        background.wait().await;
        Ok(())
    }
}
