//! Readable, deterministic cases of the stream server and mirror.

use super::*;

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
