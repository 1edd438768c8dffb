//! What a link does with each message the other peer sends: discovery, heartbeats, passage
//! messages (to the passages task), portal streams (to the relay) and transfer messages (to
//! the universe's host).

use super::*;

/// Handles one message from `peer`; direct answers go to `out`.
pub(super) async fn handle(
    shared: &Arc<Shared>,
    peer: PeerId,
    message: PeerMessage,
    out: &mpsc::Sender<Vec<u8>>,
) {
    let reply = |m: PeerMessage| out.try_send(encode(&m));
    match message {
        PeerMessage::ListUniverses => {
            let _ = reply(PeerMessage::Universes {
                universes: shared.universes.list(),
            });
        }
        PeerMessage::Universes { universes } => {
            for u in &universes {
                shared.federation.learn_route(u.id, peer);
            }
            if let Some(link) = shared
                .federation
                .links
                .lock()
                .expect("links lock")
                .get_mut(&peer)
            {
                link.info.universes = universes;
            }
        }
        PeerMessage::GetConfig { universe } => {
            let config = if shared.universes.is_listed(universe) {
                config_of(shared, universe).await
            } else {
                None
            };
            let _ = reply(PeerMessage::Config {
                universe,
                config: config.map(Box::new),
            });
        }
        PeerMessage::Heartbeat { passage, seq } if passage == LINK => {
            let _ = reply(PeerMessage::HeartbeatAck { passage, seq });
        }
        PeerMessage::HeartbeatAck { passage, .. } if passage == LINK => {}
        PeerMessage::Config { .. } => {}
        message @ (PeerMessage::Heartbeat { .. }
        | PeerMessage::HeartbeatAck { .. }
        | PeerMessage::PassageOpen(_)
        | PeerMessage::PassagePending { .. }
        | PeerMessage::PassageAccept(_)
        | PeerMessage::PassageReject { .. }
        | PeerMessage::PassageClose { .. }) => {
            let _ = shared
                .passages
                .commands
                .send(PassageCommand::Message(peer, message))
                .await;
        }
        PeerMessage::Routed { from, to, payload } => {
            let message = match PeerMessage::unroute(&payload) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(%peer, "undecodable routed message: {e}");
                    let _ = reply(PeerMessage::Error {
                        code: ErrorCode::MalformedFrame,
                        message: e.to_string(),
                    });
                    return;
                }
            };
            // Answers to `from` go back over this link.
            shared.federation.learn_route(from, peer);
            match shared.universes.get(to) {
                Some(host) => {
                    let via = Some(peer);
                    let envelope = Envelope {
                        from,
                        to,
                        message,
                        via,
                    };
                    let _ = host
                        .commands
                        .send(HostCommand::Transfer(Box::new(envelope)))
                        .await;
                }
                None => {
                    tracing::debug!(%peer, %to, "transfer message for a universe not hosted here")
                }
            }
        }
        PeerMessage::Error { code, message } => {
            tracing::warn!(%peer, ?code, "the peer refused something: {message}");
        }
        PeerMessage::Interact(visit) => {
            let multiverse_core::wire::Visit {
                passage,
                universe,
                user,
                interaction,
            } = *visit;
            let table = shared.passages.table();
            let allowed = crate::passages::authorize(&table, passage, peer, universe, &interaction);
            match (allowed, shared.universes.get(universe)) {
                (Ok(()), Some(host)) => {
                    let viewer = shared.keys.visitor(peer, user);
                    let _ = host
                        .commands
                        .send(HostCommand::Visit {
                            viewer,
                            interaction,
                        })
                        .await;
                }
                (Err(reason), _) => {
                    tracing::info!(%peer, %universe, "visitor's interaction refused: {reason}");
                    let _ = reply(PeerMessage::Error {
                        code: ErrorCode::NotPermitted,
                        message: reason,
                    });
                }
                (Ok(()), None) => {}
            }
        }
        PeerMessage::Subscribe(request) => shared.relay.serve(shared, peer, *request).await,
        PeerMessage::Unsubscribe { stream } => shared.relay.stop_serving(shared, peer, stream),
        PeerMessage::StreamFrame { stream, frame } => shared.relay.frame(peer, stream, &frame),
        other => {
            tracing::debug!(%peer, ?other, "peer message not handled yet");
        }
    }
}

/// The configuration of a universe hosted here.
pub async fn config_of(
    shared: &Shared,
    universe: UniverseId,
) -> Option<multiverse_core::universe::UniverseConfig> {
    let host = shared.universes.get(universe)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    host.commands
        .send(HostCommand::Snapshot(reply))
        .await
        .ok()?;
    answer.await.ok().map(|(s, _)| s.config)
}
