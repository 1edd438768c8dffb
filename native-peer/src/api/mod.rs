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

mod federation;
mod observe;

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
        .merge(federation::routes())
        .merge(observe::routes())
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
