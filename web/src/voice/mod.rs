//! Voice and video in the room: one WebRTC connection to the peer (which forwards the others'
//! media), each voice placed in space by the avatars' positions, speaking lights, mute and
//! camera. Optional: the room works the same without it.
//!
//! ## Listening only
//! Without a microphone — the page is not a secure context (plain http on a LAN address, so
//! browsers give it no `navigator.mediaDevices`), the prompt was refused, or there is none —
//! voice still joins, *listening only*: the audio line goes out without a track, the peer
//! forwards the others to us as usual and nobody hears us. *Try microphone again* asks once
//! more and, when granted, puts the track on that line with `replaceTrack` (no renegotiation).
//!
//! ## Negotiation (the peer implements the other side)
//! 1. *Join voice* (a user gesture): the `AudioContext` is created and resumed right there,
//!    and `getUserMedia({audio: true})` is asked there too (unless the page has no media
//!    devices); without a microphone voice goes on listening only.
//! 2. `new RTCPeerConnection({})` (no ICE servers: a LAN), a send-only audio transceiver with
//!    the microphone (or no track) and a send-only video transceiver without a track. The
//!    offer goes out as `voice_offer` once ICE gathering is complete (at most 2 s: the peer
//!    does not trickle); `voice_answer` completes it. The client never offers again.
//! 3. When the others' tracks come and go the peer sends `voice_tracks` (which media line is
//!    whose), then `voice_offer`; we answer with `voice_answer`.
//! 4. Camera on/off replaces the video sender's track; mute disables the microphone track; a
//!    microphone granted later replaces the audio sender's (empty) track.
//! 5. *Leave voice*, leaving the page, `voice_ended` or a refusal end it all (`voice_leave`
//!    tells the peer when it knew of us).
//!
//! Voice messages and actions that wait on the browser go through one queue worked by one
//! task ([`signalling`]), strictly in order: an answer and the next offer can arrive back to
//! back. The render loop calls [`Voice::frame`] to place the voices and light speakers.
//!
//! ## Test hooks
//! `window.__multiverse_voice_pc` is the `RTCPeerConnection` while voice is on. The panel has
//! `#voice-join`, `#voice-leave`, `#voice-mute` (hidden without a microphone),
//! `#voice-camera` (hidden without media devices), `#voice-mic-retry` (listening only, when
//! asking again may help), the status `#voice-status` (`Voice off`, `Voice: connecting…`,
//! `Voice: connected`, `Voice: listening only — <reason>`, or what went wrong; its
//! `data-listen-only` is `true` without a microphone), and a hidden `<ul id="voice-debug">`
//! with one `<li data-member data-kind="audio" data-panner-x data-panner-y data-panner-z
//! data-speaking>` per remote voice, refreshed 5 times a second.

mod audio;
mod media;
mod panel;
mod remote;
mod session;
mod signalling;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use futures::channel::mpsc::{unbounded, UnboundedSender};
use leptos::prelude::*;
use multiverse_core::ids::ClientId;
use multiverse_core::universe::Vec2;
use multiverse_core::wire::{ClientMessage, ErrorCode, MediaKind, ServerMessage};
use web_sys::{AudioContext, HtmlVideoElement};

use crate::net::Net;
pub use panel::VoicePanel;
use session::Session;
use signalling::Command;

/// How often the hidden test list is refreshed (ms).
const DEBUG_PERIOD_MS: f64 = 200.0;

/// Where voice stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Phase {
    /// Not joined (or left).
    #[default]
    Off,
    /// Asking for the microphone, negotiating, or waiting for the media path.
    Connecting,
    /// Media flows.
    Connected,
    /// It ended or never started; the text says why.
    Failed(String),
}

/// Why voice is listening only: we have no microphone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMic {
    /// Not a secure context (https or localhost): the page has no media devices at all.
    Insecure,
    /// The prompt was refused, or the microphone is blocked for the site.
    Blocked,
    /// No microphone device.
    Missing,
    /// Another program holds the microphone.
    Busy,
    /// Something else went wrong opening it.
    Failed,
}

