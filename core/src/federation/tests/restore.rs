//! Restarts: the engine rebuilt from its journal repairs universes from older saves, resumes
//! where it was, and compacts to a checkpoint.

use super::*;

fn start_one(a: &mut Side) -> (EntityId, Vec<JournalRecord>, PeerMessage) {
    let id = a.universes.get_mut(&UA).unwrap().spawn(tagged(7)).unwrap();
    a.engine
        .start(request(id, UB), &mut a.universes, Moment::ZERO)
        .unwrap();
    let out = drain(&mut a.engine);
    (id, journaled(&out), sent(&out)[0].1.clone())
}

fn restored(
    peer: PeerId,
    records: &[JournalRecord],
    saved: &Universe,
    now: Moment,
) -> (TransferEngine, BTreeMap<UniverseId, Universe>) {
    let u = Universe::restore(saved.snapshot()).expect("a valid save");
    let mut universes: BTreeMap<UniverseId, Universe> = [(u.config().id, u)].into();
    let config = TransferConfig::default();
    let engine = TransferEngine::restore(peer, config, 9, records.to_vec(), &mut universes, now);
    (engine, universes)
}

#[test]
fn source_started_reinserts_a_missing_entity_hidden_and_resends() {
    let mut a = Side::new(A, UA);
    let saved = a.u(UA).clone(); // saved before the entity existed
    let (id, records, prepare) = start_one(&mut a);
    let now = Moment::from_millis(5_000);
    let (mut engine, universes) = restored(A, &records, &saved, now);
    let u = &universes[&UA];
    assert_eq!(tag_of(u.get(id).expect("back at its original id")), 7);
    assert!(u.is_hidden(id), "still in transit");
    assert_eq!(engine.poll_timeout(), Some(now), "resends at once");
    engine.handle_timeout(now);
    assert_eq!(sent(&drain(&mut engine)), [(B, prepare)]);
}

#[test]
fn source_committed_removes_the_entity_from_a_newer_save_and_resends_commit() {
    let mut a = Side::new(A, UA);
    let mut b = Side::new(B, UB);
    let (id, mut records, prepare) = start_one(&mut a);
    let saved = a.u(UA).clone(); // holds the entity (hidden flags are not saved)
    let ack = sent(&b.receive(A, &prepare, Moment::ZERO))[0].1.clone();
    records.extend(journaled(&a.receive(B, &ack, Moment::ZERO)));
    let (mut engine, universes) = restored(A, &records, &saved, Moment::ZERO);
    assert!(
        universes[&UA].get(id).is_none(),
        "committed: gone, whatever the save says"
    );
    engine.handle_timeout(Moment::ZERO);
    let messages = sent(&drain(&mut engine));
    assert!(matches!(
        messages[..],
        [(B, PeerMessage::TransferCommit(_))]
    ));
}

#[test]
fn target_received_and_done_are_repaired_at_the_recorded_id() {
    let mut a = Side::new(A, UA);
    let mut b = Side::new(B, UB);
    let saved = b.u(UB).clone();
    let (_, _, prepare) = start_one(&mut a);
    let out = b.receive(A, &prepare, Moment::ZERO);
    let mut records = journaled(&out);
    let ack = sent(&out)[0].1.clone();
    let PeerMessage::TransferAck { entity: new_id, .. } = ack else {
        unreachable!()
    };
    let (mut engine, mut universes) = restored(B, &records, &saved, Moment::ZERO);
    assert!(
        universes[&UB].is_hidden(new_id),
        "pending at the recorded id"
    );
    engine.handle_message(A, &prepare, &mut universes, Moment::ZERO);
    assert_eq!(
        sent(&drain(&mut engine)),
        [(A, ack.clone())],
        "the same ack after a restart"
    );

    let commit = sent(&a.receive(B, &ack, Moment::ZERO))[0].1.clone();
    records.extend(journaled(&b.receive(A, &commit, Moment::ZERO)));
    let (_, universes) = restored(B, &records, &saved, Moment::ZERO);
    let u = &universes[&UB];
    assert!(
        u.get(new_id).is_some() && !u.is_hidden(new_id),
        "done: present and visible"
    );
    assert_eq!(u.len(), 1);
}

