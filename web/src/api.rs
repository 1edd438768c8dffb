//! A small client for the peer's REST API (docs/API.md): sessions, templates, worlds,
//! peer links and transfers.
//!
//! Requests go to the origin the page came from with the browser's `fetch`; JSON is parsed
//! and written by the browser (`JSON.parse` / `JSON.stringify`) and read field by field, so
//! the wasm carries no JSON library. Every failure becomes an [`ApiError`] whose `message`
//! is the peer's own text for people.

use std::fmt;

use js_sys::{Object, Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

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

/// One universe a linked peer offers (`GET /api/peers`, `links[].universes[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteUniverse {
    /// The universe id (subscribe to it to watch through a portal).
    pub id: String,
    /// Its name on its own peer.
    pub name: String,
    /// Entities when the peer last listed it.
    pub entities: u64,
}

/// A live link to another peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerLink {
    /// The other peer's id.
    pub peer_id: String,
    /// Its name.
    pub name: String,
    /// `outbound` (we dialled) or `inbound` (it dialled us).
    pub direction: String,
    /// The address dialled, for outbound links.
    pub address: Option<String>,
    /// The universes it offers.
    pub universes: Vec<RemoteUniverse>,
}

/// An address this peer keeps dialling, and how that goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Dial {
    /// `ws://host:port/peer`.
    pub address: String,
    /// `connecting`, `connected` or `retrying`.
    pub state: String,
    /// The peer at the other end, once known.
    pub peer_id: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// `GET /api/peers`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Peers {
    /// This peer's id.
    pub peer_id: String,
    /// Live links.
    pub links: Vec<PeerLink>,
    /// Dialled addresses.
    pub dialled: Vec<Dial>,
    /// The plain `ws://ip:port` addresses other peers can dial this one on.
    pub addresses: Vec<String>,
}

fn optional_text(v: &JsValue, key: &str) -> Option<String> {
    field(v, key).as_string().filter(|s| !s.is_empty())
}

impl RemoteUniverse {
    fn from_js(v: &JsValue) -> Result<RemoteUniverse, ApiError> {
        Ok(RemoteUniverse {
            id: text(v, "id")?,
            name: text(v, "name")?,
            entities: number(v, "entities") as u64,
        })
    }
}

impl PeerLink {
    fn from_js(v: &JsValue) -> Result<PeerLink, ApiError> {
        let universes = field(v, "universes");
        Ok(PeerLink {
            peer_id: text(v, "peer_id")?,
            name: text(v, "name")?,
            direction: text(v, "direction").unwrap_or_default(),
            address: optional_text(v, "address"),
            universes: if universes.is_undefined() || universes.is_null() {
                Vec::new()
            } else {
                list(&universes, RemoteUniverse::from_js)?
            },
        })
    }
}

impl Dial {
    fn from_js(v: &JsValue) -> Result<Dial, ApiError> {
        Ok(Dial {
            address: text(v, "address")?,
            state: text(v, "state").unwrap_or_default(),
            peer_id: optional_text(v, "peer_id"),
            last_error: optional_text(v, "last_error"),
        })
    }
}

/// `GET /api/peers`: links and dialled addresses.
pub async fn peers() -> Result<Peers, ApiError> {
    let v = needs_body(request("GET", "/api/peers", None, None).await?)?;
    Ok(Peers {
        peer_id: text(&v, "peer_id").unwrap_or_default(),
        links: list(&field(&v, "links"), PeerLink::from_js)?,
        dialled: list(&field(&v, "dialled"), Dial::from_js)?,
        addresses: list(&field(&v, "addresses"), |a| {
            a.as_string().ok_or_else(|| ApiError {
                status: 0,
                code: "bad_answer".into(),
                message: "an address is not text".into(),
            })
        })?,
    })
}

/// `POST /api/peers`: dial `address` (`ws://host:port`); answers the normalised address.
pub async fn add_peer(address: &str) -> Result<String, ApiError> {
    let body = object(&[("address", JsValue::from_str(address))]);
    let v = needs_body(request("POST", "/api/peers", None, Some(&body)).await?)?;
    text(&v, "address")
}

/// `GET /healthz`: this peer's `(name, id)`.
pub async fn this_peer() -> Result<(String, String), ApiError> {
    let v = needs_body(request("GET", "/healthz", None, None).await?)?;
    Ok((text(&v, "peer_name")?, text(&v, "peer_id")?))
}

