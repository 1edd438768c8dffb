//! The passage lifecycle against a fake clock: handshake, heartbeats, decay and recovery,
//! reconnects with backoff, approval, refusals and the owner's enforcement.

use super::*;
use crate::stream::{Interaction, InteractionMode, ViewMode};
use crate::universe::{demo_universe, DemoKind};
use crate::wire::{PassageRejectReason, PassageRequest};

const OPENER: PeerId = PeerId(1);
const OWNER: PeerId = PeerId(2);

fn request() -> PassageRequest {
    PassageRequest {
        passage: PassageId(77),
        from_universe: UniverseId(1),
        from_config: demo_universe(DemoKind::Sandbox, UniverseId(1), 0, 500.0, 1)
            .config()
            .clone(),
        to_universe: UniverseId(2),
        view: Some(ViewMode::Participate),
        interaction: InteractionMode::Full,
        sync_hz: 20,
        password: None,
    }
}

fn owner_config() -> crate::universe::UniverseConfig {
    demo_universe(DemoKind::Aquarium, UniverseId(2), 0, 500.0, 1)
        .config()
        .clone()
}

/// The messages a passage wants to send, and the states it went through.
fn drain(p: &mut Passage) -> (Vec<PeerMessage>, Vec<PassageState>) {
    let (mut sent, mut states) = (Vec::new(), Vec::new());
    while let Some(o) = p.poll_output() {
        match o {
            PassageOutput::Send(m) => sent.push(m),
            PassageOutput::State(s) => states.push(s),
        }
    }
    (sent, states)
}

/// The owner's driver: admit an opening request with a policy.
fn admit(policy: &PassagePolicy, m: &PeerMessage, now: Moment) -> Passage {
    let PeerMessage::PassageOpen(req) = m else {
        panic!("expected passage_open, got {m:?}")
    };
    match policy.evaluate(OPENER, req, Some(&owner_config())) {
        Admission::Accept(g) => Passage::accepted((**req).clone(), OPENER, g, now, 5),
        Admission::Pending(_) => Passage::pending((**req).clone(), OPENER, 5),
        Admission::Reject { .. } => panic!("refused"),
    }
}

/// Both ends, a clock, and a switch that cuts the owner off.
struct Pair {
    opener: Passage,
    owner: Passage,
    now: Moment,
    owner_down: bool,
}

impl Pair {
    fn connected() -> Pair {
        let now = Moment::ZERO;
        let mut opener = Passage::open(request(), OWNER, now, 9);
        let (sent, _) = drain(&mut opener);
        let owner = admit(&PassagePolicy::default(), &sent[0], now);
        let mut pair = Pair {
            opener,
            owner,
            now,
            owner_down: false,
        };
        pair.exchange();
        assert_eq!(pair.opener.state(), PassageState::Connected);
        pair
    }

    /// Delivers messages both ways until quiet (messages to or from a down owner are lost).
    fn exchange(&mut self) {
        for _ in 0..10 {
            let (to_owner, _) = drain(&mut self.opener);
            let (to_opener, _) = drain(&mut self.owner);
            if to_owner.is_empty() && to_opener.is_empty() {
                return;
            }
            if self.owner_down {
                continue;
            }
            for m in &to_owner {
                self.owner.handle_message(m, self.now);
            }
            for m in &to_opener {
                self.opener.handle_message(m, self.now);
            }
        }
    }

    /// Runs the clock to `until`, firing each end's timeouts when due.
    fn run(&mut self, until: Moment) {
        loop {
            let owner = self.owner.poll_timeout().filter(|_| !self.owner_down);
            let Some(t) = [self.opener.poll_timeout(), owner]
                .into_iter()
                .flatten()
                .min()
                .filter(|t| *t <= until)
            else {
                break;
            };
            let t = t.max(self.now);
            self.now = t;
            self.opener.handle_timeout(t);
            if !self.owner_down {
                self.owner.handle_timeout(t);
            }
            self.exchange();
        }
        self.now = until;
    }
}

