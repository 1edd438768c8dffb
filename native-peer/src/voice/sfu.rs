//! The forwarder task: one UDP socket, every member's `Rtc`, and the hearing sets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use multiverse_core::ids::{ClientId, UniverseId};
use multiverse_core::universe::Vec2;
use multiverse_core::voice::{hearing_set, HearingParams};
use multiverse_core::wire::{ErrorCode, MediaKind, ServerMessage};
use str0m::change::SdpOffer;
use str0m::crypto::CryptoProvider;
use str0m::net::{Protocol, Receive};
use str0m::rtp::Extension;
use str0m::{Candidate, Input, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::participant::{Participant, Propagated};
use super::{VoiceCommand, VoiceJoin, VoiceSocket, VoiceStats};
use crate::Shared;

/// Hearing sets are recomputed whenever a universe's avatars move (at its tick), and at
/// least this often (catching members the room let go, and universes whose host changed).
const HEARING_SWEEP: Duration = Duration::from_millis(500);
/// Largest datagram read (WebRTC keeps packets under the path MTU).
const MAX_DATAGRAM: usize = 2048;
/// Datagrams read in one go before the loop looks at its other inputs.
const READ_BATCH: usize = 64;

/// Runs the forwarder until the peer shuts down.
pub(crate) async fn run(shared: Arc<Shared>, socket: VoiceSocket) {
    let VoiceSocket {
        socket,
        candidates,
        mut commands,
        stats,
    } = socket;
    let socket = match UdpSocket::from_std(socket) {
        Ok(socket) => socket,
        Err(e) => {
            tracing::error!("voice stopped: the UDP socket cannot be used: {e}");
            return;
        }
    };
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("voice stopped: {e}");
            return;
        }
    };
    let (moved_tx, mut moved) = mpsc::channel(64);
    let mut sfu = Sfu {
        socket,
        local,
        candidates,
        crypto: Arc::new(str0m::crypto::from_feature_flags()),
        participants: BTreeMap::new(),
        dirty: BTreeSet::new(),
        renegotiate: BTreeSet::new(),
        routes: HashMap::new(),
        watchers: HashMap::new(),
        moved: moved_tx,
        stats,
    };
    let mut hearing = tokio::time::interval(HEARING_SWEEP);
    hearing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        sfu.settle();
        let deadline = sfu.next_timeout();
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            command = commands.recv() => match command {
                Some(command) => sfu.command(&shared, command),
                None => break,
            },
            received = sfu.socket.recv_from(&mut buf) => match received {
                Ok((n, source)) => {
                    sfu.receive(&buf[..n], source);
                    for _ in 0..READ_BATCH {
                        match sfu.socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => sfu.receive(&buf[..n], source),
                            Err(_) => break,
                        }
                    }
                }
                Err(e) => tracing::debug!("voice UDP read failed: {e}"),
            },
            _ = tokio::time::sleep_until(deadline.into()) => sfu.timeouts(Instant::now()),
            Some(_) = moved.recv() => {
                // Several universes may have ticked: one pass covers them all.
                while moved.try_recv().is_ok() {}
                sfu.update_hearing(&shared);
            }
            _ = hearing.tick() => sfu.update_hearing(&shared),
        }
    }
    for watcher in sfu.watchers.values() {
        watcher.cancel();
    }
    for p in sfu.participants.values_mut() {
        p.end("the peer is shutting down");
    }
    sfu.stats.participants.store(0, Ordering::Relaxed);
}

/// The forwarder's state.
struct Sfu {
    socket: UdpSocket,
    local: SocketAddr,
    candidates: Vec<SocketAddr>,
    crypto: Arc<CryptoProvider>,
    participants: BTreeMap<u64, Participant>,
    /// Members whose `Rtc` got input since it was last drained.
    dirty: BTreeSet<u64>,
    /// Members whose forwarded tracks changed.
    renegotiate: BTreeSet<u64>,
    /// Which member's session last accepted datagrams from an address.
    routes: HashMap<SocketAddr, u64>,
    /// One task per universe with members in voice, waking the forwarder when its avatars
    /// move (cancelled when the last of them leaves voice).
    watchers: HashMap<UniverseId, CancellationToken>,
    /// Where those tasks say a universe's avatars moved.
    moved: mpsc::Sender<UniverseId>,
    stats: Arc<VoiceStats>,
}

