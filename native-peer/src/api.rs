//! The REST API beside the WebSocket (docs/API.md): sessions, read-only templates, users'
//! worlds, stats and Prometheus metrics. Every error is `{"error", "message"}` JSON.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use multiverse_core::ids::{UniverseId, UserId};
use multiverse_core::wire::MAX_DISPLAY_NAME_CHARS;
use serde::{Deserialize, Serialize};

use crate::http::ApiError;
use crate::store::UserRecord;
use crate::worlds::{self, WorldError};
use crate::Shared;

type Api = Result<Response, ApiError>;

/// The API's routes (merged into [`crate::http::router`]).
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/session", post(session))
        .route("/api/templates", get(templates).fallback(read_only))
        .route("/api/templates/{*rest}", any(read_only))
        .route("/api/worlds", get(my_worlds).post(create_world))
        .route("/api/worlds/{id}", get(world).delete(delete_world))
        .route("/api/worlds/{id}/save", post(save_world))
        .route("/api/worlds/{id}/reload", post(reload_world))
        .route("/api/peers", get(peers).post(add_peer))
        .route("/api/transfers", post(start_transfer))
        .route("/api/passages", get(list_passages).post(open_passage))
        .route("/api/passages/{id}", axum::routing::delete(close_passage))
        .route("/api/passages/{id}/approve", post(approve_passage))
        .route("/api/passages/{id}/deny", post(deny_passage))
        .route(
            "/api/universes/{id}/passage-policy",
            axum::routing::put(set_policy),
        )
        .route("/api/stats", get(stats))
        .route("/metrics", get(metrics))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|e| {
        bad_request(format!(
            "the request body is not what was expected: {}",
            e.body_text()
        ))
    })
}

fn storage(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("storage failed: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage_failed",
        e.to_string(),
    )
}

/// The user a request acts for, from `Authorization: Bearer <token>`.
fn caller(shared: &Shared, headers: &HeaderMap) -> Result<UserId, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", m);
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        unauthorized("sign in first: POST /api/session, then send Authorization: Bearer <token>")
    })?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("the Authorization header must be \"Bearer <token>\""))?;
    shared.keys.verify(token).map_err(|e| {
        tracing::warn!("refused a session token: {e}");
        unauthorized(&e.to_string())
    })
}

fn world_error(e: WorldError) -> ApiError {
    let (status, code) = match &e {
        WorldError::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
        WorldError::UnknownTemplate(_) => (StatusCode::NOT_FOUND, "unknown_template"),
        WorldError::UnknownWorld(_) => (StatusCode::NOT_FOUND, "unknown_world"),
        WorldError::NotOwner(_) => (StatusCode::FORBIDDEN, "not_owner"),
        WorldError::DuplicateName(_) => (StatusCode::CONFLICT, "duplicate_name"),
        WorldError::Storage(_) => return storage(e),
        WorldError::NotRunning => (StatusCode::SERVICE_UNAVAILABLE, "not_running"),
    };
    tracing::info!("world request refused: {e}");
    ApiError::new(status, code, e.to_string())
}

/// `POST /api/session` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    display_name: String,
    #[serde(default)]
    persistent: bool,
    #[serde(default)]
    token: Option<String>,
}

/// `POST /api/session` answer.
#[derive(Debug, Serialize)]
struct SessionAnswer {
    user_id: UserId,
    token: String,
    display_name: String,
    persistent: bool,
}

async fn session(
    State(shared): State<Arc<Shared>>,
    request: Result<Json<SessionRequest>, JsonRejection>,
) -> Api {
    let request = body(request)?;
    let name = request.display_name.trim().to_owned();
    if name.is_empty()
        || name.chars().count() > MAX_DISPLAY_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(bad_request(format!(
            "display_name must be 1–{MAX_DISPLAY_NAME_CHARS} characters without control characters"
        )));
    }
    let user = match request.token.as_deref() {
        Some(token) => shared.keys.verify(token).map_err(|e| {
            tracing::warn!("refused a session token: {e}");
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.to_string())
        })?,
        None => UserId::from_u128(uuid::Uuid::new_v4().as_u128()),
    };
    let store = shared.store.clone();
    let existing = tokio::task::spawn_blocking(move || store.user(user))
        .await
        .map_err(storage)?
        .map_err(storage)?;
    let record = UserRecord {
        id: user,
        display_name: name,
        persistent: request.persistent,
        created_ms: existing.map_or_else(worlds::now_ms, |u| u.created_ms),
    };
    let (store, saved) = (shared.store.clone(), record.clone());
    tokio::task::spawn_blocking(move || store.put_user(&saved))
        .await
        .map_err(storage)?
        .map_err(storage)?;
    Ok(Json(SessionAnswer {
        user_id: user,
        token: shared.keys.issue(user),
        display_name: record.display_name,
        persistent: record.persistent,
    })
    .into_response())
}