#[test]
fn an_entity_that_arrived_and_left_again_stays_gone() {
    let saved = universe(UB);
    let arrived = EntityId {
        index: 0,
        generation: 0,
    };
    let bytes = canonical_bytes(&tagged(3));
    let t1 = crate::ids::TransferId(1);
    let t2 = crate::ids::TransferId(2);
    let records = vec![
        JournalRecord::Received(Box::new(Received {
            transfer: t1,
            from: A,
            seq: 0,
            universe: UB,
            entity: arrived,
            bytes: bytes.clone(),
        })),
        JournalRecord::Done { transfer: t1 },
        JournalRecord::Started(Box::new(Started {
            transfer: t2,
            seq: 0,
            target: A,
            passage: PASSAGE,
            universe: UB,
            entity: arrived,
            target_universe: UA,
            exit: Vec2::default(),
            bytes,
        })),
        JournalRecord::Committed {
            transfer: t2,
            remote: arrived,
        },
    ];
    let (engine, mut universes) = restored(B, &records, &saved, Moment::ZERO);
    assert!(universes[&UB].is_empty(), "the last fact wins");
    assert_eq!(
        engine.outgoing_count(),
        1,
        "the commit is still to be confirmed"
    );
    // The save predates the arrival, so its generations are older than the journal's ids:
    // the id that left must not be issued again (a checkpoint would still name it).
    let next = universes.get_mut(&UB).unwrap().spawn(tagged(4)).unwrap();
    assert_ne!(next, arrived, "one id never names two entities");
}

#[test]
fn an_unjournaled_older_entity_in_the_slot_moves_the_arrival_to_a_fresh_id() {
    let mut a = Side::new(A, UA);
    let mut b = Side::new(B, UB);
    let native = b.universes.get_mut(&UB).unwrap().spawn(tagged(50)).unwrap();
    let saved = b.u(UB).clone();
    b.universes.get_mut(&UB).unwrap().despawn(native).unwrap(); // never saved
    let (_, _, prepare) = start_one(&mut a);
    let out = b.receive(A, &prepare, Moment::ZERO);
    let PeerMessage::TransferAck {
        entity: recorded, ..
    } = sent(&out)[0].1
    else {
        unreachable!()
    };
    assert_eq!(
        recorded.index, native.index,
        "the arrival reused the freed slot"
    );
    let mut records = journaled(&out);
    let (mut engine, mut universes) = restored(B, &records, &saved, Moment::ZERO);
    let relocated = journaled(&drain(&mut engine));
    let [JournalRecord::Relocated { from, to, .. }] = relocated[..] else {
        panic!("{relocated:?}")
    };
    assert_eq!(from, recorded);
    let u = &universes[&UB];
    assert_eq!(
        tag_of(u.get(native).unwrap()),
        50,
        "the old save's entity is untouched"
    );
    assert!(u.is_hidden(to) && tag_of(u.get(to).unwrap()) == 7);
    engine.handle_message(A, &prepare, &mut universes, Moment::ZERO);
    let again = sent(&drain(&mut engine));
    assert!(matches!(again[..], [(A, PeerMessage::TransferAck { entity, .. })] if entity == to));
    records.extend(relocated);
    let (_, universes) = restored(B, &records, &saved, Moment::ZERO);
    assert_eq!(
        universes[&UB].len(),
        2,
        "replaying the relocation is idempotent"
    );
}

#[test]
fn a_checkpoint_restores_the_same_engine() {
    let mut a = Side::new(A, UA);
    let mut b = Side::new(B, UB);
    let (_, _, first) = start_one(&mut a);
    let ack = sent(&b.receive(A, &first, Moment::ZERO))[0].1.clone();
    a.receive(B, &ack, Moment::ZERO); // committed, awaiting the commit ack
    let (_, _, second) = start_one(&mut a); // preparing
    let mut bad = second.clone();
    if let PeerMessage::TransferPrepare(p) = &mut bad {
        p.checksum[0] ^= 1;
    }
    b.receive(A, &bad, Moment::ZERO); // refused: a tombstone
    for (side, peer) in [(&a, A), (&b, B)] {
        let records = side.engine.checkpoint();
        let u = side.universes.values().next().unwrap().clone();
        let (copy, _) = restored(peer, &records, &u, Moment::ZERO);
        assert_eq!(copy.checkpoint(), records);
        assert_eq!(copy.outgoing_count(), side.engine.outgoing_count());
        assert_eq!(copy.incoming_count(), side.engine.incoming_count());
    }
    let (mut copy, mut universes) = restored(B, &b.engine.checkpoint(), b.u(UB), Moment::ZERO);
    copy.handle_message(A, &second, &mut universes, Moment::ZERO);
    let answer = sent(&drain(&mut copy));
    assert!(
        matches!(answer[..], [(A, PeerMessage::TransferNack { .. })]),
        "the tombstone survived"
    );
}

#[test]
fn records_round_trip_through_bitcode_and_json() {
    let mut a = Side::new(A, UA);
    let mut b = Side::new(B, UB);
    let (_, mut records, prepare) = start_one(&mut a);
    records.extend(journaled(&b.receive(A, &prepare, Moment::ZERO)));
    records.extend(b.engine.checkpoint());
    records.push(JournalRecord::Refused {
        transfer: crate::ids::TransferId(3),
        from: A,
        seq: 4,
        reason: crate::wire::NackReason::TooLarge,
    });
    for r in records {
        assert_eq!(JournalRecord::decode(&r.encode()), Ok(r.clone()));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            serde_json::from_str::<JournalRecord>(&json).unwrap(),
            r,
            "{json}"
        );
    }
    assert!(JournalRecord::decode(b"\xff").is_err());
}