#[test]
fn handshake_then_heartbeats_keep_both_ends_healthy() {
    let mut pair = Pair::connected();
    assert_eq!(pair.owner.state(), PassageState::Connected);
    assert_eq!(
        pair.opener.grant().unwrap().interaction,
        InteractionMode::Full
    );
    pair.run(Moment::from_millis(60_000));
    for p in [&pair.opener, &pair.owner] {
        assert_eq!(p.state(), PassageState::Connected);
        assert_eq!(p.health(), 1.0);
    }
    assert!(pair.opener.poll_timeout().unwrap() <= Moment::from_millis(65_000));
}

#[test]
fn health_decays_with_missed_heartbeats_then_reconnects_and_recovers() {
    let mut pair = Pair::connected();
    pair.run(Moment::from_millis(20_000));
    pair.owner_down = true;
    let mut healths = Vec::new();
    let mut states = Vec::new();
    for s in 1..=4u64 {
        pair.run(Moment::from_millis(20_000 + s * 5_000));
        healths.push(pair.opener.health());
        states.push(pair.opener.state());
    }
    // The heartbeat sent at 25 s is the first to go unanswered (noticed at 30 s).
    assert_eq!(
        healths[..3],
        [1.0, 0.5, 0.25],
        "halves per missed heartbeat"
    );
    assert_eq!(
        states[..3],
        [
            PassageState::Connected,
            PassageState::Degraded,
            PassageState::Degraded
        ]
    );
    assert_eq!(states[3], PassageState::Connecting, "lost after 3 missed");
    // Reconnect attempts back off: 1 s, 2 s, 4 s … (± 20 %).
    let mut attempts = Vec::new();
    let mut last = pair.now;
    while attempts.len() < 4 {
        let t = pair
            .opener
            .poll_timeout()
            .expect("a reconnect is scheduled");
        pair.now = t;
        pair.opener.handle_timeout(t);
        let (sent, _) = drain(&mut pair.opener);
        assert!(matches!(sent[..], [PeerMessage::PassageOpen(_)]));
        attempts.push(t.since(last).as_millis());
        last = t;
    }
    for (got, want) in attempts[1..].iter().zip([2_000u128, 4_000, 8_000]) {
        assert!(
            (want * 8 / 10..=want * 12 / 10).contains(got),
            "{attempts:?}"
        );
    }
    // The owner is back: the next attempt reconnects; health recovers step by step.
    pair.owner_down = false;
    let next = pair.opener.poll_timeout().unwrap();
    pair.run(next);
    assert_eq!(pair.opener.state(), PassageState::Connected);
    assert_eq!(pair.owner.state(), PassageState::Connected);
    assert_eq!(pair.opener.health(), 1.0);
}

#[test]
fn degraded_recovers_with_answered_heartbeats() {
    let mut pair = Pair::connected();
    pair.owner_down = true;
    pair.run(Moment::from_millis(12_000)); // one missed at 10 s: health 0.5
    assert_eq!(pair.opener.state(), PassageState::Degraded);
    pair.owner_down = false;
    let mut seen = Vec::new();
    // At 15 s a second miss (0.25) and then an answer (0.5); then +0.25 per answer.
    for s in 3..=5u64 {
        pair.run(Moment::from_millis(s * 5_000 + 1));
        seen.push((pair.opener.health(), pair.opener.state()));
    }
    assert_eq!(seen[0], (0.5, PassageState::Degraded));
    assert_eq!(seen[1], (0.75, PassageState::Connected));
    assert_eq!(seen[2], (1.0, PassageState::Connected));
}

#[test]
fn the_opener_gives_up_after_the_last_attempt() {
    let mut p = Passage::open(request(), OWNER, Moment::ZERO, 3);
    drain(&mut p);
    while let Some(t) = p.poll_timeout() {
        p.handle_timeout(t);
        drain(&mut p);
    }
    assert_eq!(p.state(), PassageState::Error);
    assert!(p.error().unwrap().contains("20 attempts"));
}

