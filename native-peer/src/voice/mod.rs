//! Voice and video: a selective forwarding unit (SFU) built on str0m.
//!
//! # Layout
//! - [`Voice`] (this file) is the handle sessions use: it carries a member's offer, answers
//!   and departure to the forwarder task over a channel.
//! - `sfu` is that task. It owns the peer's one UDP socket and every member's `Rtc`
//!   (str0m's sans-IO loop: feed an input, drain `poll_output` until it asks for a timeout),
//!   forwards each frame to the other members of the publisher's room, and recomputes hearing
//!   sets whenever a universe's avatars move (its tick publishes their positions). It runs on
//!   a thread of its own with a single-threaded runtime.
//! - `participant` is one member's session: the tracks it publishes, the tracks forwarded
//!   to it and the peer-initiated renegotiation as tracks come and go.
//!
//! # Signalling
//! Over the client's WebSocket: the browser offers once (`voice_offer`: an Opus line and a
//! VP8 line, both send-only); the peer answers (`voice_answer`). From then on only the peer
//! offers (`voice_tracks` naming every forwarded line, then `voice_offer`), and the browser
//! answers (`voice_answer`). So offers never cross. ICE is not trickled: the peer's host
//! candidates are in its answer (the UDP socket's addresses, the same ones the HTTP server
//! is reached on), and the browser's are in its offer. On a LAN no STUN is needed.
//!
//! # Hearing sets
//! A listener receives a speaker's audio only while the speaker's avatar is within
//! [`multiverse_core::voice::HEARING_RADIUS`] of the listener's avatar, with hysteresis
//! (see [`multiverse_core::voice`]). Video goes to every member of the room.

mod participant;
mod sfu;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use multiverse_core::ids::{ClientId, RoomId, UniverseId};
use tokio::sync::mpsc;

use crate::host::Outbox;

/// Runs the forwarder on a thread of its own (a single-threaded runtime: the task owning
/// every `Rtc` never migrates between workers, and other work never delays a packet) until
/// the peer shuts down. Returns when the forwarder has stopped.
pub(crate) async fn run(shared: std::sync::Arc<crate::Shared>, socket: VoiceSocket) {
    let (done, stopped) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("voice".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(sfu::run(shared, socket)),
                Err(e) => tracing::error!("voice is off: no runtime for it: {e}"),
            }
            let _ = done.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = stopped.await;
        }
        Err(e) => tracing::error!("voice is off: cannot start its thread: {e}"),
    }
}

/// Commands queued to the forwarder before senders are told voice is busy.
const COMMAND_QUEUE: usize = 1024;

/// A member asks to start voice.
#[derive(Debug)]
pub struct VoiceJoin {
    /// The membership (the session's number).
    pub member: u64,
    /// The member's client (its avatar's marker).
    pub client: ClientId,
    /// The room the member is in.
    pub room: RoomId,
    /// The universe the room shows (where the avatars are).
    pub universe: Option<UniverseId>,
    /// The browser's offer, as SDP text.
    pub sdp: String,
    /// The session's queue, for the answer and later signalling.
    pub outbox: Outbox,
}

/// What sessions ask of the forwarder.
#[derive(Debug)]
pub enum VoiceCommand {
    /// Start (or restart) voice for a member.
    Join(Box<VoiceJoin>),
    /// The member's browser answered the peer's offer.
    Answer {
        /// The membership.
        member: u64,
        /// The answer, as SDP text.
        sdp: String,
        /// The session's queue, for an error when no offer was waiting.
        outbox: Outbox,
    },
    /// Stop voice for a member (asked, left the room, or disconnected).
    Leave {
        /// The membership.
        member: u64,
        /// Whether to tell the member's connection (`voice_ended`).
        notify: bool,
    },
}

