//! Federation endpoints: links (`/api/peers`), transfers, passages and passage policies.

use super::*;

/// Links, transfers, passages and passage policies.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
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

/// A universe as people know it: its name here, `peer/name` on a linked peer, else its id.
fn universe_label(shared: &Shared, id: UniverseId) -> String {
    if let Some(u) = shared.universes.list().into_iter().find(|u| u.id == id) {
        return u.name;
    }
    shared
        .federation
        .links()
        .into_iter()
        .find_map(|l| {
            let u = l.universes.iter().find(|u| u.id == id)?;
            Some(format!("{}/{}", l.name, u.name))
        })
        .unwrap_or_else(|| id.to_string())
}

/// 409 for a transfer no passage allows: `passage_closed` when the passage named is not
/// open (or grants too little), `no_passage` when none was named and none qualifies; the
/// message says which passage to open.
fn crossing_refusal(
    shared: &Shared,
    request: &StartTransfer,
    error: crate::passages::CrossingError,
) -> ApiError {
    use crate::passages::CrossingError;
    let (from, to) = (
        universe_label(shared, request.universe),
        universe_label(shared, request.target_universe),
    );
    let fix = format!(
        "open a passage from {from} to {to} with interaction full (or collaborative) first"
    );
    let (code, message) = match error {
        CrossingError::NoPassage { granted: Some(mode) } => (
            "no_passage",
            format!(
                "the open passages between {from} and {to} grant interaction {}; entities cross only with full or collaborative: {fix}",
                format!("{mode:?}").to_lowercase()
            ),
        ),
        CrossingError::NoPassage { granted: None } => (
            "no_passage",
            format!("no open passage between {from} and {to} lets entities cross: {fix}"),
        ),
        other => ("passage_closed", format!("{other}: {fix}")),
    };
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// `POST /api/transfers` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartTransfer {
    /// The passage to go through. Without one, an open passage between the two universes
    /// that grants full interaction is looked up (none is needed between two universes of
    /// this peer).
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
    let passage = if local_target {
        if let Some(id) = request.passage {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "passage_closed",
                format!("passage {id} does not lead between two universes of this peer; leave `passage` out"),
            ));
        }
        // Between two universes of this peer nothing crosses a link: no passage needed.
        multiverse_core::ids::PassageId::from_u128(
            request.universe.as_u128() ^ request.target_universe.as_u128().rotate_left(64),
        )
    } else {
        crate::passages::transfer_passage(
            &shared.passages.table(),
            target_peer,
            request.universe,
            request.target_universe,
            request.passage,
        )
        .map_err(|e| crossing_refusal(&shared, &request, e))?
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
