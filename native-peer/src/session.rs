//! The driver of one client WebSocket: pumps frames and timers into a core
//! [`ClientSession`], routes stream requests to universe hosts, and writes what they send
//! back. No protocol decisions live here.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use multiverse_core::ids::{ClientId, RoomId, SessionId, UniverseId, UserId};
use multiverse_core::session::{ClientSession, SessionOutput};
use multiverse_core::stream::SubscriberId;
use multiverse_core::wire::{ClientMessage, CloseCode, Encoding, ErrorCode, ServerMessage};
use tokio::sync::mpsc;

use crate::host::{Encoded, HostCommand, Outbox, WireFrame, OUTBOX_FRAMES};
use crate::rooms::{RoomCommand, RoomOutbox, ROOM_OUTBOX_FRAMES};
use crate::voice::{VoiceCommand, VoiceJoin};
use crate::Shared;

type Sink = SplitSink<WebSocket, Message>;

/// The session's stream subscriptions and the queue hosts write into.
struct Streams {
    sub: SubscriberId,
    viewer: Option<UserId>,
    outbox: Outbox,
    subscribed: BTreeSet<UniverseId>,
}

/// The session's room (at most one) and the queue rooms write into.
struct RoomLink {
    /// This connection's membership number (its subscriber number).
    member: u64,
    client: Option<(ClientId, String)>,
    outbox: RoomOutbox,
    current: Option<(RoomId, mpsc::Sender<RoomCommand>)>,
}

/// Serves one client connection until it closes or the peer shuts down.
pub async fn run(socket: WebSocket, encoding: Encoding, shared: Arc<Shared>) {
    let session_id = SessionId::from_u128(uuid::Uuid::new_v4().as_u128());
    let _guard = shared.connection_opened();
    let span = tracing::info_span!("session", id = %session_id, ?encoding);
    let mut session = ClientSession::new(
        shared.session_config.clone(),
        shared.identity.clone(),
        session_id,
        encoding,
        shared.clock.now(),
    );
    let (frames_tx, mut frames) = mpsc::channel(OUTBOX_FRAMES);
    let mut streams = Streams {
        sub: shared.next_subscriber(),
        viewer: None,
        outbox: Outbox {
            tx: frames_tx,
            encoding,
        },
        subscribed: BTreeSet::new(),
    };
    let (room_tx, mut room_frames) = mpsc::channel(ROOM_OUTBOX_FRAMES);
    let kick = tokio_util::sync::CancellationToken::new();
    let mut room = RoomLink {
        member: streams.sub.0,
        client: None,
        outbox: RoomOutbox {
            queue: Outbox {
                tx: room_tx,
                encoding,
            },
            kick: kick.clone(),
        },
        current: None,
    };
    let (mut tx, mut rx) = socket.split();
    'serve: loop {
        while let Some(output) = session.poll_output() {
            match output {
                SessionOutput::Send(message) => {
                    if let ServerMessage::Error { code, message } = &message {
                        tracing::warn!(parent: &span, ?code, "refused client frame: {message}");
                    }
                    if send(&mut tx, WireFrame::encode(encoding, &message))
                        .await
                        .is_err()
                    {
                        break 'serve;
                    }
                }
                SessionOutput::Opened {
                    client_id,
                    display_name,
                } => {
                    tracing::info!(parent: &span, %client_id, %display_name, "client joined");
                    // Until it authenticates, a connection acts as a guest derived from its client
                    // id with the peer's key, so no client id can be chosen to equal a real user.
                    streams.viewer = Some(shared.keys.guest(client_id));
                    room.client = Some((client_id, display_name));
                }
                SessionOutput::Received(message) => match destination(room.member, message) {
                    Destination::Room(request) => {
                        if matches!(request, RoomRequest::Join(..) | RoomRequest::Leave) {
                            // Voice belongs to one room: changing rooms ends it.
                            leave_voice(&shared, room.member, true).await;
                        }
                        to_room(&shared, &mut room, request, &span).await
                    }
                    Destination::Voice(message) => {
                        to_voice(&shared, &room, &streams.outbox, message, &span).await
                    }
                    Destination::Stream(message) => {
                        let world = room
                            .current
                            .as_ref()
                            .and_then(|(id, _)| shared.rooms.binding(id));
                        route(&shared, &mut streams, message, world, &span).await
                    }
                },
                SessionOutput::Close { code, reason } => {
                    tracing::info!(parent: &span, ?code, %reason, "closing session");
                    let _ = tx.send(close(code, reason)).await;
                    break 'serve;
                }
            }
        }
        let deadline = session.poll_timeout().map(|t| shared.clock.instant(t));
        tokio::select! {
            _ = shared.shutdown.cancelled() => session.handle_shutdown(),
            _ = kick.cancelled() => {
                tracing::warn!(parent: &span, "closing a connection that cannot keep up with its room");
                let _ = tx.send(close(CloseCode::TooSlow, "too slow to keep up; reconnect".into())).await;
                break 'serve;
            }
            Some(frame) = room_frames.recv() => {
                if send(&mut tx, frame).await.is_err() {
                    break 'serve;
                }
            }
            _ = crate::clock::sleep_until(deadline) => session.handle_timeout(shared.clock.now()),
            Some(frame) = frames.recv() => {
                if send(&mut tx, frame).await.is_err() {
                    break 'serve;
                }
            }
            inbound = rx.next() => match inbound {
                Some(Ok(Message::Binary(bytes))) => session.handle_frame(&bytes, shared.clock.now()),
                Some(Ok(Message::Text(text))) => session.handle_frame(text.as_bytes(), shared.clock.now()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => {
                    tracing::info!(parent: &span, "client left");
                    break 'serve;
                }
                Some(Err(e)) => {
                    let text = e.to_string();
                    tracing::warn!(parent: &span, "WebSocket error: {text}");
                    if text.contains("too long") || text.contains("Space limit") {
                        let _ = tx.send(close(CloseCode::MessageTooBig, "frame exceeds 1 MiB".into())).await;
                    }
                    break 'serve;
                }
            },
        }
    }
    leave_voice(&shared, room.member, false).await;
    if let Some((_, room_tx)) = room.current.take() {
        let _ = room_tx
            .send(RoomCommand::Leave(streams.sub.0, "disconnected"))
            .await;
    }
    for universe in &streams.subscribed {
        if let Some(host) = shared.universes.get(*universe) {
            let _ = host.commands.send(HostCommand::Remove(streams.sub)).await;
        }
    }
    shared.relay.unsubscribe(&shared, streams.sub, None);
}

