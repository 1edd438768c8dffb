//! The lobby: pick a display name, then create or join a room; below, the user's own worlds:
//! create one from a template, open it, delete it.

use gloo_timers::callback::Interval;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use multiverse_core::ids::RoomId;

use crate::api::{self, ApiError, Template, World};
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
            <YourWorlds name />
            <p class="peers-link"><a href="/peers" data-testid="peers-link">"Peers"</a>
                " — link this peer to others on your LAN and watch their universes."</p>
        </main>
    }
}

/// A fresh room id such as `room-3f9a1c`.
fn random_room() -> RoomId {
    let n = (js_sys::Math::random() * f64::from(0x00ff_ffff_u32)) as u32;
    RoomId::new(&format!("room-{n:06x}")).expect("room-<hex> is a valid room id")
}

/// The session (refreshed under the current name), then the user's worlds.
async fn load_worlds() -> Result<Vec<World>, ApiError> {
    let session = identity::ensure_session().await?;
    api::my_worlds(&session.token).await
}

/// "Your worlds": a template picker, a name, "Create world", and the user's worlds.
///
/// The template cards and the list are each one reactive block of plain elements (re-drawn
/// when they change, which is rare): per-element reactivity would cost tens of KB of wasm.
#[component]
fn YourWorlds(
    /// The display name being edited above (stored before creating a world).
    name: ReadSignal<String>,
) -> impl IntoView {
    let (templates, set_templates) = signal(None::<Vec<Template>>);
    let (chosen, set_chosen) = signal(None::<String>);
    let (worlds, set_worlds) = signal(None::<Vec<World>>);
    let (world_name, set_world_name) = signal(String::new());
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    // The world whose Delete was pressed once (the second press deletes).
    let (confirming, set_confirming) = signal(None::<String>);
    let (now, set_now) = signal(api::wall_clock_ms());
    let navigate = use_navigate();

    spawn_local(async move {
        match api::templates().await {
            Ok(list) => {
                let first = list.first().map(|t| t.name.clone());
                set_chosen.update(|c| {
                    if c.is_none() {
                        *c = first;
                    }
                });
                set_templates.set(Some(list));
            }
            Err(e) => set_error.set(Some(format!("Templates are unavailable: {e}"))),
        }
    });
    spawn_local(async move {
        match load_worlds().await {
            Ok(list) => set_worlds.set(Some(list)),
            Err(e) => set_error.set(Some(format!("Your worlds are unavailable: {e}"))),
        }
    });
    let clock = Interval::new(10_000, move || set_now.set(api::wall_clock_ms()));
    let clock = StoredValue::new_local(Some(clock));
    on_cleanup(move || clock.update_value(|c| drop(c.take())));

    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let Some(template) = chosen.get_untracked() else {
            set_error.set(Some("Pick a template first.".into()));
            return;
        };
        let title = world_name.get_untracked().trim().to_owned();
        if title.is_empty() {
            set_error.set(Some("Give your world a name.".into()));
            return;
        }
        identity::set_display_name(&name.get_untracked());
        set_busy.set(true);
        set_error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            let created = async {
                let session = identity::ensure_session().await?;
                api::create_world(&session.token, &template, &title).await
            }
            .await;
            set_busy.set(false);
            match created {
                Ok(world) => navigate(&format!("/r/{}", world.room), Default::default()),
                Err(e) => set_error.set(Some(e.message)),
            }
        });
    };
    let delete = move |id: String| {
        if confirming.get_untracked().as_deref() != Some(id.as_str()) {
            set_confirming.set(Some(id));
            return;
        }
        set_confirming.set(None);
        let Some(token) = identity::session_token() else {
            return;
        };
        set_error.set(None);
        spawn_local(async move {
            match api::delete_world(&token, &id).await {
                Ok(()) => set_worlds.update(|ws| {
                    if let Some(ws) = ws {
                        ws.retain(|w| w.id != id);
                    }
                }),
                Err(e) => set_error.set(Some(format!("Could not delete: {e}"))),
            }
        });
    };

    let cards = move || {
        let chosen = chosen.get();
        templates.get().map(|list| {
            list.into_iter()
                .map(|t| {
                    let on = chosen.as_deref() == Some(t.name.as_str());
                    let pick = t.name.clone();
                    view! {
                        <button type="button" role="radio" aria-checked=on.to_string()
                            class=if on { "template chosen" } else { "template" }
                            data-testid=format!("template-{}", t.name)
                            on:click=move |_| set_chosen.set(Some(pick.clone()))>
                            <strong>{t.title}</strong>
                            <span class="description">{t.description}</span>
                            <span class="tag">{format!("{} entities", t.entities)}</span>
                        </button>
                    }
                })
                .collect_view()
        })
    };
    let items = move || {
        let (now, confirming) = (now.get(), confirming.get());
        let list = worlds.get();
        let ready = if list.is_some() { "ready" } else { "loading" };
        let empty = list.as_ref().is_some_and(Vec::is_empty);
        let items = list
            .unwrap_or_default()
            .into_iter()
            .map(|w| {
                let asking = confirming.as_deref() == Some(w.id.as_str());
                let meta = format!(
                    "{} · {} entities · saved {}",
                    w.template,
                    w.entities,
                    api::ago(w.saved_ms, now)
                );
                let (id, testid) = (w.id, format!("world-{}", w.name));
                view! {
                    <li class="world" data-testid=testid data-room=w.room.clone()>
                        <div class="about">
                            <strong class="name">{w.name}</strong>
                            <span class="meta">{meta}</span>
                        </div>
                        <a class="button" data-testid="open-world" href=format!("/r/{}", w.room)>"Open"</a>
                        <button class="danger" data-testid="delete-world"
                            on:click=move |_| delete(id.clone())>
                            {if asking { "Really delete?" } else { "Delete" }}
                        </button>
                    </li>
                }
            })
            .collect_view();
        view! {
            <ul class="world-list" data-testid="my-worlds" data-state=ready>{items}</ul>
            {empty.then(|| view! {
                <p class="hint" data-testid="no-worlds">"No worlds yet: pick a template and give it a name."</p>
            })}
        }
    };

    view! {
        <section class="worlds" data-testid="your-worlds">
            <h2>"Your worlds"</h2>
            <p class="hint">"A world is your own universe, cloned from a template and saved on this peer."</p>
            <div class="templates" role="radiogroup" aria-label="Template">{cards}</div>
            <form class="join" on:submit=create>
                <label class="field">
                    <span>"World name"</span>
                    <input data-testid="world-name" maxlength="64" placeholder="My tank" prop:value=world_name
                        on:input=move |ev| { set_error.set(None); set_world_name.set(event_target_value(&ev)) } />
                </label>
                <button type="submit" data-testid="create-world" disabled=busy>"Create world"</button>
            </form>
            {move || error.get().map(|e| view! { <p class="error" data-testid="world-error" role="alert">{e}</p> })}
            {items}
        </section>
    }
}
