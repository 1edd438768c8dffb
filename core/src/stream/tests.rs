//! Stream server + mirror, driven deterministically: unit tests and the property test
//! "every mirror equals the server's filtered view after every delivered frame".

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::ids::{UniverseId, UserId};
use crate::universe::{
    demo_universe, DemoKind, Entity, PropValue, Renderable, Shape, Universe, Vec2,
};
use crate::wire::{Codec, Encoding, ErrorCode, ServerMessage, MAX_SERVER_FRAME_BYTES};

const UNIVERSE: UniverseId = UniverseId(77);

fn universe(count: usize, seed: u64) -> Universe {
    demo_universe(DemoKind::Sandbox, UNIVERSE, count, 500.0, seed)
}

fn user(k: u64) -> UserId {
    UserId::from_u128(1000 + u128::from(k))
}

/// A universe, its stream server and one mirror per subscriber, wired through both codecs.
struct Harness {
    universe: Universe,
    server: StreamServer,
    mirrors: BTreeMap<SubscriberId, StreamCache>,
    /// Subscribers whose next frame is lost on the way.
    lose_next: BTreeSet<SubscriberId>,
    /// Subscribers that lost a frame and have not received one since: their mirror is
    /// legitimately behind until the next frame reveals the gap (or replaces everything).
    behind: BTreeSet<SubscriberId>,
    frames: usize,
}

impl Harness {
    fn new(universe: Universe) -> Self {
        Harness {
            universe,
            server: StreamServer::new(UNIVERSE, InteractionMode::Full),
            mirrors: BTreeMap::new(),
            lose_next: BTreeSet::new(),
            behind: BTreeSet::new(),
            frames: 0,
        }
    }

    fn step(&mut self) {
        self.universe.step();
        let events = self.universe.drain_events();
        self.server.handle_tick(&self.universe, &events);
        self.deliver();
    }

    /// Delivers every pending frame; mirrors that detect a gap ask for a resync, as the
    /// web client does.
    fn deliver(&mut self) {
        while let Some(out) = self.server.poll_output() {
            for sub in out.to {
                self.frames += 1;
                let encoding = if self.frames.is_multiple_of(2) {
                    Encoding::Binary
                } else {
                    Encoding::Json
                };
                let codec = Codec::new(encoding, MAX_SERVER_FRAME_BYTES);
                let message: ServerMessage = codec
                    .decode(codec.encode(&*out.message).as_bytes())
                    .expect("round trip");
                if self.lose_next.remove(&sub)
                    && !matches!(message, ServerMessage::Subscribed { .. })
                {
                    self.behind.insert(sub);
                    continue;
                }
                self.behind.remove(&sub);
                self.receive(sub, message);
            }
        }
        // The client's resync timer: a mirror still waiting asks again.
        let waiting: Vec<SubscriberId> = self
            .mirrors
            .iter()
            .filter(|(_, m)| m.needs_snapshot())
            .map(|(s, _)| *s)
            .collect();
        for sub in waiting {
            self.server.resync(sub, &self.universe).expect("subscribed");
            while let Some(out) = self.server.poll_output() {
                for to in out.to {
                    self.receive(to, (*out.message).clone());
                }
            }
        }
    }

