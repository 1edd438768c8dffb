//! One member's WebRTC session inside the forwarder: its `Rtc`, the tracks it publishes,
//! the tracks forwarded to it and the state of the peer-initiated renegotiation.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use multiverse_core::ids::{ClientId, RoomId, UniverseId};
use multiverse_core::wire::{MediaKind, ServerMessage, VoiceTrack};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, Mid, Pt};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, SeqNo, Ssrc};
use str0m::{Event, IceConnectionState, Output, Rtc};

use crate::host::{Encoded, Outbox};

/// Least time between two keyframe requests the forwarder sends to one publisher track.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// A track this member publishes (its microphone or camera).
#[derive(Debug)]
pub(super) struct TrackIn {
    /// The media line in this member's session.
    pub mid: Mid,
    /// Audio or video.
    pub kind: MediaKind,
    last_keyframe_request: Option<Instant>,
}

/// Where a forwarded track stands in the renegotiation with the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    /// Wanted, not yet offered.
    ToOpen,
    /// Offered on this media line; waiting for the answer.
    Negotiating(Mid),
    /// Negotiated: media flows on this line.
    Open(Mid),
    /// Its publisher left; the line is to be stopped.
    ToStop(Mid),
    /// Stop offered; waiting for the answer.
    NegotiatingStop(Mid),
}

/// A track of another member forwarded to this one.
#[derive(Debug)]
pub(super) struct TrackOut {
    /// The publishing member.
    pub origin: u64,
    /// The publisher's client (its avatar marker), for `voice_tracks`.
    pub origin_client: ClientId,
    /// The media line in the publisher's session.
    pub origin_mid: Mid,
    /// Audio or video.
    pub kind: MediaKind,
    state: OutState,
    /// The listener's payload type for the track's codec, once looked up.
    pt: Option<Pt>,
    /// Added to the publisher's sequence numbers so the listener sees no gap where the
    /// forwarder held packets back (out of earshot); real losses still show.
    seq_offset: u64,
    /// The last sequence number sent to the listener.
    last_sent: Option<u64>,
    /// Packets were held back since the last one sent.
    held_back: bool,
}

impl TrackOut {
    /// The media line in the listener's session, once offered.
    fn mid(&self) -> Option<Mid> {
        match self.state {
            OutState::ToOpen => None,
            OutState::Negotiating(m)
            | OutState::Open(m)
            | OutState::ToStop(m)
            | OutState::NegotiatingStop(m) => Some(m),
        }
    }
}

/// Something one session produced that concerns other members.
#[derive(Debug)]
pub(super) enum Propagated {
    /// The member started publishing a track.
    TrackOpen {
        /// Audio or video.
        kind: MediaKind,
        /// Its media line in the publisher's session.
        mid: Mid,
    },
    /// An RTP packet from the member, on its media line `mid`.
    Rtp {
        /// The publisher's media line.
        mid: Mid,
        /// The packet.
        packet: Box<RtpPacket>,
    },
    /// The listener asks a publisher for a keyframe.
    Keyframe {
        /// The publisher.
        origin: u64,
        /// The publisher's media line.
        origin_mid: Mid,
        /// PLI or FIR.
        kind: KeyframeRequestKind,
    },
}

/// One member's voice session.
pub(super) struct Participant {
    /// The membership (the session's number).
    pub member: u64,
    /// The member's client id (its avatar's marker).
    pub client: ClientId,
    /// The room the member talks in.
    pub room: RoomId,
    /// The universe the room shows, where the avatars walk.
    pub universe: Option<UniverseId>,
    /// The session's queue, for signalling.
    outbox: Outbox,
    /// The WebRTC session.
    pub rtc: Rtc,
    /// Tracks the member publishes.
    pub tracks_in: Vec<TrackIn>,
    /// Tracks forwarded to the member.
    pub tracks_out: Vec<TrackOut>,
    pending: Option<SdpPendingOffer>,
    /// Incoming streams already mapped to their media line.
    ssrc_mids: Vec<(Ssrc, Mid)>,
    /// When the `Rtc` next wants a timeout input.
    pub timeout: Instant,
    /// The speakers this member hears now.
    pub hearing: BTreeSet<u64>,
    /// Why the session ended, once it has.
    pub ended: Option<String>,
}

