//! Pointer input on the room canvas: a drag on empty space pans, the wheel zooms, a click
//! ripples, shift-click spawns, and a drag that starts on an entity carries it to the second
//! pane (a transfer). See the room page's module docs for the behaviour.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use multiverse_core::ids::{EntityId, UniverseId};
use multiverse_core::stream::Interaction;
use multiverse_core::universe::Vec2;
use multiverse_core::wire::ClientMessage;
use wasm_bindgen::JsCast;

use crate::api;
use crate::canvas::{areas, Area, Layout};
use crate::net::{now_ms as now, Net};
use crate::room::TransferStatus;
use crate::scene::{Camera, Scene};

/// A pointer press under way on the canvas.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drag {
    /// Where the press started (canvas pixels).
    pub(crate) x0: f32,
    /// Where the press started (canvas pixels).
    pub(crate) y0: f32,
    /// Where the pointer is now (canvas pixels).
    pub(crate) x: f32,
    /// Where the pointer is now (canvas pixels).
    pub(crate) y: f32,
    /// The pane's camera when panning began.
    pub(crate) camera: Option<Camera>,
    /// Whether it moved far enough to be a drag rather than a click.
    pub(crate) moved: bool,
    /// The entity of the main pane the press began on, when it can be carried into the
    /// second pane (a transfer drag rather than a pan).
    pub(crate) carried: Option<EntityId>,
}

thread_local! {
    /// The press under way, if any.
    pub(crate) static DRAG: RefCell<Option<Drag>> = const { RefCell::new(None) };
}

/// How far the pointer must move before a press becomes a drag (pixels).
pub(crate) const DRAG_THRESHOLD: f32 = 4.0;

pub(crate) fn pointer_down(
    ev: &web_sys::PointerEvent,
    scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    layout: ReadSignal<Layout>,
) {
    let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
    let size = canvas_size(ev);
    // An entity of a universe hosted here, pressed while a second pane shows: carry it.
    let carried = scene.with_value(|s| {
        let s = s.borrow();
        let (main, second) = (s.main_id()?, s.second_id()?);
        if !s.is_local(main) || !s.panes.contains_key(&second) {
            return None;
        }
        let (id, area) = pane_at(&s, layout.get_untracked(), size, x, y)?;
        let pane = s.panes.get(&main).filter(|_| id == main)?;
        pane.entity_at(x - area.x, y - area.y, area.w, area.h, now())
    });
    if carried.is_some() {
        // Keep receiving the pointer while it crosses the HUD or leaves the canvas.
        if let Some(el) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        {
            let _ = el.set_pointer_capture(ev.pointer_id());
        }
    }
    let drag = Drag {
        x0: x,
        y0: y,
        x,
        y,
        camera: None,
        moved: false,
        carried,
    };
    DRAG.with(|d| *d.borrow_mut() = Some(drag));
}

/// Which pane is under a canvas point, and that pane's area.
pub(crate) fn pane_at(
    scene: &Scene,
    layout: Layout,
    canvas: (f32, f32),
    x: f32,
    y: f32,
) -> Option<(UniverseId, Area)> {
    let (main, second) = areas(layout, canvas.0, canvas.1);
    if let (Some(area), Some(id)) = (second, scene.second_id()) {
        if area.contains(x, y) {
            return Some((id, area));
        }
    }
    Some((scene.main_id()?, main))
}

pub(crate) fn canvas_size(ev: &web_sys::MouseEvent) -> (f32, f32) {
    let el = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok());
    el.map_or((1.0, 1.0), |e| {
        (e.client_width() as f32, e.client_height() as f32)
    })
}

pub(crate) fn pointer_move(
    ev: &web_sys::PointerEvent,
    scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    layout: ReadSignal<Layout>,
) {
    let Some(drag) = DRAG.with(|d| *d.borrow()) else {
        return;
    };
    let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
    let moved = drag.moved || (x - drag.x0).hypot(y - drag.y0) >= DRAG_THRESHOLD;
    let mut next = Drag {
        x,
        y,
        moved,
        ..drag
    };
    if moved && drag.carried.is_none() {
        let size = canvas_size(ev);
        scene.with_value(|s| {
            let mut s = s.borrow_mut();
            let Some((id, _)) = pane_at(&s, layout.get_untracked(), size, drag.x0, drag.y0) else {
                return;
            };
            let Some(pane) = s.panes.get_mut(&id) else {
                return;
            };
            let Some(camera) = drag.camera.or(pane.camera) else {
                return;
            };
            pane.camera = Some(Camera {
                centre: Vec2::new(
                    camera.centre.x - (x - drag.x0) / camera.zoom,
                    camera.centre.y - (y - drag.y0) / camera.zoom,
                ),
                ..camera
            });
            next.camera = Some(camera);
        });
    }
    DRAG.with(|d| *d.borrow_mut() = Some(next));
}

