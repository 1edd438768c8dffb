//! Who this browser is: a client id and a display name, kept in localStorage so they
//! survive reloads.

use multiverse_core::ids::ClientId;
use multiverse_core::wire::MAX_DISPLAY_NAME_CHARS;

const CLIENT_ID_KEY: &str = "multiverse.client_id";
const NAME_KEY: &str = "multiverse.display_name";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn random_uuid() -> Option<String> {
    Some(web_sys::window()?.crypto().ok()?.random_uuid())
}

/// This browser's client id, created on first use.
pub fn client_id() -> ClientId {
    let stored = storage()
        .and_then(|s| s.get_item(CLIENT_ID_KEY).ok().flatten())
        .and_then(|s| s.parse().ok());
    if let Some(id) = stored {
        return id;
    }
    let fresh = random_uuid()
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| ClientId::from_u128((js_sys::Math::random() * 2f64.powi(64)) as u128));
    if let Some(s) = storage() {
        let _ = s.set_item(CLIENT_ID_KEY, &fresh.to_string());
    }
    fresh
}

/// The display name chosen in the lobby, or "Guest-xxxx" from the client id.
pub fn display_name() -> String {
    storage()
        .and_then(|s| s.get_item(NAME_KEY).ok().flatten())
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("Guest-{}", &client_id().to_string()[..4]))
}

/// Stores a display name, trimmed and cut to the protocol's limit. Returns what was kept.
pub fn set_display_name(name: &str) -> String {
    let name: String = name.trim().chars().take(MAX_DISPLAY_NAME_CHARS).collect();
    if let Some(s) = storage() {
        let _ = s.set_item(NAME_KEY, &name);
    }
    name
}
