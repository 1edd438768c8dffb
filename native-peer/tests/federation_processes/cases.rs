//! The two-process federation tests: round trip, kill -9 of either side, heartbeats.

use super::*;

#[test]
fn the_link_comes_up_both_ways_and_an_entity_makes_a_round_trip() {
    let pair = Pair::start();
    let (a, b) = (pair.a.port, pair.b.port);

    // (a) Both sides list the link and the other's three universes, with the right ids.
    let a_peers = link(&pair.http, a, &pair.b_id, 3).unwrap();
    let b_peers = link(&pair.http, b, &pair.a_id, 3).unwrap();
    assert_eq!(a_peers["links"][0]["name"], "B");
    assert_eq!(a_peers["links"][0]["direction"], "outbound");
    assert_eq!(b_peers["links"][0]["name"], "A");
    assert_eq!(b_peers["links"][0]["direction"], "inbound");
    let dialled = &a_peers["dialled"][0];
    assert_eq!(dialled["state"], "connected", "{a_peers}");
    assert_eq!(dialled["peer_id"], pair.b_id.as_str());
    assert_eq!(dialled["address"], format!("ws://127.0.0.1:{b}/peer"));
    for (peers, other) in [(&a_peers, &pair.b_start), (&b_peers, &pair.a_start)] {
        let listed: BTreeMap<String, String> = peers["links"][0]["universes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["name"].as_str().unwrap().to_owned(),
                    u["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let own: BTreeMap<String, String> = other
            .iter()
            .map(|(name, (id, _))| (name.clone(), id.clone()))
            .collect();
        assert_eq!(listed, own, "the link lists the other side's universes");
    }

    // (b) Without a passage, nothing crosses: refused, and nothing moves.
    let (a_sandbox, b_sandbox) = pair.sandboxes();
    let (status, body) = pair
        .http
        .post(a, "/api/transfers", &transfer(&a_sandbox, 0, &b_sandbox))
        .expect("A answers");
    assert_eq!((status, body["error"].as_str()), (409, Some("no_passage")));
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("open a passage from sandbox to B/sandbox")),
        "{body}"
    );
    let (all, _) = pair.settled(Duration::from_secs(5));
    assert_eq!((all["A.sandbox"].0, all["B.sandbox"].0), (SANDBOX, SANDBOX));

    // (c) Through a passage: ten entities A → B, then ten of B's own (slots 0..10) back
    // B → A through the same passage.
    pair.open_passage();
    for index in 0..10 {
        let (status, body) = pair
            .http
            .post(
                a,
                "/api/transfers",
                &transfer(&a_sandbox, index, &b_sandbox),
            )
            .expect("A answers");
        assert_eq!(status, 202, "{body}");
    }
    let (all, took) = pair.settled(Duration::from_secs(20));
    eprintln!("[test] 10 transfers A → B settled in {took:?}");
    assert_eq!(
        (all["A.sandbox"].0, all["B.sandbox"].0),
        (SANDBOX - 10, SANDBOX + 10)
    );
    pair.assert_exactly_once(&all, "after A → B");
    for index in 0..10 {
        let (status, body) = pair
            .http
            .post(
                b,
                "/api/transfers",
                &transfer(&b_sandbox, index, &a_sandbox),
            )
            .expect("B answers");
        assert_eq!(status, 202, "{body}");
    }
    let (all, took) = pair.settled(Duration::from_secs(20));
    eprintln!("[test] 10 transfers B → A settled in {took:?}");
    assert_eq!((all["A.sandbox"].0, all["B.sandbox"].0), (SANDBOX, SANDBOX));
    pair.assert_exactly_once(&all, "after the round trip");

    // Refusals across the link: a gone entity, an unknown universe.
    let (status, body) = pair
        .http
        .post(a, "/api/transfers", &transfer(&a_sandbox, 0, &b_sandbox))
        .unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_entity"))
    );
    let unknown = "00000000-0000-0000-0000-000000000001";
    let (status, body) = pair
        .http
        .post(a, "/api/transfers", &transfer(&a_sandbox, 20, unknown))
        .unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_universe"))
    );
}

