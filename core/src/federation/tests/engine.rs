//! One step at a time: what each side outputs, in which order, and what the universes show.

use super::*;
use crate::universe::UniverseEvent;
use crate::wire::{NackReason, TransferPrepare};

fn pair() -> (Side, Side, EntityId) {
    let mut a = Side::new(A, UA);
    let b = Side::new(B, UB);
    let id = a.universes.get_mut(&UA).unwrap().spawn(tagged(1)).unwrap();
    (a, b, id)
}

fn only_message(outputs: &[TransferOutput]) -> PeerMessage {
    let messages = sent(outputs);
    assert_eq!(messages.len(), 1, "{outputs:?}");
    messages[0].1.clone()
}

fn custom_events(u: &mut Universe) -> Vec<String> {
    u.drain_events()
        .into_iter()
        .filter_map(|e| match e {
            UniverseEvent::Custom { name, .. } => Some(name),
            _ => None,
        })
        .collect()
}

#[test]
fn a_transfer_commits_in_order_and_the_entity_moves_exactly_once() {
    let (mut a, mut b, id) = pair();
    let now = Moment::ZERO;
    let t = a
        .engine
        .start(request(id, UB), &mut a.universes, now)
        .unwrap();
    assert!(a.u(UA).is_hidden(id), "in transit: hidden, not destroyed");
    let out = drain(&mut a.engine);
    assert!(
        matches!(&out[..], [TransferOutput::Journal(JournalRecord::Started(s)), TransferOutput::Send { to: B, message: PeerMessage::TransferPrepare(_) }] if s.transfer == t)
    );
    let prepare = only_message(&out);

    let out = b.receive(A, &prepare, now);
    assert!(matches!(
        &out[..],
        [
            TransferOutput::Journal(JournalRecord::Received(_)),
            TransferOutput::Send { to: A, .. }
        ]
    ));
    let ack = only_message(&out);
    let PeerMessage::TransferAck { entity: new_id, .. } = ack else {
        panic!("{ack:?}")
    };
    assert!(b.u(UB).is_hidden(new_id), "pending: hidden until commit");
    assert_eq!(
        b.u(UB).get(new_id).unwrap().position,
        Vec2::new(250.0, 250.0)
    );

    let out = a.receive(B, &ack, now);
    assert!(matches!(
        &out[..],
        [
            TransferOutput::Journal(JournalRecord::Committed { .. }),
            TransferOutput::Event(TransferEvent::Departed { .. }),
            TransferOutput::Send { .. }
        ]
    ));
    assert!(a.u(UA).get(id).is_none(), "deleted only after the ack");
    let commit = only_message(&out);
    assert_eq!(
        custom_events(a.universes.get_mut(&UA).unwrap()),
        [DEPARTED_REMOTE]
    );

    let out = b.receive(A, &commit, now);
    assert!(matches!(
        &out[..],
        [
            TransferOutput::Journal(JournalRecord::Done { .. }),
            TransferOutput::Event(TransferEvent::Arrived { .. }),
            TransferOutput::Send { .. }
        ]
    ));
    assert!(!b.u(UB).is_hidden(new_id));
    assert_eq!(tag_of(b.u(UB).get(new_id).unwrap()), 1);
    assert_eq!(
        custom_events(b.universes.get_mut(&UB).unwrap()),
        [ARRIVED_REMOTE]
    );

    let out = a.receive(B, &only_message(&out), now);
    assert_eq!(journaled(&out), [JournalRecord::Finished { transfer: t }]);
    assert!(a.engine.is_idle() && b.engine.is_idle());
    assert_eq!(a.engine.poll_timeout(), None);
}

