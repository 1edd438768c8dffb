//! The voice queue: user actions that wait on the browser and every voice message from the
//! peer, worked strictly in order by one task. A step that awaits the browser checks, after
//! each await, that its session is still the live one (it may have been left meanwhile).

use std::rc::Rc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use leptos::prelude::Update;
use multiverse_core::wire::{ClientMessage, ErrorCode, ServerMessage};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AudioContext, HtmlVideoElement, RtcIceGatheringState, RtcPeerConnection, RtcSdpType,
    RtcSessionDescriptionInit,
};

use super::session::Session;
use super::{media, NoMic, Phase, Shared};
use crate::net::now_ms;

/// The longest wait for ICE gathering before the offer or answer goes out anyway (ms).
const GATHER_MS: f64 = 2_000.0;
/// How long the peer may take to answer our offer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// One item of the voice queue.
pub enum Command {
    /// Start session `epoch` with the audio context created in the click and the microphone
    /// asked for there (or why it could not be).
    Join(AudioContext, Result<JsFuture, NoMic>, u32),
    /// *Try microphone again* in session `epoch`: the microphone asked for in the click.
    Microphone(media::Asked, u32),
    /// Camera on (`true`) or off.
    Camera(bool),
    /// A voice message (or voice refusal) from the peer.
    Signal(ServerMessage),
    /// End session `epoch` (if still live) with this reason.
    Fail {
        /// The session.
        epoch: u32,
        /// Shown in the status line.
        why: String,
    },
    /// Session `epoch` should have been answered by now.
    AnswerDue(u32),
    /// The page is gone: end the task.
    Stop,
}

/// Works the queue until [`Command::Stop`].
pub async fn run(shared: Rc<Shared>, mut commands: UnboundedReceiver<Command>) {
    while let Some(command) = commands.next().await {
        match command {
            Command::Join(ctx, mic, epoch) => join(&shared, ctx, mic, epoch).await,
            Command::Microphone(asked, epoch) => microphone(&shared, asked, epoch).await,
            Command::Camera(on) => camera(&shared, on).await,
            Command::Signal(message) => signal(&shared, message).await,
            Command::Fail { epoch, why } => {
                if shared.is_current(epoch) {
                    shared.end(Phase::Failed(why), true);
                }
            }
            Command::AnswerDue(epoch) => {
                let waiting = shared.is_current(epoch)
                    && shared
                        .session
                        .borrow()
                        .as_ref()
                        .is_some_and(|s| !s.answered);
                if waiting {
                    let why = "Voice did not start: the peer did not answer".to_owned();
                    shared.end(Phase::Failed(why), true);
                }
            }
            Command::Stop => return,
        }
    }
}

/// Microphone (or listening only without one), connection, offer.
async fn join(shared: &Rc<Shared>, ctx: AudioContext, asked: Result<JsFuture, NoMic>, epoch: u32) {
    let mic = match asked {
        Ok(asked) => media::microphone(Ok(asked))
            .await
            .map_err(|e| media::no_mic(&e)),
        Err(why) => Err(why),
    };
    if shared.epoch.get() != epoch {
        // Left before it began, or while the browser asked.
        if let Ok(mic) = &mic {
            mic.stop();
        }
        let _ = ctx.close();
        return;
    }
    let mic = match mic {
        Ok(mic) => Some(mic),
        Err(why) => {
            let _ = shared.ui.try_update(|ui| ui.listen_only = Some(why));
            None
        }
    };
    let session = match Session::start(shared, ctx, mic, epoch) {
        Ok(session) => session,
        Err(e) => {
            let why = format!("Voice could not start: {}", media::describe(&e));
            shared.end(Phase::Failed(why), false);
            return;
        }
    };
    let pc = session.pc.clone();
    *shared.session.borrow_mut() = Some(session);
    if let Err(e) = offer(shared, &pc, epoch).await {
        if shared.is_current(epoch) {
            let why = format!("Voice could not start: {}", media::describe(&e));
            shared.end(Phase::Failed(why), false);
        }
    }
}

/// Creates our one offer and sends it once ICE gathering is complete.
async fn offer(shared: &Rc<Shared>, pc: &RtcPeerConnection, epoch: u32) -> Result<(), JsValue> {
    let offer = JsFuture::from(pc.create_offer()).await?;
    if !shared.is_current(epoch) {
        return Ok(());
    }
    JsFuture::from(pc.set_local_description(offer.unchecked_ref())).await?;
    gathered(pc).await;
    if !shared.is_current(epoch) {
        return Ok(());
    }
    let sdp = local_sdp(pc)?;
    shared.owed.set(shared.owed.get() + 1);
    shared.send(ClientMessage::VoiceOffer { sdp });
    let commands = shared.commands.clone();
    leptos::task::spawn_local(async move {
        gloo_timers::future::sleep(ANSWER_TIMEOUT).await;
        let _ = commands.unbounded_send(Command::AnswerDue(epoch));
    });
    Ok(())
}