impl NoMic {
    /// What the status line says after *listening only —*.
    pub fn reason(self) -> &'static str {
        match self {
            NoMic::Insecure => "open this room on https or localhost to talk",
            NoMic::Blocked => "microphone blocked",
            NoMic::Missing => "no microphone found",
            NoMic::Busy => "microphone busy in another program",
            NoMic::Failed => "microphone could not be opened",
        }
    }

    /// Whether asking again may help (there are media devices to ask).
    pub fn can_retry(self) -> bool {
        self != NoMic::Insecure
    }
}

/// What the voice panel shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VoiceUi {
    /// Where voice stands.
    pub phase: Phase,
    /// Why we only listen, when we have no microphone.
    pub listen_only: Option<NoMic>,
    /// Whether our microphone is muted.
    pub muted: bool,
    /// Whether our camera is sent.
    pub camera: bool,
    /// A problem that did not end voice (the camera, or the microphone asked again, was
    /// refused).
    pub note: Option<String>,
}

impl VoiceUi {
    /// The status line (`#voice-status`).
    pub fn status(&self) -> String {
        match &self.phase {
            Phase::Off => "Voice off".into(),
            Phase::Connecting => "Voice: connecting…".into(),
            Phase::Connected => match self.listen_only {
                None => "Voice: connected".into(),
                Some(why) => format!("Voice: listening only — {}", why.reason()),
            },
            Phase::Failed(why) => why.clone(),
        }
    }

    /// Whether voice is starting or on (leave, mute and camera apply).
    pub fn active(&self) -> bool {
        matches!(self.phase, Phase::Connecting | Phase::Connected)
    }

    /// Whether voice is on with a microphone (mute applies).
    pub fn can_mute(&self) -> bool {
        self.active() && self.listen_only.is_none()
    }

    /// Whether the camera can be offered (voice on, and the page has media devices).
    pub fn can_camera(&self) -> bool {
        self.active() && self.listen_only != Some(NoMic::Insecure)
    }

    /// Whether *Try microphone again* is offered.
    pub fn can_retry_mic(&self) -> bool {
        self.active() && self.listen_only.is_some_and(NoMic::can_retry)
    }
}

/// One remote voice in the hidden test list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DebugRow {
    /// Whose voice.
    pub member: u64,
    /// The panner's x, y, z (audio units, two decimals).
    pub panner: [String; 3],
    /// Whether it is lit as speaking.
    pub speaking: bool,
}

/// Where everyone's avatar is this frame.
pub struct Avatars<'a> {
    /// Our client (our avatar's marker).
    pub me: ClientId,
    /// Our membership in the room, once joined.
    pub me_member: Option<u64>,
    /// Drawn avatar positions in the room's universe, by client.
    pub positions: &'a HashMap<ClientId, Vec2>,
}

/// State shared by the page's handle, the signalling task and the browser callbacks. No
/// borrow of `session` is ever held across an `await`.
struct Shared {
    /// The socket to the peer (set once it is started).
    net: Cell<Option<Net>>,
    /// The signalling queue.
    commands: UnboundedSender<Command>,
    /// The live session, if any.
    session: RefCell<Option<Session>>,
    /// Offers sent whose answer (or refusal) has not come yet. While more than one is owed,
    /// what arrives belongs to a session already left, and is dropped.
    owed: Cell<u32>,
    /// Bumped when a session starts or ends: work begun for an older one stops.
    epoch: Cell<u32>,
    /// When the test list was last refreshed (ms).
    debug_at: Cell<f64>,
    ui: RwSignal<VoiceUi>,
    speaking: RwSignal<BTreeSet<u64>>,
    debug: RwSignal<Vec<DebugRow>>,
}

impl Shared {
    fn send(&self, message: ClientMessage) {
        if let Some(net) = self.net.get() {
            net.send(message);
        }
    }

    fn command(&self, command: Command) {
        let _ = self.commands.unbounded_send(command);
    }

    /// Whether the session begun at `epoch` is still the live one.
    fn is_current(&self, epoch: u32) -> bool {
        self.epoch.get() == epoch && self.session.borrow().is_some()
    }

