//! Avatars over real sockets: joining a room puts an avatar in the room's universe,
//! `move_avatar` walks it, other members see it, leaving removes it; bad moves are refused
//! and the connection stays usable.

mod common;

use std::time::Duration;

use common::*;
use multiverse_core::ids::{ClientId, RoomId, UniverseId};
use multiverse_core::stream::EntityState;
use multiverse_core::stream::{EntityFilter, StreamCache, StreamConfiguration, ViewMode};
use multiverse_core::universe::{Rect, Vec2};
use multiverse_core::wire::{ClientMessage, Encoding, ErrorCode, Hello, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

/// A test client following the avatars of one universe.
struct Client {
    ws: Ws,
    enc: Encoding,
    id: ClientId,
    mirror: Option<StreamCache>,
    errors: Vec<ErrorCode>,
}

impl Client {
    async fn connect(peer: &TestPeer, id: u128, enc: Encoding) -> Client {
        let mut ws = peer.connect(Some(enc.subprotocol())).await;
        let id = ClientId::from_u128(id);
        let hello = Hello {
            protocol_version: multiverse_core::wire::PROTOCOL_VERSION,
            display_name: format!("c{id}").chars().take(8).collect(),
            client_id: id,
        };
        send(&mut ws, enc, &ClientMessage::Hello(hello)).await;
        assert!(matches!(
            recv(&mut ws, enc).await,
            ServerMessage::Welcome(_)
        ));
        Client {
            ws,
            enc,
            id,
            mirror: None,
            errors: Vec::new(),
        }
    }

    async fn send(&mut self, message: &ClientMessage) {
        send(&mut self.ws, self.enc, message).await;
    }

    /// Joins `room` and returns the universe it shows.
    async fn join(&mut self, room: &str) -> UniverseId {
        let join = ClientMessage::JoinRoom {
            room: RoomId::new(room).unwrap(),
            invite: None,
        };
        self.send(&join).await;
        loop {
            match recv(&mut self.ws, self.enc).await {
                ServerMessage::RoomJoined(w) => return w.config.universe.expect("a universe"),
                other => self.take(other),
            }
        }
    }

    /// Subscribes to the avatars of `universe`, whole world.
    async fn watch(&mut self, universe: UniverseId) {
        let config = StreamConfiguration {
            filter: EntityFilter {
                kinds: vec!["avatar".into()],
                ..EntityFilter::default()
            },
            distance_rates: None,
            ..StreamConfiguration::default()
        };
        let subscribe = ClientMessage::Subscribe {
            universe,
            config,
            viewport: None,
            mode: ViewMode::Observe,
        };
        self.mirror = Some(StreamCache::with_default_cap(universe));
        self.send(&subscribe).await;
    }

    fn take(&mut self, message: ServerMessage) {
        let mirror = self.mirror.as_mut();
        match (message, mirror) {
            (ServerMessage::Snapshot(s), Some(m)) => m.apply_snapshot(&s).expect("applies"),
            (ServerMessage::Update(u), Some(m)) if !m.needs_snapshot() => {
                m.apply_update(&u).expect("applies in order");
            }
            (ServerMessage::Error { code, .. }, _) => self.errors.push(code),
            _ => {}
        }
    }

    /// Reads until `done` holds of this client (panics after 5 s).
    async fn until(&mut self, what: &str, done: impl Fn(&Client) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !done(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = tokio::time::timeout(left, recv(&mut self.ws, self.enc))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
            self.take(message);
        }
    }

    /// The avatar of `client` in this client's mirror.
    fn avatar(&self, client: ClientId) -> Option<&EntityState> {
        let mirror = self.mirror.as_ref()?;
        mirror.entities().find(|e| e.avatar == Some(client))
    }

    /// The distinct positions `client`'s avatar takes until it is at `to`.
    async fn track(&mut self, client: ClientId, to: Vec2) -> Vec<Vec2> {
        let mut path: Vec<Vec2> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(p) = self.position(client) {
                if path.last() != Some(&p) {
                    path.push(p);
                }
                if p == to {
                    return path;
                }
            }
            let message = tokio::time::timeout_at(deadline, recv(&mut self.ws, self.enc))
                .await
                .unwrap_or_else(|_| panic!("never arrived: {path:?}"));
            self.take(message);
        }
    }

    fn position(&self, client: ClientId) -> Option<Vec2> {
        self.avatar(client)
            .map(|e| Vec2::new(e.x as f32 / 16.0, e.y as f32 / 16.0))
    }

    fn avatars(&self) -> usize {
        self.mirror.as_ref().map_or(0, |m| m.len())
    }
}

