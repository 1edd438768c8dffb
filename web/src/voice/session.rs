//! One voice session: the peer connection with our microphone (if any) and camera, the audio
//! context, the others' media, and the browser callbacks, all torn down together.

use std::rc::{Rc, Weak};

use leptos::prelude::Update;
use wasm_bindgen::prelude::*;
use web_sys::{
    AudioContext, HtmlElement, HtmlVideoElement, MediaStreamTrack, RtcConfiguration,
    RtcPeerConnection, RtcPeerConnectionState, RtcRtpTransceiver, RtcRtpTransceiverDirection,
    RtcRtpTransceiverInit, RtcTrackEvent,
};

use super::audio::{AudioGraph, Vad};
use super::remote::Remotes;
use super::signalling::Command;
use super::{media, DebugRow, Phase, Shared};

/// Everything a joined voice session holds.
pub struct Session {
    /// Which session this is (see `Shared::epoch`).
    pub epoch: u32,
    /// The connection to the peer.
    pub pc: RtcPeerConnection,
    /// Plays the others' voices; created in the *Join voice* click.
    pub ctx: AudioContext,
    /// Our microphone (`enabled` is the mute switch); `None` while listening only.
    pub mic: Option<MediaStreamTrack>,
    /// The level of our own microphone, for our speaking light.
    meter: Option<AudioGraph>,
    own_vad: Vad,
    /// The send-only audio line: a microphone granted later goes in with `replaceTrack`.
    pub audio: RtcRtpTransceiver,
    /// The send-only video line: the camera goes in and out with `replaceTrack`.
    pub video: RtcRtpTransceiver,
    /// Our camera while it is on, and its preview (drawn above our avatar).
    pub camera: Option<(MediaStreamTrack, HtmlVideoElement)>,
    /// Holds the media elements, invisibly.
    pub container: HtmlElement,
    /// The others' tracks.
    pub remotes: Remotes,
    /// Whether the peer's answer to our offer has been applied.
    pub answered: bool,
    on_track: Closure<dyn FnMut(RtcTrackEvent)>,
    on_state: Closure<dyn FnMut()>,
}