impl Participant {
    /// A member whose offer was accepted into `rtc`.
    pub fn new(
        member: u64,
        client: ClientId,
        room: RoomId,
        universe: Option<UniverseId>,
        outbox: Outbox,
        rtc: Rtc,
        now: Instant,
    ) -> Self {
        Participant {
            member,
            client,
            room,
            universe,
            outbox,
            rtc,
            tracks_in: Vec::new(),
            tracks_out: Vec::new(),
            pending: None,
            ssrc_mids: Vec::new(),
            timeout: now,
            hearing: BTreeSet::new(),
            ended: None,
        }
    }

    /// Sends a signalling message to the member's connection. A full queue ends the voice
    /// session: a lost offer or answer would leave the two sides disagreeing.
    pub fn signal(&mut self, message: &ServerMessage) {
        if self.outbox.offer(&mut Encoded::new(message)).is_err() {
            self.end("the connection is not keeping up with signalling");
        }
    }

    /// Tells the member's connection about an error, if its queue has room.
    pub fn error(&self, code: multiverse_core::wire::ErrorCode, message: String) {
        let _ = self.outbox.try_error(code, message);
    }

    /// Marks the session ended (it is removed by the forwarder's next sweep).
    pub fn end(&mut self, reason: &str) {
        if self.ended.is_none() {
            tracing::info!(member = self.member, "voice ended: {reason}");
            self.ended = Some(reason.to_owned());
            self.rtc.disconnect();
        }
    }

    /// Feeds one input to the `Rtc`; an error ends the session.
    pub fn handle_input(&mut self, input: str0m::Input<'_>) {
        if self.ended.is_some() {
            return;
        }
        if let Err(e) = self.rtc.handle_input(input) {
            self.end(&format!("media session failed: {e}"));
        }
    }

    /// Drains the `Rtc` until it asks for a timeout: sends datagrams with `send` and returns
    /// what other members must hear about.
    pub fn drain(&mut self, mut send: impl FnMut(&[u8], std::net::SocketAddr)) -> Vec<Propagated> {
        let mut out = Vec::new();
        while self.ended.is_none() {
            let output = match self.rtc.poll_output() {
                Ok(output) => output,
                Err(e) => {
                    self.end(&format!("media session failed: {e}"));
                    break;
                }
            };
            match output {
                Output::Timeout(t) => {
                    self.timeout = t;
                    break;
                }
                Output::Transmit(t) => send(&t.contents, t.destination),
                Output::Event(event) => self.on_event(event, &mut out),
            }
        }
        out
    }