/// Where a message after the handshake goes.
enum Destination {
    /// To the session's room.
    Room(RoomRequest),
    /// To a universe host (or answered here).
    Stream(ClientMessage),
    /// To the voice forwarder.
    Voice(ClientMessage),
}

/// A room request, still to be addressed to a room.
enum RoomRequest {
    /// Enter a room.
    Join(RoomId, Option<String>),
    /// Leave the current room.
    Leave,
    /// Anything else for the current room.
    Command(RoomCommand),
}

fn destination(member: u64, message: ClientMessage) -> Destination {
    Destination::Room(RoomRequest::Command(match message {
        ClientMessage::JoinRoom { room, invite } => {
            return Destination::Room(RoomRequest::Join(room, invite))
        }
        ClientMessage::LeaveRoom => return Destination::Room(RoomRequest::Leave),
        ClientMessage::Chat { id, text } => RoomCommand::Chat(member, id, text),
        ClientMessage::ChatBackfill { since } => RoomCommand::Backfill(member, since),
        ClientMessage::Cursor { position } => RoomCommand::Cursor(member, position),
        ClientMessage::Presence { active } => RoomCommand::Presence(member, active),
        ClientMessage::CreateInvite => RoomCommand::CreateInvite(member),
        ClientMessage::RevokeInvite { token } => RoomCommand::RevokeInvite(member, token),
        ClientMessage::ConfigureRoom {
            access,
            max_players,
            multiplayer,
        } => RoomCommand::Configure(member, access, max_players, multiplayer),
        ClientMessage::MoveAvatar { to } => RoomCommand::MoveAvatar(member, to),
        voice @ (ClientMessage::VoiceOffer { .. }
        | ClientMessage::VoiceAnswer { .. }
        | ClientMessage::VoiceLeave) => return Destination::Voice(voice),
        other => return Destination::Stream(other),
    }))
}

/// Hands a room request to the session's room (joining one starts it if needed).
async fn to_room(shared: &Shared, link: &mut RoomLink, request: RoomRequest, span: &tracing::Span) {
    match request {
        RoomRequest::Join(id, invite) => {
            if let Some((_, old)) = link.current.take() {
                let _ = old.send(RoomCommand::Leave(link.member, "left")).await;
            }
            let Some((client, name)) = link.client.clone() else {
                return;
            };
            for _ in 0..2 {
                let room_tx = shared.rooms.get_or_start(&id);
                let join = RoomCommand::Join {
                    member: link.member,
                    client,
                    name: name.clone(),
                    invite: invite.clone(),
                    outbox: link.outbox.clone(),
                };
                if room_tx.send(join).await.is_ok() {
                    link.current = Some((id, room_tx));
                    return;
                }
                // The room's task stopped between lookup and send: start it again.
            }
            tracing::error!(parent: span, room = %id, "could not reach the room's task");
        }
        RoomRequest::Leave => {
            if let Some((_, room_tx)) = link.current.take() {
                let _ = room_tx.send(RoomCommand::Leave(link.member, "left")).await;
            }
        }
        RoomRequest::Command(command) => match &link.current {
            Some((_, room_tx)) => {
                let _ = room_tx.send(command).await;
            }
            None => {
                let error = ServerMessage::Error {
                    code: ErrorCode::NotInRoom,
                    message: "join a room first (join_room)".into(),
                };
                reply(&link.outbox.queue, &error, span);
            }
        },
    }
}