impl Sfu {
    fn command(&mut self, shared: &Shared, command: VoiceCommand) {
        match command {
            VoiceCommand::Join(join) => self.join(shared, *join),
            VoiceCommand::Answer {
                member,
                sdp,
                outbox,
            } => {
                if self.participants.contains_key(&member) {
                    self.answer(member, &sdp);
                } else {
                    tracing::warn!(member, "voice answer from a connection without voice");
                    let message = "no voice offer is waiting for an answer: send voice_offer first";
                    let _ = outbox.try_error(ErrorCode::BadSdp, message.into());
                }
            }
            VoiceCommand::Leave { member, notify } => {
                if let Some(mut p) = self.participants.remove(&member) {
                    p.rtc.disconnect();
                    if notify {
                        p.signal(&ServerMessage::VoiceEnded {
                            reason: "voice off".into(),
                        });
                    }
                    self.forget(member);
                }
            }
        }
    }

    fn join(&mut self, shared: &Shared, join: VoiceJoin) {
        let VoiceJoin {
            member,
            client,
            room,
            universe,
            sdp,
            outbox,
        } = join;
        if self.participants.remove(&member).is_some() {
            self.forget(member);
        }
        let refuse = |code, message: String| {
            tracing::warn!(member, ?code, "voice refused: {message}");
            let _ = outbox.try_error(code, message);
        };
        if !shared.rooms.has_member(&room, member) {
            refuse(
                ErrorCode::NotInRoom,
                "join the room before turning voice on".into(),
            );
            return;
        }
        let offer = match SdpOffer::from_sdp_string(&sdp) {
            Ok(offer) => offer,
            Err(e) => {
                return refuse(
                    ErrorCode::BadSdp,
                    format!("the offer is not valid SDP: {e}"),
                )
            }
        };
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .set_crypto_provider(self.crypto.clone())
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            // Only the header extensions the forwarder uses: without transport-wide sequence
            // numbers and send times (there is no bandwidth estimation on a LAN) nobody sends
            // congestion feedback for every packet.
            .clear_extension_map()
            .set_extension(1, Extension::AudioLevel)
            .set_extension(4, Extension::RtpMid)
            .set_extension(13, Extension::VideoOrientation)
            // Packets are forwarded as they come: no depacketising, no jitter buffer.
            .set_rtp_mode(true)
            .build(now);
        for addr in &self.candidates {
            match Candidate::host(*addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::debug!(%addr, "no host candidate: {e}"),
            }
        }
        let answer = match rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => answer,
            Err(e) => return refuse(ErrorCode::BadSdp, format!("the offer was refused: {e}")),
        };
        let mut p = Participant::new(member, client, room, universe, outbox, rtc, now);
        p.signal(&ServerMessage::VoiceAnswer {
            sdp: answer.to_sdp_string(),
        });
        // What the others already publish is forwarded to the newcomer.
        let room = p.room.clone();
        for other in self.participants.values().filter(|o| o.room == room) {
            for track in &other.tracks_in {
                p.add_track_out(other.member, other.client, track.mid, track.kind);
            }
        }
        tracing::info!(member, room = %p.room, "voice joined");
        if let Some(universe) = p.universe {
            self.watch(shared, universe);
        }
        self.participants.insert(member, p);
        self.update_hearing(shared);
        self.dirty.insert(member);
        self.renegotiate.insert(member);
        self.stats
            .participants
            .store(self.participants.len() as u64, Ordering::Relaxed);
    }

    fn answer(&mut self, member: u64, sdp: &str) {
        let Some(p) = self.participants.get_mut(&member) else {
            return;
        };
        if !p.is_waiting() {
            tracing::warn!(member, "voice answer while no offer was waiting");
            let message = "no voice offer is waiting for an answer".to_owned();
            p.error(ErrorCode::BadSdp, message);
            return;
        }
        match p.accept_answer(sdp) {
            Ok(opened) => {
                for (origin, mid) in opened {
                    if let Some(publisher) = self.participants.get_mut(&origin) {
                        publisher.request_keyframe(mid, str0m::media::KeyframeRequestKind::Pli);
                        self.dirty.insert(origin);
                    }
                }
            }
            Err(message) => {
                tracing::warn!(member, "voice answer refused: {message}");
                p.error(ErrorCode::BadSdp, message);
                p.end("the browser's answer could not be used");
            }
        }
        self.dirty.insert(member);
        self.renegotiate.insert(member);
    }

    /// Starts waking the forwarder whenever `universe`'s avatars move, if not yet.
    fn watch(&mut self, shared: &Shared, universe: UniverseId) {
        if self.watchers.contains_key(&universe) {
            return;
        }
        let Some(host) = shared.universes.get(universe) else {
            return; // not hosted here: nobody has an avatar to hear
        };
        let mut positions = host.avatars.clone();
        let stop = CancellationToken::new();
        let (moved, until) = (self.moved.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = until.cancelled() => break,
                    changed = positions.changed() => {
                        if changed.is_err() {
                            break; // the universe stopped
                        }
                        // A full queue already holds a wake-up: this one is not needed.
                        let _ = moved.try_send(universe);
                    }
                }
            }
        });
        self.watchers.insert(universe, stop);
    }

    /// Removes a departed member's tracks and hearing from everybody else, and stops
    /// watching universes nobody in voice is in.
    fn forget(&mut self, member: u64) {
        let watched: BTreeSet<UniverseId> = self
            .participants
            .values()
            .filter_map(|p| p.universe)
            .collect();
        self.watchers.retain(|universe, stop| {
            let keep = watched.contains(universe);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for (id, p) in &mut self.participants {
            if p.hearing.remove(&member) {
                let members = p.hearing.iter().copied().collect();
                p.signal(&ServerMessage::VoiceHearing { members });
            }
            if p.tracks_out.iter().any(|t| t.origin == member) {
                p.remove_tracks_of(member);
                self.renegotiate.insert(*id);
            }
        }
        self.stats
            .participants
            .store(self.participants.len() as u64, Ordering::Relaxed);
    }

    /// Routes one datagram to the session that accepts it.
    fn receive(&mut self, contents: &[u8], source: SocketAddr) {
        self.stats
            .datagrams_received
            .fetch_add(1, Ordering::Relaxed);
        let Ok(contents) = contents.try_into() else {
            self.stats
                .datagrams_unroutable
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.destination_for(source),
                contents,
            },
        );
        // Most datagrams come from an address already seen: ask its session first.
        let known = self.routes.get(&source).copied().filter(|m| {
            self.participants
                .get(m)
                .is_some_and(|p| p.rtc.accepts(&input))
        });
        let member = known.or_else(|| {
            let found = self
                .participants
                .values()
                .find(|p| p.ended.is_none() && p.rtc.accepts(&input))
                .map(|p| p.member)?;
            if self.routes.len() > 4 * self.participants.len() + 64 {
                self.routes.clear();
            }
            self.routes.insert(source, found);
            Some(found)
        });
        let Some(p) = member.and_then(|m| self.participants.get_mut(&m)) else {
            self.stats
                .datagrams_unroutable
                .fetch_add(1, Ordering::Relaxed);
            tracing::trace!(%source, "a datagram no voice session accepts");
            return;
        };
        p.handle_input(input);
        // Drained at once: in RTP mode str0m holds one received packet until the next poll,
        // so a second datagram fed before draining would overwrite the first.
        let member = p.member;
        self.dirty.remove(&member);
        self.drain(member);
    }

    /// The local address a datagram from `source` was sent to. A socket bound to every
    /// interface cannot tell; the candidate of the same kind (loopback or not) is the one the
    /// browser paired with.
    fn destination_for(&self, source: SocketAddr) -> SocketAddr {
        if !self.local.ip().is_unspecified() {
            return self.local;
        }
        self.candidates
            .iter()
            .find(|c| {
                c.is_ipv4() == source.is_ipv4() && c.ip().is_loopback() == source.ip().is_loopback()
            })
            .copied()
            .unwrap_or(self.local)
    }

    fn timeouts(&mut self, now: Instant) {
        for p in self.participants.values_mut() {
            if p.timeout <= now {
                p.handle_input(Input::Timeout(now));
                self.dirty.insert(p.member);
            }
        }
    }

    fn next_timeout(&self) -> Instant {
        let idle = Instant::now() + Duration::from_secs(1);
        self.participants
            .values()
            .map(|p| p.timeout)
            .min()
            .map_or(idle, |t| t.min(idle))
    }

    /// Drains every session that got input, hands on what it produced, renegotiates, and
    /// removes sessions that ended — until nothing is left to do.
    /// Drains one member's session: sends its datagrams and hands on what it produced.
    fn drain(&mut self, member: u64) {
        let socket = &self.socket;
        let Some(p) = self.participants.get_mut(&member) else {
            return;
        };
        let produced = p.drain(|bytes, to| {
            if let Err(e) = socket.try_send_to(bytes, to) {
                tracing::trace!(%to, "voice datagram dropped: {e}");
            }
        });
        for event in produced {
            self.propagate(member, event);
        }
    }

    fn settle(&mut self) {
        for _ in 0..64 {
            while let Some(member) = self.dirty.pop_first() {
                self.drain(member);
            }
            for member in std::mem::take(&mut self.renegotiate) {
                if let Some(p) = self.participants.get_mut(&member) {
                    p.negotiate();
                    self.dirty.insert(member);
                }
            }
            self.sweep();
            if self.dirty.is_empty() && self.renegotiate.is_empty() {
                return;
            }
        }
    }

    fn sweep(&mut self) {
        let ended: Vec<u64> = self
            .participants
            .values()
            .filter(|p| p.ended.is_some())
            .map(|p| p.member)
            .collect();
        for member in ended {
            if let Some(mut p) = self.participants.remove(&member) {
                let reason = p.ended.take().unwrap_or_default();
                p.signal(&ServerMessage::VoiceEnded { reason });
            }
            self.forget(member);
        }
    }

    fn propagate(&mut self, origin: u64, event: Propagated) {
        let Some(publisher) = self.participants.get(&origin) else {
            return;
        };
        let (room, client) = (publisher.room.clone(), publisher.client);
        match event {
            Propagated::TrackOpen { kind, mid } => {
                for p in self.participants.values_mut() {
                    if p.member != origin && p.room == room {
                        p.add_track_out(origin, client, mid, kind);
                        self.renegotiate.insert(p.member);
                    }
                }
            }
            Propagated::Rtp { mid, packet } => {
                let kind = publisher.kind_in(mid);
                for p in self.participants.values_mut() {
                    if p.member == origin || p.room != room || p.ended.is_some() {
                        continue;
                    }
                    if kind == Some(MediaKind::Audio) && !p.hearing.contains(&origin) {
                        p.hold_back(origin, mid);
                        continue;
                    }
                    if p.forward(origin, mid, &packet) {
                        self.stats.frames_forwarded.fetch_add(1, Ordering::Relaxed);
                        self.dirty.insert(p.member);
                    }
                }
            }
            Propagated::Keyframe {
                origin: publisher,
                origin_mid,
                kind,
            } => {
                if let Some(p) = self.participants.get_mut(&publisher) {
                    p.request_keyframe(origin_mid, kind);
                    self.dirty.insert(publisher);
                }
            }
        }
    }

    /// Recomputes every listener's hearing set from the avatars' latest positions.
    fn update_hearing(&mut self, shared: &Shared) {
        if self.participants.is_empty() {
            return;
        }
        let mut avatars: HashMap<UniverseId, HashMap<ClientId, Vec2>> = HashMap::new();
        let mut by_room: BTreeMap<_, BTreeMap<u64, Vec2>> = BTreeMap::new();
        for p in self.participants.values() {
            let positions = by_room.entry(p.room.clone()).or_default();
            let Some(universe) = p.universe else {
                continue;
            };
            let known = avatars
                .entry(universe)
                .or_insert_with(|| avatar_positions(shared, universe));
            if let Some(at) = known.get(&p.client) {
                positions.insert(p.member, *at);
            }
        }
        let params = HearingParams::default();
        for p in self.participants.values_mut() {
            if !shared.rooms.has_member(&p.room, p.member) {
                // Left, timed out or was disconnected by the room: no media from outside it.
                p.end("you are no longer in the room");
                continue;
            }
            let positions = &by_room[&p.room];
            let heard = hearing_set(p.member, positions, &p.hearing, params);
            if heard != p.hearing {
                p.hearing = heard;
                let members = p.hearing.iter().copied().collect();
                p.signal(&ServerMessage::VoiceHearing { members });
            }
        }
    }
}

/// Where every avatar of a universe is now (empty when the universe is not hosted here).
fn avatar_positions(shared: &Shared, universe: UniverseId) -> HashMap<ClientId, Vec2> {
    shared
        .universes
        .get(universe)
        .map(|host| host.avatars.borrow().iter().copied().collect())
        .unwrap_or_default()
}
