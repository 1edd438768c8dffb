//! Federation on real sockets: two peers in one process, linked over loopback, moving
//! entities between their universes through the REST API (through passages: see
//! `federation/passages.rs`).

mod common;

/// Transfers need an open passage with full interaction; the target enforces it too.
#[path = "federation/passages.rs"]
mod passages;

use std::time::Duration;

use common::TestPeer;
use serde_json::{json, Value};

async fn get(peer: &TestPeer, path: &str) -> Value {
    serde_json::from_str(&peer.get(path).await.text().await.unwrap()).unwrap()
}

async fn post(peer: &TestPeer, path: &str, body: Value) -> (u16, Value) {
    send_json(peer, reqwest::Method::POST, path, body).await
}

async fn put(peer: &TestPeer, path: &str, body: Value) -> (u16, Value) {
    send_json(peer, reqwest::Method::PUT, path, body).await
}

/// Sends `body` as JSON; answers the status and the JSON body (`null` if none).
async fn send_json(
    peer: &TestPeer,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("http://{}{path}", peer.addr))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

/// `(id, entities, transfers out, transfers in)` of a peer's universe by name.
async fn universe(peer: &TestPeer, name: &str) -> (String, u64, u64, u64) {
    let list = get(peer, "/api/universes").await;
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stats = get(peer, &format!("/api/universes/{id}")).await;
    (
        id,
        stats["info"]["entities"].as_u64().unwrap(),
        stats["transfers_out"].as_u64().unwrap(),
        stats["transfers_in"].as_u64().unwrap(),
    )
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_peers_move_an_entity_exactly_once() {
    let b = TestPeer::start(|c| c.name = "bee".into()).await;
    let b_addr = format!("ws://{}/peer", b.addr);
    let a = TestPeer::start(|c| {
        c.name = "ant".into();
        c.peers = vec![b_addr.clone()];
    })
    .await;
    eventually("the link on both sides", || async {
        get(&a, "/api/peers").await["links"]
            .as_array()
            .unwrap()
            .len()
            == 1
            && get(&b, "/api/peers").await["links"]
                .as_array()
                .unwrap()
                .len()
                == 1
    })
    .await;
    let links = get(&a, "/api/peers").await;
    assert_eq!(links["links"][0]["name"], "bee");
    let mine = format!("ws://{}", a.addr);
    let addresses = links["addresses"].as_array().unwrap();
    assert!(addresses.iter().any(|x| x == &mine), "{links}");
    assert_eq!(links["dialled"][0]["state"], "connected");

    let (a_sandbox, a_before, _, _) = universe(&a, "sandbox").await;
    let (b_sandbox, b_before, _, _) = universe(&b, "sandbox").await;
    eventually("B's universes listed to A", || async {
        get(&a, "/api/peers").await["links"][0]["universes"]
            .as_array()
            .unwrap()
            .len()
            == 3
    })
    .await;
    // Entities cross between peers through an open passage that grants full interaction.
    passages::open_passage(&a, &b, &a_sandbox, &b_sandbox, "full").await;
    for index in 0..5 {
        let (status, body) = post(
            &a,
            "/api/transfers",
            json!({"universe": a_sandbox, "entity": {"index": index, "generation": 0}, "target_universe": b_sandbox, "exit": {"x": 10.0, "y": 10.0}}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    // The same entity twice: the second is refused while the first is in flight or gone.
    let (status, _) = post(&a, "/api/transfers", json!({"universe": a_sandbox, "entity": {"index": 0, "generation": 0}, "target_universe": b_sandbox})).await;
    assert!(status == 409 || status == 404, "{status}");
    eventually("five entities to arrive and settle", || async {
        let (_, a_now, a_out, _) = universe(&a, "sandbox").await;
        let (_, b_now, _, b_in) = universe(&b, "sandbox").await;
        a_now == a_before - 5 && b_now == b_before + 5 && a_out == 0 && b_in == 0
    })
    .await;

    // Bad requests: unknown target universe, unknown entity.
    let (status, body) = post(&a, "/api/transfers", json!({"universe": a_sandbox, "entity": {"index": 9, "generation": 0}, "target_universe": "00000000-0000-0000-0000-000000000001"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_universe"))
    );
    let (status, body) = post(&a, "/api/transfers", json!({"universe": a_sandbox, "entity": {"index": 9999, "generation": 0}, "target_universe": b_sandbox})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_entity"))
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_between_two_universes_of_one_peer() {
    let a = TestPeer::start(|_| {}).await;
    let (sandbox, s0, _, _) = universe(&a, "sandbox").await;
    let (aquarium, q0, _, _) = universe(&a, "aquarium").await;
    let (status, body) = post(&a, "/api/transfers", json!({"universe": sandbox, "entity": {"index": 3, "generation": 0}, "target_universe": aquarium})).await;
    assert_eq!(status, 202, "{body}");
    eventually("the entity to move", || async {
        let (_, s, out, _) = universe(&a, "sandbox").await;
        let (_, q, _, inc) = universe(&a, "aquarium").await;
        s == s0 - 1 && q == q0 + 1 && out == 0 && inc == 0
    })
    .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peer_addresses_are_refused() {
    let a = TestPeer::start(|_| {}).await;
    for bad in [
        "",
        "nonsense",
        "https://example:1",
        "ws://host:1/other/path",
    ] {
        let (status, body) = post(&a, "/api/peers", json!({"address": bad})).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad:?}"
        );
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_watch_a_remote_universe_through_one_shared_upstream() {
    use common::{joined, recv, send};
    use multiverse_core::stream::{StreamConfiguration, ViewMode};
    use multiverse_core::wire::{ClientMessage, Encoding, ErrorCode, ServerMessage};

    let b = TestPeer::start(|c| c.name = "bee".into()).await;
    let b_addr = format!("ws://{}/peer", b.addr);
    let a = TestPeer::start(|c| c.peers = vec![b_addr.clone()]).await;
    eventually("B's universes listed to A", || async {
        get(&a, "/api/peers").await["links"]
            .get(0)
            .is_some_and(|l| l["universes"].as_array().unwrap().len() == 3)
    })
    .await;
    let (b_sandbox, _, _, _) = universe(&b, "sandbox").await;
    let remote: multiverse_core::ids::UniverseId = b_sandbox.parse().unwrap();

    let mut viewers = Vec::new();
    for encoding in [Encoding::Binary, Encoding::Json] {
        let mut ws = joined(&a, encoding).await;
        send(&mut ws, encoding, &ClientMessage::ListUniverses).await;
        let listed = loop {
            if let ServerMessage::UniverseList { universes } = recv(&mut ws, encoding).await {
                break universes;
            }
        };
        assert!(
            listed
                .iter()
                .any(|u| u.id == remote && u.name == "bee/sandbox"),
            "{listed:?}"
        );
        let subscribe = ClientMessage::Subscribe {
            universe: remote,
            config: StreamConfiguration::default(),
            viewport: None,
            mode: ViewMode::Observe,
        };
        send(&mut ws, encoding, &subscribe).await;
        viewers.push((ws, encoding));
    }
    for (ws, encoding) in &mut viewers {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let (mut snapshot, mut updates, mut subscribed) = (None, 0, false);
        while updates < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "portal frames stopped"
            );
            match recv(ws, *encoding).await {
                ServerMessage::Subscribed { universe, .. } => subscribed = universe.id == remote,
                ServerMessage::Snapshot(s) => snapshot = Some(s.entities.len()),
                ServerMessage::Update(_) if snapshot.is_some() => updates += 1,
                _ => {}
            }
        }
        assert_eq!(snapshot, Some(300), "the whole remote sandbox arrives");
        assert!(
            subscribed,
            "every viewer, first or joining, is told it is subscribed"
        );
    }
    let stats = get(&b, &format!("/api/universes/{b_sandbox}")).await;
    assert_eq!(stats["subscribers"], 1, "one upstream serves both viewers");

    // A portal is view-only.
    let (ws, encoding) = &mut viewers[0];
    let click = ClientMessage::Interact {
        universe: remote,
        interaction: multiverse_core::stream::Interaction::Click {
            at: multiverse_core::universe::Vec2::new(1.0, 1.0),
        },
    };
    send(ws, *encoding, &click).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        assert!(tokio::time::Instant::now() < deadline);
        if let ServerMessage::Error { code, .. } = recv(ws, *encoding).await {
            assert_eq!(code, ErrorCode::NotPermitted);
            break;
        }
    }
    drop(viewers);
    eventually("the upstream to close when the viewers leave", || async {
        get(&b, &format!("/api/universes/{b_sandbox}")).await["subscribers"] == 0
    })
    .await;
    a.stop().await;
    b.stop().await;
}

/// Passages polled until one is in `state` on a peer.
async fn passage_state(peer: &TestPeer, id: &str) -> Option<Value> {
    get(peer, "/api/passages")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passages_open_and_refuse_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let track = dir.path().join("templates/racetrack");
    std::fs::create_dir_all(&track).unwrap();
    std::fs::write(
        track.join("manifest.json"),
        r#"{"title": "Racetrack", "size": [50000, 50000], "tick_rate": 60, "max_speed": 100000, "wander_rate": 40}"#,
    )
    .unwrap();
    std::fs::write(track.join("entities.json"), "[]").unwrap();
    let templates = dir.path().join("templates");
    let b = TestPeer::start(|c| {
        c.name = "bee".into();
        c.templates_dir = templates.clone();
    })
    .await;
    let b_addr = format!("ws://{}/peer", b.addr);
    let a = TestPeer::start(|c| c.peers = vec![b_addr.clone()]).await;
    eventually("the link", || async {
        get(&a, "/api/peers").await["links"]
            .get(0)
            .is_some_and(|l| l["universes"].as_array().unwrap().len() == 3)
    })
    .await;
    let (a_galaxy, _, _, _) = universe(&a, "galaxy").await;
    let (b_sandbox, _, _, _) = universe(&b, "sandbox").await;
    let (b_aquarium, _, _, _) = universe(&b, "aquarium").await;
    let b_id = get(&b, "/api/peers").await["peer_id"].clone();

    // A compatible passage opens on both ends.
    let (status, body) = post(
        &a,
        "/api/passages",
        json!({"from_universe": a_galaxy, "to_universe": b_sandbox, "view": "participate", "interaction": "full"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["passage"].as_str().unwrap().to_owned();
    eventually("the passage to connect on both ends", || async {
        let mine = passage_state(&a, &id).await;
        let theirs = passage_state(&b, &id).await;
        mine.is_some_and(|p| p["state"] == "connected" && p["role"] == "opener")
            && theirs.is_some_and(|p| p["state"] == "connected" && p["role"] == "owner")
    })
    .await;
    let grant = passage_state(&a, &id).await.unwrap()["grant"].clone();
    assert_eq!(grant["view"], "participate");
    assert_eq!(grant["interaction"], "full");

    // Through the passage, a browser on A acts in B's sandbox; without one (aquarium) it
    // cannot.
    {
        use common::{joined, recv, send};
        use multiverse_core::stream::{Interaction, StreamConfiguration, ViewMode};
        use multiverse_core::universe::Vec2;
        use multiverse_core::wire::{ClientMessage, Encoding, ErrorCode, ServerMessage};
        let (_, s0, _, _) = universe(&b, "sandbox").await;
        let mut ws = joined(&a, Encoding::Binary).await;
        for target in [&b_sandbox, &b_aquarium] {
            let subscribe = ClientMessage::Subscribe {
                universe: target.parse().unwrap(),
                config: StreamConfiguration::default(),
                viewport: None,
                mode: ViewMode::Participate,
            };
            send(&mut ws, Encoding::Binary, &subscribe).await;
        }
        let spawn = |u: &str| ClientMessage::Interact {
            universe: u.parse().unwrap(),
            interaction: Interaction::Command {
                name: "spawn".into(),
                at: Vec2::new(5.0, 5.0),
            },
        };
        send(&mut ws, Encoding::Binary, &spawn(&b_sandbox)).await;
        eventually("the visitor's entity in B's sandbox", || async {
            universe(&b, "sandbox").await.1 == s0 + 1
        })
        .await;
        send(&mut ws, Encoding::Binary, &spawn(&b_aquarium)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let reason = loop {
            assert!(tokio::time::Instant::now() < deadline, "no refusal");
            if let ServerMessage::Error { code, message } = recv(&mut ws, Encoding::Binary).await {
                assert_eq!(code, ErrorCode::NotPermitted);
                break message;
            }
        };
        assert!(reason.contains("passage"), "{reason}");
    }
    assert!(grant["score"].as_f64().unwrap() <= 5.0);

    // A password-protected universe refuses a request without the password, with a reason.
    let (status, _) = put(
        &b,
        &format!("/api/universes/{b_aquarium}/passage-policy"),
        json!({"access": "shared", "password": "swordfish"}),
    )
    .await;
    assert_eq!(status, 204);
    let (_, body) = post(
        &a,
        "/api/passages",
        json!({"from_universe": a_galaxy, "to_universe": b_aquarium}),
    )
    .await;
    let refused = body["passage"].as_str().unwrap().to_owned();
    eventually("the refusal", || async {
        passage_state(&a, &refused)
            .await
            .is_some_and(|p| p["state"] == "error")
    })
    .await;
    let error = passage_state(&a, &refused).await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("password"), "{error}");
    let (_, body) = post(
        &a,
        "/api/passages",
        json!({"from_universe": a_galaxy, "to_universe": b_aquarium, "password": "swordfish"}),
    )
    .await;
    let admitted = body["passage"].as_str().unwrap().to_owned();
    eventually("the password to be accepted", || async {
        passage_state(&a, &admitted)
            .await
            .is_some_and(|p| p["state"] == "connected")
    })
    .await;

    // Approval: the request waits until the owner approves (or declines) it.
    let (b_galaxy, _, _, _) = universe(&b, "galaxy").await;
    let (status, _) = put(
        &b,
        &format!("/api/universes/{b_galaxy}/passage-policy"),
        json!({"access": "shared", "approval": true}),
    )
    .await;
    assert_eq!(status, 204);
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let (_, body) = post(
            &a,
            "/api/passages",
            json!({"from_universe": a_galaxy, "to_universe": b_galaxy}),
        )
        .await;
        waiting.push(body["passage"].as_str().unwrap().to_owned());
    }
    for id in &waiting {
        eventually("both ends to wait for approval", || async {
            passage_state(&a, id)
                .await
                .is_some_and(|p| p["state"] == "pending_approval")
                && passage_state(&b, id)
                    .await
                    .is_some_and(|p| p["state"] == "pending_approval")
        })
        .await;
    }
    let (status, _) = post(
        &b,
        &format!("/api/passages/{}/approve", waiting[0]),
        json!({}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = post(&b, &format!("/api/passages/{}/deny", waiting[1]), json!({})).await;
    assert_eq!(status, 204);
    eventually("the approval and the refusal to arrive", || async {
        passage_state(&a, &waiting[0])
            .await
            .is_some_and(|p| p["state"] == "connected")
            && passage_state(&a, &waiting[1])
                .await
                .is_some_and(|p| p["state"] == "error")
    })
    .await;
    let (status, body) = post(
        &b,
        &format!("/api/passages/{}/approve", waiting[0]),
        json!({}),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("not_pending")));

    // An incompatible universe (a world from the racetrack template) is refused with the
    // law that differs most.
    let (_, session) = post(&b, "/api/session", json!({"display_name": "Bo"})).await;
    let token = session["token"].as_str().unwrap();
    let world: Value = serde_json::from_str(
        &reqwest::Client::new()
            .post(format!("http://{}/api/worlds", b.addr))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(json!({"template": "racetrack", "name": "Fast"}).to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let (_, body) = post(
        &a,
        "/api/passages",
        json!({"peer": b_id, "from_universe": a_galaxy, "to_universe": world["id"]}),
    )
    .await;
    let far = body["passage"]
        .as_str()
        .unwrap_or_else(|| panic!("{body} {world} {b_id}"))
        .to_owned();
    eventually("the incompatibility refusal", || async {
        passage_state(&a, &far)
            .await
            .is_some_and(|p| p["state"] == "error")
    })
    .await;
    let error = passage_state(&a, &far).await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("5"), "the reason names the limit: {error}");
    assert!(
        passage_state(&b, &far).await.is_none(),
        "the owner keeps nothing of a refusal"
    );

    // A transfer through the open passage arrives.
    let (_, g0, _, _) = universe(&a, "galaxy").await;
    let through = |index: u32| json!({"passage": id, "universe": a_galaxy, "entity": {"index": index, "generation": 0}, "target_universe": b_sandbox});
    let (status, body) = post(&a, "/api/transfers", through(0)).await;
    assert_eq!(status, 202, "{body}");
    eventually("the transfer through the passage", || async {
        let (_, g, out, _) = universe(&a, "galaxy").await;
        g == g0 - 1 && out == 0
    })
    .await;

    // Closing from the opener closes both ends.
    let response = reqwest::Client::new()
        .delete(format!("http://{}/api/passages/{id}", a.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    eventually("the close to reach the owner", || async {
        passage_state(&b, &id)
            .await
            .is_some_and(|p| p["state"] == "closed")
    })
    .await;
    let (status, body) = post(&a, "/api/transfers", through(1)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("passage_closed")),
        "{body}"
    );
    a.stop().await;
    b.stop().await;
}