/// Hands a voice request to the forwarder, with what it needs to know about this connection.
async fn to_voice(
    shared: &Shared,
    link: &RoomLink,
    outbox: &Outbox,
    message: ClientMessage,
    span: &tracing::Span,
) {
    let refuse = |code, text: &str| {
        let error = ServerMessage::Error {
            code,
            message: text.into(),
        };
        reply(outbox, &error, span);
    };
    let command = match message {
        ClientMessage::VoiceOffer { sdp } => {
            let (Some((room, _)), Some((client, _))) = (&link.current, &link.client) else {
                return refuse(ErrorCode::NotInRoom, "join a room before turning voice on");
            };
            VoiceCommand::Join(Box::new(VoiceJoin {
                member: link.member,
                client: *client,
                room: room.clone(),
                universe: shared.rooms.universe_of(room),
                sdp,
                outbox: outbox.clone(),
            }))
        }
        ClientMessage::VoiceAnswer { sdp } => VoiceCommand::Answer {
            member: link.member,
            sdp,
            outbox: outbox.clone(),
        },
        ClientMessage::VoiceLeave => VoiceCommand::Leave {
            member: link.member,
            notify: true,
        },
        _ => return,
    };
    if let Err(e) = shared.voice.send(command).await {
        refuse(ErrorCode::VoiceUnavailable, &e.to_string());
    }
}

/// Ends this connection's voice, if it had any.
async fn leave_voice(shared: &Shared, member: u64, notify: bool) {
    let _ = shared
        .voice
        .send(VoiceCommand::Leave { member, notify })
        .await;
}

/// Hands a post-handshake message to the universe host it concerns.
/// A stream request for a universe another peer hosts: watched through the relay.
fn portal(
    shared: &Shared,
    streams: &mut Streams,
    peer: multiverse_core::ids::PeerId,
    universe: UniverseId,
    command: HostCommand,
    span: &tracing::Span,
) {
    let refuse = |code: ErrorCode, message: &str| {
        let error = ServerMessage::Error {
            code,
            message: message.to_owned(),
        };
        reply(&streams.outbox, &error, span);
    };
    match command {
        HostCommand::Subscribe { config, .. } => {
            let outbox = streams.outbox.clone();
            if !shared.relay.subscribe(shared, peer, universe, streams.sub, config, outbox) {
                refuse(
                    ErrorCode::UnknownUniverse,
                    "the peer hosting that universe is not reachable right now",
                );
            }
        }
        HostCommand::Unsubscribe(_) => {
            shared.relay.unsubscribe(shared, streams.sub, Some(universe));
            let done = ServerMessage::Unsubscribed {
                universe,
                reason: "unsubscribed".into(),
            };
            reply(&streams.outbox, &done, span);
        }
        HostCommand::Resync(_) if shared.relay.watches(streams.sub, universe) => {
            shared.relay.resync(shared, streams.sub, universe);
        }
        HostCommand::Interact(_, interaction) if shared.relay.watches(streams.sub, universe) => {
            let table = shared.passages.table();
            match crate::passages::passage_for(&table, universe, &interaction) {
                Ok((passage, peer)) => {
                    let user = streams.viewer.unwrap_or_default();
                    let visit = multiverse_core::wire::PeerMessage::Interact(Box::new(
                        multiverse_core::wire::Visit {
                            passage,
                            universe,
                            user,
                            interaction,
                        },
                    ));
                    if !shared.federation.send(peer, visit) {
                        refuse(ErrorCode::NotPermitted, "the peer hosting that universe is not reachable right now");
                    }
                }
                Err(reason) => refuse(ErrorCode::NotPermitted, &reason),
            }
        }
        _ if !shared.relay.watches(streams.sub, universe) => {
            refuse(ErrorCode::NotSubscribed, "subscribe to that universe first");
        }
        _ => refuse(
            ErrorCode::NotPermitted,
            "a portal shows another peer's universe as its owner streams it: no viewport, configuration changes or interactions",
        ),
    }
}

