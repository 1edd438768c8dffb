//! Web Audio for voice: a remote voice placed in space (source → analyser → panner →
//! destination), the level meter on our own microphone, and the speaking detector.

pub use multiverse_core::voice::panner_position;
use multiverse_core::voice::{PANNER_MAX_DISTANCE, PANNER_REF_DISTANCE, PANNER_ROLLOFF};
use wasm_bindgen::JsValue;
use web_sys::{
    AnalyserNode, AudioContext, DistanceModelType, MediaStream, MediaStreamAudioSourceNode,
    PannerNode, PanningModelType,
};

/// Distance (audio units) within which a voice is at full volume.
const REF_DISTANCE: f64 = PANNER_REF_DISTANCE as f64;
/// Distance (audio units) beyond which a voice gets no quieter.
const MAX_DISTANCE: f64 = PANNER_MAX_DISTANCE as f64;
/// How fast a voice fades with distance (inverse model).
const ROLLOFF: f64 = PANNER_ROLLOFF as f64;

/// RMS level (of samples in −1..1) above which a voice counts as speaking.
const SPEAKING_RMS: f32 = 0.02;
/// How long the indicator stays lit after the level drops (ms), so it does not flicker
/// between syllables.
const SPEAKING_HANG_MS: f64 = 300.0;
/// Samples the analyser looks at per frame.
const FFT_SIZE: u32 = 1024;

/// One audio stream's nodes: always a source and an analyser; a panner into the speakers
/// for remote voices (our own microphone is only measured, never played back).
pub struct AudioGraph {
    source: MediaStreamAudioSourceNode,
    analyser: AnalyserNode,
    panner: Option<PannerNode>,
    /// Where the panner was last put, to skip unchanged updates.
    position: [f32; 3],
    samples: Vec<f32>,
}

impl AudioGraph {
    /// source → analyser → panner (HRTF, inverse, ref 10, max 100, rolloff 2) → destination.
    pub fn spatial(ctx: &AudioContext, stream: &MediaStream) -> Result<AudioGraph, JsValue> {
        let mut graph = AudioGraph::meter(ctx, stream)?;
        let panner = ctx.create_panner()?;
        panner.set_panning_model(PanningModelType::Hrtf);
        panner.set_distance_model(DistanceModelType::Inverse);
        panner.set_ref_distance(REF_DISTANCE);
        panner.set_max_distance(MAX_DISTANCE);
        panner.set_rolloff_factor(ROLLOFF);
        graph.analyser.connect_with_audio_node(&panner)?;
        panner.connect_with_audio_node(&ctx.destination())?;
        graph.panner = Some(panner);
        Ok(graph)
    }

    /// source → analyser, for a level only.
    pub fn meter(ctx: &AudioContext, stream: &MediaStream) -> Result<AudioGraph, JsValue> {
        let source = ctx.create_media_stream_source(stream)?;
        let analyser = ctx.create_analyser()?;
        analyser.set_fft_size(FFT_SIZE);
        source.connect_with_audio_node(&analyser)?;
        Ok(AudioGraph {
            source,
            analyser,
            panner: None,
            position: [0.0; 3],
            samples: vec![0.0; FFT_SIZE as usize],
        })
    }

    /// Puts the voice at `p` (audio units, relative to the listener).
    pub fn place(&mut self, p: [f32; 3]) {
        let Some(panner) = &self.panner else { return };
        if p != self.position {
            self.position = p;
            panner.position_x().set_value(p[0]);
            panner.position_y().set_value(p[1]);
            panner.position_z().set_value(p[2]);
        }
    }

    /// Where the voice was last put.
    pub fn position(&self) -> [f32; 3] {
        self.position
    }

    /// The current RMS level, 0..1.
    pub fn level(&mut self) -> f32 {
        self.analyser.get_float_time_domain_data(&mut self.samples);
        let sum: f32 = self.samples.iter().map(|s| s * s).sum();
        (sum / self.samples.len().max(1) as f32).sqrt()
    }

    /// Unplugs every node (the context may live on).
    pub fn disconnect(&self) {
        let _ = self.source.disconnect();
        let _ = self.analyser.disconnect();
        if let Some(p) = &self.panner {
            let _ = p.disconnect();
        }
    }
}

/// Voice activity: loud enough now, or recently enough.
#[derive(Debug, Default, Clone, Copy)]
pub struct Vad {
    /// Until when (ms) the indicator stays lit.
    until: f64,
}

impl Vad {
    /// Feeds the level measured at `now` (ms); returns whether the speaker is speaking.
    pub fn update(&mut self, level: f32, now: f64) -> bool {
        if level >= SPEAKING_RMS {
            self.until = now + SPEAKING_HANG_MS;
        }
        now < self.until
    }

    /// Lights off at once (muted, or the stream went away).
    pub fn reset(&mut self) {
        self.until = f64::NEG_INFINITY;
    }
}