async fn templates(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.templates.summaries()).into_response()
}

async fn read_only() -> ApiError {
    tracing::info!("refused a request to modify a template");
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "read_only",
        "templates are read-only; create a world from one instead (POST /api/worlds)",
    )
}

fn world_id(id: &str) -> Result<UniverseId, ApiError> {
    id.parse().map_err(|e: multiverse_core::ids::IdError| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_world",
            format!("{id:?} is not a world id: {e}"),
        )
    })
}

async fn my_worlds(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Api {
    let user = caller(&shared, &headers)?;
    let mine = worlds::list(&shared, user).await.map_err(world_error)?;
    let views: Vec<_> = mine.iter().map(|w| worlds::view(&shared, w)).collect();
    Ok(Json(views).into_response())
}

/// `POST /api/worlds` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWorld {
    template: String,
    name: String,
}

async fn create_world(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Result<Json<CreateWorld>, JsonRejection>,
) -> Api {
    let user = caller(&shared, &headers)?;
    let request = body(request)?;
    let world = worlds::create(&shared, user, &request.template, &request.name)
        .await
        .map_err(world_error)?;
    Ok((StatusCode::CREATED, Json(worlds::view(&shared, &world))).into_response())
}

/// The world `id` if the caller owns it.
async fn owned_world(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    id: &str,
) -> Result<crate::store::WorldRecord, ApiError> {
    let user = caller(shared, headers)?;
    worlds::owned(shared, user, world_id(id)?)
        .await
        .map_err(world_error)
}