/// Routes a stream request. `world` is the universe of the world whose room this session is
/// in, if any: it is listed to this session beside the public universes.
async fn route(
    shared: &Shared,
    streams: &mut Streams,
    message: ClientMessage,
    world: Option<UniverseId>,
    span: &tracing::Span,
) {
    let sub = streams.sub;
    let (universe, command) = match message {
        ClientMessage::ListUniverses => {
            let mut universes = shared.universes.list();
            let unlisted = world.filter(|w| universes.iter().all(|u| u.id != *w));
            if let Some(host) = unlisted.and_then(|w| shared.universes.get(w)) {
                universes.push(host.stats.borrow().info.clone());
            }
            // Universes of linked peers, watchable through portals, named "<peer>/<universe>".
            for link in shared.federation.links() {
                universes.extend(link.universes.into_iter().map(|mut u| {
                    u.name = format!("{}/{}", link.name, u.name);
                    u
                }));
            }
            reply(
                &streams.outbox,
                &ServerMessage::UniverseList { universes },
                span,
            );
            return;
        }
        ClientMessage::Authenticate { token } => {
            let answer = match shared.keys.verify(&token) {
                Ok(user) => {
                    tracing::info!(parent: span, %user, "authenticated");
                    // Subscriptions made from now on act for this user.
                    streams.viewer = Some(user);
                    ServerMessage::Authenticated { user }
                }
                Err(e) => {
                    tracing::warn!(parent: span, "refused a session token: {e}");
                    ServerMessage::Error {
                        code: ErrorCode::InvalidToken,
                        message: e.to_string(),
                    }
                }
            };
            reply(&streams.outbox, &answer, span);
            return;
        }
        ClientMessage::SubscribeEvents { universe, kinds } => {
            let outbox = streams.outbox.clone();
            if !kinds.is_empty() {
                streams.subscribed.insert(universe);
            }
            (
                universe,
                HostCommand::SubscribeEvents { sub, kinds, outbox },
            )
        }
        ClientMessage::Subscribe {
            universe,
            config,
            viewport,
            mode,
        } => {
            let outbox = streams.outbox.clone();
            let viewer = streams.viewer;
            (
                universe,
                HostCommand::Subscribe {
                    sub,
                    viewer,
                    config,
                    viewport,
                    mode,
                    outbox,
                },
            )
        }
        ClientMessage::Unsubscribe { universe } => (universe, HostCommand::Unsubscribe(sub)),
        ClientMessage::SetViewport { universe, viewport } => {
            (universe, HostCommand::SetViewport(sub, viewport))
        }
        ClientMessage::Configure { universe, config } => {
            (universe, HostCommand::Configure(sub, config))
        }
        ClientMessage::Resync { universe } => (universe, HostCommand::Resync(sub)),
        ClientMessage::Interact {
            universe,
            interaction,
        } => (universe, HostCommand::Interact(sub, interaction)),
        other => {
            tracing::debug!(parent: span, ?other, "message not routed");
            return;
        }
    };
    let remote = shared
        .universes
        .get(universe)
        .is_none()
        .then(|| shared.federation.route(universe))
        .flatten();
    if let Some(peer) = remote {
        portal(shared, streams, peer, universe, command, span);
        return;
    }
    let Some(host) = shared.universes.get(universe) else {
        tracing::info!(parent: span, %universe, "request for an unknown universe");
        let error = ServerMessage::Error {
            code: ErrorCode::UnknownUniverse,
            message: format!(
                "no universe {universe} on this peer; list_universes shows what is hosted"
            ),
        };
        reply(&streams.outbox, &error, span);
        return;
    };
    match &command {
        HostCommand::Subscribe { .. } => {
            streams.subscribed.insert(universe);
        }
        HostCommand::Unsubscribe(_) => {
            streams.subscribed.remove(&universe);
        }
        _ => {}
    }
    if host.commands.send(command).await.is_err() {
        tracing::warn!(parent: span, %universe, "universe host has stopped");
    }
}

async fn send(tx: &mut Sink, frame: WireFrame) -> Result<(), axum::Error> {
    tx.send(match frame {
        WireFrame::Binary(b) => Message::Binary(b),
        WireFrame::Text(t) => Message::Text(t),
    })
    .await
}

fn close(code: CloseCode, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.code(),
        reason: reason.into(),
    }))
}

/// Queues a direct answer to this session. Never waits: the session loop is the only reader of
/// its own queue, so waiting on a full queue here would stall the session forever.
fn reply(queue: &Outbox, message: &ServerMessage, span: &tracing::Span) {
    if queue.offer(&mut Encoded::new(message)).is_err() {
        tracing::warn!(parent: span, "reply dropped: the client is not reading its queue");
    }
}
