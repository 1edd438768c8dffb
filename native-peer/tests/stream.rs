//! Streaming over real sockets: distinct viewports, slow clients, bad requests.

mod common;

use std::time::{Duration, Instant};

use common::*;
use multiverse_core::stream::{Interaction, StreamCache, StreamConfiguration, ViewMode};
use multiverse_core::universe::{Rect, UniverseInfo, Vec2};
use multiverse_core::wire::{ClientMessage, Encoding, ErrorCode, ServerMessage};

async fn universes(ws: &mut Ws, encoding: Encoding) -> Vec<UniverseInfo> {
    send(ws, encoding, &ClientMessage::ListUniverses).await;
    match recv(ws, encoding).await {
        ServerMessage::UniverseList { universes } => universes,
        other => panic!("expected a universe list, got {other:?}"),
    }
}

fn named<'a>(list: &'a [UniverseInfo], name: &str) -> &'a UniverseInfo {
    list.iter()
        .find(|u| u.name == name)
        .unwrap_or_else(|| panic!("no {name} in {list:?}"))
}

/// Subscribes and returns a mirror holding the first snapshot.
async fn subscribe(
    ws: &mut Ws,
    encoding: Encoding,
    info: &UniverseInfo,
    config: StreamConfiguration,
    viewport: Option<Rect>,
    mode: ViewMode,
) -> StreamCache {
    let request = ClientMessage::Subscribe {
        universe: info.id,
        config,
        viewport,
        mode,
    };
    send(ws, encoding, &request).await;
    assert!(matches!(
        recv(ws, encoding).await,
        ServerMessage::Subscribed { .. }
    ));
    let mut mirror = StreamCache::with_default_cap(info.id);
    match recv(ws, encoding).await {
        ServerMessage::Snapshot(s) => mirror.apply_snapshot(&s).expect("snapshot applies"),
        other => panic!("expected a snapshot, got {other:?}"),
    }
    mirror
}