async fn world(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Api {
    let world = owned_world(&shared, &headers, &id).await?;
    Ok(Json(worlds::view(&shared, &world)).into_response())
}

async fn save_world(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Api {
    let world = owned_world(&shared, &headers, &id).await?;
    let world = worlds::save(&shared, world, true)
        .await
        .map_err(world_error)?;
    Ok(Json(worlds::view(&shared, &world)).into_response())
}

async fn reload_world(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Api {
    let world = owned_world(&shared, &headers, &id).await?;
    worlds::reload(&shared, &world).await.map_err(world_error)?;
    Ok(Json(worlds::view(&shared, &world)).into_response())
}

async fn delete_world(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Api {
    let world = owned_world(&shared, &headers, &id).await?;
    worlds::delete(&shared, &world, "its owner deleted it")
        .await
        .map_err(world_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// One universe in `/api/stats`.
#[derive(Debug, Serialize)]
struct UniverseStats {
    id: UniverseId,
    name: String,
    listed: bool,
    entities: u32,
    subscribers: usize,
    tick_micros_avg: u64,
    tick_micros_max: u64,
    dropped_frames: u64,
}

fn universe_stats(shared: &Shared) -> Vec<UniverseStats> {
    shared
        .universes
        .all()
        .into_iter()
        .map(|h| {
            let s = h.stats.borrow();
            UniverseStats {
                id: s.info.id,
                name: s.info.name.clone(),
                listed: shared.universes.is_listed(s.info.id),
                entities: s.info.entities,
                subscribers: s.subscribers,
                tick_micros_avg: s.avg_tick_micros,
                tick_micros_max: s.max_tick_micros,
                dropped_frames: s.dropped_frames,
            }
        })
        .collect()
}

async fn world_count(shared: &Shared) -> Result<usize, ApiError> {
    let store = shared.store.clone();
    Ok(tokio::task::spawn_blocking(move || store.worlds())
        .await
        .map_err(storage)?
        .map_err(storage)?
        .len())
}

async fn stats(State(shared): State<Arc<Shared>>) -> Api {
    Ok(Json(serde_json::json!({
        "connections": shared.connections(),
        "rooms": shared.rooms.live_count(),
        "worlds": world_count(&shared).await?,
        "uptime_secs": shared.started.elapsed().as_secs(),
        "universes": universe_stats(&shared),
    }))
    .into_response())
}

/// Label values are escaped as the Prometheus text format asks (`\`, `"`, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Api {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let plain = |v: u64| vec![(String::new(), v)];
    gauge(
        "multiverse_connections",
        "Open WebSocket connections.",
        &plain(shared.connections() as u64),
    );
    gauge(
        "multiverse_rooms",
        "Rooms running now.",
        &plain(shared.rooms.live_count() as u64),
    );
    gauge(
        "multiverse_worlds",
        "Users' worlds in the store.",
        &plain(world_count(&shared).await? as u64),
    );
    gauge(
        "multiverse_uptime_seconds",
        "Seconds since the peer started.",
        &plain(shared.started.elapsed().as_secs()),
    );
    let universes = universe_stats(&shared);
    let per = |f: fn(&UniverseStats) -> u64| -> Vec<(String, u64)> {
        universes
            .iter()
            .map(|u| {
                (
                    format!("{{universe=\"{}\",name=\"{}\"}}", u.id, label(&u.name)),
                    f(u),
                )
            })
            .collect()
    };
    gauge(
        "multiverse_universe_entities",
        "Live entities per universe.",
        &per(|u| u64::from(u.entities)),
    );
    gauge(
        "multiverse_universe_subscribers",
        "Stream subscribers per universe.",
        &per(|u| u.subscribers as u64),
    );
    gauge(
        "multiverse_universe_tick_micros_avg",
        "Moving average of the tick duration, microseconds.",
        &per(|u| u.tick_micros_avg),
    );
    gauge(
        "multiverse_universe_tick_micros_max",
        "Longest recent tick, microseconds.",
        &per(|u| u.tick_micros_max),
    );
    gauge(
        "multiverse_universe_dropped_frames",
        "Frames dropped for slow clients since start.",
        &per(|u| u.dropped_frames),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

async fn peers(State(shared): State<Arc<Shared>>) -> Response {
    let port = shared.local_addr.port();
    let addresses: Vec<String> = crate::links::reachable_addresses(
        shared.local_addr.ip(),
        &crate::links::interface_addresses(),
    )
    .into_iter()
    .map(|ip| format!("ws://{}", std::net::SocketAddr::new(ip, port)))
    .collect();
    Json(serde_json::json!({
        "peer_id": shared.identity.peer_id,
        "peer_name": shared.identity.peer_name,
        "addresses": addresses,
        "links": shared.federation.links(),
        "dialled": shared.federation.dials(),
    }))
    .into_response()
}

/// `POST /api/peers` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddPeer {
    address: String,
}

async fn add_peer(
    State(shared): State<Arc<Shared>>,
    request: Result<Json<AddPeer>, JsonRejection>,
) -> Api {
    let request = body(request)?;
    let address = crate::federation::peer_address(&request.address).map_err(bad_request)?;
    if shared
        .federation
        .dials()
        .iter()
        .any(|d| d.address == address)
    {
        return Ok((
            StatusCode::OK,
            Json(serde_json::json!({"address": address})),
        )
            .into_response());
    }
    tracing::info!(%address, "dialling a peer (asked through the API)");
    tokio::spawn(crate::federation::dial(shared.clone(), address.clone()));
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"address": address})),
    )
        .into_response())
}

/// `POST /api/transfers` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartTransfer {
    /// The passage to go through; without one, a direct transfer between linked peers.
    #[serde(default)]
    passage: Option<multiverse_core::ids::PassageId>,
    universe: UniverseId,
    entity: multiverse_core::ids::EntityId,
    target_universe: UniverseId,
    #[serde(default)]
    exit: Option<multiverse_core::universe::Vec2>,
}

