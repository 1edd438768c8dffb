//! Members' avatars in a hosted universe: the requests room tasks send (spawn on join,
//! walk, remove on the client's last leave) and the positions the host publishes after each
//! tick for the voice forwarder.
//!
//! Several rooms may show one universe (every room without a world of its own shows the
//! default one), and one client may be in two of them: spawns and removals are counted per
//! client, and the avatar goes with the last removal.

use std::collections::BTreeMap;
use std::sync::Arc;

use multiverse_core::ids::{ClientId, UserId};
use multiverse_core::universe::{Universe, UniverseError, Vec2};
use multiverse_core::wire::ErrorCode;
use tokio::sync::watch;

use super::Outbox;

/// Every avatar of a universe with its position, by client id (ascending).
pub type AvatarPositions = Arc<[(ClientId, Vec2)]>;

/// A request about one member's avatar, sent by the room task of a room showing the universe.
#[derive(Debug)]
pub enum AvatarCommand {
    /// Give `client` an avatar (one per client however many rooms ask; counted).
    Spawn {
        /// Whose.
        client: ClientId,
        /// Display name, shown on the avatar.
        name: String,
        /// The user owning it, if known.
        owner: Option<UserId>,
    },
    /// Walk `client`'s avatar towards `to` (clamped to the world).
    Move {
        /// Whose.
        client: ClientId,
        /// Where, world coordinates.
        to: Vec2,
        /// Where refusals go (the member's queue): `invalid_interaction`.
        errors: Option<Outbox>,
    },
    /// One room no longer has `client` (its last member there left); the avatar goes when
    /// no room has it.
    Remove(ClientId),
}

/// A host's avatar bookkeeping: how many rooms want each client's avatar, and where the
/// positions are published.
#[derive(Debug)]
pub(super) struct Avatars {
    rooms: BTreeMap<ClientId, u32>,
    tx: watch::Sender<AvatarPositions>,
}

impl Avatars {
    /// Bookkeeping for `universe`, and the receiving end of its positions.
    pub(super) fn new(universe: &Universe) -> (Self, watch::Receiver<AvatarPositions>) {
        let (tx, rx) = watch::channel(universe.avatar_positions().into());
        let avatars = Avatars {
            rooms: BTreeMap::new(),
            tx,
        };
        (avatars, rx)
    }

    /// Applies `command` to `universe`; refusals are answered on its outbox, if any.
    pub(super) fn apply(&mut self, universe: &mut Universe, command: AvatarCommand) {
        let id = universe.config().id;
        match command {
            AvatarCommand::Spawn {
                client,
                name,
                owner,
            } => match universe.spawn_avatar(client, &name, owner) {
                Ok(_) => *self.rooms.entry(client).or_default() += 1,
                Err(e) => tracing::warn!(universe = %id, %client, "no avatar: {e}"),
            },
            AvatarCommand::Move { client, to, errors } => {
                if let Err(e) = universe.move_avatar(client, to) {
                    tracing::debug!(universe = %id, %client, "avatar move refused: {e}");
                    if let Some(outbox) = errors {
                        outbox.try_error(code_of(&e), e.to_string());
                    }
                }
            }
            AvatarCommand::Remove(client) => {
                let rooms = self.rooms.entry(client).or_default();
                *rooms = rooms.saturating_sub(1);
                if *rooms == 0 {
                    self.rooms.remove(&client);
                    universe.remove_avatar(client);
                }
            }
        }
    }

    /// Publishes the avatar positions if they changed since the last publication
    /// (receivers are only woken by changes).
    pub(super) fn publish(&self, universe: &Universe) {
        let now = universe.avatar_positions();
        self.tx.send_if_modified(|current| {
            if current[..] == now[..] {
                return false;
            }
            *current = now.into();
            true
        });
    }
}

fn code_of(e: &UniverseError) -> ErrorCode {
    match e {
        UniverseError::NoAvatar(_) => ErrorCode::NotInRoom,
        _ => ErrorCode::InvalidInteraction,
    }
}
