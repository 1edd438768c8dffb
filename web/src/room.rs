//! The room page at `/r/:room`.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use multiverse_core::connection::ConnectionState;
use multiverse_core::ids::RoomId;

use crate::identity;
use crate::net::Net;
use crate::status::ConnectionBadge;

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

#[component]
fn RoomView(room: RoomId) -> impl IntoView {
    let name = identity::display_name();
    let net = Net::start(name.clone(), identity::client_id());
    on_cleanup(move || net.stop());
    let state = net.state;
    let peer = move || match state.get() {
        ConnectionState::Connected {
            peer_name,
            session_id,
            ..
        } => Some((peer_name, session_id.to_string())),
        _ => None,
    };
    view! {
        <main class="room" data-testid="room" data-room=room.to_string()>
            <header class="topbar">
                <A href="/" attr:class="brand">"Multiverse"</A>
                <h1 class="room-name" data-testid="room-name">{format!("#{room}")}</h1>
                <ConnectionBadge state />
            </header>
            <section class="stage">
                <div class="welcome-card">
                    <p>"You are " <strong data-testid="my-name">{name}</strong> "."</p>
                    {move || peer().map(|(peer_name, session)| view! {
                        <p>"Hosted by peer " <strong data-testid="peer-name">{peer_name}</strong>
                           " · session " <code>{session}</code></p>
                    })}
                    <p class="hint">"Share this page's address with people on your network to meet here."</p>
                </div>
            </section>
        </main>
    }
}
