//! Voice over real sockets: str0m test clients publish Opus frames through the peer's SFU on
//! 127.0.0.1; a listener receives a speaker only while their avatars are within the hearing
//! radius, and stops when it walks away. Bad signalling gets a clear error and affects
//! nobody else.

#[path = "voice/client.rs"]
mod client;
mod common;

use std::time::Duration;

use client::VoiceClient;
use common::*;
use multiverse_core::ids::RoomId;
use multiverse_core::universe::Vec2;
use multiverse_core::voice::{HEARING_HYSTERESIS, HEARING_RADIUS};
use multiverse_core::wire::{ClientMessage, Encoding, ErrorCode, ServerMessage};

const WAIT: Duration = Duration::from_secs(15);

/// The sandbox is 1000 × 1000 and avatars start near its centre.
const CENTRE: Vec2 = Vec2 { x: 500.0, y: 500.0 };
/// Further than the hearing radius plus hysteresis from anyone near the centre.
const FAR: Vec2 = Vec2 { x: 40.0, y: 40.0 };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_hear_speakers_in_range_and_stop_when_they_walk_away() {
    assert!(CENTRE.distance(FAR) > HEARING_RADIUS + HEARING_HYSTERESIS + 120.0);
    let peer = TestPeer::start(|_| {}).await;
    let a = VoiceClient::join(peer.addr, 1, "voice").await;
    let b = VoiceClient::join(peer.addr, 2, "voice").await;
    let c = VoiceClient::join(peer.addr, 3, "voice").await;
    let (ma, mb, mc) = (a.member, b.member, c.member);
    for x in [&a, &b, &c] {
        x.wait_for(WAIT, "ICE + DTLS", |s| s.connected).await;
    }
    // Everyone starts near the centre: everyone hears everyone.
    b.wait_for(WAIT, "hearing A and C", |s| s.hearing == sorted([ma, mc]))
        .await;
    c.wait_for(WAIT, "25 frames from A", |s| {
        s.frames_from.get(&ma).is_some_and(|n| *n >= 25)
    })
    .await;
    b.wait_for(WAIT, "25 frames from A", |s| {
        s.frames_from.get(&ma).is_some_and(|n| *n >= 25)
    })
    .await;

    // C walks far away: it stops hearing A (and B), B still hears A.
    c.send(ClientMessage::MoveAvatar { to: FAR }).await;
    c.wait_for(WAIT, "hearing nobody", |s| s.hearing.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // frames already on the wire
    let (c_before, b_before) = (c.frames_from(ma), b.frames_from(ma));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        c.frames_from(ma),
        c_before,
        "a listener out of range still receives the speaker"
    );
    let b_gain = b.frames_from(ma) - b_before;
    assert!(
        b_gain >= 30,
        "a listener in range got only {b_gain} frames in 1 s (50 sent)"
    );
    a.wait_for(WAIT, "A hears only B", |s| s.hearing == vec![mb])
        .await;
    // B walks over to C: they hear each other there, and A hears nobody.
    let near_c = Vec2::new(FAR.x + 30.0, FAR.y);
    b.send(ClientMessage::MoveAvatar { to: near_c }).await;
    c.wait_for(WAIT, "hearing B by the corner", |s| s.hearing == vec![mb])
        .await;
    a.wait_for(WAIT, "A hears nobody", |s| s.hearing.is_empty())
        .await;
    b.send(ClientMessage::MoveAvatar { to: CENTRE }).await;

    // C comes back: A's voice reaches it again.
    c.send(ClientMessage::MoveAvatar { to: CENTRE }).await;
    c.wait_for(WAIT, "hearing A again", |s| s.hearing.contains(&ma))
        .await;
    let back = c.frames_from(ma);
    c.wait_for(WAIT, "frames from A again", |s| {
        s.frames_from.get(&ma).is_some_and(|n| *n >= back + 25)
    })
    .await;

    // A leaves voice: the others' tracks from A are renegotiated away.
    a.send(ClientMessage::VoiceLeave).await;
    a.wait_for(WAIT, "voice_ended", |s| !s.ended.is_empty())
        .await;
    b.wait_for(WAIT, "A's line gone", |s| {
        !s.tracks.values().any(|m| *m == ma)
    })
    .await;
    let stats = peer.shared.voice.counters();
    assert!(stats
        .iter()
        .any(|(n, v)| *n == "voice_frames_forwarded_total" && *v > 100));
    for x in [a, b, c] {
        x.stop().await;
    }
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_voice_input_is_refused_and_harms_nobody() {
    let peer = TestPeer::start(|_| {}).await;
    let enc = Encoding::Json;
    let mut ws = joined(&peer, enc).await;

    // Voice before joining a room.
    let offer = ClientMessage::VoiceOffer { sdp: "v=0".into() };
    send(&mut ws, enc, &offer).await;
    expect_error(&mut ws, enc, ErrorCode::NotInRoom).await;

    // Malformed SDP in a room, and an answer nobody asked for.
    let join = ClientMessage::JoinRoom {
        room: RoomId::new("voice").unwrap(),
        invite: None,
    };
    send(&mut ws, enc, &join).await;
    while !matches!(recv(&mut ws, enc).await, ServerMessage::RoomJoined(_)) {}
    let speaker = VoiceClient::join(peer.addr, 11, "voice").await;
    let listener = VoiceClient::join(peer.addr, 12, "voice").await;
    send(
        &mut ws,
        enc,
        &ClientMessage::VoiceOffer {
            sdp: "hello".into(),
        },
    )
    .await;
    let message = next_error(&mut ws, enc, ErrorCode::BadSdp).await;
    assert!(message.contains("SDP"), "{message}");
    let answer = ClientMessage::VoiceAnswer { sdp: "v=0".into() };
    send(&mut ws, enc, &answer).await;
    next_error(&mut ws, enc, ErrorCode::BadSdp).await;
    // The connection stays usable.
    send(&mut ws, enc, &ClientMessage::Ping { nonce: 9 }).await;
    loop {
        if let ServerMessage::Pong { nonce } = recv(&mut ws, enc).await {
            assert_eq!(nonce, 9);
            break;
        }
    }

    // Datagrams from a stranger go nowhere, and the members keep talking.
    listener
        .wait_for(WAIT, "frames from the speaker", |s| {
            s.frames_from.get(&speaker.member).is_some_and(|n| *n >= 10)
        })
        .await;
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let voice = peer.shared.voice.local_addr().expect("voice is on");
    for i in 0..50u8 {
        stranger
            .send_to(&[0x80, i, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], voice)
            .await
            .unwrap();
    }
    let before = listener.frames_from(speaker.member);
    listener
        .wait_for(WAIT, "frames after the stranger", |s| {
            s.frames_from
                .get(&speaker.member)
                .is_some_and(|n| *n >= before + 25)
        })
        .await;
    let unroutable = peer
        .shared
        .voice
        .counters()
        .into_iter()
        .find(|(n, _)| *n == "voice_datagrams_unroutable_total")
        .unwrap()
        .1;
    assert!(
        unroutable >= 50,
        "only {unroutable} datagrams counted unroutable"
    );
    for x in [&speaker, &listener] {
        assert!(x.seen.lock().unwrap().errors.is_empty());
    }

    // A member who leaves the room loses voice; the others carry on without its line.
    speaker.send(ClientMessage::LeaveRoom).await;
    speaker
        .wait_for(WAIT, "voice_ended", |s| !s.ended.is_empty())
        .await;
    let gone = speaker.member;
    listener
        .wait_for(WAIT, "the speaker's line gone", |s| {
            !s.tracks.values().any(|m| *m == gone)
        })
        .await;
    speaker.stop().await;
    listener.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_goes_to_the_whole_room_and_keyframe_requests_reach_the_camera() {
    let peer = TestPeer::start(|_| {}).await;
    let a = VoiceClient::join_with_camera(peer.addr, 21, "video").await;
    let b = VoiceClient::join(peer.addr, 22, "video").await;
    let ma = a.member;
    // B walks out of earshot: A's voice stops reaching it, A's camera does not.
    b.send(ClientMessage::MoveAvatar { to: FAR }).await;
    b.wait_for(WAIT, "hearing nobody, seeing A", |s| {
        s.connected
            && s.hearing.is_empty()
            && s.video_frames_from.get(&ma).is_some_and(|n| *n >= 10)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (voice, video) = {
        let seen = b.seen.lock().unwrap();
        (
            seen.frames_from.get(&ma).copied().unwrap_or(0),
            seen.video_frames_from[&ma],
        )
    };
    b.wait_for(WAIT, "more of A's video", |s| {
        s.video_frames_from[&ma] >= video + 10
    })
    .await;
    assert_eq!(b.frames_from(ma), voice, "voice from out of earshot");

    // The peer asked A's camera for a keyframe when B's line opened; a later request from
    // B (after the peer's one-second throttle) reaches A too.
    a.wait_for(WAIT, "the first keyframe request", |s| {
        s.keyframe_requests >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = a.seen.lock().unwrap().keyframe_requests;
    b.request_keyframes().await;
    a.wait_for(WAIT, "B's keyframe request", |s| {
        s.keyframe_requests > before
    })
    .await;
    a.stop().await;
    b.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_its_udp_port_says_voice_is_unavailable_and_the_room_works() {
    // Someone else holds the voice port: the peer starts anyway, without voice.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let peer = TestPeer::start(|config| config.voice_port = Some(port)).await;
    assert!(peer.shared.voice.local_addr().is_none());
    let enc = Encoding::Json;
    let mut ws = joined(&peer, enc).await;
    let join = ClientMessage::JoinRoom {
        room: RoomId::new("quiet").unwrap(),
        invite: None,
    };
    send(&mut ws, enc, &join).await;
    while !matches!(recv(&mut ws, enc).await, ServerMessage::RoomJoined(_)) {}
    send(
        &mut ws,
        enc,
        &ClientMessage::VoiceOffer { sdp: "v=0".into() },
    )
    .await;
    let message = next_error(&mut ws, enc, ErrorCode::VoiceUnavailable).await;
    assert!(message.contains("UDP"), "{message}");
    // Chat still works.
    let chat = ClientMessage::Chat {
        id: multiverse_core::ids::MessageId::from_u128(1),
        text: "still here".into(),
    };
    send(&mut ws, enc, &chat).await;
    loop {
        match recv(&mut ws, enc).await {
            ServerMessage::ChatAck { .. } => break,
            ServerMessage::Error { code, message } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
    drop(taken);
    peer.stop().await;
}

/// Skips room traffic until the error `want` arrives.
async fn next_error(ws: &mut Ws, enc: Encoding, want: ErrorCode) -> String {
    for _ in 0..100 {
        match recv(ws, enc).await {
            ServerMessage::Error { code, message } if code == want => return message,
            ServerMessage::Error { code, message } => {
                panic!("expected {want:?}, got {code:?}: {message}")
            }
            _ => continue,
        }
    }
    panic!("no {want:?} error");
}

fn sorted<const N: usize>(mut members: [u64; N]) -> Vec<u64> {
    members.sort_unstable();
    members.to_vec()
}
