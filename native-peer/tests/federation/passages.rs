//! Entities cross between peers only through an open passage that grants full interaction:
//! the source's API refuses a transfer without one, and the target refuses (nacks) an
//! arrival that names an unknown, closed or view-only passage. Either way the entity stays
//! home and nothing is lost.

use super::*;

use multiverse_core::federation::{TransferEvent, TransferRequest};
use multiverse_core::ids::{EntityId, PassageId, UniverseId};
use multiverse_core::universe::Vec2;
use multiverse_core::wire::NackReason;
use multiverse_peer::host::{endpoint, HostCommand};

/// Opens a passage `from` (on `opener`) → `to` (on `owner`) with `view` and `interaction`
/// and waits until both ends show it connected; answers its id.
pub(super) async fn open_passage(
    opener: &TestPeer,
    owner: &TestPeer,
    from: &str,
    to: &str,
    interaction: &str,
) -> String {
    let (status, body) = post(
        opener,
        "/api/passages",
        json!({"from_universe": from, "to_universe": to, "view": "participate", "interaction": interaction}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["passage"].as_str().unwrap().to_owned();
    eventually("the passage to connect on both ends", || async {
        let connected = |p: Option<Value>| p.is_some_and(|p| p["state"] == "connected");
        connected(passage_state(opener, &id).await) && connected(passage_state(owner, &id).await)
    })
    .await;
    id
}

/// Two peers, A dialling B, each listing the other's universes.
async fn linked_pair() -> (TestPeer, TestPeer) {
    let b = TestPeer::start(|c| c.name = "bee".into()).await;
    let b_addr = format!("ws://{}/peer", b.addr);
    let a = TestPeer::start(|c| {
        c.name = "ant".into();
        c.peers = vec![b_addr.clone()];
    })
    .await;
    eventually("each side to list the other's universes", || async {
        let listed = |v: Value| {
            v["links"]
                .get(0)
                .is_some_and(|l| l["universes"].as_array().unwrap().len() == 3)
        };
        listed(get(&a, "/api/peers").await) && listed(get(&b, "/api/peers").await)
    })
    .await;
    (a, b)
}

fn entity(index: u32) -> Value {
    json!({"index": index, "generation": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_between_linked_peers_needs_an_open_passage_with_full_interaction() {
    let (a, b) = linked_pair().await;
    let (a_sandbox, a0, _, _) = universe(&a, "sandbox").await;
    let (b_sandbox, b0, _, _) = universe(&b, "sandbox").await;
    let send = |index: u32| json!({"universe": a_sandbox, "entity": entity(index), "target_universe": b_sandbox});

    // No passage at all: refused with what to do; nothing moves on either side.
    let (status, body) = post(&a, "/api/transfers", send(0)).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("no_passage")));
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("open a passage from sandbox to bee/sandbox with interaction full"),
        "{message}"
    );
    // A passage that only grants limited interaction does not carry entities either.
    open_passage(&a, &b, &a_sandbox, &b_sandbox, "limited").await;
    let (status, body) = post(&a, "/api/transfers", send(0)).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("no_passage")));
    assert!(
        body["message"].as_str().unwrap().contains("limited"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(universe(&a, "sandbox").await, (a_sandbox.clone(), a0, 0, 0));
    assert_eq!(universe(&b, "sandbox").await, (b_sandbox.clone(), b0, 0, 0));

    // With full interaction, the entity goes without naming the passage, and comes back
    // through the same passage the other way.
    open_passage(&a, &b, &a_sandbox, &b_sandbox, "full").await;
    let (status, body) = post(&a, "/api/transfers", send(0)).await;
    assert_eq!(status, 202, "{body}");
    eventually("the entity at B", || async {
        universe(&a, "sandbox").await.1 == a0 - 1 && universe(&b, "sandbox").await.1 == b0 + 1
    })
    .await;
    let back = json!({"universe": b_sandbox, "entity": entity(0), "target_universe": a_sandbox});
    let (status, body) = post(&b, "/api/transfers", back).await;
    assert_eq!(status, 202, "{body}");
    eventually("the entity back home", || async {
        universe(&a, "sandbox").await == (a_sandbox.clone(), a0, 0, 0)
            && universe(&b, "sandbox").await == (b_sandbox.clone(), b0, 0, 0)
    })
    .await;
    a.stop().await;
    b.stop().await;
}

/// Starts a transfer on `source`'s host directly, naming `passage` (what the API would not
/// let through), and answers how it ended: the target's nack reason once it is home again,
/// or `None` if it arrived.
async fn forged(
    source: &TestPeer,
    from: UniverseId,
    index: u32,
    to: UniverseId,
    passage: PassageId,
) -> Option<NackReason> {
    let mut events = source.shared.universes.transfer_events();
    let request = TransferRequest {
        universe: from,
        entity: EntityId {
            index,
            generation: 0,
        },
        target: endpoint(to),
        passage,
        target_universe: to,
        exit: Vec2::new(10.0, 10.0),
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let host = source.shared.universes.get(from).expect("hosted");
    let command = HostCommand::StartTransfer { request, reply };
    host.commands.send(command).await.expect("host running");
    let id = answer.await.unwrap().expect("started");
    let ended = async {
        loop {
            match events.recv().await.expect("events") {
                (
                    _,
                    TransferEvent::Returned {
                        transfer, reason, ..
                    },
                ) if transfer == id => return reason,
                (_, TransferEvent::Departed { transfer, .. }) if transfer == id => return None,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), ended)
        .await
        .expect("the transfer to end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_refuses_arrivals_through_unknown_closed_or_view_only_passages() {
    let (a, b) = linked_pair().await;
    let (a_sandbox, a0, _, _) = universe(&a, "sandbox").await;
    let (b_sandbox, b0, _, _) = universe(&b, "sandbox").await;
    let (from, to): (UniverseId, UniverseId) =
        (a_sandbox.parse().unwrap(), b_sandbox.parse().unwrap());
    let unchanged = || async {
        universe(&a, "sandbox").await == (a_sandbox.clone(), a0, 0, 0)
            && universe(&b, "sandbox").await == (b_sandbox.clone(), b0, 0, 0)
    };

    // A passage B never heard of, and the id the old passage-free transfers used.
    let unknown = PassageId::from_u128(0x5eed);
    let direct = PassageId::from_u128(from.as_u128() ^ to.as_u128().rotate_left(64));
    for (index, passage) in [(1, unknown), (2, direct)] {
        let reason = forged(&a, from, index, to, passage).await;
        assert_eq!(reason, Some(NackReason::PassageClosed), "{passage}");
    }
    eventually("nothing moved", unchanged).await;

    // An open passage that grants no interaction: rejected.
    let none = open_passage(&a, &b, &a_sandbox, &b_sandbox, "none").await;
    let reason = forged(&a, from, 3, to, none.parse().unwrap()).await;
    assert_eq!(reason, Some(NackReason::Rejected));

    // A passage closed (from B's side; the close reaches A as well): refused again.
    let full = open_passage(&a, &b, &a_sandbox, &b_sandbox, "full").await;
    let response = reqwest::Client::new()
        .delete(format!("http://{}/api/passages/{full}", b.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let reason = forged(&a, from, 4, to, full.parse().unwrap()).await;
    assert_eq!(reason, Some(NackReason::PassageClosed));
    eventually("nothing moved", unchanged).await;
    a.stop().await;
    b.stop().await;
}