#[test]
fn duplicates_are_answered_the_same_way_and_never_stored_twice() {
    let (mut a, mut b, id) = pair();
    let now = Moment::ZERO;
    a.engine
        .start(request(id, UB), &mut a.universes, now)
        .unwrap();
    let prepare = only_message(&drain(&mut a.engine));
    let first = only_message(&b.receive(A, &prepare, now));
    for _ in 0..3 {
        let out = b.receive(A, &prepare, now);
        assert!(journaled(&out).is_empty(), "nothing new to record");
        assert_eq!(only_message(&out), first, "same ack, same new entity id");
    }
    assert_eq!(b.u(UB).len(), 1);
    let commit = only_message(&a.receive(B, &first, now));
    assert!(
        sent(&a.receive(B, &first, now)).is_empty(),
        "a duplicate ack changes nothing"
    );
    let commit_ack = only_message(&b.receive(A, &commit, now));
    assert_eq!(only_message(&b.receive(A, &commit, now)), commit_ack);
    assert_eq!(
        only_message(&b.receive(A, &prepare, now)),
        first,
        "even after the commit"
    );
    assert_eq!(b.u(UB).len(), 1);
    assert!(a.u(UA).is_empty());
}

/// Sends a prepare built by `tamper` and returns the nack reason and the source's outputs.
fn refused(
    tamper: impl FnOnce(&mut TransferPrepare),
    config: Option<TransferConfig>,
) -> (NackReason, Vec<TransferOutput>, Side, Side, EntityId) {
    let (mut a, mut b, id) = pair();
    if let Some(c) = config {
        b.engine = TransferEngine::new(B, c, 1);
    }
    let now = Moment::ZERO;
    a.engine
        .start(request(id, UB), &mut a.universes, now)
        .unwrap();
    let PeerMessage::TransferPrepare(mut p) = only_message(&drain(&mut a.engine)) else {
        unreachable!()
    };
    tamper(&mut p);
    let out = b.receive(A, &PeerMessage::TransferPrepare(p), now);
    assert!(matches!(
        journaled(&out)[..],
        [JournalRecord::Refused { .. }]
    ));
    let nack = only_message(&out);
    let PeerMessage::TransferNack { reason, .. } = nack else {
        panic!("{nack:?}")
    };
    assert!(b.u(UB).is_empty(), "nothing stored");
    let back = a.receive(B, &nack, now);
    (reason, back, a, b, id)
}

#[test]
fn bad_prepares_are_nacked_and_the_entity_goes_home() {
    let nan = {
        let mut e = tagged(1);
        e.position.x = f32::NAN;
        canonical_bytes(&e)
    };
    type Tamper = Box<dyn FnOnce(&mut TransferPrepare)>;
    let cases: Vec<(NackReason, Tamper)> = vec![
        (
            NackReason::ChecksumMismatch,
            Box::new(|p| p.checksum[0] ^= 1),
        ),
        (
            NackReason::UniverseNotFound,
            Box::new(|p| p.universe = UniverseId(999)),
        ),
        (
            NackReason::Rejected,
            Box::new(move |p| {
                p.checksum = checksum(&nan);
                p.entity = nan;
            }),
        ),
        (
            NackReason::Rejected,
            Box::new(|p| {
                p.entity.push(0); // trailing bytes: not the canonical encoding
                p.checksum = checksum(&p.entity);
            }),
        ),
        (NackReason::Rejected, Box::new(|p| p.exit.y = f32::INFINITY)),
        (
            NackReason::Rejected,
            Box::new(|p| {
                // An avatar never arrives from elsewhere, whatever the source says.
                let mut e = tagged(1);
                e.avatar = Some(crate::ids::ClientId(5));
                p.entity = canonical_bytes(&e);
                p.checksum = checksum(&p.entity);
            }),
        ),
    ];
    for (want, tamper) in cases {
        let (reason, back, a, _, id) = refused(tamper, None);
        assert_eq!(reason, want);
        assert!(
            matches!(&back[..], [TransferOutput::Journal(JournalRecord::Returned { reason: Some(r), .. }), TransferOutput::Event(TransferEvent::Returned { .. })] if *r == want)
        );
        assert!(!a.u(UA).is_hidden(id), "visible again where it was");
        assert!(a.engine.is_idle());
    }
    let small = TransferConfig {
        max_entity_bytes: 8,
        ..TransferConfig::default()
    };
    let (reason, ..) = refused(|_| {}, Some(small));
    assert_eq!(reason, NackReason::TooLarge);
}

