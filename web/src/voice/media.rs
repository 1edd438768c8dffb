//! Browser media plumbing for voice: asking for the microphone and the camera, the hidden
//! media elements, and the `window.__multiverse_voice_pc` test hook.

use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    HtmlElement, HtmlMediaElement, MediaDevices, MediaStream, MediaStreamConstraints,
    MediaStreamTrack, RtcPeerConnection,
};

use super::NoMic;

/// The name under which the peer connection is exposed on `window` while voice is on.
const PC_HOOK: &str = "__multiverse_voice_pc";

/// Why the microphone prompt did not give a track.
pub fn no_mic(e: &JsValue) -> NoMic {
    match error_name(e).as_str() {
        "NotAllowedError" | "SecurityError" => NoMic::Blocked,
        "NotFoundError" | "OverconstrainedError" => NoMic::Missing,
        "NotReadableError" | "AbortError" => NoMic::Busy,
        "NoMediaDevices" => NoMic::Insecure,
        _ => NoMic::Failed,
    }
}

/// What to tell after *Try microphone again* did not give a track.
pub fn retry_note(why: NoMic, e: &JsValue) -> String {
    match why {
        NoMic::Blocked => {
            "The microphone is still blocked: allow it in the site settings (by the address), \
             then try again"
                .into()
        }
        NoMic::Missing => "Still no microphone found: plug one in, then try again".into(),
        NoMic::Busy => {
            "The microphone is busy in another program: close it there, then try again".into()
        }
        NoMic::Insecure => {
            "No microphone on this page: browsers allow it only over https or on localhost".into()
        }
        NoMic::Failed => format!("The microphone could not be opened: {}", describe(e)),
    }
}

/// What the camera prompt ended with, when it did not give a track.
pub fn camera_error(e: &JsValue) -> String {
    match error_name(e).as_str() {
        "NotAllowedError" | "SecurityError" => {
            "Camera blocked: allow it in the site settings to show video".into()
        }
        "NotFoundError" | "OverconstrainedError" => "No camera found".into(),
        "NotReadableError" | "AbortError" => "The camera is busy in another program".into(),
        _ => format!("The camera could not be opened: {}", describe(e)),
    }
}

/// A DOMException's `name` (`NotAllowedError`, …), or empty.
fn error_name(e: &JsValue) -> String {
    Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default()
}

/// A JS error as one line of text.
pub fn describe(e: &JsValue) -> String {
    let message = Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .filter(|m| !m.is_empty());
    message
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Whether the page may ask for a microphone or camera at all: a secure context (https or
/// localhost) with `navigator.mediaDevices`.
pub fn devices_available() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    window.is_secure_context() && media_devices().is_some()
}

fn media_devices() -> Option<MediaDevices> {
    web_sys::window()
        .and_then(|w| w.navigator().media_devices().ok())
        .filter(|d| !d.is_undefined() && !d.is_null())
}

/// A `getUserMedia` under way (already handled: a refusal is never an unhandled rejection),
/// or why it could not start.
pub type Asked = Result<JsFuture, JsValue>;

/// Starts `getUserMedia({audio: true})` now (call it inside the click: some browsers prompt
/// only within a gesture); [`microphone`] takes the track from it.
pub fn ask_microphone() -> Asked {
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&JsValue::TRUE);
    ask(&constraints)
}

/// Our microphone's track, from what [`ask_microphone`] started.
pub async fn microphone(asked: Asked) -> Result<MediaStreamTrack, JsValue> {
    first_track(asked?, true).await
}

/// `getUserMedia({video: {width: 320, height: 240}})`: our camera's track.
pub async fn camera() -> Result<MediaStreamTrack, JsValue> {
    let size = Object::new();
    let _ = Reflect::set(&size, &"width".into(), &320.into());
    let _ = Reflect::set(&size, &"height".into(), &240.into());
    let constraints = MediaStreamConstraints::new();
    constraints.set_video(&size);
    first_track(ask(&constraints)?, false).await
}

/// Starts `getUserMedia`; an error named `NoMediaDevices` when the page has none.
fn ask(constraints: &MediaStreamConstraints) -> Asked {
    let no_devices = || {
        let e = Object::new();
        let _ = Reflect::set(&e, &"name".into(), &"NoMediaDevices".into());
        JsValue::from(e)
    };
    let devices = media_devices().ok_or_else(no_devices)?;
    Ok(JsFuture::from(
        devices.get_user_media_with_constraints(constraints)?,
    ))
}

async fn first_track(asked: JsFuture, audio: bool) -> Result<MediaStreamTrack, JsValue> {
    let stream: MediaStream = asked.await?.dyn_into()?;
    let tracks = if audio {
        stream.get_audio_tracks()
    } else {
        stream.get_video_tracks()
    };
    tracks
        .get(0)
        .dyn_into::<MediaStreamTrack>()
        .map_err(|_| JsValue::from_str("no track in the stream"))
}

/// A stream of one track.
pub fn stream_of(track: &MediaStreamTrack) -> Result<MediaStream, JsValue> {
    let tracks = js_sys::Array::of1(track);
    MediaStream::new_with_tracks(&tracks)
}

/// An invisible, but rendered, box for media elements: Chromium keeps decoding and playing
/// them (a `display: none` video may be paused), and nothing shows.
pub fn hidden_container() -> Option<HtmlElement> {
    let document = web_sys::window()?.document()?;
    let div: HtmlElement = document.create_element("div").ok()?.dyn_into().ok()?;
    let _ = div.set_attribute("data-testid", "voice-media");
    let _ = div.set_attribute("aria-hidden", "true");
    let _ = div.set_attribute(
        "style",
        "position:fixed;left:0;top:0;width:1px;height:1px;overflow:hidden;opacity:0;pointer-events:none",
    );
    document.body()?.append_child(&div).ok()?;
    Some(div)
}

/// A muted, autoplaying `<audio>` or `<video>` playing `stream`, inside `container`.
pub fn media_element(
    tag: &str,
    stream: &MediaStream,
    container: &HtmlElement,
) -> Option<HtmlMediaElement> {
    let document = web_sys::window()?.document()?;
    let el: HtmlMediaElement = document.create_element(tag).ok()?.dyn_into().ok()?;
    el.set_muted(true);
    el.set_autoplay(true);
    let _ = el.set_attribute("playsinline", "");
    let _ = el.set_attribute("muted", "");
    if tag == "video" {
        let _ = el.set_attribute("width", "1");
        let _ = el.set_attribute("height", "1");
    }
    el.set_src_object(Some(stream));
    container.append_child(&el).ok()?;
    play(&el);
    Some(el)
}

/// Starts playback, ignoring a refusal (the element is only there to keep the stream
/// flowing; autoplay of muted media is allowed anyway).
pub fn play(el: &HtmlMediaElement) {
    if let Ok(promise) = el.play() {
        wasm_bindgen_futures::spawn_local(async move {
            let _ = JsFuture::from(promise).await;
        });
    }
}

/// Detaches and removes a media element.
pub fn remove_element(el: &HtmlMediaElement) {
    el.set_src_object(None);
    el.remove();
}

/// Sets or clears `window.__multiverse_voice_pc`.
pub fn expose_pc(pc: Option<&RtcPeerConnection>) {
    let Some(window) = web_sys::window() else {
        return;
    };
    match pc {
        Some(pc) => {
            let _ = Reflect::set(&window, &PC_HOOK.into(), pc);
        }
        None => {
            let _ = Reflect::delete_property(&window, &PC_HOOK.into());
        }
    }
}