/// Waits until ICE gathering is complete, or [`GATHER_MS`] passed.
async fn gathered(pc: &RtcPeerConnection) {
    let start = now_ms();
    while pc.ice_gathering_state() != RtcIceGatheringState::Complete && now_ms() - start < GATHER_MS
    {
        gloo_timers::future::sleep(Duration::from_millis(20)).await;
    }
}

fn local_sdp(pc: &RtcPeerConnection) -> Result<String, JsValue> {
    pc.local_description()
        .map(|d| d.sdp())
        .ok_or_else(|| JsValue::from_str("no local description"))
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    init
}

/// The live session's connection and epoch.
fn live(shared: &Shared) -> Option<(RtcPeerConnection, u32)> {
    let slot = shared.session.borrow();
    slot.as_ref().map(|s| (s.pc.clone(), s.epoch))
}

/// Settles one owed answer: `None` when none was owed (the message is about something
/// else), `Some(true)` when it answers our live offer, `Some(false)` when it answers an
/// offer of a session already left.
fn settle(shared: &Shared) -> Option<bool> {
    let owed = shared.owed.get();
    (owed > 0).then(|| {
        shared.owed.set(owed - 1);
        owed == 1
    })
}

async fn signal(shared: &Rc<Shared>, message: ServerMessage) {
    // Until our offer is answered, everything else belongs to a session already left.
    let stale = shared.owed.get() > 0 || !answered_yet(shared);
    match message {
        ServerMessage::VoiceAnswer { sdp } if settle(shared) == Some(true) => {
            answered(shared, &sdp).await;
        }
        ServerMessage::VoiceOffer { sdp } if !stale => {
            let Some((pc, epoch)) = live(shared) else {
                return;
            };
            if let Err(e) = answer(shared, &pc, epoch, &sdp).await {
                if shared.is_current(epoch) {
                    let why = format!("Voice failed to renegotiate: {}", media::describe(&e));
                    shared.end(Phase::Failed(why), true);
                }
            }
        }
        ServerMessage::VoiceTracks { tracks } if !stale => {
            if let Some(s) = shared.session.borrow_mut().as_mut() {
                s.remotes.set_lines(&s.ctx, &s.container, tracks);
            }
        }
        ServerMessage::VoiceEnded { reason } if !stale && shared.session.borrow().is_some() => {
            shared.end(Phase::Failed(format!("Voice ended: {reason}")), false);
        }
        ServerMessage::Error { code, message } => refused(shared, code, &message),
        _ => {}
    }
}

/// Applies the peer's answer to our offer.
async fn answered(shared: &Rc<Shared>, sdp: &str) {
    let Some((pc, epoch)) = live(shared) else {
        return;
    };
    let init = description(RtcSdpType::Answer, sdp);
    match JsFuture::from(pc.set_remote_description(&init)).await {
        Ok(_) => {
            if let Some(s) = shared.session.borrow_mut().as_mut() {
                s.answered = true;
            }
        }
        Err(e) if shared.is_current(epoch) => {
            let why = format!("Voice could not connect: {}", media::describe(&e));
            shared.end(Phase::Failed(why), true);
        }
        Err(_) => {}
    }
}

/// Answers the peer's renegotiation.
async fn answer(
    shared: &Rc<Shared>,
    pc: &RtcPeerConnection,
    epoch: u32,
    sdp: &str,
) -> Result<(), JsValue> {
    let init = description(RtcSdpType::Offer, sdp);
    JsFuture::from(pc.set_remote_description(&init)).await?;
    let answer = JsFuture::from(pc.create_answer()).await?;
    if !shared.is_current(epoch) {
        return Ok(());
    }
    JsFuture::from(pc.set_local_description(answer.unchecked_ref())).await?;
    gathered(pc).await;
    if shared.is_current(epoch) {
        shared.send(ClientMessage::VoiceAnswer {
            sdp: local_sdp(pc)?,
        });
    }
    Ok(())
}

/// Whether the live session's offer has been answered.
fn answered_yet(shared: &Shared) -> bool {
    shared.session.borrow().as_ref().is_some_and(|s| s.answered)
}

