//! Who this browser is: a client id and a display name, kept in localStorage so they
//! survive reloads; and who the user is to the peer: the user id and signed session token
//! from `POST /api/session` (docs/API.md).
//!
//! The client id belongs to the browser install and never changes; the session belongs to
//! the peer that issued it and is replaced if that peer no longer accepts it.

use std::cell::RefCell;

use futures::future::{FutureExt, LocalBoxFuture, Shared};
use multiverse_core::ids::ClientId;
use multiverse_core::wire::MAX_DISPLAY_NAME_CHARS;

use crate::api::{self, ApiError, Session};

const CLIENT_ID_KEY: &str = "multiverse.client_id";
const NAME_KEY: &str = "multiverse.display_name";
const TOKEN_KEY: &str = "multiverse.session_token";
const USER_KEY: &str = "multiverse.user_id";
const PERSISTENT_KEY: &str = "multiverse.session_persistent";

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

fn get(key: &str) -> Option<String> {
    storage()
        .and_then(|s| s.get_item(key).ok().flatten())
        .filter(|v| !v.is_empty())
}

/// The stored session token, if this browser has one. (The user id it belongs to is stored
/// beside it, under `multiverse.user_id`, for people and tests looking at localStorage.)
pub fn session_token() -> Option<String> {
    get(TOKEN_KEY)
}

fn remember(session: &Session) {
    if let Some(s) = storage() {
        let _ = s.set_item(TOKEN_KEY, &session.token);
        let _ = s.set_item(USER_KEY, &session.user_id);
        let _ = s.set_item(PERSISTENT_KEY, if session.persistent { "1" } else { "0" });
    }
}

fn forget_session() {
    if let Some(s) = storage() {
        for key in [TOKEN_KEY, USER_KEY, PERSISTENT_KEY] {
            let _ = s.remove_item(key);
        }
    }
}

type SessionFuture = Shared<LocalBoxFuture<'static, Result<Session, ApiError>>>;

thread_local! {
    /// The session request under way, shared so two callers never create two users.
    static IN_FLIGHT: RefCell<Option<SessionFuture>> = const { RefCell::new(None) };
}

/// Makes sure this browser has a session with the peer, under the current display name:
/// a stored token is sent again (which refreshes the name); if the peer refuses it (401)
/// it is dropped and a new user is created. Concurrent calls share one request.
pub async fn ensure_session() -> Result<Session, ApiError> {
    let request = IN_FLIGHT.with(|f| {
        f.borrow_mut()
            .get_or_insert_with(|| refresh_session().boxed_local().shared())
            .clone()
    });
    let out = request.await;
    IN_FLIGHT.with(|f| {
        let mut f = f.borrow_mut();
        if f.as_ref().is_some_and(|r| r.peek().is_some()) {
            *f = None; // finished: the next call asks again
        }
    });
    out
}

async fn refresh_session() -> Result<Session, ApiError> {
    let name = display_name();
    // Keep whatever persistence the user has; this client never changes it by itself.
    let persistent = get(PERSISTENT_KEY).is_some_and(|p| p == "1");
    if let Some(token) = session_token() {
        match api::session(&name, persistent, Some(&token)).await {
            Ok(session) => {
                remember(&session);
                return Ok(session);
            }
            Err(e) if e.is_unauthorized() => forget_session(),
            Err(e) => return Err(e),
        }
    }
    let session = api::session(&name, false, None).await?;
    remember(&session);
    Ok(session)
}