    fn receive(&mut self, sub: SubscriberId, message: ServerMessage) {
        match message {
            ServerMessage::Subscribed { universe, .. } => {
                self.mirrors
                    .insert(sub, StreamCache::with_default_cap(universe.id));
            }
            ServerMessage::Snapshot(s) => {
                self.mirrors
                    .get_mut(&sub)
                    .expect("subscribed first")
                    .apply_snapshot(&s)
                    .expect("snapshot applies");
            }
            ServerMessage::Update(u) => {
                let mirror = self.mirrors.get_mut(&sub).expect("subscribed first");
                match mirror.apply_update(&u) {
                    Ok(()) | Err(MirrorError::AwaitingSnapshot) => {}
                    Err(MirrorError::Gap { .. }) => {
                        self.server.resync(sub, &self.universe).expect("subscribed");
                    }
                    Err(e) => panic!("update does not apply to {sub:?}: {e}"),
                }
            }
            ServerMessage::Unsubscribed { .. } => {
                self.mirrors.remove(&sub);
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }

    fn check_mirrors(&self) {
        for (sub, mirror) in self
            .mirrors
            .iter()
            .filter(|(s, _)| !self.behind.contains(s))
        {
            let view = self.server.view_of(*sub).expect("subscribed");
            let mirrored: Vec<EntityState> = mirror.entities().cloned().collect();
            assert_eq!(
                mirrored, view,
                "mirror of {sub:?} differs from the server's view"
            );
        }
    }
}

/// The reference: which entities a configuration selects, computed independently.
fn reference_view(
    u: &Universe,
    config: &StreamConfiguration,
    viewport: Option<Rect>,
    viewer: Option<UserId>,
) -> Vec<EntityState> {
    if !config.include_entities {
        return Vec::new();
    }
    let centre = viewport.unwrap_or(u.config().physics.bounds).centre();
    let f = &config.filter;
    let mut chosen: Vec<(f32, EntityState)> = u
        .iter()
        .filter(|(_, e)| viewport.is_none_or(|v| v.contains(e.position)))
        .filter(|(_, e)| f.kinds.is_empty() || f.kinds.contains(&e.kind))
        .filter(|(_, e)| f.tags.is_empty() || f.tags.iter().any(|t| e.tags.contains(t)))
        .filter(|(_, e)| !f.owned_by_viewer || (viewer.is_some() && e.owner == viewer))
        .map(|(id, e)| (e.position.distance(centre), EntityState::of(id, e)))
        .collect();
    chosen.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.id.index.cmp(&b.1.id.index)));
    chosen.truncate(config.max_entities as usize);
    let mut states: Vec<EntityState> = chosen.into_iter().map(|(_, s)| s).collect();
    states.sort_by_key(|s| s.id);
    states
}

fn exact(config: &StreamConfiguration) -> bool {
    config.sync_hz >= 20 && config.distance_rates.is_none()
}

#[derive(Debug, Clone)]
enum Op {
    Step,
    Subscribe {
        k: u64,
        config: StreamConfiguration,
        viewport: Option<Rect>,
    },
    SetViewport {
        k: u64,
        viewport: Option<Rect>,
    },
    Configure {
        k: u64,
        config: StreamConfiguration,
    },
    Unsubscribe {
        k: u64,
    },
    LoseNextFrame {
        k: u64,
    },
    QueueFull {
        k: u64,
    },
    Mutate {
        pick: u32,
        what: u8,
    },
    Spawn {
        x: f32,
        y: f32,
        owner: u64,
    },
}

fn arb_viewport() -> impl Strategy<Value = Option<Rect>> {
    prop_oneof![
        1 => Just(None),
        3 => (0f32..450.0, 0f32..450.0, 1f32..300.0, 1f32..300.0).prop_map(|(x, y, w, h)| Some(Rect::new(x, y, w, h))),
    ]
}

fn arb_config() -> impl Strategy<Value = StreamConfiguration> {
    let kinds = proptest::sample::subsequence(vec!["ball", "block", "dart", "gem"], 0..=2);
    let tags = proptest::sample::subsequence(vec!["warm", "cool", "marked"], 0..=2);
    let rates = proptest::option::of(
        (0f32..150.0, 0f32..200.0, 1u32..=20, 1u32..=20, 1u32..=20).prop_map(
            |(near, extra, near_hz, mid_hz, far_hz)| DistanceRates {
                near,
                far: near + extra,
                near_hz,
                mid_hz,
                far_hz,
            },
        ),
    );
    (
        prop_oneof![Just(1u32), Just(5), Just(7), Just(20), Just(60)],
        proptest::bool::weighted(0.9),
        any::<bool>(),
        kinds,
        tags,
        proptest::bool::weighted(0.15),
        prop_oneof![1u32..40, Just(MAX_STREAM_ENTITIES)],
        rates,
        proptest::bool::weighted(0.85),
    )
        .prop_map(
            |(
                sync_hz,
                include_entities,
                include_events,
                kinds,
                tags,
                owned,
                max_entities,
                rates,
                delta_only,
            )| {
                StreamConfiguration {
                    sync_hz,
                    include_entities,
                    include_events,
                    include_terrain: true,
                    filter: EntityFilter {
                        kinds: kinds.into_iter().map(String::from).collect(),
                        tags: tags.into_iter().map(String::from).collect(),
                        owned_by_viewer: owned,
                    },
                    max_entities,
                    distance_rates: rates,
                    compression_level: 0,
                    delta_only,
                }
            },
        )
}

