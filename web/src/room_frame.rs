//! The room page's render loop: draws the panes every animation frame, walks our avatar
//! while keys are held, places the voices and lights speakers, and refreshes the HUD and
//! the test attributes (`data-grab` on the canvas, `#my-avatar`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use multiverse_core::ids::{ClientId, UniverseId};
use multiverse_core::room::CursorPosition;
use multiverse_core::universe::Vec2;
use multiverse_core::wire::ClientMessage;
use wasm_bindgen::prelude::*;

use crate::avatar;
use crate::avatar_draw::{AvatarOverlay, Person};
use crate::canvas::{areas, Layout, Overlay, Renderer};
use crate::identity;
use crate::net::{now_ms as now, Net};
use crate::room_input::{grab_hint, DRAG};
use crate::room_model::RoomModel;
use crate::scene::Scene;
use crate::voice::{Avatars, Voice};

/// How often `#my-avatar` is refreshed (ms).
const AVATAR_HINT_MS: f64 = 200.0;
/// How often the canvas's test attributes are refreshed (ms).
const GRAB_HINT_MS: f64 = 100.0;

/// What the HUD shows about the panes, refreshed from the render loop.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Hud {
    /// Entities in view in the main pane.
    pub(crate) entities: usize,
    /// The main pane's last frame.
    pub(crate) seq: Option<u64>,
    /// Whether clicks act on the main universe.
    pub(crate) interactive: bool,
    /// The last error the peer reported.
    pub(crate) error: Option<String>,
    /// The main universe.
    pub(crate) main: Option<UniverseId>,
    /// The main universe is hosted by this peer (not watched through a portal).
    pub(crate) main_local: bool,
    /// The second pane: universe, name, entities, last frame.
    pub(crate) second: Option<(UniverseId, String, usize, Option<u64>)>,
    /// Dragging an entity into the second pane sends it there.
    pub(crate) transfers: bool,
}

/// The animation-frame callback, kept alive by itself until the page is left.
type FrameCallback = Rc<RefCell<Option<Closure<dyn FnMut()>>>>;

/// What the render loop reads and feeds, besides the renderer.
#[derive(Clone, Copy)]
pub(crate) struct FrameLinks {
    /// The panes.
    pub(crate) scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    /// Members (names for avatars) and cursors.
    pub(crate) model: StoredValue<Rc<RefCell<RoomModel>>, LocalStorage>,
    /// Viewports and avatar steps go out here.
    pub(crate) net: Net,
    /// The layout chosen.
    pub(crate) layout: ReadSignal<Layout>,
    /// The HUD, refreshed when it changes.
    pub(crate) set_hud: WriteSignal<Hud>,
    /// Voices placed and speakers lit every frame.
    pub(crate) voice: Voice,
    /// Our avatar's position for `#my-avatar`, refreshed 5 times a second.
    pub(crate) my_avatar: RwSignal<Option<Vec2>>,
}

