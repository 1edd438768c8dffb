//! Your avatar in the room's universe (the peer spawns one per member, marked with the
//! member's client id): where everyone's is, walking with the arrow keys / WASD, and
//! double-click to walk to a point.
//!
//! Keys work while the focus is anywhere but a text field (the chat box keeps its arrows
//! and letters); a held key sends `move_avatar` one step ahead at most every 100 ms.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use multiverse_core::ids::ClientId;
use multiverse_core::stream::ViewMode;
use multiverse_core::universe::Vec2;
use multiverse_core::wire::ClientMessage;
use wasm_bindgen::JsCast;

use crate::canvas::Layout;
use crate::net::Net;
use crate::room_input::{canvas_size, pane_at};
use crate::scene::{Pane, Scene};

/// How far ahead one step of the keys aims (world units; the peer walks at 150 units/s).
const STEP: f32 = 60.0;
/// At most one step per this many ms while keys are held.
const STEP_PERIOD_MS: f64 = 100.0;

/// The arrow keys / WASD held down.
#[derive(Debug, Default)]
struct Keys {
    /// Held keys, as `KeyboardEvent.key` lower-cased.
    held: Vec<String>,
    /// When the last step was sent (ms).
    sent_at: f64,
    /// Whether we have an avatar on screen (only then are the keys taken from the page).
    avatar_shown: bool,
}

thread_local! {
    static KEYS: RefCell<Keys> = RefCell::new(Keys::default());
}

/// The unit direction a key walks in (y grows downwards, as on screen).
fn direction(key: &str) -> Option<(f32, f32)> {
    match key {
        "arrowup" | "w" => Some((0.0, -1.0)),
        "arrowdown" | "s" => Some((0.0, 1.0)),
        "arrowleft" | "a" => Some((-1.0, 0.0)),
        "arrowright" | "d" => Some((1.0, 0.0)),
        _ => None,
    }
}

/// Whether a key press belongs to a text field (or a picker) rather than to the avatar.
fn typing(ev: &web_sys::KeyboardEvent) -> bool {
    let Some(el) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok())
    else {
        return false;
    };
    matches!(
        el.tag_name().to_ascii_lowercase().as_str(),
        "input" | "textarea" | "select"
    ) || el.is_content_editable()
}

/// Listens to the keys on the page until the current owner (the room page) goes.
pub fn listen_keys() {
    let down = window_event_listener(leptos::ev::keydown, |ev| {
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() || typing(&ev) {
            return;
        }
        let key = ev.key().to_ascii_lowercase();
        if direction(&key).is_none() {
            return;
        }
        KEYS.with(|k| {
            let mut k = k.borrow_mut();
            if k.avatar_shown {
                ev.prevent_default(); // arrows would scroll the page
            }
            if !k.held.contains(&key) {
                k.held.push(key);
            }
        });
    });
    let up = window_event_listener(leptos::ev::keyup, |ev| {
        let key = ev.key().to_ascii_lowercase();
        KEYS.with(|k| k.borrow_mut().held.retain(|h| *h != key));
    });
    let blur = window_event_listener(leptos::ev::blur, |_| {
        KEYS.with(|k| k.borrow_mut().held.clear());
    });
    on_cleanup(move || {
        down.remove();
        up.remove();
        blur.remove();
        KEYS.with(|k| *k.borrow_mut() = Keys::default());
    });
}

/// Once per frame: while keys are held, walks our avatar (at `me`) a step their way.
pub fn step(net: Net, me: Option<Vec2>, now: f64) {
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        k.avatar_shown = me.is_some();
        let Some(me) = me else { return };
        if k.held.is_empty() || now - k.sent_at < STEP_PERIOD_MS {
            return;
        }
        let (dx, dy) = k
            .held
            .iter()
            .filter_map(|key| direction(key))
            .fold((0.0, 0.0), |(x, y), (dx, dy)| (x + dx, y + dy));
        let length = dx.hypot(dy);
        if length < 0.5 {
            return; // opposite keys cancel out
        }
        k.sent_at = now;
        let to = Vec2::new(me.x + dx / length * STEP, me.y + dy / length * STEP);
        net.send(ClientMessage::MoveAvatar { to });
    });
}

/// Where every avatar in `pane` is drawn at `now`, by its member's client.
pub fn positions(pane: &Pane, now: f64) -> HashMap<ClientId, Vec2> {
    pane.mirror
        .entities()
        .filter_map(|e| Some((e.avatar?, pane.drawn_position(e.id.index, now)?)))
        .collect()
}

/// A double-click on the main universe, where our avatar is: walk there.
pub fn walk_here(
    ev: &web_sys::MouseEvent,
    scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    layout: ReadSignal<Layout>,
    net: Net,
    me: ClientId,
) {
    let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
    let size = canvas_size(ev);
    let to = scene.with_value(|s| {
        let s = s.borrow();
        let (id, area) = pane_at(&s, layout.get_untracked(), size, x, y)?;
        let pane = s.panes.get(&id).filter(|_| Some(id) == s.main_id())?;
        let ours = pane.mirror.entities().any(|e| e.avatar == Some(me));
        if pane.mode != ViewMode::Participate || !ours {
            return None;
        }
        Some(
            pane.camera?
                .to_world(x - area.x, y - area.y, area.w, area.h),
        )
    });
    if let Some(to) = to {
        ev.prevent_default();
        net.send(ClientMessage::MoveAvatar { to });
    }
}