fn arb_op() -> impl Strategy<Value = Op> {
    let k = 0u64..4;
    prop_oneof![
        8 => Just(Op::Step),
        2 => (k.clone(), arb_config(), arb_viewport()).prop_map(|(k, config, viewport)| Op::Subscribe { k, config, viewport }),
        3 => (k.clone(), arb_viewport()).prop_map(|(k, viewport)| Op::SetViewport { k, viewport }),
        1 => (k.clone(), arb_config()).prop_map(|(k, config)| Op::Configure { k, config }),
        1 => k.clone().prop_map(|k| Op::Unsubscribe { k }),
        1 => k.clone().prop_map(|k| Op::LoseNextFrame { k }),
        1 => k.clone().prop_map(|k| Op::QueueFull { k }),
        3 => (any::<u32>(), 0u8..6).prop_map(|(pick, what)| Op::Mutate { pick, what }),
        1 => (0f32..500.0, 0f32..500.0, 0u64..4).prop_map(|(x, y, owner)| Op::Spawn { x, y, owner }),
    ]
}

fn apply(
    h: &mut Harness,
    op: Op,
    configs: &mut BTreeMap<u64, (StreamConfiguration, Option<Rect>)>,
) {
    let sub = |k: u64| SubscriberId(k);
    match op {
        Op::Step => h.step(),
        Op::Subscribe {
            k,
            config,
            viewport,
        } => {
            h.server
                .subscribe(
                    sub(k),
                    Some(user(k)),
                    config.clone(),
                    viewport,
                    ViewMode::Participate,
                    &h.universe,
                )
                .expect("valid");
            configs.insert(k, (config, viewport));
        }
        Op::SetViewport { k, viewport } => {
            if h.server.set_viewport(sub(k), viewport, &h.universe).is_ok() {
                configs.get_mut(&k).expect("subscribed").1 = viewport;
            }
        }
        Op::Configure { k, config } => {
            if h.server
                .configure(sub(k), config.clone(), &h.universe)
                .is_ok()
            {
                configs.get_mut(&k).expect("subscribed").0 = config;
            }
        }
        Op::Unsubscribe { k } => {
            if h.server.unsubscribe(sub(k)).is_ok() {
                configs.remove(&k);
            }
        }
        Op::LoseNextFrame { k } => {
            h.lose_next.insert(sub(k));
        }
        Op::QueueFull { k } => h.server.handle_dropped(sub(k)),
        Op::Mutate { pick, what } => {
            let ids: Vec<_> = h.universe.iter().map(|(id, _)| id).collect();
            if ids.is_empty() {
                return;
            }
            let id = ids[pick as usize % ids.len()];
            let _ = match what {
                0 => h.universe.despawn(id).map(drop),
                1 => h.universe.modify(id, |e| e.tags.push("marked".into())),
                2 => h.universe.modify(id, |e| e.tags.clear()),
                3 => h.universe.modify(id, |e| {
                    e.properties
                        .insert("hp".into(), PropValue::Int(i64::from(pick % 100)));
                }),
                4 => h
                    .universe
                    .modify(id, |e| e.renderable.colour = pick & 0xffffff),
                _ => h
                    .universe
                    .modify(id, |e| e.owner = Some(user(u64::from(pick % 4)))),
            };
        }
        Op::Spawn { x, y, owner } => {
            let r = Renderable {
                shape: Shape::Circle,
                colour: 0xabcdef,
                size: 5.0,
            };
            let mut e = Entity::new("gem", Vec2::new(x, y), r).with_tags(&["cool"]);
            e.owner = Some(user(owner));
            h.universe.spawn(e).expect("room for one more");
        }
    }
    h.deliver();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mirrors_equal_the_filtered_server_view(
        count in 0usize..80,
        seed in any::<u64>(),
        ops in proptest::collection::vec(arb_op(), 1..60),
    ) {
        let mut h = Harness::new(universe(count, seed));
        let mut configs = BTreeMap::new();
        for op in ops {
            let stepped = matches!(op, Op::Step);
            apply(&mut h, op, &mut configs);
            h.check_mirrors();
            if stepped {
                for (k, (config, viewport)) in &configs {
                    let view = h.server.view_of(SubscriberId(*k)).expect("subscribed");
                    if exact(config) {
                        prop_assert_eq!(&view, &reference_view(&h.universe, config, *viewport, Some(user(*k))));
                    }
                }
            }
        }
    }
}

