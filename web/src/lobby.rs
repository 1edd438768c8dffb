//! The lobby: pick a display name, then create or join a room.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use multiverse_core::ids::RoomId;

use crate::identity;

/// The landing page at `/`.
#[component]
pub fn Lobby() -> impl IntoView {
    let (name, set_name) = signal(identity::display_name());
    let (room, set_room) = signal(String::new());
    let (error, set_error) = signal(None::<String>);
    let navigate = use_navigate();
    let go = move |room: RoomId| {
        identity::set_display_name(&name.get_untracked());
        navigate(&format!("/r/{room}"), Default::default());
    };
    let join = {
        let go = go.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            match RoomId::new(room.get_untracked().trim()) {
                Ok(id) => go(id),
                Err(e) => set_error.set(Some(e.to_string())),
            }
        }
    };
    let create = move |_| go(random_room());
    view! {
        <main class="page narrow lobby" data-testid="lobby">
            <header class="hero">
                <h1>"Multiverse"</h1>
                <p class="tagline">"Living universes on your LAN, shared by a link."</p>
            </header>
            <label class="field">
                <span>"Your display name"</span>
                <input data-testid="display-name" maxlength="48" prop:value=name
                    on:input=move |ev| set_name.set(event_target_value(&ev)) />
            </label>
            <form class="join" on:submit=join>
                <label class="field">
                    <span>"Join a room"</span>
                    <input data-testid="room-input" placeholder="sandbox" prop:value=room
                        on:input=move |ev| { set_error.set(None); set_room.set(event_target_value(&ev)) } />
                </label>
                <button type="submit" data-testid="join-room">"Join"</button>
            </form>
            <Show when=move || error.get().is_some()>
                <p class="error" data-testid="room-error">{move || error.get()}</p>
            </Show>
            <button class="primary" data-testid="create-room" on:click=create>"Create a new room"</button>
        </main>
    }
}

/// A fresh room id such as `room-3f9a1c`.
fn random_room() -> RoomId {
    let n = (js_sys::Math::random() * f64::from(0x00ff_ffff_u32)) as u32;
    RoomId::new(&format!("room-{n:06x}")).expect("room-<hex> is a valid room id")
}
