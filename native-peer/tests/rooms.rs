//! Rooms over real sockets: chat order under load, resends and reconnects; invites, limits,
//! floods; history across a restart.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use multiverse_core::ids::{ClientId, MessageId, RoomId};
use multiverse_core::rng::Rng;
use multiverse_core::room::{AccessPolicy, ChatMessage};
use multiverse_core::wire::{
    ClientMessage, Encoding, ErrorCode, Hello, ServerMessage, PROTOCOL_VERSION,
};

/// A room member as a test client: what it has seen and what it is still waiting to hear about.
struct Member {
    ws: Ws,
    enc: Encoding,
    client: ClientId,
    seen: BTreeMap<u64, ChatMessage>,
    unacked: BTreeMap<MessageId, String>,
    errors: Vec<ErrorCode>,
}

impl Member {
    async fn connect(peer: &TestPeer, n: u64, enc: Encoding) -> Member {
        let client = ClientId::from_u128(0xC11E_0000 + u128::from(n));
        let ws = Self::hello(peer, client, enc).await;
        Member {
            ws,
            enc,
            client,
            seen: BTreeMap::new(),
            unacked: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    async fn hello(peer: &TestPeer, client: ClientId, enc: Encoding) -> Ws {
        let mut ws = peer.connect(Some(enc.subprotocol())).await;
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            display_name: format!("c{}", client.as_u128() & 0xffff),
            client_id: client,
        };
        send(&mut ws, enc, &ClientMessage::Hello(hello)).await;
        assert!(matches!(
            recv(&mut ws, enc).await,
            ServerMessage::Welcome(_)
        ));
        ws
    }

    async fn join(&mut self, room: &str, invite: Option<&str>) -> Result<(), ErrorCode> {
        let join = ClientMessage::JoinRoom {
            room: RoomId::new(room).unwrap(),
            invite: invite.map(str::to_owned),
        };
        send(&mut self.ws, self.enc, &join).await;
        loop {
            match recv(&mut self.ws, self.enc).await {
                ServerMessage::RoomJoined(w) => {
                    self.seen.extend(w.history.into_iter().map(|m| (m.seq, m)));
                    return Ok(());
                }
                ServerMessage::Error { code, .. } => return Err(code),
                other => self.take(other),
            }
        }
    }

    fn take(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Chat(m) => {
                self.seen.insert(m.seq, m);
            }
            ServerMessage::ChatHistory { messages } => {
                self.seen.extend(messages.into_iter().map(|m| (m.seq, m)))
            }
            ServerMessage::ChatAck { id, .. } => {
                self.unacked.remove(&id);
            }
            ServerMessage::Error { code, .. } => self.errors.push(code),
            _ => {}
        }
    }

    async fn say(&mut self, id: MessageId, text: &str) {
        self.unacked.insert(id, text.to_owned());
        send(
            &mut self.ws,
            self.enc,
            &ClientMessage::Chat {
                id,
                text: text.to_owned(),
            },
        )
        .await;
    }

