//! Stream server benchmark (a bench binary: it reports per-tick percentiles and bytes per
//! moved entity, which criterion cannot). Single-threaded; run pinned to one core:
//!
//! ```sh
//! taskset -c 0 cargo bench -p multiverse-core --bench stream
//! ```
//!
//! Scenarios follow the streaming issue: 10,000 wandering entities at 20 Hz, 100
//! subscribers; (A) everyone sees everything, (B) distinct viewports and distance-scaled
//! rates, (C) the same updates as the seed's JSON messages.

use std::time::{Duration, Instant};

use multiverse_core::ids::{UniverseId, UserId};
use multiverse_core::stream::{
    InteractionMode, StreamConfiguration, StreamServer, SubscriberId, ViewMode,
};
use multiverse_core::universe::{demo_universe, DemoKind, Rect, Universe};
use multiverse_core::wire::{Codec, Encoding, ServerMessage};
use serde_json::json;

const ENTITIES: usize = 10_000;
const SUBSCRIBERS: u64 = 100;
const WORLD: f32 = 4000.0;
const WARMUP: usize = 20;
const TICKS: usize = 300;

struct Run {
    ticks: Vec<Duration>,
    bytes: usize,
    moves: usize,
    frames: usize,
    sends: usize,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        let mut t = self.ticks.clone();
        t.sort();
        t[((t.len() - 1) as f64 * p).round() as usize]
    }

    fn mean(&self) -> Duration {
        self.ticks.iter().sum::<Duration>() / self.ticks.len() as u32
    }

    fn report(&self, name: &str, target: &str) {
        println!(
            "{name:<44} mean {:>7.3} ms  p50 {:>7.3} ms  p99 {:>7.3} ms  {:>6.2} B/moved entity  {:>5.1} frames/tick  {:>6.0} sends/tick  (target {target})",
            ms(self.mean()),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
            self.bytes as f64 / self.moves.max(1) as f64,
            self.frames as f64 / self.ticks.len() as f64,
            self.sends as f64 / self.ticks.len() as f64,
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn universe() -> Universe {
    demo_universe(
        DemoKind::Sandbox,
        UniverseId::from_u128(1),
        ENTITIES,
        WORLD,
        42,
    )
}

/// Steps the universe, syncs every due group and encodes each frame once: one tick of the
/// peer's host task minus the socket writes (a frame is encoded once per group and shared).
fn run(
    universe: &mut Universe,
    server: &mut StreamServer,
    encoding: Encoding,
    seed_json: bool,
) -> Run {
    let codec = Codec::new(encoding, usize::MAX);
    let mut run = Run {
        ticks: Vec::new(),
        bytes: 0,
        moves: 0,
        frames: 0,
        sends: 0,
    };
    for i in 0..WARMUP + TICKS {
        let started = Instant::now();
        universe.step();
        let events = universe.drain_events();
        server.handle_tick(universe, &events);
        let (mut bytes, mut moves, mut frames, mut sends) = (0, 0, 0, 0);
        while let Some(out) = server.poll_output() {
            let len = if seed_json {
                seed_message(&out.message).len()
            } else {
                codec.encode(&*out.message).len()
            };
            frames += 1;
            sends += out.to.len();
            if let ServerMessage::Update(u) = &*out.message {
                bytes += len;
                moves += u.moves.len();
            }
        }
        let took = started.elapsed();
        if i >= WARMUP {
            run.ticks.push(took);
            run.bytes += bytes;
            run.moves += moves;
            run.frames += frames;
            run.sends += sends;
        }
    }
    run
}

/// The seed's `universe_tick` message (part 3) for an update, as JSON text.
fn seed_message(message: &ServerMessage) -> String {
    let ServerMessage::Update(u) = message else {
        return String::new();
    };
    let updated: Vec<_> = u
        .moves
        .iter()
        .map(|(index, dx, dy)| {
            json!({ "entityId": index, "deltas": [{ "componentType": "position", "operation": "update",
                     "data": { "x": dx as f32 / 16.0, "y": dy as f32 / 16.0 } }] })
        })
        .collect();
    json!({ "type": "universe_tick", "universeId": u.universe.to_string(), "tick": u.tick.to_string(),
            "entitiesAdded": u.entered, "entitiesUpdated": updated, "entitiesRemoved": u.left, "events": u.events })
    .to_string()
}

fn full_view(encoding: Encoding, seed_json: bool) -> Run {
    let mut universe = universe();
    let mut server = StreamServer::new(UniverseId::from_u128(1), InteractionMode::Full);
    let config = StreamConfiguration {
        distance_rates: None,
        ..StreamConfiguration::default()
    };
    for s in 0..SUBSCRIBERS {
        server
            .subscribe(
                SubscriberId(s),
                Some(UserId::from_u128(s.into())),
                config.clone(),
                None,
                ViewMode::Observe,
                &universe,
            )
            .unwrap();
    }
    while server.poll_output().is_some() {}
    run(&mut universe, &mut server, encoding, seed_json)
}

fn distinct_viewports() -> Run {
    let mut universe = universe();
    let mut server = StreamServer::new(UniverseId::from_u128(1), InteractionMode::Full);
    let mut rng = multiverse_core::rng::Rng::new(7);
    for s in 0..SUBSCRIBERS {
        let rates = [5, 10, 20][s as usize % 3];
        let config = StreamConfiguration {
            sync_hz: rates,
            ..StreamConfiguration::default()
        };
        let (w, h) = (800.0, 500.0);
        let viewport = Rect::new(rng.range(0.0, WORLD - w), rng.range(0.0, WORLD - h), w, h);
        server
            .subscribe(
                SubscriberId(s),
                None,
                config,
                Some(viewport),
                ViewMode::Observe,
                &universe,
            )
            .unwrap();
    }
    while server.poll_output().is_some() {}
    run(&mut universe, &mut server, Encoding::Binary, false)
}

fn step_only() -> Run {
    let mut universe = universe();
    let mut server = StreamServer::new(UniverseId::from_u128(1), InteractionMode::Full);
    run(&mut universe, &mut server, Encoding::Binary, false)
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return; // `cargo test --benches` probes bench binaries; nothing to test here
    }
    println!("{ENTITIES} entities wandering in a {WORLD}x{WORLD} world at 20 Hz, {SUBSCRIBERS} subscribers, {TICKS} ticks after {WARMUP} warm-up");
    step_only().report("simulation step only", "-");
    full_view(Encoding::Binary, false)
        .report("A full view, binary (step+diff+encode)", "<= 3 ms, <= 4 B");
    full_view(Encoding::Json, false).report("A full view, JSON encoding", "comparison");
    full_view(Encoding::Binary, true)
        .report("C full view, seed's JSON universe_tick", "comparison");
    distinct_viewports().report("B distinct viewports, rates 5/10/20 Hz", "<= 7 ms");
}