/// One kill round's record, printed at the end.
#[derive(Debug)]
struct Round {
    delay_ms: u64,
    accepted: usize,
    refused: usize,
    unanswered: usize,
    in_flight_after_restart: Option<(u64, u64)>,
    moved: i64,
    settle: Duration,
}

/// Waits for `passage` to be connected again on both ends, starts [`BURST`] transfers
/// A.sandbox → B.sandbox (slots `first..first + BURST`) through it at once, SIGKILLs the
/// source or the target `delay` after the first is accepted, restarts it on the same port
/// and data dir, and checks that every entity exists exactly once.
fn kill_round(
    pair: &mut Pair,
    passage: &str,
    kill_source: bool,
    first: u32,
    delay: Duration,
) -> Round {
    let (a_sandbox, b_sandbox) = pair.sandboxes();
    let a_port = pair.a.port;
    let before = pair.settled(Duration::from_secs(5)).0;
    pair.wait_passage(passage, Duration::from_secs(20));
    let victim = if kill_source {
        &mut pair.a
    } else {
        &mut pair.b
    };
    let answers: Vec<Option<u16>> = pair.http.rt.block_on(async {
        let client = client();
        let (first_tx, mut first_rx) = tokio::sync::mpsc::channel::<()>(1);
        let posts: Vec<_> = (first..first + BURST)
            .map(|index| {
                let (client, first_tx) = (client.clone(), first_tx.clone());
                let body = transfer(&a_sandbox, index, &b_sandbox);
                tokio::spawn(async move {
                    let answer = post(&client, a_port, "/api/transfers", &body).await;
                    if matches!(answer, Some((202, _))) {
                        let _ = first_tx.try_send(());
                    }
                    answer.map(|(status, _)| status)
                })
            })
            .collect();
        drop(first_tx);
        let accepted = tokio::time::timeout(Duration::from_secs(10), first_rx.recv()).await;
        assert!(matches!(accepted, Ok(Some(()))), "no transfer was accepted");
        tokio::time::sleep(delay).await;
        victim.kill9();
        let mut answers = Vec::new();
        for p in posts {
            let answer = tokio::time::timeout(Duration::from_secs(10), p).await;
            answers.push(answer.ok().and_then(Result::ok).flatten());
        }
        answers
    });
    victim.start();
    let in_flight_after_restart = universes(&pair.http, pair.a.port)
        .ok()
        .zip(universes(&pair.http, pair.b.port).ok())
        .map(|(a, b)| (a["sandbox"].1 .1, b["sandbox"].1 .2));
    let relinked = pair.wait_linked(Duration::from_secs(20));
    let (all, settle) = pair.settled(Duration::from_secs(45));
    let who = if kill_source { "source A" } else { "target B" };
    let context = format!(
        "kill -9 of the {who} {delay:?} after the first of transfers {first}..{} was accepted",
        first + BURST
    );
    pair.assert_exactly_once(&all, &context);
    let round = Round {
        delay_ms: delay.as_millis() as u64,
        accepted: answers.iter().filter(|a| **a == Some(202)).count(),
        refused: answers
            .iter()
            .filter(|a| matches!(a, Some(s) if *s != 202))
            .count(),
        unanswered: answers.iter().filter(|a| a.is_none()).count(),
        in_flight_after_restart,
        moved: all["B.sandbox"].0 as i64 - before["B.sandbox"].0 as i64,
        settle: relinked + settle,
    };
    // Nothing is refused while both peers run; a killed source may leave some unanswered.
    assert_eq!(round.refused, 0, "{context}: {answers:?}");
    assert!(
        round.moved >= 0 && round.moved <= i64::from(BURST),
        "{context}"
    );
    if !kill_source {
        // The source stayed up and answered every start; the target came back well within
        // the prepare deadline, so every accepted transfer went through.
        assert_eq!(round.moved, round.accepted as i64, "{context}");
    }
    round
}