async fn start_transfer(
    State(shared): State<Arc<Shared>>,
    request: Result<Json<StartTransfer>, JsonRejection>,
) -> Api {
    use multiverse_core::federation::{TransferError, TransferRequest};
    let request = body(request)?;
    let unknown = |id: UniverseId| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_universe",
            format!("no universe {id} here"),
        )
    };
    let host = shared
        .universes
        .get(request.universe)
        .ok_or_else(|| unknown(request.universe))?;
    let local_target = shared.universes.get(request.target_universe).is_some();
    let target_peer = if local_target {
        shared.identity.peer_id
    } else {
        shared
            .federation
            .route(request.target_universe)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_universe",
                    format!("no linked peer hosts universe {}", request.target_universe),
                )
            })?
    };
    let exit = request.exit.unwrap_or_default();
    let passage = match request.passage {
        Some(id) => {
            let open = shared
                .passages
                .list()
                .into_iter()
                .find(|p| p.id == id)
                .filter(|p| {
                    matches!(
                        p.state,
                        multiverse_core::federation::PassageState::Connected
                            | multiverse_core::federation::PassageState::Degraded
                    ) && p.from_universe == request.universe
                        && p.to_universe == request.target_universe
                        && p.grant.as_ref().is_some_and(|g| {
                            g.interaction >= multiverse_core::stream::InteractionMode::Full
                        })
                });
            if open.is_none() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "passage_closed",
                    format!("passage {id} is not open between these universes, or does not grant full interaction"),
                ));
            }
            id
        }
        None => multiverse_core::ids::PassageId::from_u128(
            request.universe.as_u128() ^ request.target_universe.as_u128().rotate_left(64),
        ),
    };
    let transfer = TransferRequest {
        universe: request.universe,
        entity: request.entity,
        target: crate::host::endpoint(request.target_universe),
        passage,
        target_universe: request.target_universe,
        exit,
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    host.commands
        .send(crate::host::HostCommand::StartTransfer {
            request: transfer,
            reply,
        })
        .await
        .map_err(|_| unknown(request.universe))?;
    let stored = answer
        .await
        .map_err(|_| storage("the transfer could not be stored; the entity stays where it is"))?;
    let id = stored.map_err(|e| {
        let (status, code) = match e {
            TransferError::NoSuchUniverse(_) => (StatusCode::NOT_FOUND, "unknown_universe"),
            TransferError::NoSuchEntity(_) => (StatusCode::NOT_FOUND, "unknown_entity"),
            TransferError::InTransit(_) => (StatusCode::CONFLICT, "in_transit"),
            _ => (StatusCode::BAD_REQUEST, "invalid_request"),
        };
        ApiError::new(status, code, e.to_string())
    })?;
    tracing::info!(transfer = %id, from = %request.universe, to = %request.target_universe, peer = %target_peer, "transfer started");
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"transfer": id})),
    )
        .into_response())
}

async fn list_passages(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.passages.list()).into_response()
}

fn default_sync_hz() -> u32 {
    20
}

/// `POST /api/passages` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenPassage {
    /// The peer hosting `to_universe`; needed when that universe is not in its list.
    #[serde(default)]
    peer: Option<multiverse_core::ids::PeerId>,
    from_universe: UniverseId,
    to_universe: UniverseId,
    #[serde(default)]
    view: Option<multiverse_core::stream::ViewMode>,
    #[serde(default)]
    interaction: Option<multiverse_core::stream::InteractionMode>,
    #[serde(default = "default_sync_hz")]
    sync_hz: u32,
    #[serde(default)]
    password: Option<String>,
}