#[test]
fn approval_pending_then_approved_or_denied() {
    let policy = PassagePolicy {
        auth: PassageAuth::Approval,
        ..PassagePolicy::default()
    };
    for approve in [true, false] {
        let now = Moment::ZERO;
        let mut opener = Passage::open(request(), OWNER, now, 1);
        let (sent, _) = drain(&mut opener);
        let mut owner = admit(&policy, &sent[0], now);
        assert_eq!(owner.state(), PassageState::PendingApproval);
        let (replies, _) = drain(&mut owner);
        opener.handle_message(&replies[0], now);
        assert_eq!(opener.state(), PassageState::PendingApproval);
        assert_eq!(opener.poll_timeout(), None, "waits for the owner");
        if approve {
            let PeerMessage::PassageOpen(req) = &sent[0] else {
                unreachable!()
            };
            let Admission::Pending(grant) = policy.evaluate(OPENER, req, Some(&owner_config()))
            else {
                unreachable!()
            };
            owner.approve(grant, now);
        } else {
            owner.deny("not today");
        }
        let (replies, _) = drain(&mut owner);
        for m in &replies {
            opener.handle_message(m, now);
        }
        if approve {
            assert_eq!(opener.state(), PassageState::Connected);
        } else {
            assert_eq!(opener.state(), PassageState::Error);
            assert_eq!(opener.error(), Some("not today"));
            assert_eq!(owner.state(), PassageState::Error);
        }
    }
}

#[test]
fn a_rejection_is_final_and_close_closes_both_ends() {
    let mut p = Passage::open(request(), OWNER, Moment::ZERO, 1);
    p.handle_message(
        &PeerMessage::PassageReject {
            passage: PassageId(77),
            reason: PassageRejectReason::Incompatible,
            message: "time scale differs most".into(),
        },
        Moment::ZERO,
    );
    assert_eq!(p.state(), PassageState::Error);
    assert_eq!(p.poll_timeout(), None);
    let mut pair = Pair::connected();
    pair.opener.close("bye");
    pair.exchange();
    assert_eq!(pair.owner.state(), PassageState::Closed);
    assert_eq!(pair.opener.state(), PassageState::Closed);
    assert_eq!(
        pair.owner.authorize(&Interaction::Click {
            at: Vec2::default()
        }),
        Err(PassageError::NotOpen)
    );
}

#[test]
fn the_owner_enforces_the_grant() {
    let click = Interaction::Click {
        at: Vec2::default(),
    };
    let spawn = Interaction::Command {
        name: "spawn".into(),
        at: Vec2::default(),
    };
    let mut pair = Pair::connected();
    assert_eq!(pair.owner.allowed_view(), Some(ViewMode::Participate));
    assert!(pair.owner.authorize(&click).is_ok() && pair.owner.authorize(&spawn).is_ok());
    assert!(pair.owner.allows_transfers());
    let limited = PassagePolicy {
        max_interaction: InteractionMode::Limited,
        ..PassagePolicy::default()
    };
    let mut req = request();
    req.passage = PassageId(78);
    let msg = PeerMessage::PassageOpen(Box::new(req.clone()));
    let owner = admit(&limited, &msg, pair.now);
    assert!(owner.authorize(&click).is_ok());
    assert!(matches!(
        owner.authorize(&spawn),
        Err(PassageError::NotPermitted(_))
    ));
    assert!(!owner.allows_transfers());
    req.view = Some(ViewMode::Observe);
    let observer = admit(
        &PassagePolicy::default(),
        &PeerMessage::PassageOpen(Box::new(req)),
        pair.now,
    );
    assert_eq!(observer.allowed_view(), Some(ViewMode::Observe));
    assert!(observer.authorize(&click).is_err());
    pair.opener.handle_link_down(pair.now);
    assert_eq!(pair.opener.state(), PassageState::Connecting);
    pair.opener.handle_link_up(pair.now);
    pair.exchange();
    assert_eq!(
        pair.opener.state(),
        PassageState::Connected,
        "reconnected at once"
    );
}
