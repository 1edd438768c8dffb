//! The connection badge: what the user should know about the link to the peer.

use leptos::prelude::*;
use multiverse_core::connection::ConnectionState;

/// Shows connecting / connected / reconnecting / incompatible, with `data-state` for tests.
#[component]
pub fn ConnectionBadge(
    /// The connection state published by the net driver.
    state: ReadSignal<ConnectionState>,
) -> impl IntoView {
    let label = move || match state.get() {
        ConnectionState::Connecting { attempt: 0 } => "Connecting…".to_owned(),
        ConnectionState::Connecting { attempt } => format!("Connecting… (attempt {})", attempt + 1),
        ConnectionState::Connected { peer_name, .. } => format!("Connected to {peer_name}"),
        ConnectionState::Reconnecting { attempt, .. } => {
            format!("Connection lost, reconnecting (attempt {attempt})…")
        }
        ConnectionState::Incompatible { reason } => {
            format!("Incompatible version: {reason}. Reload the page.")
        }
    };
    view! {
        <span class="badge" data-testid="connection-state" data-state=move || state.get().name()
            role="status" aria-live="polite">
            <span class="dot"></span>
            {label}
        </span>
    }
}