    fn on_event(&mut self, event: Event, out: &mut Vec<Propagated>) {
        match event {
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.end("the browser's media connection was lost");
            }
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                let kind = match added.kind {
                    str0m::media::MediaKind::Audio => MediaKind::Audio,
                    str0m::media::MediaKind::Video => MediaKind::Video,
                };
                self.tracks_in.push(TrackIn {
                    mid: added.mid,
                    kind,
                    last_keyframe_request: None,
                });
                out.push(Propagated::TrackOpen {
                    kind,
                    mid: added.mid,
                });
            }
            Event::RtpPacket(packet) => {
                if let Some(mid) = self.mid_of(packet.header.ssrc) {
                    out.push(Propagated::Rtp {
                        mid,
                        packet: Box::new(packet),
                    });
                }
            }
            Event::KeyframeRequest(request) => {
                if let Some(track) = self
                    .tracks_out
                    .iter()
                    .find(|t| t.mid() == Some(request.mid))
                {
                    out.push(Propagated::Keyframe {
                        origin: track.origin,
                        origin_mid: track.origin_mid,
                        kind: request.kind,
                    });
                }
            }
            _ => {}
        }
    }

    /// What the member publishes on `mid`, if it is one of its tracks.
    pub fn kind_in(&self, mid: Mid) -> Option<MediaKind> {
        self.tracks_in.iter().find(|t| t.mid == mid).map(|t| t.kind)
    }

    /// The media line an incoming stream belongs to (looked up once per stream).
    fn mid_of(&mut self, ssrc: Ssrc) -> Option<Mid> {
        if let Some((_, mid)) = self.ssrc_mids.iter().find(|(s, _)| *s == ssrc) {
            return Some(*mid);
        }
        let mid = self.rtc.direct_api().stream_rx(&ssrc)?.mid();
        self.ssrc_mids.push((ssrc, mid));
        Some(mid)
    }

    /// Asks this member's browser for a keyframe on one of its tracks (at most once a second).
    pub fn request_keyframe(&mut self, mid: Mid, kind: KeyframeRequestKind) {
        let now = Instant::now();
        let Some(track) = self.tracks_in.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        if track
            .last_keyframe_request
            .is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            return;
        }
        track.last_keyframe_request = Some(now);
        let mut api = self.rtc.direct_api();
        if let Some(stream) = api.stream_rx_by_mid(mid, None) {
            stream.request_keyframe(kind);
        }
    }

    /// Starts forwarding another member's track to this one (negotiated on the next
    /// [`Participant::negotiate`]).
    pub fn add_track_out(
        &mut self,
        origin: u64,
        origin_client: ClientId,
        mid: Mid,
        kind: MediaKind,
    ) {
        if self
            .tracks_out
            .iter()
            .any(|t| t.origin == origin && t.origin_mid == mid)
        {
            return;
        }
        self.tracks_out.push(TrackOut {
            origin,
            origin_client,
            origin_mid: mid,
            kind,
            state: OutState::ToOpen,
            pt: None,
            seq_offset: 0,
            last_sent: None,
            held_back: false,
        });
    }

    /// Stops forwarding every track of `origin` (it left voice).
    pub fn remove_tracks_of(&mut self, origin: u64) {
        self.tracks_out.retain_mut(|t| {
            if t.origin != origin {
                return true;
            }
            match t.state {
                OutState::ToOpen => false,
                OutState::Negotiating(m) | OutState::Open(m) => {
                    t.state = OutState::ToStop(m);
                    true
                }
                OutState::ToStop(_) | OutState::NegotiatingStop(_) => true,
            }
        });
    }

    /// If tracks came or went and no offer is outstanding, offers the change to the browser
    /// (after a `voice_tracks` naming every line).
    pub fn negotiate(&mut self) {
        if self.pending.is_some() || self.ended.is_some() {
            return;
        }
        let mut change = self.rtc.sdp_api();
        for track in &mut self.tracks_out {
            match track.state {
                OutState::ToOpen => {
                    let kind = match track.kind {
                        MediaKind::Audio => str0m::media::MediaKind::Audio,
                        MediaKind::Video => str0m::media::MediaKind::Video,
                    };
                    let stream = format!("member-{}", track.origin);
                    let mid = change.add_media(kind, Direction::SendOnly, Some(stream), None, None);
                    track.state = OutState::Negotiating(mid);
                }
                OutState::ToStop(mid) => {
                    change.stop_media(mid);
                    track.state = OutState::NegotiatingStop(mid);
                }
                _ => {}
            }
        }
        if !change.has_changes() {
            return;
        }
        let Some((offer, pending)) = change.apply() else {
            return;
        };
        self.pending = Some(pending);
        let tracks = self.track_list();
        self.signal(&ServerMessage::VoiceTracks { tracks });
        self.signal(&ServerMessage::VoiceOffer {
            sdp: offer.to_sdp_string(),
        });
    }

    /// Whether an offer of the peer's waits for the browser's answer.
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// The browser answered our offer. Returns the media lines that opened, so the forwarder
    /// can ask their publishers for keyframes.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<Vec<(u64, Mid)>, String> {
        let Some(pending) = self.pending.take() else {
            return Err("no offer from the peer is waiting for an answer".into());
        };
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| format!("not valid SDP: {e}"))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| format!("answer refused: {e}"))?;
        let mut opened = Vec::new();
        for track in &mut self.tracks_out {
            if let OutState::Negotiating(m) = track.state {
                track.state = OutState::Open(m);
                if track.kind == MediaKind::Video {
                    opened.push((track.origin, track.origin_mid));
                }
            }
        }
        self.tracks_out
            .retain(|t| !matches!(t.state, OutState::NegotiatingStop(_)));
        Ok(opened)
    }

    /// Every forwarded line the browser knows of or is being offered.
    pub fn track_list(&self) -> Vec<VoiceTrack> {
        self.tracks_out
            .iter()
            .filter(|t| matches!(t.state, OutState::Negotiating(_) | OutState::Open(_)))
            .filter_map(|t| {
                Some(VoiceTrack {
                    mid: t.mid()?.to_string(),
                    member: t.origin,
                    client: t.origin_client,
                    kind: t.kind,
                })
            })
            .collect()
    }

    /// Notes that a packet of `origin`'s line `mid` was held back from this listener.
    pub fn hold_back(&mut self, origin: u64, mid: Mid) {
        if let Some(t) = self
            .tracks_out
            .iter_mut()
            .find(|t| t.origin == origin && t.origin_mid == mid)
        {
            t.held_back = true;
        }
    }

    /// Forwards an RTP packet of `origin`'s line `mid` to the listener, if a negotiated line
    /// carries it. Returns whether it was written.
    pub fn forward(&mut self, origin: u64, mid: Mid, packet: &RtpPacket) -> bool {
        let Some(index) = self
            .tracks_out
            .iter()
            .position(|t| t.origin == origin && t.origin_mid == mid)
        else {
            return false;
        };
        let OutState::Open(out_mid) = self.tracks_out[index].state else {
            return false;
        };
        let kind = self.tracks_out[index].kind;
        let pt = match self.tracks_out[index].pt {
            Some(pt) => pt,
            None => {
                let Some(pt) = self.listener_pt(out_mid, kind) else {
                    return false;
                };
                self.tracks_out[index].pt = Some(pt);
                pt
            }
        };
        let track = &mut self.tracks_out[index];
        let incoming = *packet.seq_no;
        if track.held_back {
            // Continue right after the last packet sent, however many were held back.
            if let Some(last) = track.last_sent {
                track.seq_offset = (last + 1).wrapping_sub(incoming);
            }
            track.held_back = false;
        }
        let seq = incoming.wrapping_add(track.seq_offset);
        if track.last_sent.is_some_and(|last| seq <= last) {
            return false; // a late duplicate or a packet from before a gap
        }
        track.last_sent = Some(seq);
        let header = &packet.header;
        let write = RtpWrite::new(
            pt,
            SeqNo::from(seq),
            header.timestamp,
            packet.timestamp,
            Arc::clone(&packet.payload),
        )
        .marker(header.marker)
        .ext_vals(forwarded_extensions(&header.ext_vals))
        .nackable(kind == MediaKind::Video);
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(out_mid, None) else {
            return false;
        };
        stream.write_rtp(write);
        true
    }

    /// The listener's payload type for the codec a track of `kind` carries.
    fn listener_pt(&self, mid: Mid, kind: MediaKind) -> Option<Pt> {
        let codec = match kind {
            MediaKind::Audio => Codec::Opus,
            MediaKind::Video => Codec::Vp8,
        };
        let agreed = self.rtc.media(mid)?.remote_pts();
        self.rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec && agreed.contains(&p.pt()))
            .map(|p| p.pt())
    }
}

/// The header extensions worth passing on: audio level (for the listener's own speaking
/// detection) and video orientation. Transport ones (transport-wide sequence numbers, send
/// times, mid) belong to the listener's own session and str0m fills them in.
fn forwarded_extensions(incoming: &ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: incoming.audio_level,
        voice_activity: incoming.voice_activity,
        video_orientation: incoming.video_orientation,
        ..ExtensionValues::default()
    }
}