async fn bounds(client: &mut Client, universe: UniverseId) -> Rect {
    client.send(&ClientMessage::ListUniverses).await;
    loop {
        match recv(&mut client.ws, client.enc).await {
            ServerMessage::UniverseList { universes } => {
                return universes.iter().find(|u| u.id == universe).unwrap().bounds
            }
            other => client.take(other),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_get_avatars_that_walk_and_leave_with_them() {
    let peer = TestPeer::start(|_| {}).await;
    let mut ann = Client::connect(&peer, 0xA, Encoding::Json).await;
    let universe = ann.join("plaza").await;
    ann.watch(universe).await;
    let a = ann.id;
    ann.until("ann's avatar", |c| c.avatar(a).is_some()).await;
    let start = ann.position(a).unwrap();
    let world = bounds(&mut ann, universe).await;
    assert!(
        start.distance(world.centre()) <= 61.0,
        "{start:?} near the centre"
    );

    // Walk 90 units right: 150 units/s, so about 0.6 s, in steps.
    let to = Vec2::new(start.x + 90.0, start.y);
    ann.send(&ClientMessage::MoveAvatar { to }).await;
    let path = ann.track(a, to).await;
    assert!(path.len() >= 3, "walks over several ticks: {path:?}");
    assert!(
        path.windows(2)
            .all(|w| w[0].x < w[1].x && w[1].y == start.y),
        "straight towards the target: {path:?}"
    );
    ann.until("a still avatar", |c| c.avatar(a).is_some_and(|e| e.vx == 0))
        .await;
    assert_eq!(ann.position(a), Some(to), "stops exactly at the target");

    // A second member sees both avatars; Ann sees Bob's.
    let mut bob = Client::connect(&peer, 0xB, Encoding::Binary).await;
    assert_eq!(bob.join("plaza").await, universe);
    bob.watch(universe).await;
    let b = bob.id;
    bob.until("both avatars", |c| {
        c.avatar(a).is_some() && c.avatar(b).is_some()
    })
    .await;
    assert_eq!(bob.position(a), Some(to));
    ann.until("bob's avatar", |c| c.avatar(b).is_some()).await;

    // Out of the world: clamped, so it walks towards the right edge.
    let edge = Vec2::new(1e9, to.y);
    ann.send(&ClientMessage::MoveAvatar { to: edge }).await;
    ann.until("walking right", |c| c.avatar(a).is_some_and(|e| e.vx > 0))
        .await;
    assert!(ann.errors.is_empty(), "{:?}", ann.errors);

    // Leaving removes the avatar for everyone.
    ann.send(&ClientMessage::LeaveRoom).await;
    bob.until("ann's avatar gone", |c| c.avatar(a).is_none())
        .await;
    assert_eq!(bob.avatars(), 1);
    ann.send(&ClientMessage::MoveAvatar { to }).await;
    ann.until("not_in_room", |c| c.errors.contains(&ErrorCode::NotInRoom))
        .await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_share_one_avatar_and_bad_moves_are_refused() {
    let peer = TestPeer::start(|_| {}).await;
    let mut tab1 = Client::connect(&peer, 0xC, Encoding::Json).await;
    let mut tab2 = Client::connect(&peer, 0xC, Encoding::Json).await;
    let universe = tab1.join("two-tabs").await;
    tab2.join("two-tabs").await;
    let mut watcher = Client::connect(&peer, 0xD, Encoding::Binary).await;
    watcher.watch(universe).await;
    let c = tab1.id;
    watcher.until("the avatar", |w| w.avatar(c).is_some()).await;
    assert_eq!(watcher.avatars(), 1, "one avatar for two tabs");

    // A coordinate too large for f32 decodes as infinity: refused, connection usable.
    let huge = r#"{"type":"move_avatar","to":{"x":1e300,"y":0}}"#;
    futures::SinkExt::send(&mut tab1.ws, Message::Text(huge.into()))
        .await
        .unwrap();
    tab1.until("invalid_interaction", |t| {
        t.errors.contains(&ErrorCode::InvalidInteraction)
    })
    .await;
    let start = watcher.position(c).unwrap();
    let to = Vec2::new(start.x, start.y - 30.0);
    tab1.send(&ClientMessage::MoveAvatar { to }).await;
    watcher
        .until("the walk", |w| w.position(c) == Some(to))
        .await;

    // The avatar stays while one tab is still in the room.
    tab1.send(&ClientMessage::LeaveRoom).await;
    tab2.send(&ClientMessage::MoveAvatar { to: start }).await;
    watcher
        .until("the walk back", |w| w.position(c) == Some(start))
        .await;
    tab2.send(&ClientMessage::LeaveRoom).await;
    watcher
        .until("the avatar gone", |w| w.avatar(c).is_none())
        .await;
    peer.stop().await;
}