#[test]
fn a_closed_passage_is_a_nack_from_the_driver_s_admission() {
    struct Closed(BTreeMap<UniverseId, Universe>);
    impl UniverseAccess for Closed {
        fn universe_mut(&mut self, id: UniverseId) -> Option<&mut Universe> {
            self.0.get_mut(&id)
        }
        fn admit(&self, _: PeerId, _: PassageId, _: UniverseId) -> Result<(), NackReason> {
            Err(NackReason::PassageClosed)
        }
    }
    let (mut a, b, id) = pair();
    let mut closed = Closed(b.universes);
    let mut engine = TransferEngine::new(B, TransferConfig::default(), 2);
    a.engine
        .start(request(id, UB), &mut a.universes, Moment::ZERO)
        .unwrap();
    let prepare = only_message(&drain(&mut a.engine));
    engine.handle_message(A, &prepare, &mut closed, Moment::ZERO);
    let nack = only_message(&drain(&mut engine));
    assert!(matches!(
        nack,
        PeerMessage::TransferNack {
            reason: NackReason::PassageClosed,
            ..
        }
    ));
}

#[test]
fn no_ack_means_resends_then_a_durable_abort_and_late_prepares_store_nothing() {
    let (mut a, mut b, id) = pair();
    a.engine
        .start(request(id, UB), &mut a.universes, Moment::ZERO)
        .unwrap();
    let prepare = only_message(&drain(&mut a.engine));
    let mut resends = Vec::new();
    let abort = loop {
        let t = a.engine.poll_timeout().unwrap();
        a.engine.handle_timeout(t);
        let out = drain(&mut a.engine);
        match &out[..] {
            [TransferOutput::Send {
                message: PeerMessage::TransferPrepare(_),
                ..
            }] => resends.push(t),
            [TransferOutput::Journal(JournalRecord::Aborting { .. }), TransferOutput::Send { message, .. }] =>
            {
                assert!(t >= Moment::ZERO.plus(PREPARE_DEADLINE));
                break message.clone();
            }
            other => panic!("{other:?}"),
        }
    };
    let gaps: Vec<u64> = resends.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] >= g[0] || g[1] >= 3_000),
        "backs off: {gaps:?}"
    );
    assert!(gaps.iter().all(|g| *g <= 4_800), "capped: {gaps:?}");
    // The target never saw the prepare: the abort leaves a tombstone.
    let out = b.receive(A, &abort, Moment::ZERO);
    assert!(matches!(
        journaled(&out)[..],
        [JournalRecord::Aborted { .. }]
    ));
    let abort_ack = only_message(&out);
    // The long-delayed prepare arrives now: nothing is stored, nothing acked.
    assert!(sent(&b.receive(A, &prepare, Moment::ZERO)).is_empty());
    assert!(b.u(UB).is_empty());
    let back = a.receive(B, &abort_ack, Moment::ZERO);
    assert!(matches!(
        journaled(&back)[..],
        [JournalRecord::Returned { reason: None, .. }]
    ));
    assert!(!a.u(UA).is_hidden(id) && a.u(UA).get(id).is_some());
}

#[test]
fn an_abort_removes_a_pending_entity_and_a_late_ack_is_ignored() {
    let (mut a, mut b, id) = pair();
    let config = TransferConfig {
        prepare_deadline: std::time::Duration::from_millis(100),
        ..TransferConfig::default()
    };
    a.engine = TransferEngine::new(A, config, 3);
    a.engine
        .start(request(id, UB), &mut a.universes, Moment::ZERO)
        .unwrap();
    let prepare = only_message(&drain(&mut a.engine));
    let ack = only_message(&b.receive(A, &prepare, Moment::ZERO));
    assert_eq!(b.u(UB).len(), 1);
    a.engine.handle_timeout(Moment::from_millis(100));
    let abort = only_message(&drain(&mut a.engine));
    assert!(
        sent(&a.receive(B, &ack, Moment::from_millis(101))).is_empty(),
        "never commit after deciding to abort"
    );
    let abort_ack = only_message(&b.receive(A, &abort, Moment::from_millis(102)));
    assert!(b.u(UB).is_empty(), "the pending entity is gone");
    a.receive(B, &abort_ack, Moment::from_millis(103));
    assert_eq!(a.u(UA).len(), 1);
    assert!(!a.u(UA).is_hidden(id));
    assert!(a.engine.is_idle() && b.engine.is_idle());
}