fn subscribe(h: &mut Harness, k: u64, config: StreamConfiguration, viewport: Option<Rect>) {
    h.server
        .subscribe(
            SubscriberId(k),
            Some(user(k)),
            config,
            viewport,
            ViewMode::Participate,
            &h.universe,
        )
        .unwrap();
    h.deliver();
}

fn exact_config() -> StreamConfiguration {
    StreamConfiguration {
        distance_rates: None,
        ..StreamConfiguration::default()
    }
}

#[test]
fn identical_interest_shares_one_group_and_one_frame() {
    let mut h = Harness::new(universe(100, 1));
    subscribe(&mut h, 1, exact_config(), None);
    subscribe(&mut h, 2, exact_config(), None);
    assert_eq!(h.server.group_count(), 1);
    h.universe.step();
    let events = h.universe.drain_events();
    h.server.handle_tick(&h.universe, &events);
    let out = h.server.poll_output().expect("an update");
    assert_eq!(out.to, [SubscriberId(1), SubscriberId(2)]);
    assert!(matches!(&*out.message, ServerMessage::Update(u) if u.moves.len() > 90));
}

#[test]
fn leaving_the_viewport_removes_and_reentering_sends_whole() {
    let mut h = Harness::new(universe(0, 1));
    let r = Renderable {
        shape: Shape::Square,
        colour: 1,
        size: 4.0,
    };
    let mut e = Entity::new("block", Vec2::new(50.0, 50.0), r);
    e.wanders = false;
    let id = h.universe.spawn(e).unwrap();
    subscribe(
        &mut h,
        1,
        exact_config(),
        Some(Rect::new(0.0, 0.0, 100.0, 100.0)),
    );
    assert_eq!(h.mirrors[&SubscriberId(1)].len(), 1);
    h.universe
        .set_position(id, Vec2::new(300.0, 300.0))
        .unwrap();
    h.step();
    assert_eq!(
        h.mirrors[&SubscriberId(1)].len(),
        0,
        "left the viewport, left the mirror"
    );
    h.server
        .set_viewport(
            SubscriberId(1),
            Some(Rect::new(250.0, 250.0, 100.0, 100.0)),
            &h.universe,
        )
        .unwrap();
    h.deliver();
    let mirror = &h.mirrors[&SubscriberId(1)];
    assert_eq!(mirror.len(), 1, "re-entered with the new viewport");
    assert_eq!(
        mirror.get(id.index).unwrap().position(),
        Vec2::new(300.0, 300.0)
    );
    h.check_mirrors();
}

#[test]
fn a_viewport_change_splits_a_shared_group_without_a_snapshot() {
    let mut h = Harness::new(universe(200, 3));
    subscribe(&mut h, 1, exact_config(), None);
    subscribe(&mut h, 2, exact_config(), None);
    h.server
        .set_viewport(
            SubscriberId(2),
            Some(Rect::new(0.0, 0.0, 100.0, 100.0)),
            &h.universe,
        )
        .unwrap();
    let out = h.server.poll_output().expect("an update for the mover");
    assert_eq!(out.to, [SubscriberId(2)]);
    assert!(
        matches!(&*out.message, ServerMessage::Update(u) if !u.left.is_empty()),
        "deltas, not a snapshot"
    );
    h.receive(SubscriberId(2), (*out.message).clone());
    assert_eq!(h.server.group_count(), 2);
    h.step();
    h.check_mirrors();
}

