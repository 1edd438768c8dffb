use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::ids::{RoomId, UniverseId};
use crate::universe::Vec2;
use crate::wire::ErrorCode;

const T0: Moment = Moment::ZERO;

fn room(access: AccessPolicy, max_players: u32) -> Room {
    let config = RoomConfig {
        access,
        max_players,
        ..RoomConfig::new(RoomId::new("den").unwrap(), None)
    };
    Room::new(config, Vec::new())
}

fn client(n: u64) -> ClientId {
    ClientId::from_u128(u128::from(n) + 100)
}

/// Every frame each member received, in order.
fn drain(r: &mut Room) -> (BTreeMap<u64, Vec<ServerMessage>>, Vec<ChatMessage>) {
    let (mut frames, mut persisted) = (BTreeMap::<u64, Vec<ServerMessage>>::new(), Vec::new());
    while let Some(out) = r.poll_output() {
        match out {
            RoomOutput::Persist(m) => persisted.push(m),
            RoomOutput::PersistSettings(_) => {}
            RoomOutput::Send { to, message } => {
                for m in to {
                    frames.entry(m).or_default().push((*message).clone());
                }
            }
        }
    }
    (frames, persisted)
}

fn join(r: &mut Room, member: u64) {
    r.join(member, client(member), format!("m{member}"), None, T0)
        .unwrap();
}

#[test]
fn max_players_and_single_player_rooms() {
    let mut r = room(AccessPolicy::Shared, 2);
    join(&mut r, 1);
    join(&mut r, 2);
    assert_eq!(
        r.join(3, client(3), "c".into(), None, T0),
        Err(RoomError::Full(2))
    );
    assert_eq!(RoomError::Full(2).code(), ErrorCode::RoomFull);
    r.leave(2, "left");
    join(&mut r, 3);
    let mut solo = Room::new(
        RoomConfig {
            multiplayer: false,
            ..RoomConfig::new(RoomId::new("solo").unwrap(), None)
        },
        Vec::new(),
    );
    join(&mut solo, 1);
    assert!(matches!(
        solo.join(2, client(2), "b".into(), None, T0),
        Err(RoomError::Full(1))
    ));
    let (frames, _) = drain(&mut solo);
    assert!(matches!(&frames[&1][0], ServerMessage::RoomJoined(w) if w.members.len() == 1));
}

#[test]
fn private_rooms_need_a_live_invite() {
    let mut r = room(AccessPolicy::Private, 8);
    join(&mut r, 1); // the first member owns the room
    assert_eq!(
        r.join(2, client(2), "b".into(), None, T0),
        Err(RoomError::InviteRequired)
    );
    assert_eq!(r.create_invite(2, "x".into()), Err(RoomError::NotInRoom));
    r.create_invite(1, "tok".into()).unwrap();
    assert_eq!(
        r.join(2, client(2), "b".into(), Some("nope"), T0),
        Err(RoomError::InviteRequired)
    );
    r.join(2, client(2), "b".into(), Some("tok"), T0).unwrap();
    assert_eq!(r.create_invite(2, "mine".into()), Err(RoomError::NotOwner));
    r.revoke_invite(1, "tok").unwrap();
    assert_eq!(
        r.join(3, client(3), "c".into(), Some("tok"), T0),
        Err(RoomError::InviteRequired)
    );
    r.leave(1, "left");
    r.join(4, client(1), "owner again".into(), None, T0)
        .unwrap();
}

#[test]
fn presence_goes_away_and_then_gone_with_a_fake_clock() {
    let mut r = room(AccessPolicy::Shared, 8);
    join(&mut r, 1);
    join(&mut r, 2);
    drain(&mut r);
    r.presence(2, false, Moment(1000)).unwrap();
    let (frames, _) = drain(&mut r);
    assert_eq!(
        frames[&1],
        [ServerMessage::PresenceChanged {
            member: 2,
            presence: Presence::Away
        }]
    );
    let mut t = Moment(1000);
    for _ in 0..4 {
        t = t.plus(HEARTBEAT_INTERVAL);
        r.presence(1, true, t).unwrap();
        r.handle_timeout(t);
    }
    let (frames, _) = drain(&mut r);
    let left: Vec<_> = frames[&1]
        .iter()
        .filter(|m| matches!(m, ServerMessage::MemberLeft { .. }))
        .collect();
    assert_eq!(
        left,
        [&ServerMessage::MemberLeft {
            member: 2,
            reason: "gone".into()
        }],
        "gone after two missed heartbeats, once"
    );
    assert_eq!(r.len(), 1);
    assert!(r.poll_timeout().is_some());
}