/// The peer refused our offer or answer, or voice altogether.
fn refused(shared: &Shared, code: ErrorCode, message: &str) {
    let settles = settle(shared);
    let about_live = match settles {
        Some(answers_live) => answers_live,
        None => code != ErrorCode::NotInRoom && answered_yet(shared),
    };
    if !about_live || shared.session.borrow().is_none() {
        return; // about an abandoned offer or session, or not about voice at all
    }
    let why = match code {
        ErrorCode::VoiceUnavailable => format!("Voice is not available here: {message}"),
        ErrorCode::NotInRoom => "Voice needs you in the room: wait until you have joined".into(),
        _ => format!("Voice could not connect: {message}"),
    };
    // A refused renegotiation leaves a session on the peer's side: end it there too.
    shared.end(Phase::Failed(why), settles.is_none());
}

/// *Try microphone again*: once granted, the track goes on the audio line (which exists
/// since the first offer: no renegotiation) and voice is no longer listening only.
async fn microphone(shared: &Rc<Shared>, asked: media::Asked, epoch: u32) {
    let result = media::microphone(asked).await;
    let sender = shared
        .session
        .borrow()
        .as_ref()
        .filter(|s| s.epoch == epoch && s.mic.is_none())
        .map(|s| s.audio.sender());
    let (track, sender) = match (result, sender) {
        (Ok(track), Some(sender)) => (track, sender),
        (Ok(track), None) => {
            track.stop(); // left meanwhile, or a microphone already
            return;
        }
        (Err(e), Some(_)) => {
            let why = media::no_mic(&e);
            let note = media::retry_note(why, &e);
            let _ = shared.ui.try_update(|ui| {
                ui.listen_only = Some(why);
                ui.note = Some(note);
            });
            return;
        }
        (Err(_), None) => return,
    };
    let sent = JsFuture::from(sender.replace_track(Some(&track))).await;
    let mut slot = shared.session.borrow_mut();
    let session = slot
        .as_mut()
        .filter(|s| s.epoch == epoch && s.mic.is_none());
    match (session, sent) {
        (Some(session), Ok(_)) => {
            session.add_mic(track);
            let _ = shared.ui.try_update(|ui| {
                ui.listen_only = None;
                ui.muted = false;
                ui.note = None;
            });
        }
        (Some(_), Err(e)) => {
            track.stop();
            let note = format!("The microphone could not be sent: {}", media::describe(&e));
            let _ = shared.ui.try_update(|ui| ui.note = Some(note));
        }
        (None, _) => track.stop(),
    }
}

/// Camera on: ask for it, put it on the video line, show our preview. Off: take it off.
async fn camera(shared: &Rc<Shared>, on: bool) {
    let Some((sender, epoch, has_camera)) = shared
        .session
        .borrow()
        .as_ref()
        .map(|s| (s.video.sender(), s.epoch, s.camera.is_some()))
    else {
        return;
    };
    if !on {
        let camera = shared
            .session
            .borrow_mut()
            .as_mut()
            .and_then(|s| s.camera.take());
        let _ = JsFuture::from(sender.replace_track(None)).await;
        if let Some((track, preview)) = camera {
            track.stop();
            media::remove_element(&preview);
        }
        let _ = shared.ui.try_update(|ui| ui.camera = false);
        return;
    }
    if has_camera {
        return;
    }
    let track = match media::camera().await {
        Ok(track) => track,
        Err(e) => {
            let note = media::camera_error(&e);
            let _ = shared.ui.try_update(|ui| {
                ui.camera = false;
                ui.note = Some(note);
            });
            return;
        }
    };
    let sent = JsFuture::from(sender.replace_track(Some(&track))).await;
    let mut slot = shared.session.borrow_mut();
    let session = slot.as_mut().filter(|s| s.epoch == epoch);
    let preview = media::stream_of(&track).ok().and_then(|stream| {
        let container = &session.as_ref()?.container;
        media::media_element("video", &stream, container)?
            .dyn_into::<HtmlVideoElement>()
            .ok()
    });
    match (session, sent, preview) {
        (Some(session), Ok(_), Some(preview)) => {
            session.camera = Some((track, preview));
            let _ = shared.ui.try_update(|ui| {
                ui.camera = true;
                ui.note = None;
            });
        }
        (session, sent, preview) => {
            track.stop();
            if let Some(p) = preview {
                media::remove_element(&p);
            }
            if let (Some(_), Err(e)) = (session, sent) {
                let note = format!("The camera could not be sent: {}", media::describe(&e));
                let _ = shared.ui.try_update(|ui| ui.note = Some(note));
            }
        }
    }
}
