//! The voice panel: status, join / leave, mute, camera, and the hidden test list.

use leptos::prelude::*;

use super::{Phase, Voice};

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
                class:error=failed class:on=move || ui.with(|u| u.phase == Phase::Connected)>
                {move || ui.with(|u| u.status())}
            </p>
            <p class="error voice-note" data-testid="voice-note" hidden=move || ui.with(|u| u.note.is_none())>
                {move || ui.with(|u| u.note.clone())}
            </p>
            <div class="voice-buttons">
                <button id="voice-join" data-testid="voice-join" hidden=active
                    disabled=move || !ready.get()
                    title=move || if ready.get() { "Talk with the others: nearer avatars sound louder" } else { "Waiting to join the room…" }
                    on:click=move |_| voice.join()>
                    {move || if failed() { "Try voice again" } else { "Join voice" }}
                </button>
                <button id="voice-mute" data-testid="voice-mute" hidden=move || !active()
                    aria-pressed=move || ui.with(|u| u.muted.to_string())
                    data-muted=move || ui.with(|u| u.muted.to_string())
                    on:click=move |_| voice.toggle_mute()>
                    {move || if ui.with(|u| u.muted) { "Unmute" } else { "Mute" }}
                </button>
                <button id="voice-camera" data-testid="voice-camera" hidden=move || !active()
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