/// Counters of the forwarder, for `/metrics` and benchmarks.
#[derive(Debug, Default)]
pub struct VoiceStats {
    /// Datagrams received on the UDP socket.
    pub datagrams_received: AtomicU64,
    /// Datagrams no member's session accepted (dropped).
    pub datagrams_unroutable: AtomicU64,
    /// Media frames written to listeners.
    pub frames_forwarded: AtomicU64,
    /// Members with voice on now.
    pub participants: AtomicU64,
}

/// The handle sessions use to reach the forwarder.
#[derive(Debug, Clone)]
pub struct Voice {
    commands: Option<mpsc::Sender<VoiceCommand>>,
    addr: Option<SocketAddr>,
    /// Live counters.
    pub stats: Arc<VoiceStats>,
}

/// Voice could not take the request.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VoiceUnavailable(pub String);

impl Voice {
    /// The UDP address media flows to, when voice is available.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Queues a command for the forwarder.
    pub async fn send(&self, command: VoiceCommand) -> Result<(), VoiceUnavailable> {
        let Some(tx) = &self.commands else {
            return Err(VoiceUnavailable(
                "voice is not available on this peer (its UDP port could not be opened)".into(),
            ));
        };
        tx.send(command)
            .await
            .map_err(|_| VoiceUnavailable("voice has stopped on this peer".into()))
    }

    /// The counters as (name, value) pairs.
    pub fn counters(&self) -> [(&'static str, u64); 4] {
        let s = &self.stats;
        [
            (
                "voice_datagrams_received_total",
                s.datagrams_received.load(Ordering::Relaxed),
            ),
            (
                "voice_datagrams_unroutable_total",
                s.datagrams_unroutable.load(Ordering::Relaxed),
            ),
            (
                "voice_frames_forwarded_total",
                s.frames_forwarded.load(Ordering::Relaxed),
            ),
            ("voice_participants", s.participants.load(Ordering::Relaxed)),
        ]
    }
}

/// The forwarder's socket and queue, until the peer starts serving.
#[derive(Debug)]
pub struct VoiceSocket {
    /// Non-blocking; registered with the forwarder thread's own runtime when it starts.
    pub(crate) socket: std::net::UdpSocket,
    pub(crate) candidates: Vec<SocketAddr>,
    pub(crate) commands: mpsc::Receiver<VoiceCommand>,
    pub(crate) stats: Arc<VoiceStats>,
}

/// Opens the voice UDP socket on `ip:port` (port 0: any). On failure voice is unavailable
/// (logged) and everything else carries on.
pub fn bind(ip: IpAddr, port: u16) -> (Voice, Option<VoiceSocket>) {
    let stats = Arc::new(VoiceStats::default());
    let socket = match std::net::UdpSocket::bind(SocketAddr::new(ip, port))
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
    {
        Ok(socket) => socket,
        Err(e) => {
            tracing::error!("voice is off: cannot open UDP {ip}:{port}: {e}");
            let voice = Voice {
                commands: None,
                addr: None,
                stats,
            };
            return (voice, None);
        }
    };
    let addr = match socket.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            tracing::error!("voice is off: the UDP socket has no address: {e}");
            let voice = Voice {
                commands: None,
                addr: None,
                stats,
            };
            return (voice, None);
        }
    };
    let candidates = candidates(addr);
    tracing::info!(%addr, ?candidates, "voice listening (UDP)");
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let voice = Voice {
        commands: Some(tx),
        addr: Some(addr),
        stats: stats.clone(),
    };
    let socket = VoiceSocket {
        socket,
        candidates,
        commands: rx,
        stats,
    };
    (voice, Some(socket))
}

/// The addresses the browser can send media to: the bound one, or every interface address
/// when bound to all of them (the same addresses the room links use).
fn candidates(addr: SocketAddr) -> Vec<SocketAddr> {
    if !addr.ip().is_unspecified() {
        return vec![addr];
    }
    let interfaces = crate::links::interface_addresses();
    crate::links::reachable_addresses(addr.ip(), &interfaces)
        .into_iter()
        .map(|ip| SocketAddr::new(ip, addr.port()))
        .collect()
}
