//! The room page at `/r/:room`: the universe canvas, its controls and the connection badge.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::html::Canvas;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};
use multiverse_core::connection::ConnectionState;
use multiverse_core::ids::{RoomId, UniverseId};
use multiverse_core::stream::Interaction;
use multiverse_core::wire::{ClientMessage, ServerMessage};
use wasm_bindgen::prelude::*;

use crate::canvas::{areas, Layout, Renderer};
use crate::identity;
use crate::net::{now_ms as now, Net};
use crate::room_model::{RoomModel, RoomSnapshot};
use crate::room_panels::{new_message_id, ChatPanel, CursorList, MembersPanel, SharePanel};
use crate::scene::{Camera, Scene};
use crate::status::ConnectionBadge;
use crate::world_status::{is_world_room, WorldSaveState};
use multiverse_core::room::CursorPosition;

/// A room: connects to the peer while shown, disconnects when left.
#[component]
pub fn RoomPage() -> impl IntoView {
    let params = use_params_map();
    let room = move || params.read().get("room").map(|r| RoomId::new(&r));
    move || match room() {
        Some(Ok(room)) => view! { <RoomView room /> }.into_any(),
        _ => view! {
            <main class="page narrow" data-testid="bad-room">
                <h1>"Not a room name"</h1>
                <p>"Room names are 1–64 characters of a–z, 0–9, '-' and '_'."</p>
                <A href="/">"Back to the lobby"</A>
            </main>
        }
        .into_any(),
    }
}

/// What the HUD shows about the main pane, refreshed from the render loop.
#[derive(Debug, Clone, Default, PartialEq)]
struct Hud {
    entities: usize,
    seq: Option<u64>,
    interactive: bool,
    error: Option<String>,
}

