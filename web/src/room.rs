//! The room page at `/r/:room`: the universe canvas, its controls and the connection badge.
//!
//! Link parameters: `?universe=` picks the main universe (by name or id), `?portal=<id>`
//! opens the portal layout with that universe (possibly a linked peer's) in the portal.
//!
//! Pointer on the canvas: a drag on empty space pans, the wheel zooms, a click ripples,
//! shift-click spawns. When the main universe is hosted here and a second pane is shown, a
//! drag that starts on an entity carries it: released over the second pane, it is sent there
//! (`POST /api/transfers`, arriving where it was dropped); released elsewhere, nothing
//! happens. The transfer's progress shows in `data-testid="transfer-status"`.
//!
//! Your avatar: a double-click on the main universe walks it there, the arrow keys / WASD
//! walk it while the focus is not in a text field ([`crate::avatar`]); `#my-avatar` carries
//! its position as `data-avatar-x` / `data-avatar-y`. Voice and video are in the side panel
//! ([`crate::voice`]), optional: nothing else depends on them.
//!
//! For tests the canvas carries `data-grab`: up to eight entities of the main pane that can
//! be grabbed (outside the second pane), slowest first, as
//! `index:generation:x:y:vx:vy;…` (canvas pixels, pixels per second) as of `data-grab-at`
//! (`performance.now()`), and `data-second`: the second pane's `x,y,w,h`.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::html::Canvas;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};
use multiverse_core::connection::ConnectionState;
use multiverse_core::ids::{RoomId, UniverseId};
use multiverse_core::wire::{ClientMessage, ServerMessage};
use wasm_bindgen::prelude::*;

use crate::avatar;
use crate::canvas::{Layout, Renderer};
use crate::identity;
use crate::net::{now_ms as now, Net};
use crate::room_frame::{start_render_loop, FrameLinks, Hud};
use crate::room_input::*;
use crate::room_model::{RoomModel, RoomSnapshot};
use crate::room_panels::{new_message_id, ChatPanel, CursorList, MembersPanel, SharePanel};
use crate::scene::Scene;
use crate::status::ConnectionBadge;
use crate::voice::{Voice, VoicePanel};
use crate::world_status::{is_world_room, WorldSaveState};
use multiverse_core::room::CursorPosition;
use multiverse_core::universe::Vec2;

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

/// How often the universe list is asked for again, to see linked peers come and go (ms).
const RELIST_MS: u32 = 5_000;