impl Session {
    /// A connection with an audio line carrying `mic` (no track while listening only) and an
    /// empty video line, both send-only, with its callbacks wired to `shared`, exposed as
    /// `window.__multiverse_voice_pc`. Nothing is negotiated yet.
    pub fn start(
        shared: &Rc<Shared>,
        ctx: AudioContext,
        mic: Option<MediaStreamTrack>,
        epoch: u32,
    ) -> Result<Session, JsValue> {
        let container = media::hidden_container().ok_or("no document to hold media")?;
        let pc = RtcPeerConnection::new_with_configuration(&RtcConfiguration::new())?;
        let send_only = RtcRtpTransceiverInit::new();
        send_only.set_direction(RtcRtpTransceiverDirection::Sendonly);
        let audio = match &mic {
            Some(mic) => pc.add_transceiver_with_media_stream_track_and_init(mic, &send_only),
            None => pc.add_transceiver_with_str_and_init("audio", &send_only),
        };
        let video = pc.add_transceiver_with_str_and_init("video", &send_only);
        let meter = mic.as_ref().and_then(|mic| meter(&ctx, mic));
        let on_track = track_callback(Rc::downgrade(shared), epoch);
        pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));
        let on_state = state_callback(Rc::downgrade(shared), pc.clone(), epoch);
        pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        media::expose_pc(Some(&pc));
        Ok(Session {
            epoch,
            pc,
            ctx,
            mic,
            meter,
            own_vad: Vad::default(),
            audio,
            video,
            camera: None,
            container,
            remotes: Remotes::default(),
            answered: false,
            on_track,
            on_state,
        })
    }

    /// Closes the connection, stops our tracks, removes the media elements and the hook.
    pub fn close(mut self) {
        self.pc.set_ontrack(None);
        self.pc.set_onconnectionstatechange(None);
        self.pc.close();
        if let Some(mic) = &self.mic {
            mic.stop();
        }
        if let Some((track, preview)) = self.camera.take() {
            track.stop();
            media::remove_element(&preview);
        }
        self.remotes.clear();
        if let Some(meter) = &self.meter {
            meter.disconnect();
        }
        self.container.remove();
        if let Ok(closed) = self.ctx.close() {
            wasm_bindgen_futures::spawn_local(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(closed).await;
            });
        }
        media::expose_pc(None);
        drop((self.on_track, self.on_state));
    }

    /// Takes a microphone granted after joining (already on the audio line's sender).
    pub fn add_mic(&mut self, mic: MediaStreamTrack) {
        if let Some(old) = self.meter.take() {
            old.disconnect();
        }
        self.meter = meter(&self.ctx, &mic);
        self.own_vad.reset();
        self.mic = Some(mic);
    }

    /// Whether our own speaking light is on at `now` (never while muted, nor without a
    /// microphone: nothing is measured then).
    pub fn speaking_self(&mut self, now: f64) -> bool {
        let live = self.mic.as_ref().is_some_and(|mic| mic.enabled());
        match &mut self.meter {
            Some(meter) if live => self.own_vad.update(meter.level(), now),
            _ => {
                self.own_vad.reset();
                false
            }
        }
    }

    /// Our camera's preview, once it shows frames.
    pub fn preview(&self) -> Option<HtmlVideoElement> {
        let (_, preview) = self.camera.as_ref()?;
        (preview.video_width() > 0).then(|| preview.clone())
    }

    /// The hidden test list's rows: one per remote voice.
    pub fn debug_rows(&mut self) -> Vec<DebugRow> {
        self.remotes
            .iter_mut()
            .filter(|r| r.kind == multiverse_core::wire::MediaKind::Audio)
            .map(|r| DebugRow {
                member: r.member,
                panner: r.position().map(|v| format!("{v:.2}")),
                speaking: r.speaking,
            })
            .collect()
    }
}

/// The level meter on our microphone (our speaking light), if Web Audio can make one.
fn meter(ctx: &AudioContext, mic: &MediaStreamTrack) -> Option<AudioGraph> {
    media::stream_of(mic)
        .and_then(|stream| AudioGraph::meter(ctx, &stream))
        .ok()
}

/// `ontrack`: the track's media line is looked up in the latest `voice_tracks`.
fn track_callback(shared: Weak<Shared>, epoch: u32) -> Closure<dyn FnMut(RtcTrackEvent)> {
    Closure::new(move |ev: RtcTrackEvent| {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Ok(mut slot) = shared.session.try_borrow_mut() else {
            leptos::logging::warn!("voice: a track arrived while the session was busy");
            return;
        };
        let Some(s) = slot.as_mut().filter(|s| s.epoch == epoch) else {
            return;
        };
        let mid = ev.transceiver().mid().unwrap_or_default();
        s.remotes.on_track(&s.ctx, &s.container, mid, ev.track());
    })
}

/// `connectionstatechange`: connected lights the status; failed ends the session (through
/// the queue: the session owns this very callback).
fn state_callback(shared: Weak<Shared>, pc: RtcPeerConnection, epoch: u32) -> Closure<dyn FnMut()> {
    Closure::new(move || {
        let Some(shared) = shared.upgrade().filter(|s| s.epoch.get() == epoch) else {
            return;
        };
        match pc.connection_state() {
            RtcPeerConnectionState::Connected => {
                let _ = shared.ui.try_update(|ui| {
                    if ui.phase == Phase::Connecting {
                        ui.phase = Phase::Connected;
                    }
                });
            }
            RtcPeerConnectionState::Failed => shared.command(Command::Fail {
                epoch,
                why: "Voice connection failed: no media path to the peer (is UDP blocked?)".into(),
            }),
            _ => {}
        }
    })
}