#[test]
fn cursors_are_coalesced_and_removed_exactly_once() {
    let mut r = room(AccessPolicy::Shared, 8);
    join(&mut r, 1);
    join(&mut r, 2);
    drain(&mut r);
    let world = |x: f32| {
        Some(CursorPosition::World {
            universe: UniverseId::from_u128(1),
            at: Vec2::new(x, 1.0),
        })
    };
    r.cursor(1, world(0.0), Moment(0)).unwrap();
    let (frames, _) = drain(&mut r);
    assert!(
        matches!(&frames[&2][..], [ServerMessage::Cursors { .. }]),
        "the first move after a pause goes out at once"
    );
    for i in 1..10 {
        r.cursor(1, world(i as f32), Moment(i)).unwrap();
    }
    r.handle_timeout(Moment(20));
    assert!(drain(&mut r).0.is_empty(), "not before the 30 Hz period");
    r.handle_timeout(Moment(40));
    let (frames, _) = drain(&mut r);
    let ServerMessage::Cursors { cursors } = &frames[&2][0] else {
        panic!("a batch")
    };
    assert_eq!(cursors.len(), 1, "nine moves, one coalesced entry");
    assert!(matches!(cursors[0].position, Some(CursorPosition::World { at, .. }) if at.x == 9.0));
    r.cursor(
        1,
        Some(CursorPosition::Viewport { x: 0.5, y: 0.5 }),
        Moment(50),
    )
    .unwrap();
    r.leave(1, "disconnected");
    r.leave(1, "disconnected");
    r.handle_timeout(Moment(200));
    let (frames, _) = drain(&mut r);
    assert_eq!(
        frames[&2],
        [ServerMessage::MemberLeft {
            member: 1,
            reason: "disconnected".into()
        }],
        "no cursor after the leave, one leave"
    );
    assert_eq!(r.cursor(1, None, Moment(300)), Err(RoomError::NotInRoom));
    assert_eq!(
        r.cursor(
            2,
            Some(CursorPosition::Viewport { x: 2.0, y: 0.0 }),
            Moment(300)
        ),
        Err(RoomError::BadCursor)
    );
}

#[test]
fn chat_is_persisted_before_it_is_acknowledged_and_limited() {
    let mut r = room(AccessPolicy::Shared, 8);
    join(&mut r, 1);
    drain(&mut r);
    r.chat(1, MessageId::from_u128(1), "hello", 0, T0).unwrap();
    let first = r.poll_output().unwrap();
    assert!(matches!(first, RoomOutput::Persist(ref m) if m.seq == 1 && m.text == "hello"));
    assert_eq!(
        r.chat(1, MessageId::from_u128(2), "   ", 0, T0),
        Err(RoomError::BadChat)
    );
    assert_eq!(
        r.chat(1, MessageId::from_u128(2), &"x".repeat(501), 0, T0),
        Err(RoomError::BadChat)
    );
    for i in 0..CHAT_BURST - 1 {
        r.chat(1, MessageId::from_u128(10 + u128::from(i)), "spam", 0, T0)
            .unwrap();
    }
    assert_eq!(
        r.chat(1, MessageId::from_u128(99), "one too many", 0, T0),
        Err(RoomError::RateLimited)
    );
    r.chat(1, MessageId::from_u128(99), "later", 0, Moment(1000))
        .unwrap();
    assert_eq!(
        r.chat(2, MessageId::from_u128(5), "not here", 0, T0),
        Err(RoomError::NotInRoom)
    );
}

