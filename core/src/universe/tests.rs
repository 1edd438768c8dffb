use super::*;

fn small() -> Universe {
    demo_universe(DemoKind::Sandbox, UniverseId::from_u128(1), 50, 500.0, 7)
}

#[test]
fn stepping_is_deterministic_and_stays_in_bounds() {
    let (mut a, mut b) = (small(), small());
    for _ in 0..400 {
        a.step();
        b.step();
    }
    let pa: Vec<Vec2> = a.iter().map(|(_, e)| e.position).collect();
    let pb: Vec<Vec2> = b.iter().map(|(_, e)| e.position).collect();
    assert_eq!(pa, pb);
    let bounds = a.config().physics.bounds;
    assert!(
        a.iter().all(|(_, e)| bounds.contains(e.position)),
        "entities stay inside"
    );
    assert_eq!(a.tick(), 400);
}

#[test]
fn entities_move() {
    let mut u = small();
    let before: Vec<Vec2> = u.iter().map(|(_, e)| e.position).collect();
    u.step();
    let moved = u
        .iter()
        .zip(&before)
        .filter(|((_, e), p)| e.position != **p)
        .count();
    assert!(moved > 40, "only {moved} of 50 moved");
}

#[test]
fn generations_protect_against_stale_ids() {
    let mut u = small();
    let (id, _) = u.iter().next().unwrap();
    u.despawn(id).unwrap();
    assert_eq!(u.despawn(id), Err(UniverseError::NoSuchEntity(id)));
    let e = Entity::new(
        "x",
        Vec2::new(1.0, 1.0),
        Renderable {
            shape: Shape::Circle,
            colour: 0,
            size: 1.0,
        },
    );
    let reused = u.spawn(e).unwrap();
    assert_eq!(reused.index, id.index);
    assert_ne!(reused.generation, id.generation);
    assert!(u.get(id).is_none());
    assert!(u.get(reused).is_some());
    assert_eq!(u.len(), 50);
}

#[test]
fn changes_stamp_the_meta_tick_and_emit_events() {
    let mut u = small();
    for _ in 0..3 {
        u.step();
    }
    let (id, _) = u.iter().nth(3).unwrap();
    u.modify(id, |e| e.tags.push("marked".into())).unwrap();
    assert_eq!(u.meta_tick(id.index), 3);
    assert!(u
        .drain_events()
        .contains(&UniverseEvent::Changed { entity: id }));
    u.step();
    assert!(
        !u.events().contains(&UniverseEvent::Changed { entity: id }),
        "drained events are gone"
    );
}

#[test]
fn interactions_ripple_spawn_and_refuse_nonsense() {
    use crate::stream::Interaction;
    let mut u = small();
    let me = Some(crate::ids::UserId::from_u128(9));
    u.drain_events();
    u.interact(
        me,
        &Interaction::Click {
            at: Vec2::new(250.0, 250.0),
        },
    )
    .unwrap();
    assert!(u
        .drain_events()
        .iter()
        .any(|e| matches!(e, UniverseEvent::Custom { name, .. } if name == "ripple")));
    let spawn = Interaction::Command {
        name: "spawn".into(),
        at: Vec2::new(1e9, 10.0),
    };
    u.interact(me, &spawn).unwrap();
    let mine: Vec<_> = u
        .iter()
        .filter(|(_, e)| e.owner == me)
        .map(|(_, e)| e.position)
        .collect();
    assert_eq!(mine, [Vec2::new(500.0, 10.0)], "clamped into the world");
    assert_eq!(u.interact(None, &spawn), Err(UniverseError::AnonymousSpawn));
    let nan = Interaction::Click {
        at: Vec2::new(f32::NAN, 0.0),
    };
    assert_eq!(u.interact(me, &nan), Err(UniverseError::BadPoint));
    let bogus = Interaction::Command {
        name: "launch".into(),
        at: Vec2::default(),
    };
    assert!(matches!(
        u.interact(me, &bogus),
        Err(UniverseError::UnknownCommand(_))
    ));
    for _ in 1..SPAWN_LIMIT_PER_USER {
        u.interact(me, &spawn).unwrap();
    }
    assert_eq!(
        u.interact(me, &spawn),
        Err(UniverseError::SpawnLimit(SPAWN_LIMIT_PER_USER))
    );
    u.interact(
        me,
        &Interaction::Command {
            name: "clear_mine".into(),
            at: Vec2::default(),
        },
    )
    .unwrap();
    assert_eq!(u.iter().filter(|(_, e)| e.owner == me).count(), 0);
}
