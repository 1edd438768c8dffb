//! The others' media: one entry per received media line (by its `mid`), mapped to a member
//! by the latest `voice_tracks`. Audio plays through a spatial graph (and a muted `<audio>`
//! element, without which Chromium keeps Web Audio silent); video sits in a hidden `<video>`
//! that the canvas draws as a bubble.

use std::collections::BTreeMap;

use multiverse_core::ids::ClientId;
use multiverse_core::wire::{MediaKind, VoiceTrack};
use wasm_bindgen::JsCast;
use web_sys::{AudioContext, HtmlElement, HtmlMediaElement, HtmlVideoElement, MediaStreamTrack};

use super::audio::{AudioGraph, Vad};
use super::media;

/// A video bubble is shown only while frames keep coming: none for this long hides it (ms).
const VIDEO_STALL_MS: f64 = 1_500.0;

/// One received track, and whose it is.
pub struct Remote {
    /// The member whose media it carries.
    pub member: u64,
    /// That member's client (their avatar's marker).
    pub client: ClientId,
    /// Audio or video.
    pub kind: MediaKind,
    track: MediaStreamTrack,
    element: HtmlMediaElement,
    audio: Option<AudioGraph>,
    vad: Vad,
    /// Whether the voice is lit as speaking (audio only).
    pub speaking: bool,
    /// Video: frames decoded when last looked, and when that count last grew (ms).
    frames: (u32, f64),
}

impl Remote {
    fn new(
        ctx: &AudioContext,
        container: &HtmlElement,
        track: MediaStreamTrack,
        line: &VoiceTrack,
    ) -> Option<Remote> {
        let stream = media::stream_of(&track).ok()?;
        let tag = match line.kind {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        };
        let element = media::media_element(tag, &stream, container)?;
        let _ = element.set_attribute("data-member", &line.member.to_string());
        let audio = match line.kind {
            MediaKind::Audio => match AudioGraph::spatial(ctx, &stream) {
                Ok(graph) => Some(graph),
                Err(e) => {
                    leptos::logging::warn!("no audio graph for a voice: {}", media::describe(&e));
                    None
                }
            },
            MediaKind::Video => None,
        };
        Some(Remote {
            member: line.member,
            client: line.client,
            kind: line.kind,
            track,
            element,
            audio,
            vad: Vad::default(),
            speaking: false,
            frames: (0, f64::NEG_INFINITY),
        })
    }

    fn close(&self) {
        if let Some(graph) = &self.audio {
            graph.disconnect();
        }
        media::remove_element(&self.element);
    }

    /// Audio: places the voice at `position` (when known) and updates the speaking light.
    pub fn frame(&mut self, position: Option<[f32; 3]>, now: f64) {
        let Some(graph) = self.audio.as_mut() else {
            return;
        };
        if let Some(p) = position {
            graph.place(p);
        }
        let level = graph.level();
        self.speaking = self.vad.update(level, now);
    }

    /// Where the voice is placed (audio units), for the test list.
    pub fn position(&self) -> [f32; 3] {
        self.audio.as_ref().map_or([0.0; 3], AudioGraph::position)
    }

    /// The video element, while it shows live frames.
    pub fn live_video(&mut self, now: f64) -> Option<HtmlVideoElement> {
        let video = self.element.dyn_ref::<HtmlVideoElement>()?;
        let frames = video.get_video_playback_quality().total_video_frames();
        if frames != self.frames.0 {
            self.frames = (frames, now);
        }
        let live =
            video.video_width() > 0 && !self.track.muted() && now - self.frames.1 < VIDEO_STALL_MS;
        live.then(|| video.clone())
    }
}

/// Every received track of a voice session.
#[derive(Default)]
pub struct Remotes {
    /// By mid.
    by_mid: BTreeMap<String, Remote>,
    /// Tracks that arrived before `voice_tracks` named their mid.
    unmapped: BTreeMap<String, MediaStreamTrack>,
    /// The latest `voice_tracks`.
    lines: Vec<VoiceTrack>,
}

impl Remotes {
    /// A track arrived on media line `mid`.
    pub fn on_track(
        &mut self,
        ctx: &AudioContext,
        container: &HtmlElement,
        mid: String,
        track: MediaStreamTrack,
    ) {
        if let Some(old) = self.by_mid.remove(&mid) {
            old.close();
        }
        match self.lines.iter().find(|l| l.mid == mid) {
            Some(line) => {
                if let Some(remote) = Remote::new(ctx, container, track, line) {
                    self.by_mid.insert(mid, remote);
                }
            }
            None => {
                self.unmapped.insert(mid, track);
            }
        }
    }

    /// A new `voice_tracks`: drops the lines no longer listed, follows lines that changed
    /// hands, and starts tracks that were waiting for their mapping.
    pub fn set_lines(
        &mut self,
        ctx: &AudioContext,
        container: &HtmlElement,
        lines: Vec<VoiceTrack>,
    ) {
        self.by_mid.retain(|mid, remote| {
            let Some(line) = lines
                .iter()
                .find(|l| &l.mid == mid && l.kind == remote.kind)
            else {
                remote.close();
                return false;
            };
            if remote.member != line.member {
                remote.member = line.member;
                remote.client = line.client;
                remote.vad.reset();
                remote.speaking = false;
            }
            true
        });
        self.lines = lines;
        let waiting = std::mem::take(&mut self.unmapped);
        for (mid, track) in waiting {
            self.on_track(ctx, container, mid, track);
        }
    }

    /// Every remote track.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Remote> {
        self.by_mid.values_mut()
    }

    /// Stops playing everything.
    pub fn clear(&mut self) {
        for remote in self.by_mid.values() {
            remote.close();
        }
        self.by_mid.clear();
        self.unmapped.clear();
    }
}