async fn open_passage(
    State(shared): State<Arc<Shared>>,
    request: Result<Json<OpenPassage>, JsonRejection>,
) -> Api {
    let request = body(request)?;
    if !(1..=60).contains(&request.sync_hz) {
        return Err(bad_request("sync_hz must be 1–60"));
    }
    let unknown = |m: String| ApiError::new(StatusCode::NOT_FOUND, "unknown_universe", m);
    let config = crate::federation::config_of(&shared, request.from_universe)
        .await
        .ok_or_else(|| unknown(format!("no universe {} here", request.from_universe)))?;
    let linked = |p: &multiverse_core::ids::PeerId| {
        shared.federation.links().iter().any(|l| l.peer_id == *p)
    };
    let remote = request
        .peer
        .filter(linked)
        .or_else(|| shared.federation.route(request.to_universe))
        .ok_or_else(|| {
            unknown(format!(
                "no linked peer lists universe {}",
                request.to_universe
            ))
        })?;
    let passage = crate::passages::request(
        config,
        request.to_universe,
        request.view,
        request
            .interaction
            .unwrap_or(multiverse_core::stream::InteractionMode::None),
        request.sync_hz,
        request.password,
    );
    let (reply, answer) = tokio::sync::oneshot::channel();
    let command = crate::passages::PassageCommand::Open(Box::new(passage), remote, reply);
    let gone = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_running",
            "the peer is stopping",
        )
    };
    shared
        .passages
        .commands
        .send(command)
        .await
        .map_err(|_| gone())?;
    let id = answer.await.map_err(|_| gone())?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"passage": id})),
    )
        .into_response())
}

async fn close_passage(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Api {
    let not_found = |m: String| ApiError::new(StatusCode::NOT_FOUND, "unknown_passage", m);
    let id: multiverse_core::ids::PassageId = id
        .parse()
        .map_err(|e: multiverse_core::ids::IdError| not_found(e.to_string()))?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let _ = shared
        .passages
        .commands
        .send(crate::passages::PassageCommand::Close(id, reply))
        .await;
    if answer.await.unwrap_or(false) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(format!("no passage {id}")))
    }
}

/// `PUT /api/universes/{id}/passage-policy` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRequest {
    access: multiverse_core::room::AccessPolicy,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    allow: Option<Vec<multiverse_core::ids::PeerId>>,
    #[serde(default)]
    approval: bool,
    #[serde(default)]
    max_view: Option<multiverse_core::stream::ViewMode>,
    #[serde(default)]
    max_interaction: Option<multiverse_core::stream::InteractionMode>,
}

async fn set_policy(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    request: Result<Json<PolicyRequest>, JsonRejection>,
) -> Api {
    use multiverse_core::federation::{PassageAuth, PassagePolicy, PasswordHash};
    let request = body(request)?;
    let universe: UniverseId = id.parse().map_err(|e: multiverse_core::ids::IdError| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_universe", e.to_string())
    })?;
    if shared.universes.get(universe).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_universe",
            format!("no universe {universe} here"),
        ));
    }
    let auth = match (request.password, request.allow, request.approval) {
        (Some(p), None, false) if !p.is_empty() => {
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).map_err(storage)?;
            PassageAuth::Password(PasswordHash::new(&p, salt))
        }
        (None, Some(peers), false) => PassageAuth::AllowList(peers.into_iter().collect()),
        (None, None, true) => PassageAuth::Approval,
        (None, None, false) => PassageAuth::None,
        _ => return Err(bad_request("choose one of password, allow or approval")),
    };
    let policy = PassagePolicy {
        access: request.access,
        auth,
        max_view: request.max_view.or(PassagePolicy::default().max_view),
        max_interaction: request
            .max_interaction
            .unwrap_or(PassagePolicy::default().max_interaction),
    };
    shared.passages.set_policy(universe, policy);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn decide_passage(shared: &Shared, id: &str, approve: bool) -> Api {
    let not_found = |m: String| ApiError::new(StatusCode::NOT_FOUND, "unknown_passage", m);
    let id: multiverse_core::ids::PassageId = id
        .parse()
        .map_err(|e: multiverse_core::ids::IdError| not_found(e.to_string()))?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let command = crate::passages::PassageCommand::Decide(id, approve, reply);
    let _ = shared.passages.commands.send(command).await;
    match answer.await {
        Ok(Ok(())) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(Err(message)) if message == "no such passage" => Err(not_found(message)),
        Ok(Err(message)) => Err(ApiError::new(StatusCode::CONFLICT, "not_pending", message)),
        Err(_) => Err(not_found(format!("no passage {id}"))),
    }
}

async fn approve_passage(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Api {
    decide_passage(&shared, &id, true).await
}

async fn deny_passage(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Api {
    decide_passage(&shared, &id, false).await
}