    /// Ends the session (if any) at once: closes the connection, stops our tracks, removes
    /// the media elements; tells the peer when `tell_peer` and it knew of the session.
    fn end(&self, phase: Phase, tell_peer: bool) {
        self.epoch.set(self.epoch.get().wrapping_add(1));
        let session = self.session.borrow_mut().take();
        if let Some(session) = session {
            session.close();
            if tell_peer {
                self.send(ClientMessage::VoiceLeave);
            }
        }
        let _ = self.ui.try_update(|ui| {
            *ui = VoiceUi {
                phase,
                ..VoiceUi::default()
            }
        });
        let _ = self.speaking.try_set(BTreeSet::new());
        let _ = self.debug.try_set(Vec::new());
    }
}

/// The room page's voice: a cheap handle for views and callbacks.
#[derive(Clone, Copy)]
pub struct Voice {
    shared: StoredValue<Rc<Shared>, LocalStorage>,
    /// What the panel shows.
    pub ui: RwSignal<VoiceUi>,
    /// Members lit as speaking (ourselves included).
    pub speaking: RwSignal<BTreeSet<u64>>,
    /// The hidden test list.
    pub debug: RwSignal<Vec<DebugRow>>,
}

impl Voice {
    /// Voice for a room page, off; its task runs until [`Voice::shutdown`].
    pub fn new() -> Voice {
        let (commands, rx) = unbounded();
        let (ui, speaking, debug) = (
            RwSignal::new(VoiceUi::default()),
            RwSignal::new(BTreeSet::new()),
            RwSignal::new(Vec::new()),
        );
        let shared = Rc::new(Shared {
            net: Cell::new(None),
            commands,
            session: RefCell::new(None),
            owed: Cell::new(0),
            epoch: Cell::new(0),
            debug_at: Cell::new(f64::NEG_INFINITY),
            ui,
            speaking,
            debug,
        });
        leptos::task::spawn_local(signalling::run(shared.clone(), rx));
        Voice {
            shared: StoredValue::new_local(shared),
            ui,
            speaking,
            debug,
        }
    }

    /// Connects the handle to the page's socket.
    pub fn attach(&self, net: Net) {
        self.shared.with_value(|s| s.net.set(Some(net)));
    }

