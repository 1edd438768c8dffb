//! A small client for the peer's REST API (docs/API.md): sessions, templates, worlds,
//! peer links and transfers.
//!
//! Requests go to the origin the page came from with the browser's `fetch`; JSON is parsed
//! and written by the browser (`JSON.parse` / `JSON.stringify`) and read field by field, so
//! the wasm carries no JSON library. Every failure becomes an [`ApiError`] whose `message`
//! is the peer's own text for people.
//!
//! Sessions, templates and worlds are here; links, transfers and passages between peers in
//! [`federation`] (re-exported, so callers write `api::peers()` either way).

use std::fmt;

use js_sys::{Object, Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

mod federation;
pub use federation::*;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status, or 0 if the peer could not be reached or answered nonsense.
    pub status: u16,
    /// The peer's machine-readable code (`duplicate_name`, …), or `network` / `bad_answer`.
    pub code: String,
    /// Text for people: the peer's `message` when it sent one.
    pub message: String,
}

impl ApiError {
    fn local(code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 0,
            code: code.into(),
            message: message.into(),
        }
    }

    /// The token was refused (401): it is forged, damaged or from another peer.
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What `POST /api/session` answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The user id the peer chose.
    pub user_id: String,
    /// The signed token that proves it.
    pub token: String,
    /// The name the peer stored.
    pub display_name: String,
    /// Whether the user's worlds are kept when unused.
    pub persistent: bool,
}

/// A template worlds are cloned from (`GET /api/templates`).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Its slug, used to create worlds.
    pub name: String,
    /// Title for people.
    pub title: String,
    /// One sentence about it.
    pub description: String,
    /// How many entities a world starts with.
    pub entities: u64,
    /// `builtin` or `folder`.
    pub source: String,
}

/// A user's own universe (`/api/worlds`).
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    /// The universe id.
    pub id: String,
    /// The owner's name for it.
    pub name: String,
    /// The template it was cloned from.
    pub template: String,
    /// Entities right now.
    pub entities: u64,
    /// Creation time, ms since the Unix epoch (peer clock).
    pub created_ms: f64,
    /// Last save, ms since the Unix epoch (peer clock).
    pub saved_ms: f64,
    /// The room that shows it.
    pub room: String,
}

fn field(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn text(v: &JsValue, key: &str) -> Result<String, ApiError> {
    field(v, key)
        .as_string()
        .ok_or_else(|| ApiError::local("bad_answer", format!("the peer's answer has no {key}")))
}

fn number(v: &JsValue, key: &str) -> f64 {
    field(v, key).as_f64().unwrap_or(0.0)
}

impl Session {
    fn from_js(v: &JsValue) -> Result<Session, ApiError> {
        Ok(Session {
            user_id: text(v, "user_id")?,
            token: text(v, "token")?,
            display_name: text(v, "display_name").unwrap_or_default(),
            persistent: field(v, "persistent").as_bool().unwrap_or(false),
        })
    }
}

impl Template {
    fn from_js(v: &JsValue) -> Result<Template, ApiError> {
        let name = text(v, "name")?;
        Ok(Template {
            title: text(v, "title").unwrap_or_else(|_| name.clone()),
            name,
            description: text(v, "description").unwrap_or_default(),
            entities: number(v, "entities") as u64,
            source: text(v, "source").unwrap_or_default(),
        })
    }
}

impl World {
    fn from_js(v: &JsValue) -> Result<World, ApiError> {
        Ok(World {
            id: text(v, "id")?,
            name: text(v, "name")?,
            template: text(v, "template").unwrap_or_default(),
            entities: number(v, "entities") as u64,
            created_ms: number(v, "created_ms"),
            saved_ms: number(v, "saved_ms"),
            room: text(v, "room")?,
        })
    }
}

fn list<T>(v: &JsValue, one: fn(&JsValue) -> Result<T, ApiError>) -> Result<Vec<T>, ApiError> {
    if !js_sys::Array::is_array(v) {
        return Err(ApiError::local(
            "bad_answer",
            "the peer did not answer with a list",
        ));
    }
    js_sys::Array::from(v)
        .iter()
        .map(|item| one(&item))
        .collect()
}

/// One request; `Ok(None)` for an empty answer (204).
async fn request(
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Object>,
) -> Result<Option<JsValue>, ApiError> {
    let network = |e: JsValue| {
        let why = e
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| "network error".into());
        ApiError::local("network", format!("cannot reach the peer: {why}"))
    };
    let window = web_sys::window().ok_or_else(|| ApiError::local("network", "no window"))?;
    let headers = web_sys::Headers::new().map_err(network)?;
    headers.set("Accept", "application/json").map_err(network)?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(token) = token {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(network)?;
    }
    if let Some(body) = body {
        headers
            .set("Content-Type", "application/json")
            .map_err(network)?;
        let json = JSON::stringify(body).map_err(network)?;
        init.set_body(&json);
    }
    init.set_headers(&headers);
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(network)?
        .unchecked_into();
    let status = response.status();
    let raw = JsFuture::from(response.text().map_err(network)?)
        .await
        .map_err(network)?
        .as_string()
        .unwrap_or_default();
    let parsed = (!raw.trim().is_empty())
        .then(|| JSON::parse(&raw).ok())
        .flatten();
    if response.ok() {
        return match parsed {
            Some(v) => Ok(Some(v)),
            None if raw.trim().is_empty() => Ok(None),
            None => Err(ApiError::local(
                "bad_answer",
                "the peer's answer is not JSON",
            )),
        };
    }
    let (code, message) = match &parsed {
        Some(v) => (
            text(v, "error").unwrap_or_default(),
            text(v, "message").unwrap_or_default(),
        ),
        None => (String::new(), String::new()),
    };
    let message = if message.is_empty() {
        let reason = response.status_text();
        format!("the peer answered {status} {reason}")
            .trim()
            .to_owned()
    } else {
        message
    };
    Err(ApiError {
        status,
        code,
        message,
    })
}

