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
pub(super) struct Harness {
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
        .filter(|(id, _)| !u.is_hidden(*id))
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
    /// Hides (in transit) or shows an entity.
    Hide {
        pick: u32,
        hidden: bool,
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
        2 => (any::<u32>(), any::<bool>()).prop_map(|(pick, hidden)| Op::Hide { pick, hidden }),
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
        Op::Hide { pick, hidden } => {
            let ids: Vec<_> = h.universe.iter().map(|(id, _)| id).collect();
            if let Some(id) = ids.get(pick as usize % ids.len().max(1)) {
                h.universe.set_hidden(*id, hidden).expect("live");
            }
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

mod cases;