#[test]
fn starting_needs_a_visible_entity_and_a_remote_target() {
    let (mut a, _, id) = pair();
    let mut req = request(id, UB);
    req.target = A;
    assert_eq!(
        a.engine.start(req, &mut a.universes, Moment::ZERO),
        Err(TransferError::LocalTarget)
    );
    a.engine
        .start(request(id, UB), &mut a.universes, Moment::ZERO)
        .unwrap();
    assert_eq!(
        a.engine
            .start(request(id, UB), &mut a.universes, Moment::ZERO),
        Err(TransferError::InTransit(id))
    );
    let gone = EntityId {
        index: 9,
        generation: 0,
    };
    assert_eq!(
        a.engine
            .start(request(gone, UB), &mut a.universes, Moment::ZERO),
        Err(TransferError::NoSuchEntity(gone))
    );
    let mut bad = request(id, UB);
    bad.universe = UB;
    assert_eq!(
        a.engine.start(bad, &mut a.universes, Moment::ZERO),
        Err(TransferError::NoSuchUniverse(UB))
    );
    let mut nowhere = request(id, UB);
    nowhere.exit.x = f32::NAN;
    assert_eq!(
        a.engine.start(nowhere, &mut a.universes, Moment::ZERO),
        Err(TransferError::BadExit)
    );
    let client = crate::ids::ClientId(5);
    let u = a.universes.get_mut(&UA).unwrap();
    let avatar = u.spawn_avatar(client, "ann", None).unwrap();
    assert_eq!(
        a.engine
            .start(request(avatar, UB), &mut a.universes, Moment::ZERO),
        Err(TransferError::Avatar(avatar)),
        "avatars stay with their members"
    );
    assert!(!a.u(UA).is_hidden(avatar));
}

#[test]
fn tombstones_are_forgotten_once_the_source_settled_them() {
    let (mut a, mut b, _) = pair();
    for k in 0..50 {
        let id = a
            .universes
            .get_mut(&UA)
            .unwrap()
            .spawn(tagged(100 + k))
            .unwrap();
        a.engine
            .start(request(id, UB), &mut a.universes, Moment::ZERO)
            .unwrap();
        let prepare = only_message(&drain(&mut a.engine));
        let ack = only_message(&b.receive(A, &prepare, Moment::ZERO));
        let commit = only_message(&a.receive(B, &ack, Moment::ZERO));
        let commit_ack = only_message(&b.receive(A, &commit, Moment::ZERO));
        a.receive(B, &commit_ack, Moment::ZERO);
    }
    assert!(
        b.engine.settled.len() <= 1,
        "{} tombstones kept",
        b.engine.settled.len()
    );
    assert_eq!(b.u(UB).len(), 50);
}

#[test]
fn canonical_bytes_are_deterministic_and_checked() {
    let mut rng = crate::rng::Rng::new(5);
    for k in 0..200 {
        let mut e = tagged(k);
        e.position = Vec2::new(rng.range(-1e6, 1e6), rng.range(-1e6, 1e6));
        e.velocity = Vec2::new(rng.range(-50.0, 50.0), -0.0);
        for p in 0..rng.below(6) {
            e.properties.insert(
                format!("p{}", rng.below(100)),
                PropValue::Float(f64::from(rng.unit()) * f64::from(p)),
            );
        }
        e.tags = (0..rng.below(4)).map(|t| format!("t{t}")).collect();
        e.owner = (k % 2 == 0).then_some(crate::ids::UserId(k as u128));
        let bytes = canonical_bytes(&e);
        assert_eq!(canonical_bytes(&e.clone()), bytes);
        assert_eq!(decode_entity(&bytes), Ok(e));
        assert_eq!(checksum(&bytes), checksum(&bytes.clone()));
    }
    assert_eq!(decode_entity(b"garbage"), Err(NackReason::Rejected));
}