fn needs_body(v: Option<JsValue>) -> Result<JsValue, ApiError> {
    v.ok_or_else(|| ApiError::local("bad_answer", "the peer's answer is empty"))
}

fn object(pairs: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o
}

/// Path segment escaping for ids (they are hex, but never trust a string in a path).
fn segment(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

/// `POST /api/session`: a new user, or (with `token`) the same user with a new name.
pub async fn session(
    display_name: &str,
    persistent: bool,
    token: Option<&str>,
) -> Result<Session, ApiError> {
    let body = object(&[
        ("display_name", JsValue::from_str(display_name)),
        ("persistent", JsValue::from_bool(persistent)),
        ("token", token.map_or(JsValue::NULL, JsValue::from_str)),
    ]);
    let v = needs_body(request("POST", "/api/session", None, Some(&body)).await?)?;
    Session::from_js(&v)
}

/// `GET /api/templates`.
pub async fn templates() -> Result<Vec<Template>, ApiError> {
    let v = needs_body(request("GET", "/api/templates", None, None).await?)?;
    list(&v, Template::from_js)
}

/// `GET /api/worlds`: the caller's worlds, newest first.
pub async fn my_worlds(token: &str) -> Result<Vec<World>, ApiError> {
    let v = needs_body(request("GET", "/api/worlds", Some(token), None).await?)?;
    list(&v, World::from_js)
}

/// `POST /api/worlds`: a new world from `template`, hosted at once.
pub async fn create_world(token: &str, template: &str, name: &str) -> Result<World, ApiError> {
    let body = object(&[
        ("template", JsValue::from_str(template)),
        ("name", JsValue::from_str(name)),
    ]);
    let v = needs_body(request("POST", "/api/worlds", Some(token), Some(&body)).await?)?;
    World::from_js(&v)
}

/// `GET /api/worlds/{id}` (owner only).
pub async fn world(token: &str, id: &str) -> Result<World, ApiError> {
    let path = format!("/api/worlds/{}", segment(id));
    World::from_js(&needs_body(
        request("GET", &path, Some(token), None).await?,
    )?)
}

/// `POST /api/worlds/{id}/save`: saves now; answers the world with its new `saved_ms`.
pub async fn save_world(token: &str, id: &str) -> Result<World, ApiError> {
    let path = format!("/api/worlds/{}/save", segment(id));
    World::from_js(&needs_body(
        request("POST", &path, Some(token), None).await?,
    )?)
}

/// `DELETE /api/worlds/{id}`.
pub async fn delete_world(token: &str, id: &str) -> Result<(), ApiError> {
    let path = format!("/api/worlds/{}", segment(id));
    request("DELETE", &path, Some(token), None).await.map(drop)
}

/// Milliseconds since the Unix epoch by this browser's clock.
pub fn wall_clock_ms() -> f64 {
    js_sys::Date::now()
}

/// "just now", "12 s ago", "3 min ago", "2 h ago", "4 days ago" for a past epoch time.
pub fn ago(then_ms: f64, now_ms: f64) -> String {
    let s = ((now_ms - then_ms) / 1000.0).max(0.0) as u64;
    match s {
        0..=1 => "just now".into(),
        2..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}