#[component]
fn RoomView(room: RoomId) -> impl IntoView {
    let name = identity::display_name();
    let query = use_query_map();
    let main = query
        .read_untracked()
        .get("universe")
        .unwrap_or_else(|| "sandbox".into());
    let invite = query.read_untracked().get("invite");
    let scene = Rc::new(RefCell::new(Scene::showing(main)));
    let model = Rc::new(RefCell::new(RoomModel {
        room: Some(room.clone()),
        invite,
        ..RoomModel::default()
    }));
    let (names, set_names) = signal(Vec::<(UniverseId, String)>::new());
    let (snapshot, set_snapshot) = signal(RoomSnapshot::default());
    // The universe the room is bound to (from `room_joined`); a world room shows its own.
    let (bound, set_bound) = signal(None::<UniverseId>);
    let world_room = is_world_room(&room);
    let handler = {
        let (scene, model) = (scene.clone(), model.clone());
        Rc::new(move |message: ServerMessage| {
            if let ServerMessage::UniverseList { universes } = &message {
                set_names.set(universes.iter().map(|u| (u.id, u.name.clone())).collect());
            }
            let (mut replies, about_room) = model.borrow_mut().handle(&message);
            if about_room {
                set_snapshot.set(model.borrow().snapshot());
                if let ServerMessage::RoomJoined(welcome) = &message {
                    let universe = welcome.config.universe;
                    set_bound.set(universe);
                    if let Some(id) = universe.filter(|_| world_room) {
                        let mut scene = scene.borrow_mut();
                        if scene.main_pin.is_none() {
                            scene.show(id);
                            replies.extend(scene.sync_subscriptions());
                        }
                        // A world is listed only to sessions in its room: ask again now.
                        replies.push(ClientMessage::ListUniverses);
                    }
                }
                return replies;
            }
            scene.borrow_mut().handle(message, now())
        })
    };
    let net = Net::start(
        name.clone(),
        identity::client_id(),
        identity::session_token(),
        handler,
    );
    on_cleanup(move || net.stop());
    let state = net.state;
    let (layout, set_layout) = signal(Layout::Full);
    let (hud, set_hud) = signal(Hud::default());
    let scene = StoredValue::new_local(scene);
    let model = StoredValue::new_local(model);

    // Every (re)connection starts from nothing on the peer's side: ask what it hosts, and
    // (re)join the room, which resends our unacknowledged chat.
    Effect::new(move |_| {
        if matches!(state.get(), ConnectionState::Connected { .. }) {
            scene.with_value(|s| s.borrow_mut().reset());
            net.send(ClientMessage::ListUniverses);
            for m in model.with_value(|m| m.borrow_mut().on_connected()) {
                net.send(m);
            }
        }
    });
    start_heartbeat(net);
    let on_send = Callback::new(move |text: String| {
        let out = model.with_value(|m| {
            let mut m = m.borrow_mut();
            let out = m.say(new_message_id(), text);
            set_snapshot.set(m.snapshot());
            out
        });
        out.into_iter().for_each(|m| net.send(m));
    });
    let send = Callback::new(move |message: ClientMessage| net.send(message));
    let page_cursor = window_event_listener(leptos::ev::pointermove, move |ev| {
        let on_canvas = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlCanvasElement>().ok())
            .is_some();
        if !on_canvas {
            let Some(w) = web_sys::window() else { return };
            let size = |v: Result<JsValue, JsValue>| {
                v.ok().and_then(|v| v.as_f64()).unwrap_or(1.0).max(1.0)
            };
            let x = (f64::from(ev.client_x()) / size(w.inner_width())).clamp(0.0, 1.0) as f32;
            let y = (f64::from(ev.client_y()) / size(w.inner_height())).clamp(0.0, 1.0) as f32;
            send_cursor(net, Some(CursorPosition::Viewport { x, y }));
        }
    });
    on_cleanup(move || page_cursor.remove());
    // The layout and the chosen universe decide what to subscribe to.
    let resubscribe = move || {
        let messages = scene.with_value(|s| {
            let mut s = s.borrow_mut();
            let wanted_second = layout.get_untracked().needs_second();
            let main = s.main_id();
            s.second = wanted_second
                .then(|| {
                    s.universes
                        .iter()
                        .map(|u| u.id)
                        .find(|id| Some(*id) != main)
                })
                .flatten();
            s.sync_subscriptions()
        });
        messages.into_iter().for_each(|m| net.send(m));
    };
    Effect::new(move |_| {
        layout.track();
        resubscribe();
    });

    let canvas_ref = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        if let Some(canvas) = canvas_ref.get() {
            if let Some(renderer) = Renderer::new(canvas) {
                start_render_loop(renderer, scene, model, net, layout, set_hud);
            }
        }
    });

    let peer = move || match state.get() {
        ConnectionState::Connected { peer_name, .. } => Some(peer_name),
        _ => None,
    };
    let on_select = move |ev: leptos::ev::Event| {
        if let Ok(chosen) = event_target_value(&ev).parse::<UniverseId>() {
            scene.with_value(|s| s.borrow_mut().show(chosen));
            resubscribe();
        }
    };
    view! {
        <main class="room" data-testid="room" data-room=room.to_string()>
            <header class="topbar">
                <A href="/" attr:class="brand">"Multiverse"</A>
                <h1 class="room-name" data-testid="room-name">{format!("#{room}")}</h1>
                <span class="me">"You are " <strong data-testid="my-name">{name}</strong>
                    {move || peer().map(|p| view! { " · peer " <strong data-testid="peer-name">{p}</strong> })}
                </span>
                <WorldSaveState room=room.clone() universe=bound />
                <ConnectionBadge state />
            </header>
            <section class="stage">
                <canvas class="universe" data-testid="universe-canvas" node_ref=canvas_ref
                    on:pointerdown=move |ev| pointer_down(&ev)
                    on:pointermove=move |ev| { pointer_move(&ev, scene, layout); world_cursor(&ev, scene, layout, net) }
                    on:pointerup=move |ev| pointer_up(&ev, scene, layout, net)
                    on:wheel=move |ev| wheel(&ev, scene, layout)></canvas>
                <div class="hud">
                    <span data-testid="entity-count" data-count=move || hud.get().entities.to_string()
                        data-seq=move || hud.get().seq.map(|s| s.to_string()).unwrap_or_default()>
                        {move || format!("{} entities in view", hud.get().entities)}
                    </span>
                    <span class="mode" data-testid="mode">
                        {move || if hud.get().interactive { "[Interactive] click: ripple · shift-click: spawn" } else { "[View Only]" }}
                    </span>
                    {move || hud.get().error.map(|e| view! { <span class="error" data-testid="last-error">{e}</span> })}
                </div>
            </section>
            <aside class="side">
                {move || snapshot.get().problem.map(|p| view! { <p class="error" data-testid="room-error">{p}</p> })}
                <MembersPanel room=snapshot />
                <ChatPanel room=snapshot on_send />
                <SharePanel room=snapshot send />
            </aside>
            <CursorList room=snapshot />
            <nav class="controls">
                <label>"Universe "
                    <select data-testid="universe-select" on:change=on_select>
                        {move || names.get().into_iter().map(|(id, n)| {
                            let selected = scene.with_value(|s| s.borrow().main_id() == Some(id));
                            view! { <option value=id.to_string() selected=selected>{n}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <span class="layouts">
                    {Layout::ALL.into_iter().map(|l| view! {
                        <button data-testid=format!("layout-{}", l.name())
                            class:active=move || layout.get() == l
                            on:click=move |_| set_layout.set(l)>{l.name()}</button>
                    }).collect_view()}
                </span>
                <span class="hint">"Drag to pan, wheel to zoom."</span>
            </nav>
        </main>
    }
}

/// The animation-frame callback, kept alive by itself until the page is left.
type FrameCallback = Rc<RefCell<Option<Closure<dyn FnMut()>>>>;

/// Runs the renderer on every animation frame until the page is left.
fn start_render_loop(
    renderer: Renderer,
    scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    model: StoredValue<Rc<RefCell<RoomModel>>, LocalStorage>,
    net: Net,
    layout: ReadSignal<Layout>,
    set_hud: WriteSignal<Hud>,
) {
    let renderer = Rc::new(RefCell::new(renderer));
    let frame: FrameCallback = Rc::new(RefCell::new(None));
    let again = frame.clone();
    let mut last_viewport_sent = 0.0;
    *frame.borrow_mut() = Some(Closure::new(move || {
        let Some(scene) = scene.try_get_value() else {
            again.borrow_mut().take();
            return; // the room page is gone
        };
        let t = now();
        let mut scene = scene.borrow_mut();
        let (main, second) = (scene.main_id(), scene.second_id());
        let layout = layout.get_untracked();
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
        renderer
            .borrow_mut()
            .draw(&mut scene, main, second, layout, t, &cursors);
        let (w, h) = renderer.borrow().size();
        let main_area = areas(layout, w, h).0;
        let last_error = scene.last_error.clone();
        if let Some(pane) = main.and_then(|id| scene.panes.get_mut(&id)) {
            let new = Hud {
                entities: pane.mirror.len(),
                seq: pane.mirror.seq(),
                interactive: pane.interactive(),
                error: last_error,
            };
            let viewport = pane.camera.map(|c| c.viewport(main_area.w, main_area.h));
            if viewport.is_some()
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

/// A pointer press under way on the canvas.
#[derive(Debug, Clone, Copy)]
struct Drag {
    /// Where the press started (canvas pixels).
    x0: f32,
    /// Where the press started (canvas pixels).
    y0: f32,
    /// The pane's camera when panning began.
    camera: Option<Camera>,
    /// Whether it moved far enough to be a pan rather than a click.
    panned: bool,
}

thread_local! {
    static DRAG: RefCell<Option<Drag>> = const { RefCell::new(None) };
}

fn pointer_down(ev: &web_sys::PointerEvent) {
    let drag = Drag {
        x0: ev.offset_x() as f32,
        y0: ev.offset_y() as f32,
        camera: None,
        panned: false,
    };
    DRAG.with(|d| *d.borrow_mut() = Some(drag));
}

/// Which pane is under a canvas point, and that pane's area.
fn pane_at(
    scene: &Scene,
    layout: Layout,
    canvas: (f32, f32),
    x: f32,
    y: f32,
) -> Option<(multiverse_core::ids::UniverseId, crate::canvas::Area)> {
    let (main, second) = areas(layout, canvas.0, canvas.1);
    if let (Some(area), Some(id)) = (second, scene.second_id()) {
        if area.contains(x, y) {
            return Some((id, area));
        }
    }
    Some((scene.main_id()?, main))
}

fn canvas_size(ev: &web_sys::MouseEvent) -> (f32, f32) {
    let el = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok());
    el.map_or((1.0, 1.0), |e| {
        (e.client_width() as f32, e.client_height() as f32)
    })
}

fn pointer_move(
    ev: &web_sys::PointerEvent,
    scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    layout: ReadSignal<Layout>,
) {
    let Some(Drag {
        x0,
        y0,
        camera: start,
        ..
    }) = DRAG.with(|d| *d.borrow())
    else {
        return;
    };
    let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
    if (x - x0).hypot(y - y0) < 4.0 {
        return;
    }
    let size = canvas_size(ev);
    scene.with_value(|s| {
        let mut s = s.borrow_mut();
        let Some((id, _)) = pane_at(&s, layout.get_untracked(), size, x0, y0) else {
            return;
        };
        let Some(pane) = s.panes.get_mut(&id) else {
            return;
        };
        let Some(camera) = start.or(pane.camera) else {
            return;
        };
        pane.camera = Some(Camera {
            centre: multiverse_core::universe::Vec2::new(
                camera.centre.x - (x - x0) / camera.zoom,
                camera.centre.y - (y - y0) / camera.zoom,
            ),
            ..camera
        });
        DRAG.with(|d| {
            *d.borrow_mut() = Some(Drag {
                x0,
                y0,
                camera: Some(camera),
                panned: true,
            })
        });
    });
}

fn pointer_up(
    ev: &web_sys::PointerEvent,
    scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    layout: ReadSignal<Layout>,
    net: Net,
) {
    let drag = DRAG.with(|d| d.borrow_mut().take());
    if drag.is_some_and(|d| d.panned) {
        return; // that was a pan, not a click
    }
    let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
    let size = canvas_size(ev);
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

fn wheel(
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
            centre: multiverse_core::universe::Vec2::new(
                camera.centre.x + anchor.x - drift.x,
                camera.centre.y + anchor.y - drift.y,
            ),
            zoom,
        });
    });
}

/// Sends a heartbeat every few seconds and whenever the tab is shown or hidden.
fn start_heartbeat(net: Net) {
    let visible = || {
        web_sys::window()
            .and_then(|w| w.document())
            .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
    };
    let period = multiverse_core::room::HEARTBEAT_INTERVAL.as_millis() as u32;
    let beat = gloo_timers::callback::Interval::new(period, move || {
        net.send(ClientMessage::Presence { active: visible() });
    });
    let beat = StoredValue::new_local(Some(beat));
    let shown = window_event_listener(leptos::ev::visibilitychange, move |_| {
        net.send(ClientMessage::Presence { active: visible() })
    });
    on_cleanup(move || {
        beat.update_value(|b| drop(b.take()));
        shown.remove();
    });
}

thread_local! {
    /// When our cursor was last sent (ms), to stay at 30 Hz.
    static CURSOR_SENT: std::cell::Cell<f64> = const { std::cell::Cell::new(f64::NEG_INFINITY) };
}

fn send_cursor(net: Net, position: Option<CursorPosition>) {
    let t = now();
    let period = multiverse_core::room::CURSOR_PERIOD.as_millis() as f64;
    if t - CURSOR_SENT.with(std::cell::Cell::get) >= period {
        CURSOR_SENT.with(|c| c.set(t));
        net.send(ClientMessage::Cursor { position });
    }
}

/// Our pointer over the main universe, in its world coordinates.
fn world_cursor(
    ev: &web_sys::PointerEvent,
    scene: StoredValue<Rc<RefCell<Scene>>, LocalStorage>,
    layout: ReadSignal<Layout>,
    net: Net,
) {
    let (x, y) = (ev.offset_x() as f32, ev.offset_y() as f32);
    let size = canvas_size(ev);
    let position = scene.with_value(|s| {
        let s = s.borrow();
        let main = s.main_id()?;
        let (id, area) = pane_at(&s, layout.get_untracked(), size, x, y)?;
        let camera = s.panes.get(&id)?.camera?;
        let at = camera.to_world(x - area.x, y - area.y, area.w, area.h);
        (id == main).then_some(CursorPosition::World { universe: id, at })
    });
    if position.is_some() {
        send_cursor(net, position);
    }
}