    /// Reads whatever arrives for `d`.
    async fn pump(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(next) =
            tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut self.ws)).await
        {
            let Some(Ok(frame)) = next else { return };
            let bytes = match &frame {
                tokio_tungstenite::tungstenite::Message::Binary(b) => b.to_vec(),
                tokio_tungstenite::tungstenite::Message::Text(t) => t.as_bytes().to_vec(),
                _ => continue,
            };
            self.take(codec(self.enc).decode(&bytes).expect("decodes"));
        }
    }

    /// The highest seq up to which nothing is missing.
    fn contiguous(&self) -> u64 {
        let mut n = 0;
        while self.seen.contains_key(&(n + 1)) {
            n += 1;
        }
        n
    }

    /// Drops the connection and comes back: hello, join, backfill, resend what was not acknowledged.
    async fn reconnect(&mut self, peer: &TestPeer, room: &str) {
        self.ws = Self::hello(peer, self.client, self.enc).await;
        self.join(room, None).await.expect("rejoin");
        let since = self.contiguous();
        send(
            &mut self.ws,
            self.enc,
            &ClientMessage::ChatBackfill { since },
        )
        .await;
        let pending: Vec<(MessageId, String)> =
            self.unacked.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (id, text) in pending {
            self.say(id, &text).await;
        }
    }

    /// Backfills until `total` messages are held, or gives up after `limit`.
    async fn catch_up(&mut self, total: u64, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while (self.contiguous() < total || !self.unacked.is_empty())
            && tokio::time::Instant::now() < deadline
        {
            let before = self.contiguous();
            self.pump(Duration::from_millis(300)).await;
            if self.contiguous() == before && before < total {
                send(
                    &mut self.ws,
                    self.enc,
                    &ClientMessage::ChatBackfill { since: before },
                )
                .await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_agree_on_one_sequence_of_a_thousand_messages() {
    const CLIENTS: u64 = 50;
    const MESSAGES: u64 = 20;
    let peer = Arc::new(TestPeer::start(|_| {}).await);
    // The room's owner makes room for everyone (rooms hold 16 by default), then leaves.
    let mut owner = Member::connect(&peer, 9999, Encoding::Json).await;
    owner.join("party", None).await.expect("create the room");
    let limits = ClientMessage::ConfigureRoom {
        access: AccessPolicy::Shared,
        max_players: 64,
        multiplayer: true,
    };
    send(&mut owner.ws, owner.enc, &limits).await;
    while !matches!(
        recv(&mut owner.ws, owner.enc).await,
        ServerMessage::RoomConfigured(_)
    ) {}
    send(&mut owner.ws, owner.enc, &ClientMessage::LeaveRoom).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS as usize));
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let (peer, barrier) = (peer.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let enc = if n % 5 == 0 {
                Encoding::Json
            } else {
                Encoding::Binary
            };
            let mut rng = Rng::new(n + 1);
            let mut me = Member::connect(&peer, n, enc).await;
            me.join("party", None).await.expect("join");
            // Bounded, so one failed client fails the test instead of hanging it.
            tokio::time::timeout(Duration::from_secs(60), barrier.wait())
                .await
                .expect("every client joined");
            let reconnect_after = 3 + u64::from(rng.below(14));
            for i in 0..MESSAGES {
                let id = MessageId::from_u128((u128::from(n) << 32) | u128::from(i));
                let text = format!("client {n} message {i}");
                me.say(id, &text).await;
                if rng.unit() < 0.3 {
                    me.say(id, &text).await; // a resend that must not duplicate
                }
                me.pump(Duration::from_millis(150 + u64::from(rng.below(150))))
                    .await;
                if i == reconnect_after {
                    me.reconnect(&peer, "party").await;
                }
            }
            me.catch_up(CLIENTS * MESSAGES, Duration::from_secs(90))
                .await;
            (n, me.seen, me.unacked.len(), me.errors)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("client task"));
    }
    let (_, reference, _, _) = &results[0];
    assert_eq!(
        reference.len() as u64,
        CLIENTS * MESSAGES,
        "client 0 holds every message"
    );
    assert!(
        reference.keys().copied().eq(1..=CLIENTS * MESSAGES),
        "seq runs 1..=1000 without gaps"
    );
    let ids: BTreeSet<MessageId> = reference.values().map(|m| m.id).collect();
    assert_eq!(
        ids.len() as u64,
        CLIENTS * MESSAGES,
        "no message stored twice"
    );
    for (n, seen, unacked, errors) in &results {
        assert_eq!(seen, reference, "client {n} sees another sequence");
        assert_eq!(*unacked, 0, "client {n} has unacknowledged messages");
        assert!(errors.is_empty(), "client {n} got errors {errors:?}");
    }
    Arc::try_unwrap(peer).ok().expect("tasks done").stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_rooms_limits_floods_and_bad_chat_get_clear_errors() {
    let peer = TestPeer::start(|_| {}).await;
    let mut owner = Member::connect(&peer, 1, Encoding::Json).await;
    let mut guest = Member::connect(&peer, 2, Encoding::Binary).await;
    let mut third = Member::connect(&peer, 3, Encoding::Binary).await;

    send(
        &mut guest.ws,
        guest.enc,
        &ClientMessage::Chat {
            id: MessageId::from_u128(1),
            text: "hi".into(),
        },
    )
    .await;
    expect_error(&mut guest.ws, guest.enc, ErrorCode::NotInRoom).await;

    owner.join("secret", None).await.unwrap();
    send(
        &mut owner.ws,
        owner.enc,
        &ClientMessage::ConfigureRoom {
            access: AccessPolicy::Private,
            max_players: 2,
            multiplayer: true,
        },
    )
    .await;
    send(&mut owner.ws, owner.enc, &ClientMessage::CreateInvite).await;
    let token = loop {
        match recv(&mut owner.ws, owner.enc).await {
            ServerMessage::InviteCreated { token } => break token,
            _ => continue,
        }
    };
    assert_eq!(
        guest.join("secret", None).await,
        Err(ErrorCode::InviteRequired)
    );
    assert_eq!(
        guest.join("secret", Some("forged")).await,
        Err(ErrorCode::InviteRequired)
    );
    guest
        .join("secret", Some(&token))
        .await
        .expect("a valid invite opens the room");
    assert_eq!(
        third.join("secret", Some(&token)).await,
        Err(ErrorCode::RoomFull)
    );

    // A flood: the flooder is told to slow down; the others keep talking.
    for i in 0..30 {
        guest.say(MessageId::from_u128(100 + i), "flood").await;
    }
    guest.pump(Duration::from_millis(300)).await;
    assert!(
        guest.errors.contains(&ErrorCode::RateLimited),
        "the flooder hears about it: {:?}",
        guest.errors
    );
    owner.say(MessageId::from_u128(999), "still here").await;
    owner.pump(Duration::from_millis(300)).await;
    assert!(
        owner.unacked.is_empty() && owner.errors.is_empty(),
        "the owner is unaffected: {:?}",
        owner.errors
    );
    assert!(owner.seen.values().any(|m| m.text == "still here"));

    owner
        .say(MessageId::from_u128(5000), &"x".repeat(501))
        .await;
    owner.pump(Duration::from_millis(200)).await;
    assert_eq!(owner.errors, [ErrorCode::InvalidRequest]);
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_history_survives_a_peer_restart() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_path_buf();
    let peer = TestPeer::start(|c| c.data_dir = dir.clone()).await;
    let mut a = Member::connect(&peer, 1, Encoding::Binary).await;
    a.join("lasting", None).await.unwrap();
    for i in 0..5 {
        a.say(MessageId::from_u128(i), &format!("remember {i}"))
            .await;
    }
    a.catch_up(5, Duration::from_secs(10)).await;
    assert!(a.unacked.is_empty(), "acknowledged means stored");
    peer.stop().await;

    let peer = TestPeer::start(|c| c.data_dir = dir.clone()).await;
    let mut b = Member::connect(&peer, 2, Encoding::Json).await;
    b.join("lasting", None).await.unwrap();
    let texts: Vec<&str> = b.seen.values().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "remember 0",
            "remember 1",
            "remember 2",
            "remember 3",
            "remember 4"
        ]
    );
    b.say(MessageId::from_u128(77), "and more").await;
    b.pump(Duration::from_millis(300)).await;
    assert_eq!(b.seen.keys().copied().max(), Some(6), "numbering continues");
    peer.stop().await;
}