/// The last transfer asked for from this page: `(state, text)`, state being `sending`,
/// `sent` or `failed`.
pub(crate) type TransferStatus = Option<(&'static str, String)>;

#[component]
fn RoomView(room: RoomId) -> impl IntoView {
    let name = identity::display_name();
    let query = use_query_map();
    let main = query
        .read_untracked()
        .get("universe")
        .unwrap_or_else(|| "sandbox".into());
    let portal = query
        .read_untracked()
        .get("portal")
        .and_then(|p| p.parse::<UniverseId>().ok());
    let invite = query.read_untracked().get("invite");
    let mut initial = match main.parse::<UniverseId>() {
        Ok(id) => {
            let mut scene = Scene::showing("sandbox".into());
            scene.show(id);
            scene
        }
        Err(_) => Scene::showing(main),
    };
    initial.second_pin = portal;
    initial.wants_second = portal.is_some();
    let scene = Rc::new(RefCell::new(initial));
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
    let voice = Voice::new();
    let handler = {
        let (scene, model) = (scene.clone(), model.clone());
        Rc::new(move |message: ServerMessage| {
            if voice.handle(&message) {
                return Vec::new();
            }
            if let ServerMessage::UniverseList { universes } = &message {
                let fresh: Vec<_> = universes.iter().map(|u| (u.id, u.name.clone())).collect();
                set_names.maybe_update(|n| {
                    let changed = *n != fresh;
                    *n = fresh;
                    changed
                });
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
    voice.attach(net);
    // Voice first, so its `voice_leave` still goes out.
    on_cleanup(move || {
        voice.shutdown();
        net.stop();
    });
    let hidden = window_event_listener(leptos::ev::pagehide, move |_| voice.leave());
    on_cleanup(move || hidden.remove());
    avatar::listen_keys();
    let me = identity::client_id();
    let state = net.state;
    let first_layout = if portal.is_some() {
        Layout::Portal
    } else {
        Layout::Full
    };
    let (layout, set_layout) = signal(first_layout);
    let (hud, set_hud) = signal(Hud::default());
    let (transfer, set_transfer) = signal(TransferStatus::None);
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
        } else {
            voice.connection_lost();
        }
    });
    start_heartbeat(net);
    // Linked peers come and go: their universes (portals) appear in later lists.
    let relist = gloo_timers::callback::Interval::new(RELIST_MS, move || {
        if matches!(state.get_untracked(), ConnectionState::Connected { .. }) {
            net.send(ClientMessage::ListUniverses);
        }
    });
    let relist = StoredValue::new_local(Some(relist));
    on_cleanup(move || relist.update_value(|r| drop(r.take())));
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
            s.wants_second = layout.get_untracked().needs_second();
            s.sync_subscriptions()
        });
        messages.into_iter().for_each(|m| net.send(m));
    };
    Effect::new(move |_| {
        layout.track();
        resubscribe();
    });

    let canvas_ref = NodeRef::<Canvas>::new();
    let my_avatar = RwSignal::new(None::<Vec2>);
    Effect::new(move |_| {
        if let Some(canvas) = canvas_ref.get() {
            if let Some(renderer) = Renderer::new(canvas) {
                let links = FrameLinks {
                    scene,
                    model,
                    net,
                    layout,
                    set_hud,
                    voice,
                    my_avatar,
                };
                start_render_loop(renderer, links);
            }
        }
    });
    let voice_ready = Signal::derive(move || {
        matches!(state.get(), ConnectionState::Connected { .. })
            && snapshot.with(|s| s.you.is_some())
    });

    let peer = move || match state.get() {
        ConnectionState::Connected { peer_name, .. } => Some(peer_name),
        _ => None,
    };
    let on_select = move |ev: leptos::ev::Event| {
        if let Ok(chosen) = event_target_value(&ev).parse::<UniverseId>() {
            scene.with_value(|s| {
                let mut s = s.borrow_mut();
                let before = s.roles();
                s.show(chosen);
                s.refit_moved(before);
            });
            resubscribe();
        }
    };
    let on_second = move |ev: leptos::ev::Event| {
        if let Ok(chosen) = event_target_value(&ev).parse::<UniverseId>() {
            scene.with_value(|s| {
                let mut s = s.borrow_mut();
                let before = s.roles();
                s.second_pin = Some(chosen);
                s.refit_moved(before);
            });
            resubscribe();
        }
    };
    let peers_href = {
        let room = room.clone();
        move || {
            let h = hud.get();
            let main = h
                .main
                .filter(|_| h.main_local)
                .map(|m| format!("&universe={m}"))
                .unwrap_or_default();
            format!("/peers?room={room}{main}")
        }
    };
    let mode = move || {
        let h = hud.get();
        match (h.interactive, h.transfers, layout.get()) {
            (false, _, _) => "[View Only]",
            (true, false, _) => "[Interactive] click: ripple · shift-click: spawn",
            (true, true, Layout::Portal) => {
                "[Interactive] click: ripple · shift-click: spawn · drag an entity into the portal to send it"
            }
            (true, true, _) => {
                "[Interactive] click: ripple · shift-click: spawn · drag an entity onto the other universe to send it"
            }
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
                <a href=peers_href class="peers-link" data-testid="peers-link">"Peers"</a>
                <WorldSaveState room=room.clone() universe=bound />
                <ConnectionBadge state />
            </header>
            <section class="stage">
                <canvas class="universe" data-testid="universe-canvas" node_ref=canvas_ref
                    data-transfers=move || if hud.get().transfers { "on" } else { "off" }
                    on:pointerdown=move |ev| pointer_down(&ev, scene, layout)
                    on:pointermove=move |ev| { pointer_move(&ev, scene, layout); world_cursor(&ev, scene, layout, net) }
                    on:pointerup=move |ev| pointer_up(&ev, scene, layout, net, set_transfer)
                    on:pointercancel=move |_| DRAG.with(|d| *d.borrow_mut() = None)
                    on:dblclick=move |ev| avatar::walk_here(&ev, scene, layout, net, me)
                    on:wheel=move |ev| wheel(&ev, scene, layout)></canvas>
                <div class="hud">
                    <span data-testid="entity-count" data-count=move || hud.get().entities.to_string()
                        data-seq=move || hud.get().seq.map(|s| s.to_string()).unwrap_or_default()>
                        {move || format!("{} entities in view", hud.get().entities)}
                    </span>
                    <span class="mode" data-testid="mode">{mode}</span>
                    // Always there (hidden when empty): cheaper in wasm than views that come and go.
                    <span data-testid="portal-count" hidden=move || hud.get().second.is_none()
                        data-universe=move || hud.get().second.map(|s| s.0.to_string()).unwrap_or_default()
                        data-count=move || hud.get().second.map(|s| s.2.to_string()).unwrap_or_default()
                        data-seq=move || hud.get().second.and_then(|s| s.3).map(|s| s.to_string()).unwrap_or_default()>
                        {move || hud.get().second.map(|(_, name, n, _)| format!("{name}: {n} entities"))}
                    </span>
                    <span class="transfer" data-testid="transfer-status" role="status" hidden=move || transfer.get().is_none()
                        data-state=move || transfer.get().map(|t| t.0).unwrap_or_default()>
                        {move || transfer.get().map(|t| t.1)}
                    </span>
                    {move || hud.get().error.map(|e| view! { <span class="error" data-testid="last-error">{e}</span> })}
                </div>
            </section>
            <aside class="side">
                {move || snapshot.get().problem.map(|p| view! { <p class="error" data-testid="room-error">{p}</p> })}
                <MembersPanel room=snapshot speaking=voice.speaking />
                <VoicePanel voice ready=voice_ready />
                <ChatPanel room=snapshot on_send />
                <SharePanel room=snapshot send />
            </aside>
            <CursorList room=snapshot />
            <nav class="controls">
                <label>"Universe "
                    <select data-testid="universe-select" on:change=on_select>
                        {move || {
                            let main = scene.with_value(|s| s.borrow().main_id());
                            options(names.get(), main, None)
                        }}
                    </select>
                </label>
                <label hidden=move || !layout.get().needs_second()>
                    {move || if layout.get() == Layout::Portal { "In the portal " } else { "Second universe " }}
                    <select data-testid="second-select" on:change=on_second>
                        {move || {
                            let h = hud.get();
                            options(names.get(), h.second.map(|s| s.0), h.main)
                        }}
                    </select>
                </label>
                <span class="layouts">
                    {Layout::ALL.into_iter().map(|l| view! {
                        <button data-testid=format!("layout-{}", l.name())
                            class:active=move || layout.get() == l
                            on:click=move |_| set_layout.set(l)>{l.name()}</button>
                    }).collect_view()}
                </span>
                <span class="hint" data-testid="hint">
                    "Drag to pan, wheel to zoom. Your avatar: double-click to walk there, or arrow keys / WASD."
                </span>
                <span id="my-avatar" data-testid="my-avatar" hidden
                    data-avatar-x=move || my_avatar.get().map(|p| format!("{:.1}", p.x))
                    data-avatar-y=move || my_avatar.get().map(|p| format!("{:.1}", p.y))></span>
            </nav>
        </main>
    }
}

/// `<option>`s for the universes in `names` but `skip`, with `selected` chosen (both
/// universe pickers share this one view type).
fn options(
    names: Vec<(UniverseId, String)>,
    selected: Option<UniverseId>,
    skip: Option<UniverseId>,
) -> impl IntoView {
    names
        .into_iter()
        .filter(|(id, _)| Some(*id) != skip)
        .map(|(id, n)| view! { <option value=id.to_string() selected=selected == Some(id)>{n}</option> })
        .collect_view()
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