pub(crate) fn pointer_up(
    ev: &web_sys::PointerEvent,
    scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    layout: ReadSignal<Layout>,
    net: Net,
    set_transfer: WriteSignal<TransferStatus>,
) {
    let drag = DRAG.with(|d| d.borrow_mut().take());
    let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
    let size = canvas_size(ev);
    if let Some((entity, true)) = drag.and_then(|d| Some((d.carried?, d.moved))) {
        carry(
            scene,
            layout.get_untracked(),
            size,
            (x, y),
            entity,
            set_transfer,
        );
        return;
    }
    if drag.is_some_and(|d| d.moved) {
        return; // that was a pan, not a click
    }
    let request = scene.with_value(|s| {
        let mut s = s.borrow_mut();
        let (id, area) = pane_at(&s, layout.get_untracked(), size, x, y)?;
        let pane = s.panes.get(&id)?;
        let camera = pane.camera?;
        if !pane.interactive() {
            s.last_error = Some(format!("{} is view only for you", pane.info.name));
            return None;
        }
        let at = camera.to_world(x - area.x, y - area.y, area.w, area.h);
        let interaction = if ev.shift_key() {
            Interaction::Command {
                name: "spawn".into(),
                at,
            }
        } else {
            Interaction::Click { at }
        };
        Some(ClientMessage::Interact {
            universe: id,
            interaction,
        })
    });
    if let Some(request) = request {
        net.send(request);
    }
}

/// An entity of the main pane was carried to canvas point `at`: if that is over the second
/// pane, ask the peer to send it there, arriving where it was dropped.
pub(crate) fn carry(
    scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    layout: Layout,
    size: (f32, f32),
    at: (f32, f32),
    entity: EntityId,
    set_transfer: WriteSignal<TransferStatus>,
) {
    let target = scene.with_value(|s| {
        let s = s.borrow();
        let (main, second) = (s.main_id()?, s.second_id()?);
        let (id, area) = pane_at(&s, layout, size, at.0, at.1)?;
        let camera = s.panes.get(&second).filter(|_| id == second)?.camera?;
        let exit = camera.to_world(at.0 - area.x, at.1 - area.y, area.w, area.h);
        Some((main, second, exit))
    });
    let Some((from, to, exit)) = target else {
        return; // dropped outside the second pane: nothing to do
    };
    set_transfer.set(Some(("sending", "Sending…".into())));
    spawn_local(async move {
        let (from, to) = (from.to_string(), to.to_string());
        let who = (entity.index, entity.generation);
        let answer = api::start_transfer(&from, who, &to, (exit.x, exit.y)).await;
        let status = match answer {
            Ok(_) => ("sent", "Sent".to_owned()),
            Err(e) => ("failed", e.message),
        };
        let _ = set_transfer.try_set(Some(status));
    });
}

/// The canvas's `data-grab` test attribute: up to eight entities of the main pane that
/// can be grabbed (inside the main area, clear of the second pane and the edges), slowest
/// first, as `index:generation:x:y:vx:vy;…` in whole canvas pixels and pixels per second.
pub(crate) fn grab_hint(
    pane: &crate::scene::Pane,
    main: Area,
    second: Option<Area>,
    t: f64,
) -> String {
    const MARGIN: f32 = 30.0;
    let Some(camera) = pane.camera else {
        return String::new();
    };
    let clear = |x: f32, y: f32| {
        let inside = x > main.x + MARGIN
            && x < main.x + main.w - MARGIN
            && y > main.y + MARGIN
            && y < main.y + main.h - MARGIN;
        let near_second = second.is_some_and(|a| {
            Area {
                x: a.x - MARGIN,
                y: a.y - MARGIN,
                w: a.w + 2.0 * MARGIN,
                h: a.h + 2.0 * MARGIN,
                round: false,
            }
            .contains(x, y)
        });
        inside && !near_second
    };
    // The eight slowest, kept in order as they are found (no sort: less wasm).
    let mut found: Vec<(f32, EntityId, [f32; 4])> = Vec::with_capacity(9);
    for e in pane.mirror.entities() {
        let Some(p) = pane.drawn_position(e.id.index, t) else {
            continue;
        };
        let (x, y) = camera.to_screen(p, main.w, main.h);
        let (x, y) = (x as f32 + main.x, y as f32 + main.y);
        let v = e.velocity();
        let (vx, vy) = (v.x * camera.zoom, v.y * camera.zoom);
        let speed = vx.hypot(vy);
        if clear(x, y) && (found.len() < 8 || speed < found[7].0) {
            let at = found.iter().take_while(|f| f.0 <= speed).count();
            found.insert(at, (speed, e.id, [x, y, vx, vy]));
            found.truncate(8);
        }
    }
    found
        .into_iter()
        .map(|(_, id, numbers)| {
            let [x, y, vx, vy] = numbers.map(|v| v.round() as i32);
            format!("{}:{}:{x}:{y}:{vx}:{vy}", id.index, id.generation)
        })
        .collect::<Vec<_>>()
        .join(";")
}

pub(crate) fn wheel(
    ev: &web_sys::WheelEvent,
    scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    layout: ReadSignal<Layout>,
) {
    ev.prevent_default();
    let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
    let size = canvas_size(ev);
    scene.with_value(|s| {
        let mut s = s.borrow_mut();
        let Some((id, area)) = pane_at(&s, layout.get_untracked(), size, x, y) else {
            return;
        };
        let Some(pane) = s.panes.get_mut(&id) else {
            return;
        };
        let Some(camera) = pane.camera else { return };
        let (px, py) = (x - area.x, y - area.y);
        let anchor = camera.to_world(px, py, area.w, area.h);
        let zoom = (camera.zoom * (-ev.delta_y() as f32 * 0.0015).exp()).clamp(0.05, 40.0);
        let zoomed = Camera { zoom, ..camera };
        let drift = zoomed.to_world(px, py, area.w, area.h);
        pane.camera = Some(Camera {
            centre: Vec2::new(
                camera.centre.x + anchor.x - drift.x,
                camera.centre.y + anchor.y - drift.y,
            ),
            zoom,
        });
    });
}
