//! A world room's save state, for the world's owner only: "Saved 12 s ago", "Saving…" or
//! "Save failed: …", and a "Save now" button.
//!
//! World rooms are `w-<12 hex digits>`. Whether this user owns the world is asked of the
//! peer: `GET /api/worlds/{id}` with the session token answers only for the owner (anyone
//! else gets 403, and a browser without a token asks nothing), so others see nothing here.
//! The id is the universe the room is bound to (from `room_joined`); until that arrives the
//! user's own worlds are searched for this room.

use gloo_timers::callback::Interval;
use leptos::prelude::*;
use leptos::task::spawn_local;
use multiverse_core::ids::{RoomId, UniverseId};

use crate::api::{self, World};
use crate::identity;

/// Seconds between looks at the world (autosaves move `saved_ms`).
const REFRESH_SECS: u32 = 5;

/// Whether `room` is a world's room.
pub fn is_world_room(room: &RoomId) -> bool {
    room.as_str().starts_with("w-")
}

/// What the indicator knows.
#[derive(Debug, Clone, Default, PartialEq)]
struct Save {
    /// The world, once the peer confirmed we own it.
    world: Option<World>,
    /// A save request is under way.
    saving: bool,
    /// The last failure, and the save time it happened after (a newer save clears it).
    failed: Option<(String, f64)>,
}

impl Save {
    fn phase(&self) -> &'static str {
        match (self.saving, &self.failed) {
            (true, _) => "saving",
            (false, Some(_)) => "failed",
            (false, None) => "saved",
        }
    }

    fn label(&self, now: f64) -> String {
        match (self.saving, &self.failed, &self.world) {
            (true, _, _) => "Saving…".to_owned(),
            (false, Some((why, _)), _) => format!("Save failed: {why}"),
            (false, None, Some(w)) => format!("Saved {}", api::ago(w.saved_ms, now)),
            (false, None, None) => String::new(),
        }
    }

    /// A fresh look at the world from the peer.
    fn seen(&mut self, fresh: World) {
        // An older answer must not undo a save that finished meanwhile.
        if self
            .world
            .as_ref()
            .is_none_or(|w| fresh.saved_ms >= w.saved_ms)
        {
            if self
                .failed
                .as_ref()
                .is_some_and(|(_, at)| fresh.saved_ms > *at)
            {
                self.failed = None;
            }
            self.world = Some(fresh);
        }
    }
}

/// The save indicator and button; renders nothing unless this user owns the room's world.
#[component]
pub fn WorldSaveState(
    /// The room shown.
    room: RoomId,
    /// The universe the room is bound to, once the room was joined.
    universe: ReadSignal<Option<UniverseId>>,
) -> impl IntoView {
    let token = identity::session_token().filter(|_| is_world_room(&room));
    let state = RwSignal::new(Save::default());
    let (now, set_now) = signal(api::wall_clock_ms());
    let token = StoredValue::new(token);
    let room = StoredValue::new(room.as_str().to_owned());

    let refresh = move || {
        let (Some(Some(token)), Some(room)) = (token.try_get_value(), room.try_get_value()) else {
            return;
        };
        let known = state.try_with_untracked(|s| s.world.as_ref().map(|w| w.id.clone()));
        let id = known.flatten().or_else(|| {
            universe
                .try_get_untracked()
                .flatten()
                .map(|u| u.to_string())
        });
        spawn_local(async move {
            let answer = match id {
                Some(id) => api::world(&token, &id).await.map(Some),
                None => api::my_worlds(&token)
                    .await
                    .map(|ws| ws.into_iter().find(|w| w.room == room)),
            };
            match answer {
                Ok(Some(fresh)) => state.update(|s| s.seen(fresh)),
                // Not ours (403), gone (404), token refused (401), or no such world of ours.
                Ok(None) => state.set(Save::default()),
                Err(e) if (400..500).contains(&e.status) => state.set(Save::default()),
                Err(e) => leptos::logging::warn!("cannot check the world's save state: {e}"),
            }
        });
    };
    if token.get_value().is_some() {
        // First look at once, again when the room tells which universe it shows.
        Effect::new(move |_| {
            universe.track();
            refresh();
        });
        let mut ticks = 0u32;
        let timer = Interval::new(1000, move || {
            set_now.set(api::wall_clock_ms());
            ticks += 1;
            if ticks.is_multiple_of(REFRESH_SECS) {
                refresh();
            }
        });
        let timer = StoredValue::new_local(Some(timer));
        on_cleanup(move || timer.update_value(|t| drop(t.take())));
    }

    let save = move |_| {
        let (Some(Some(token)), Some(Some(current))) = (
            token.try_get_value(),
            state.try_with_untracked(|s| s.world.clone()),
        ) else {
            return;
        };
        state.update(|s| {
            s.saving = true;
            s.failed = None;
        });
        spawn_local(async move {
            let answer = api::save_world(&token, &current.id).await;
            state.update(|s| {
                s.saving = false;
                match answer {
                    Ok(saved) => s.seen(saved),
                    Err(e) => s.failed = Some((e.message, current.saved_ms)),
                }
            });
            set_now.set(api::wall_clock_ms());
        });
    };
    view! {
        <Show when=move || state.with(|s| s.world.is_some())>
            <span class="world-save"
                data-world=state.with_untracked(|s| s.world.as_ref().map(|w| w.id.clone()))>
                <span class="save-state" data-testid="save-state" data-state=move || state.with(Save::phase)
                    role="status" aria-live="polite">{move || state.with(|s| s.label(now.get()))}</span>
                <button data-testid="save-now" on:click=save disabled=move || state.with(|s| s.saving)>
                    "Save now"
                </button>
            </span>
        </Show>
    }
}
