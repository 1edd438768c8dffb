//! # multiverse-web
//!
//! The Multiverse browser client: a Leptos 0.8 CSR app built by Trunk for wasm32. It loads
//! from a peer, connects back to that peer's `/ws`, and shows rooms.
//!
//! ## Layout
//! | module | does |
//! |---|---|
//! | `app` | the router: `/` lobby, `/r/:room` room page, `/peers` peers page, a not-found page |
//! | `lobby` | display name, create or join a room; your worlds (create from a template, open, delete) |
//! | `room` | the room page: canvas, controls, input (pan, zoom, drag into the portal to transfer); starts a connection while shown |
//! | `room_frame` | the room's render loop: draws, walks the avatar, places voices, refreshes the HUD and test hooks |
//! | `avatar`, `avatar_draw` | your avatar: arrow keys / WASD and double-click to walk; names, speaking rings and video bubbles on the canvas |
//! | `voice` | voice and video: WebRTC to the peer, spatial audio by avatar position, speaking lights, mute, camera |
//! | `peers` | this peer's address, linking to another peer, linked peers and their universes |
//! | `room_model` | plain model of the room: members, chat with pending messages, cursors, invites |
//! | `room_panels` | members, chat and share (link, QR code, invites) panels; the cursor list |
//! | `scene` | plain model of what is drawn: one pane per universe (mirror, camera, smoothing) |
//! | `canvas` | the renderer struct and the layouts (full, picture-in-picture, split, portal) |
//! | `net` | drives the core's sans-IO `Connection` with a gloo-net WebSocket and timers |
//! | `status` | the connection badge (`data-testid="connection-state"`) |
//! | `world_status` | a world room's save state and "Save now", for its owner |
//! | `identity` | client id, display name and the peer session (token, user id) in localStorage |
//! | `api` | the REST client for docs/API.md (sessions, templates, worlds, peers, transfers) |
//!
//! `main` only mounts the app; model logic lives in `multiverse-core`.

mod api;
mod app;
mod avatar;
mod avatar_draw;
mod canvas;
mod identity;
mod lobby;
mod net;
mod passages;
mod peers;
mod room;
mod room_frame;
mod room_input;
mod room_model;
mod room_panels;
mod scene;
mod status;
mod voice;
mod world_status;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
