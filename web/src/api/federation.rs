//! The federation endpoints: linked peers (`/api/peers`), transfers (`/api/transfers`),
//! passages (`/api/passages`) and passage policies.

use wasm_bindgen::JsValue;

use super::{field, list, needs_body, number, object, request, segment, text, ApiError};

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