#[test]
fn history_on_join_and_backfill() {
    let history: Vec<ChatMessage> = (1..=80)
        .map(|i| ChatMessage {
            seq: i,
            id: MessageId::from_u128(u128::from(i)),
            from: client(9),
            name: "old".into(),
            text: format!("#{i}"),
            at_ms: 0,
        })
        .collect();
    let mut r = Room::new(RoomConfig::new(RoomId::new("den").unwrap(), None), history);
    join(&mut r, 1);
    let (frames, _) = drain(&mut r);
    let ServerMessage::RoomJoined(w) = &frames[&1][0] else {
        panic!("welcome")
    };
    assert_eq!(w.history.len(), HISTORY_ON_JOIN);
    assert_eq!(w.history.last().unwrap().seq, 80);
    r.backfill(1, 75).unwrap();
    let (frames, _) = drain(&mut r);
    assert!(
        matches!(&frames[&1][0], ServerMessage::ChatHistory { messages } if messages.iter().map(|m| m.seq).eq(76..=80))
    );
    r.chat(1, MessageId::from_u128(500), "after restart", 0, T0)
        .unwrap();
    assert_eq!(
        r.last_seq(),
        81,
        "numbering continues after the stored history"
    );
}

proptest! {
    /// Sends, resends, reorderings between members: every member sees one sequence with no
    /// gaps and no duplicates, and each message id appears once.
    #[test]
    fn one_order_for_everyone_and_no_duplicates(
        sends in proptest::collection::vec((0u64..4, 0u128..40, 0u64..3000), 1..200),
    ) {
        let mut r = room(AccessPolicy::Shared, 8);
        for m in 0..4 {
            join(&mut r, m);
        }
        drain(&mut r);
        let mut seen: BTreeMap<u64, Vec<ChatMessage>> = BTreeMap::new();
        let mut acks: BTreeMap<MessageId, u64> = BTreeMap::new();
        for (member, id, t) in sends {
            let id = MessageId::from_u128(id);
            let _ = r.chat(member, id, &format!("msg {id}"), 0, Moment(t * 1000));
            let (frames, _) = drain(&mut r);
            for (to, list) in frames {
                for f in list {
                    match f {
                        ServerMessage::Chat(c) => seen.entry(to).or_default().push(c),
                        ServerMessage::ChatAck { id, seq } => {
                            let first = *acks.entry(id).or_insert(seq);
                            prop_assert_eq!(first, seq, "a resend is acknowledged with the same seq");
                        }
                        _ => {}
                    }
                }
            }
        }
        let sequences: Vec<Vec<u64>> = seen.values().map(|v| v.iter().map(|m| m.seq).collect()).collect();
        for s in &sequences {
            prop_assert_eq!(s, &sequences[0]);
            prop_assert!(s.iter().copied().eq(1..=s.len() as u64), "gapless from 1");
        }
        if let Some(v) = seen.values().next() {
            let ids: std::collections::BTreeSet<_> = v.iter().map(|m| m.id).collect();
            prop_assert_eq!(ids.len(), v.len());
        }
    }
}

#[test]
fn owner_invites_and_access_survive_a_restart() {
    let mut r = Room::new(
        RoomConfig::new(RoomId::new("keep").unwrap(), None),
        Vec::new(),
    );
    let t = Moment::from_millis(0);
    r.join(1, client(1), "Owner".into(), None, t).unwrap();
    r.create_invite(1, "tok".into()).unwrap();
    r.configure(1, AccessPolicy::Private, 4, true).unwrap();
    let mut records = Vec::new();
    while let Some(out) = r.poll_output() {
        if let RoomOutput::PersistSettings(rec) = out {
            records.push(rec);
        }
    }
    assert_eq!(records.len(), 3, "owner, invite and access each persist");
    let saved = records.pop().unwrap();
    assert_eq!(saved, r.record());
    let mut back = Room::from_record(saved, Vec::new());
    // A stranger without the invite is refused; the invite still works; the owner is the owner.
    assert_eq!(
        back.join(2, client(2), "Eve".into(), None, t),
        Err(RoomError::InviteRequired)
    );
    back.join(3, client(3), "Bob".into(), Some("tok"), t)
        .unwrap();
    back.join(4, client(1), "Owner".into(), None, t).unwrap();
    assert!(back.configure(4, AccessPolicy::Shared, 4, true).is_ok());
    assert!(back.configure(3, AccessPolicy::Public, 4, true).is_err());
}