    /// *Join voice*: must run inside the click (the audio context needs the gesture).
    pub fn join(&self) {
        if self.ui.get_untracked().active() {
            return;
        }
        let ctx = match AudioContext::new() {
            Ok(ctx) => ctx,
            Err(e) => {
                let why = format!("This browser cannot play voice: {}", media::describe(&e));
                self.ui.set(VoiceUi {
                    phase: Phase::Failed(why),
                    ..VoiceUi::default()
                });
                return;
            }
        };
        if let Ok(resumed) = ctx.resume() {
            leptos::task::spawn_local(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(resumed).await;
            });
        }
        // Asked in the click too: some browsers prompt only within a gesture.
        let mic = if media::devices_available() {
            media::ask_microphone().map_err(|e| media::no_mic(&e))
        } else {
            Err(NoMic::Insecure)
        };
        self.ui.set(VoiceUi {
            phase: Phase::Connecting,
            ..VoiceUi::default()
        });
        self.shared.with_value(|s| {
            let epoch = s.epoch.get().wrapping_add(1);
            s.epoch.set(epoch);
            s.command(Command::Join(ctx, mic, epoch));
        });
    }

    /// *Try microphone again* while listening only: asks for it (inside the click) and, once
    /// granted, sends it on the existing audio line.
    pub fn retry_microphone(&self) {
        if !self.ui.get_untracked().can_retry_mic() {
            return;
        }
        let ask = media::ask_microphone();
        self.ui.update(|ui| ui.note = None);
        self.shared
            .with_value(|s| s.command(Command::Microphone(ask, s.epoch.get())));
    }

    /// *Leave voice*.
    pub fn leave(&self) {
        self.shared.with_value(|s| s.end(Phase::Off, true));
    }

    /// Mutes or unmutes our microphone.
    pub fn toggle_mute(&self) {
        let muted = self.shared.with_value(|s| {
            let session = s.session.borrow();
            let mic = session.as_ref()?.mic.as_ref()?;
            mic.set_enabled(!mic.enabled());
            Some(!mic.enabled())
        });
        if let Some(muted) = muted {
            self.ui.update(|ui| ui.muted = muted);
        }
    }

    /// Turns our camera on or off.
    pub fn toggle_camera(&self) {
        let on = !self.ui.get_untracked().camera;
        self.shared.with_value(|s| s.command(Command::Camera(on)));
    }

    /// Takes the peer's voice messages (and refusals of voice); `false` for anything else.
    /// A `not_in_room` refusal of our offer is taken and also left for the room to show.
    pub fn handle(&self, message: &ServerMessage) -> bool {
        let Some(shared) = self.shared.try_get_value() else {
            return false;
        };
        let (take, consume) = match message {
            ServerMessage::VoiceAnswer { .. }
            | ServerMessage::VoiceOffer { .. }
            | ServerMessage::VoiceTracks { .. }
            | ServerMessage::VoiceHearing { .. }
            | ServerMessage::VoiceEnded { .. } => (true, true),
            ServerMessage::Error {
                code: ErrorCode::BadSdp | ErrorCode::VoiceUnavailable,
                ..
            } => (true, true),
            ServerMessage::Error {
                code: ErrorCode::NotInRoom,
                ..
            } => (shared.owed.get() > 0, false),
            _ => (false, false),
        };
        if take {
            shared.command(Command::Signal(message.clone()));
        }
        consume
    }

    /// The socket to the peer closed: the peer has forgotten our voice.
    pub fn connection_lost(&self) {
        self.shared.with_value(|s| {
            s.owed.set(0);
            if s.session.borrow().is_some() || self.ui.get_untracked().active() {
                let why = "Voice ended: the connection to the peer was lost".to_owned();
                s.end(Phase::Failed(why), false);
            }
        });
    }

    /// The page is being left: ends voice and its task.
    pub fn shutdown(&self) {
        if let Some(s) = self.shared.try_get_value() {
            s.end(Phase::Off, true);
            s.command(Command::Stop);
        }
    }

    /// Once per animation frame: places every voice relative to our avatar, updates the
    /// speaking lights (and, 5 times a second, the test list); returns the videos to draw
    /// above avatars, ours included.
    pub fn frame(&self, at: &Avatars<'_>, now: f64) -> Vec<(ClientId, HtmlVideoElement)> {
        let Some(shared) = self.shared.try_get_value() else {
            return Vec::new();
        };
        let Ok(mut slot) = shared.session.try_borrow_mut() else {
            return Vec::new();
        };
        let Some(session) = slot.as_mut() else {
            return Vec::new();
        };
        let me = at.positions.get(&at.me).copied();
        let mut speaking = BTreeSet::new();
        let mut videos = Vec::new();
        for remote in session.remotes.iter_mut() {
            match remote.kind {
                MediaKind::Audio => {
                    let them = at.positions.get(&remote.client).copied();
                    let p = me
                        .zip(them)
                        .map(|(me, them)| audio::panner_position(me, them));
                    remote.frame(p, now);
                    if remote.speaking {
                        speaking.insert(remote.member);
                    }
                }
                MediaKind::Video => {
                    videos.extend(remote.live_video(now).map(|v| (remote.client, v)))
                }
            }
        }
        if session.speaking_self(now) {
            speaking.extend(at.me_member);
        }
        videos.extend(session.preview().map(|v| (at.me, v)));
        shared.speaking.maybe_update(|s| {
            let changed = *s != speaking;
            *s = speaking;
            changed
        });
        if now - shared.debug_at.get() >= DEBUG_PERIOD_MS {
            shared.debug_at.set(now);
            let rows = session.debug_rows();
            shared.debug.maybe_update(|d| {
                let changed = *d != rows;
                *d = rows;
                changed
            });
        }
        videos
    }
}