fn kill_rounds(kill_source: bool) {
    let mut pair = Pair::start();
    let passage = pair.open_passage();
    let mut rounds = Vec::new();
    for (n, delay_ms) in [0u64, 1, 3, 8].into_iter().enumerate() {
        let first = n as u32 * BURST;
        rounds.push(kill_round(
            &mut pair,
            &passage,
            kill_source,
            first,
            Duration::from_millis(delay_ms),
        ));
    }
    let who = if kill_source { "source" } else { "target" };
    for r in &rounds {
        eprintln!(
            "[test] kill -9 {who} {:>2} ms after the first accept: {:>2} accepted, {:>2} unanswered, in flight after restart (A out, B in) {:?}, {:>2} moved, settled in {:?}",
            r.delay_ms, r.accepted, r.unanswered, r.in_flight_after_restart, r.moved, r.settle
        );
    }
    let moved: i64 = rounds.iter().map(|r| r.moved).sum();
    assert!(moved > 0, "no round moved anything: {rounds:?}");
    // At least one kill must have caught transfers unsettled, or this tested nothing.
    assert!(
        rounds.iter().any(|r| r
            .in_flight_after_restart
            .is_some_and(|(out, inc)| out + inc > 0)),
        "no kill caught a transfer in flight: {rounds:?}"
    );
    let all = pair.settled(Duration::from_secs(5)).0;
    assert_eq!(all["B.sandbox"].0 as i64, SANDBOX as i64 + moved);
}

#[test]
fn kill_9_of_the_source_mid_transfer_loses_and_duplicates_nothing() {
    kill_rounds(true);
}

#[test]
fn kill_9_of_the_target_mid_transfer_loses_and_duplicates_nothing() {
    kill_rounds(false);
}

/// The dial state of A's only dialled address, and whether A has a live link.
fn dial_state(http: &Http, port: u16) -> Result<(String, bool, Value), String> {
    let peers = http.get(port, "/api/peers").ok_or("no answer")?;
    let state = peers["dialled"][0]["state"]
        .as_str()
        .ok_or_else(|| peers.to_string())?
        .to_owned();
    let linked = !peers["links"].as_array().ok_or("no links")?.is_empty();
    Ok((state, linked, peers))
}

#[test]
fn heartbeats_notice_a_stopped_peer_and_the_link_comes_back() {
    let mut pair = Pair::start();
    let a = pair.a.port;

    // A frozen peer (SIGSTOP) keeps its sockets open: only missing heartbeats can tell.
    let stopped = Instant::now();
    pair.b.signal("STOP");
    let (_, lost) =
        eventually(
            "A to drop the silent link",
            Duration::from_secs(12),
            || match dial_state(&pair.http, a)? {
                (_, false, _) => Ok(()),
                (_, true, peers) => Err(peers.to_string()),
            },
        );
    eprintln!("[test] SIGSTOP: A dropped the link after {lost:?}");
    assert!(
        lost >= Duration::from_secs(4),
        "the link went after {lost:?}, before heartbeats could have been missed"
    );
    let (peers, _) =
        eventually(
            "A's dialler to retry",
            Duration::from_secs(10),
            || match dial_state(&pair.http, a)? {
                (state, false, peers) if state == "retrying" => Ok(peers),
                (_, _, peers) => Err(peers.to_string()),
            },
        );
    assert!(
        peers["dialled"][0]["last_error"].is_string(),
        "a reason: {peers}"
    );
    pair.b.signal("CONT");
    let back = pair.wait_linked(Duration::from_secs(15));
    eprintln!(
        "[test] SIGCONT: linked again {back:?} later ({:?} after SIGSTOP)",
        stopped.elapsed()
    );
    assert_eq!(dial_state(&pair.http, a).unwrap().0, "connected");

    // A killed peer: the socket closes, A notices and retries; B comes back on its port.
    pair.b.kill9();
    let (peers, lost) =
        eventually(
            "A to notice B is gone",
            Duration::from_secs(10),
            || match dial_state(&pair.http, a)? {
                (state, false, peers) if state == "retrying" => Ok(peers),
                (_, _, peers) => Err(peers.to_string()),
            },
        );
    eprintln!("[test] SIGKILL: A noticed after {lost:?}: {peers}");
    pair.b.start();
    let back = pair.wait_linked(Duration::from_secs(15));
    eprintln!("[test] restart: linked again after {back:?}");
    assert_eq!(dial_state(&pair.http, a).unwrap().0, "connected");
}