/// Runs the renderer on every animation frame until the page is left.
pub(crate) fn start_render_loop(renderer: Renderer, links: FrameLinks) {
    let FrameLinks {
        scene,
        model,
        net,
        layout,
        set_hud,
        voice,
        my_avatar,
    } = links;
    let me = identity::client_id();
    let mut last_avatar_hint = f64::NEG_INFINITY;
    let renderer = Rc::new(RefCell::new(renderer));
    let frame: FrameCallback = Rc::new(RefCell::new(None));
    let again = frame.clone();
    let mut last_viewport_sent = 0.0;
    let mut last_grab_hint = f64::NEG_INFINITY;
    *frame.borrow_mut() = Some(Closure::new(move || {
        let Some(scene) = scene.try_get_value() else {
            again.borrow_mut().take();
            return; // the room page is gone
        };
        let t = now();
        let mut scene = scene.borrow_mut();
        let (main, second) = (scene.main_id(), scene.second_id());
        let layout = layout.get_untracked();
        let carried = DRAG.with(|d| {
            d.borrow()
                .and_then(|d| d.carried.filter(|_| d.moved).map(|e| (e, (d.x, d.y))))
        });
        let cursors: Vec<_> = model
            .try_with_value(|m| {
                let m = m.borrow();
                m.cursors
                    .iter()
                    .filter_map(|(member, p)| match p {
                        CursorPosition::World { universe, at } if Some(*universe) == main => {
                            let who = m.members.get(member)?;
                            Some((who.name.clone(), who.colour, *at))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let positions = main
            .and_then(|id| scene.panes.get(&id))
            .map(|pane| avatar::positions(pane, t))
            .unwrap_or_default();
        let mine = positions.get(&me).copied();
        avatar::step(net, mine, t);
        let you = model.try_with_value(|m| m.borrow().you).flatten();
        let heard = Avatars {
            me,
            me_member: you,
            positions: &positions,
        };
        let videos = voice.frame(&heard, t);
        let avatars = AvatarOverlay {
            me: Some(me),
            people: people(model, voice),
            videos,
        };
        if t - last_avatar_hint >= AVATAR_HINT_MS {
            last_avatar_hint = t;
            let rounded =
                mine.map(|p| Vec2::new((p.x * 10.0).round() / 10.0, (p.y * 10.0).round() / 10.0));
            my_avatar.maybe_update(|m| {
                let changed = *m != rounded;
                *m = rounded;
                changed
            });
        }
        let overlay = Overlay {
            cursors,
            carried,
            avatars,
        };
        renderer.borrow_mut().draw(&mut scene, layout, t, &overlay);
        let (w, h) = renderer.borrow().size();
        let (main_area, second_area) = areas(layout, w, h);
        let last_error = scene.last_error.clone();
        let main_local = main.is_some_and(|id| scene.is_local(id));
        let second_pane = second.and_then(|id| scene.panes.get(&id));
        let second_hud = second_pane.map(|p| {
            let name = scene
                .named(p.info.id)
                .unwrap_or_else(|| p.info.name.clone());
            (p.info.id, name, p.mirror.len(), p.mirror.seq())
        });
        let transfers = main_local && second_pane.is_some();
        if t - last_grab_hint >= GRAB_HINT_MS {
            last_grab_hint = t;
            let grab = main
                .filter(|_| transfers)
                .and_then(|id| scene.panes.get(&id))
                .map(|pane| grab_hint(pane, main_area, second_area, t))
                .unwrap_or_default();
            let canvas = renderer.borrow().canvas().clone();
            let _ = canvas.set_attribute("data-grab", &grab);
            let _ = canvas.set_attribute("data-grab-at", &(t as i64).to_string());
            let second_rect = second_area
                .map(|a| {
                    let [x, y, w, h] = [a.x, a.y, a.w, a.h].map(|v| v.round() as i32);
                    format!("{x},{y},{w},{h}")
                })
                .unwrap_or_default();
            let _ = canvas.set_attribute("data-second", &second_rect);
        }
        if let Some(pane) = main.and_then(|id| scene.panes.get_mut(&id)) {
            let new = Hud {
                entities: pane.mirror.len(),
                seq: pane.mirror.seq(),
                interactive: pane.interactive(),
                error: last_error,
                main,
                main_local,
                second: second_hud,
                transfers,
            };
            let viewport = pane.camera.map(|c| c.viewport(main_area.w, main_area.h));
            // A portal streams its universe whole: only universes hosted here take a viewport.
            if main_local
                && viewport.is_some()
                && viewport != pane.sent_viewport
                && t - last_viewport_sent > 100.0
            {
                pane.sent_viewport = viewport;
                last_viewport_sent = t;
                net.send(ClientMessage::SetViewport {
                    universe: pane.info.id,
                    viewport,
                });
            }
            set_hud.maybe_update(|h| {
                let changed = *h != new;
                *h = new;
                changed
            });
        }
        drop(scene);
        if let Some(cb) = again.borrow().as_ref() {
            let _ =
                web_sys::window().map(|w| w.request_animation_frame(cb.as_ref().unchecked_ref()));
        }
    }));
    let first = frame.borrow();
    if let Some(cb) = first.as_ref() {
        let _ = web_sys::window().map(|w| w.request_animation_frame(cb.as_ref().unchecked_ref()));
    }
}

/// The room's members by client, as their avatars are labelled.
fn people(
    model: StoredValue<Rc<RefCell<RoomModel>>, LocalStorage>,
    voice: Voice,
) -> HashMap<ClientId, Person> {
    let speaking = voice.speaking.get_untracked();
    model
        .try_with_value(|m| {
            m.borrow()
                .members
                .values()
                .map(|m| {
                    let person = Person {
                        name: m.name.clone(),
                        colour: m.colour,
                        speaking: speaking.contains(&m.member),
                    };
                    (m.client, person)
                })
                .collect()
        })
        .unwrap_or_default()
}
