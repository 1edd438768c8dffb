//! The voice panel: status, join / leave, mute, camera, *Try microphone again* while
//! listening only, and the hidden test list.

use leptos::prelude::*;

use super::{media, Phase, Voice};

/// Voice controls for the room's side panel.
#[component]
pub fn VoicePanel(
    /// The page's voice.
    voice: Voice,
    /// Whether voice can start now (connected to the peer and in the room).
    ready: Signal<bool>,
) -> impl IntoView {
    let ui = voice.ui;
    let active = move || ui.with(|u| u.active());
    let failed = move || ui.with(|u| matches!(u.phase, Phase::Failed(_)));
    view! {
        <section class="panel voice" data-testid="voice">
            <h2>"Voice"</h2>
            <p id="voice-status" data-testid="voice-status" role="status" class="voice-status"
                data-listen-only=move || ui.with(|u| u.listen_only.is_some().to_string())
                class:error=failed class:on=move || ui.with(|u| u.phase == Phase::Connected)
                class:listen-only=move || ui.with(|u| u.listen_only.is_some())>
                {move || ui.with(|u| u.status())}
            </p>
            <p class="error voice-note" data-testid="voice-note" hidden=move || ui.with(|u| u.note.is_none())>
                {move || ui.with(|u| u.note.clone())}
            </p>
            <div class="voice-buttons">
                <button id="voice-join" data-testid="voice-join" hidden=active
                    disabled=move || !ready.get()
                    title=move || join_title(ready.get())
                    on:click=move |_| voice.join()>
                    {move || if failed() { "Try voice again" } else { "Join voice" }}
                </button>
                <button id="voice-mic-retry" data-testid="voice-mic-retry"
                    hidden=move || !ui.with(|u| u.can_retry_mic())
                    title="Ask for the microphone again, to talk as well as listen"
                    on:click=move |_| voice.retry_microphone()>"Try microphone again"</button>
                <button id="voice-mute" data-testid="voice-mute" hidden=move || !ui.with(|u| u.can_mute())
                    aria-pressed=move || ui.with(|u| u.muted.to_string())
                    data-muted=move || ui.with(|u| u.muted.to_string())
                    on:click=move |_| voice.toggle_mute()>
                    {move || if ui.with(|u| u.muted) { "Unmute" } else { "Mute" }}
                </button>
                <button id="voice-camera" data-testid="voice-camera" hidden=move || !ui.with(|u| u.can_camera())
                    aria-pressed=move || ui.with(|u| u.camera.to_string())
                    data-camera=move || ui.with(|u| u.camera.to_string())
                    on:click=move |_| voice.toggle_camera()>
                    {move || if ui.with(|u| u.camera) { "Camera off" } else { "Camera on" }}
                </button>
                <button id="voice-leave" data-testid="voice-leave" hidden=move || !active()
                    on:click=move |_| voice.leave()>"Leave voice"</button>
            </div>
            <ul id="voice-debug" data-testid="voice-debug" hidden>
                <For each=move || voice.debug.get() key=|row| row.clone() let:row>
                    <li data-member=row.member.to_string() data-kind="audio"
                        data-panner-x=row.panner[0].clone() data-panner-y=row.panner[1].clone()
                        data-panner-z=row.panner[2].clone() data-speaking=row.speaking.to_string()></li>
                </For>
            </ul>
        </section>
    }
}

/// The *Join voice* tooltip: off https and localhost it can only listen.
fn join_title(ready: bool) -> &'static str {
    match (ready, media::devices_available()) {
        (false, _) => "Waiting to join the room…",
        (true, true) => "Talk with the others: nearer avatars sound louder",
        (true, false) => {
            "Listen to the others (nearer avatars sound louder); to talk, open this room on \
             https or localhost"
        }
    }
}
