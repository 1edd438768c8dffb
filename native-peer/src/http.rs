//! The HTTP surface: the web client (with SPA fallback), `/ws`, `/healthz`, and clear 404s.

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use multiverse_core::ids::UniverseId;
use multiverse_core::wire::{Encoding, MAX_CLIENT_FRAME_BYTES, PROTOCOL_VERSION};
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::Shared;

/// Frames above this size are refused by the WebSocket layer itself (close 1009); frames
/// between [`MAX_CLIENT_FRAME_BYTES`] and this get a `frame_too_large` error frame and the
/// connection stays open.
pub const HARD_FRAME_LIMIT: usize = 16 * MAX_CLIENT_FRAME_BYTES;
/// Bytes read from a client socket at a time (larger frames still arrive whole).
pub const READ_BUFFER_BYTES: usize = 8 * 1024;

/// The peer's router.
pub fn router(shared: Arc<Shared>) -> Router {
    let spa = get(spa_fallback).with_state(shared.clone());
    let files = ServeDir::new(&shared.dist_dir)
        .append_index_html_on_directories(true)
        .fallback(spa);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/ws", get(ws_upgrade))
        .route("/peer", get(peer_upgrade))
        .route("/api/universes", get(list_universes))
        .route("/api/rooms", get(list_rooms))
        .route("/api/universes/{id}", get(universe_stats))
        .route("/api/universes/{id}/views", get(universe_views))
        .merge(crate::api::routes())
        .route("/api", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .fallback_service(files)
        .layer(TraceLayer::new_for_http())
        .with_state(shared)
}

async fn healthz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "peer_id": shared.identity.peer_id,
        "peer_name": shared.identity.peer_name,
        "protocol_version": PROTOCOL_VERSION,
        "connections": shared.connections(),
    }))
}

/// `GET /api/rooms`: public rooms with people in them.
async fn list_rooms(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    Json(shared.rooms.list_public())
}

/// `GET /api/universes`: every hosted universe.
async fn list_universes(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    Json(shared.universes.list())
}

/// A JSON error answer of the REST API: `{"error": code, "message": …}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error answer with an HTTP status, a stable code and a message for people.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.code, "message": self.message }));
        (self.status, body).into_response()
    }
}

fn host_of(shared: &Shared, id: &str) -> Result<crate::host::HostHandle, ApiError> {
    let unknown = |message: String| ApiError {
        status: StatusCode::NOT_FOUND,
        code: "unknown_universe",
        message,
    };
    let id: UniverseId = id
        .parse()
        .map_err(|e: multiverse_core::ids::IdError| unknown(e.to_string()))?;
    shared
        .universes
        .get(id)
        .ok_or_else(|| unknown(format!("no universe {id} on this peer")))
}

/// `GET /api/universes/{id}`: live numbers of one universe (tick time, subscribers, drops).
async fn universe_stats(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match host_of(&shared, &id) {
        Ok(host) => Json(host.stats.borrow().clone()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /api/universes/{id}/views`: per subscriber, the mirror size after each recent frame.
async fn universe_views(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let host = match host_of(&shared, &id) {
        Ok(host) => host,
        Err(e) => return e.into_response(),
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if host
        .commands
        .send(crate::host::HostCommand::Views(reply))
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "universe host stopped\n").into_response();
    }
    match answer.await {
        Ok(views) => Json(views).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "universe host stopped\n").into_response(),
    }
}

/// `GET /peer`: another peer's link (binary frames, `PeerMessage`s).
async fn peer_upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_failed_upgrade(|e| tracing::warn!("peer link upgrade failed: {e}"))
        .on_upgrade(move |socket| async move {
            let wire = crate::federation::axum_wire(socket);
            let direction = crate::federation::Direction::Inbound;
            let end = crate::federation::run_link(&shared, wire, direction, None).await;
            tracing::info!("inbound peer link ended: {end:?}");
        })
}

async fn api_not_found(uri: Uri) -> Response {
    let body = Json(serde_json::json!({
        "error": "not_found",
        "message": format!("no API endpoint at {}", uri.path()),
    }));
    (StatusCode::NOT_FOUND, body).into_response()
}

/// App routes (no file extension) get the client's index.html so a reload of `/r/<room>`
/// works; a missing asset (`/missing.js`) is a plain 404.
async fn spa_fallback(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let last = uri.path().rsplit('/').next().unwrap_or("");
    if last.contains('.') {
        let msg = format!("no file at {}\n", uri.path());
        return (StatusCode::NOT_FOUND, msg).into_response();
    }
    let index = shared.dist_dir.join("index.html");
    match tokio::fs::read(&index).await {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("cannot serve {}: {e}", index.display());
            let msg = format!(
                "The web client is not built ({} is missing).\nRun scripts/run from the repository root; it builds the client with trunk.\n",
                index.display()
            );
            (StatusCode::SERVICE_UNAVAILABLE, msg).into_response()
        }
    }
}

async fn ws_upgrade(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let requested: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let encoding = requested.iter().find_map(|p| Encoding::from_subprotocol(p));
    let encoding = match (encoding, requested.is_empty()) {
        (Some(e), _) => e,
        // A client that asks for no subprotocol (wscat, curl) gets JSON.
        (None, true) => Encoding::Json,
        (None, false) => {
            tracing::warn!(
                ?requested,
                "refused WebSocket with unsupported subprotocols"
            );
            let msg = format!(
                "unsupported WebSocket subprotocol {requested:?}; this peer speaks {} and {}\n",
                Encoding::Binary.subprotocol(),
                Encoding::Json.subprotocol()
            );
            return (StatusCode::BAD_REQUEST, msg).into_response();
        }
    };
    let shared2 = shared.clone();
    ws.protocols([encoding.subprotocol()])
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        // Client frames are small (the soft limit is 64 KiB). The library's 128 KiB default
        // read buffer is zeroed again on every read: a measurable share of the CPU with a
        // hundred chatty members, and 128 KiB of memory per connection.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_failed_upgrade(|e| tracing::warn!("WebSocket upgrade failed: {e}"))
        .on_upgrade(move |socket| async move {
            shared2
                .tracker
                .clone()
                .spawn(crate::session::run(socket, encoding, shared2))
                .await
                .ok();
        })
}
