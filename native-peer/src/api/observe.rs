//! `/api/stats` and the Prometheus `/metrics`: connections, rooms, worlds and per-universe
//! tick times.

use super::*;

/// `/api/stats` and `/metrics`.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/stats", get(stats))
        .route("/metrics", get(metrics))
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
    for (name, value) in shared.voice.counters() {
        let help = match name {
            "voice_datagrams_received_total" => "UDP datagrams received by the voice forwarder.",
            "voice_datagrams_unroutable_total" => "Voice datagrams no member's session accepted.",
            "voice_frames_forwarded_total" => "Media frames forwarded to listeners.",
            _ => "Members with voice on.",
        };
        gauge(&format!("multiverse_{name}"), help, &plain(value));
    }
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
