//! The router.

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

use crate::lobby::Lobby;
use crate::peers::PeersPage;
use crate::room::RoomPage;

/// The whole app: lobby at `/`, rooms at `/r/:room`, linked peers at `/peers`.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/") view=Lobby />
                <Route path=path!("/r/:room") view=RoomPage />
                <Route path=path!("/peers") view=PeersPage />
            </Routes>
        </Router>
    }
}

/// Shown for any other path.
#[component]
fn NotFound() -> impl IntoView {
    view! {
        <main class="page narrow" data-testid="not-found">
            <h1>"Nothing here"</h1>
            <p>"This address is not a room. Room links look like " <code>"/r/sandbox"</code> "."</p>
            <A href="/">"Back to the lobby"</A>
        </main>
    }
}