/// `POST /api/transfers`: sends entity `(index, generation)` of local `universe` to
/// `target` (here or on a linked peer), arriving at `exit` (world coordinates of the
/// target). Answers the transfer id.
pub async fn start_transfer(
    universe: &str,
    entity: (u32, u32),
    target: &str,
    exit: (f32, f32),
) -> Result<String, ApiError> {
    let id = object(&[
        ("index", JsValue::from(entity.0)),
        ("generation", JsValue::from(entity.1)),
    ]);
    let at = object(&[("x", JsValue::from(exit.0)), ("y", JsValue::from(exit.1))]);
    let body = object(&[
        ("universe", JsValue::from_str(universe)),
        ("entity", id.into()),
        ("target_universe", JsValue::from_str(target)),
        ("exit", at.into()),
    ]);
    let v = needs_body(request("POST", "/api/transfers", None, Some(&body)).await?)?;
    let id = field(&v, "transfer");
    Ok(id
        .as_string()
        .or_else(|| id.as_f64().map(|n| n.to_string()))
        .unwrap_or_default())
}

/// A passage as `GET /api/passages` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PassageInfo {
    /// The passage id.
    pub id: String,
    /// `opener` or `owner`.
    pub role: String,
    /// The opener's universe.
    pub from_universe: String,
    /// The owner's universe.
    pub to_universe: String,
    /// `connecting`, `pending_approval`, `connected`, `degraded`, `error` or `closed`.
    pub state: String,
    /// 0–1, from heartbeats.
    pub health: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// The granted view (`observe`, `participate`), once open.
    pub view: Option<String>,
    /// The compatibility score, once open.
    pub score: Option<f64>,
}

impl PassageInfo {
    fn from_js(v: &JsValue) -> Result<PassageInfo, ApiError> {
        let grant = field(v, "grant");
        let granted = !(grant.is_null() || grant.is_undefined());
        Ok(PassageInfo {
            id: text(v, "id")?,
            role: text(v, "role").unwrap_or_default(),
            from_universe: text(v, "from_universe")?,
            to_universe: text(v, "to_universe")?,
            state: text(v, "state").unwrap_or_default(),
            health: number(v, "health"),
            error: optional_text(v, "error"),
            view: granted.then(|| optional_text(&grant, "view")).flatten(),
            score: granted.then(|| field(&grant, "score").as_f64()).flatten(),
        })
    }
}

/// `GET /api/passages`.
pub async fn passages() -> Result<Vec<PassageInfo>, ApiError> {
    let v = needs_body(request("GET", "/api/passages", None, None).await?)?;
    list(&v, PassageInfo::from_js)
}

/// What a new passage asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct PassageAsk {
    /// A universe hosted here.
    pub from: String,
    /// A universe of a linked peer.
    pub to: String,
    /// `none`, `observe` or `participate`.
    pub view: String,
    /// `none`, `limited`, `full` or `collaborative`.
    pub interaction: String,
    /// Portal frames per second.
    pub sync_hz: u32,
    /// The owner's password, if it asks for one.
    pub password: String,
}

/// `POST /api/passages`: answers the passage id; follow its state in `passages()`.
pub async fn open_passage(ask: &PassageAsk) -> Result<String, ApiError> {
    let view = if ask.view == "none" {
        JsValue::NULL
    } else {
        JsValue::from_str(&ask.view)
    };
    let password = if ask.password.is_empty() {
        JsValue::NULL
    } else {
        JsValue::from_str(&ask.password)
    };
    let body = object(&[
        ("from_universe", JsValue::from_str(&ask.from)),
        ("to_universe", JsValue::from_str(&ask.to)),
        ("view", view),
        ("interaction", JsValue::from_str(&ask.interaction)),
        ("sync_hz", JsValue::from(ask.sync_hz)),
        ("password", password),
    ]);
    let v = needs_body(request("POST", "/api/passages", None, Some(&body)).await?)?;
    text(&v, "passage")
}

/// `DELETE /api/passages/{id}`.
pub async fn close_passage(id: &str) -> Result<(), ApiError> {
    let path = format!("/api/passages/{}", segment(id));
    request("DELETE", &path, None, None).await.map(|_| ())
}

/// `GET /api/universes`: `(id, name)` of the universes this peer lists.
pub async fn local_universes() -> Result<Vec<(String, String)>, ApiError> {
    let v = needs_body(request("GET", "/api/universes", None, None).await?)?;
    list(&v, |u| Ok((text(u, "id")?, text(u, "name")?)))
}

/// `PUT /api/universes/{id}/passage-policy`: who may open passages into `universe`.
pub async fn set_passage_policy(
    universe: &str,
    access: &str,
    password: &str,
) -> Result<(), ApiError> {
    let mut pairs = vec![("access", JsValue::from_str(access))];
    if !password.is_empty() {
        pairs.push(("password", JsValue::from_str(password)));
    }
    let path = format!("/api/universes/{}/passage-policy", segment(universe));
    request("PUT", &path, None, Some(&object(&pairs)))
        .await
        .map(|_| ())
}

/// `POST /api/passages/{id}/approve` (`true`) or `/deny`: the owner's decision.
pub async fn decide_passage(id: &str, approve: bool) -> Result<(), ApiError> {
    let verb = if approve { "approve" } else { "deny" };
    let path = format!("/api/passages/{}/{verb}", segment(id));
    request("POST", &path, None, None).await.map(|_| ())
}