/// Applies the next `n` updates to `mirror`, returning the largest gap between them.
async fn follow(ws: &mut Ws, encoding: Encoding, mirror: &mut StreamCache, n: usize) -> Duration {
    let mut last = Instant::now();
    let mut worst = Duration::ZERO;
    let mut seen = 0;
    while seen < n {
        match recv(ws, encoding).await {
            ServerMessage::Update(u) => {
                mirror.apply_update(&u).expect("updates apply in order");
                worst = worst.max(last.elapsed());
                last = Instant::now();
                seen += 1;
            }
            ServerMessage::Snapshot(s) => mirror.apply_snapshot(&s).expect("snapshot applies"),
            other => panic!("unexpected {other:?}"),
        }
    }
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_viewports_get_different_frames() {
    let peer = TestPeer::start(|_| {}).await;
    let mut left = joined(&peer, Encoding::Binary).await;
    let mut right = joined(&peer, Encoding::Json).await;
    let list = universes(&mut left, Encoding::Binary).await;
    assert_eq!(
        list.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["sandbox", "aquarium", "galaxy"]
    );
    let sandbox = named(&list, "sandbox").clone();
    let (w, h) = (sandbox.bounds.width, sandbox.bounds.height);
    let exact = StreamConfiguration {
        distance_rates: None,
        ..StreamConfiguration::default()
    };
    let west = Rect::new(0.0, 0.0, w / 2.0, h);
    let east = Rect::new(w / 2.0, 0.0, w / 2.0, h);
    let mut a = subscribe(
        &mut left,
        Encoding::Binary,
        &sandbox,
        exact.clone(),
        Some(west),
        ViewMode::Observe,
    )
    .await;
    let mut b = subscribe(
        &mut right,
        Encoding::Json,
        &sandbox,
        exact,
        Some(east),
        ViewMode::Observe,
    )
    .await;
    follow(&mut left, Encoding::Binary, &mut a, 10).await;
    follow(&mut right, Encoding::Json, &mut b, 10).await;
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both halves hold entities: {} / {}",
        a.len(),
        b.len()
    );
    let in_west = |p: Vec2| p.x <= w / 2.0 + 0.05;
    assert!(
        a.entities().all(|e| in_west(e.position())),
        "west mirror holds only western entities"
    );
    assert!(
        b.entities().all(|e| e.position().x >= w / 2.0 - 0.05),
        "east mirror holds only eastern entities"
    );
    let a_ids: Vec<_> = a.entities().map(|e| e.id).collect();
    assert!(
        b.entities().all(|e| !a_ids.contains(&e.id)),
        "no entity is in both halves"
    );
    assert!(a.len() + b.len() <= sandbox.entities as usize);
    peer.stop().await;
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_delays_nobody_and_stays_bounded() {
    let peer = TestPeer::start(|_| {}).await;
    let mut good = joined(&peer, Encoding::Binary).await;
    let list = universes(&mut good, Encoding::Binary).await;
    let sandbox = named(&list, "sandbox").clone();
    let mut mirror = subscribe(
        &mut good,
        Encoding::Binary,
        &sandbox,
        StreamConfiguration::default(),
        None,
        ViewMode::Observe,
    )
    .await;

    // The stalled client asks for the heaviest stream there is (a full JSON snapshot every
    // tick) and then never reads again.
    let mut stalled = joined(&peer, Encoding::Json).await;
    let heavy = StreamConfiguration {
        delta_only: false,
        sync_hz: 60,
        ..StreamConfiguration::default()
    };
    let request = ClientMessage::Subscribe {
        universe: sandbox.id,
        config: heavy,
        viewport: None,
        mode: ViewMode::Observe,
    };
    send(&mut stalled, Encoding::Json, &request).await;

    let stats_url = format!("/api/universes/{}", sandbox.id);
    let rss_before = rss_kib();
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut dropped = 0;
    while started.elapsed() < Duration::from_secs(40) {
        worst = worst.max(follow(&mut good, Encoding::Binary, &mut mirror, 20).await);
        let stats: serde_json::Value =
            serde_json::from_str(&peer.get(&stats_url).await.text().await.unwrap()).unwrap();
        dropped = stats["dropped_frames"].as_u64().unwrap();
        if dropped > 50 {
            break;
        }
    }
    let growth_mib = rss_kib().saturating_sub(rss_before) / 1024;
    assert!(
        dropped > 50,
        "the stalled client's frames were never dropped: its queue is not bounded"
    );
    assert!(
        worst < Duration::from_millis(500),
        "the reading client waited {worst:?} between updates"
    );
    assert!(
        growth_mib < 64,
        "memory grew by {growth_mib} MiB while a client stalled"
    );
    drop(stalled);
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_requests_get_clear_errors_and_change_nothing() {
    let peer = TestPeer::start(|_| {}).await;
    let enc = Encoding::Json;
    let mut ws = joined(&peer, enc).await;
    let list = universes(&mut ws, enc).await;
    let sandbox = named(&list, "sandbox").clone();
    let galaxy = named(&list, "galaxy").clone();

    let mut unknown = sandbox.clone();
    unknown.id = multiverse_core::ids::UniverseId::from_u128(42);
    send(
        &mut ws,
        enc,
        &ClientMessage::Subscribe {
            universe: unknown.id,
            config: StreamConfiguration::default(),
            viewport: None,
            mode: ViewMode::Observe,
        },
    )
    .await;
    expect_error(&mut ws, enc, ErrorCode::UnknownUniverse).await;

    let bad = StreamConfiguration {
        sync_hz: 500,
        ..StreamConfiguration::default()
    };
    send(
        &mut ws,
        enc,
        &ClientMessage::Subscribe {
            universe: sandbox.id,
            config: bad,
            viewport: None,
            mode: ViewMode::Observe,
        },
    )
    .await;
    let message = expect_error(&mut ws, enc, ErrorCode::InvalidStreamConfig).await;
    assert!(message.contains("sync_hz"), "{message}");

    let mut mirror = subscribe(
        &mut ws,
        enc,
        &sandbox,
        StreamConfiguration::default(),
        None,
        ViewMode::Observe,
    )
    .await;
    let huge = Rect::new(0.0, 0.0, -1.0, 1e12);
    send(
        &mut ws,
        enc,
        &ClientMessage::SetViewport {
            universe: sandbox.id,
            viewport: Some(huge),
        },
    )
    .await;
    let click = Interaction::Click {
        at: Vec2::new(10.0, 10.0),
    };
    send(
        &mut ws,
        enc,
        &ClientMessage::Interact {
            universe: sandbox.id,
            interaction: click.clone(),
        },
    )
    .await;
    let mut errors = Vec::new();
    while errors.len() < 2 {
        match recv(&mut ws, enc).await {
            ServerMessage::Error { code, .. } => errors.push(code),
            ServerMessage::Update(u) => mirror.apply_update(&u).expect("still streaming"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        errors,
        [ErrorCode::InvalidStreamConfig, ErrorCode::NotPermitted]
    );
    follow(&mut ws, enc, &mut mirror, 5).await;
    assert_eq!(
        mirror.len(),
        sandbox.entities as usize,
        "the subscription is unchanged"
    );

    // Participating in a universe that allows no interaction is still refused by the peer.
    let _ = subscribe(
        &mut ws,
        enc,
        &galaxy,
        StreamConfiguration::default(),
        None,
        ViewMode::Participate,
    )
    .await;
    send(
        &mut ws,
        enc,
        &ClientMessage::Interact {
            universe: galaxy.id,
            interaction: click,
        },
    )
    .await;
    loop {
        match recv(&mut ws, enc).await {
            ServerMessage::Error { code, .. } => {
                assert_eq!(code, ErrorCode::NotPermitted);
                break;
            }
            ServerMessage::Update(_) | ServerMessage::Snapshot(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    peer.stop().await;
}