#[test]
fn invalid_requests_leave_the_subscription_unchanged() {
    let mut h = Harness::new(universe(30, 4));
    subscribe(&mut h, 1, exact_config(), None);
    let sub = SubscriberId(1);
    let bad_rate = StreamConfiguration {
        sync_hz: 0,
        ..exact_config()
    };
    let err = h.server.configure(sub, bad_rate, &h.universe).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidStreamConfig);
    let many_tags = StreamConfiguration {
        filter: EntityFilter {
            tags: (0..10_000).map(|i| i.to_string()).collect(),
            ..EntityFilter::default()
        },
        ..exact_config()
    };
    assert!(h.server.configure(sub, many_tags, &h.universe).is_err());
    for v in [
        Rect::new(0.0, 0.0, -5.0, 10.0),
        Rect::new(f32::NAN, 0.0, 1.0, 1.0),
        Rect::new(0.0, 0.0, 1e9, 1e9),
    ] {
        assert_eq!(
            h.server
                .set_viewport(sub, Some(v), &h.universe)
                .unwrap_err()
                .code(),
            ErrorCode::InvalidStreamConfig
        );
    }
    assert!(h.server.poll_output().is_none(), "nothing was sent");
    h.step();
    h.check_mirrors();
    assert_eq!(h.mirrors[&sub].len(), 30);
}

#[test]
fn observers_may_not_interact() {
    let mut h = Harness::new(universe(5, 4));
    let click = Interaction::Click {
        at: Vec2::new(1.0, 1.0),
    };
    h.server
        .subscribe(
            SubscriberId(1),
            None,
            exact_config(),
            None,
            ViewMode::Observe,
            &h.universe,
        )
        .unwrap();
    assert_eq!(
        h.server
            .authorize(SubscriberId(1), &click)
            .unwrap_err()
            .code(),
        ErrorCode::NotPermitted
    );
    h.server
        .subscribe(
            SubscriberId(2),
            Some(user(2)),
            exact_config(),
            None,
            ViewMode::Participate,
            &h.universe,
        )
        .unwrap();
    assert_eq!(
        h.server.authorize(SubscriberId(2), &click),
        Ok(Some(user(2)))
    );
    assert_eq!(
        h.server.authorize(SubscriberId(3), &click).unwrap_err(),
        StreamError::NotSubscribed
    );
}

#[test]
fn a_lost_frame_is_detected_and_resynced() {
    let mut h = Harness::new(universe(50, 5));
    subscribe(&mut h, 1, exact_config(), None);
    h.lose_next.insert(SubscriberId(1));
    h.step();
    h.step();
    h.check_mirrors();
    assert!(!h.mirrors[&SubscriberId(1)].needs_snapshot());
}

#[test]
fn far_entities_update_less_often() {
    let mut h = Harness::new(universe(400, 6));
    let config = StreamConfiguration {
        distance_rates: Some(DistanceRates {
            near: 50.0,
            far: 100.0,
            near_hz: 20,
            mid_hz: 10,
            far_hz: 5,
        }),
        ..StreamConfiguration::default()
    };
    subscribe(&mut h, 1, config, None);
    let mut moved = 0;
    for _ in 0..20 {
        h.universe.step();
        let events = h.universe.drain_events();
        h.server.handle_tick(&h.universe, &events);
        while let Some(out) = h.server.poll_output() {
            if let ServerMessage::Update(u) = &*out.message {
                moved += u.moves.len();
            }
        }
    }
    // Mostly far (5 Hz of 20): about a quarter of 400 entities × 20 ticks, plus the near ones.
    assert!(
        moved < 400 * 20 / 2,
        "{moved} moves: distance scaling is not reducing updates"
    );
    assert!(moved > 400 * 20 / 5, "{moved} moves: too few");
}

#[test]
fn moves_are_compact_in_the_binary_encoding() {
    let mut h = Harness::new(universe(10_000, 8));
    subscribe(&mut h, 1, exact_config(), None);
    h.universe.step();
    let events = h.universe.drain_events();
    h.server.handle_tick(&h.universe, &events);
    let out = h.server.poll_output().unwrap();
    let ServerMessage::Update(u) = &*out.message else {
        panic!("an update")
    };
    let bytes = Codec::new(Encoding::Binary, usize::MAX)
        .encode(&*out.message)
        .len();
    let per_entity = bytes as f64 / u.moves.len() as f64;
    assert!(per_entity <= 4.0, "{per_entity:.2} bytes per moved entity");
}
