//! Avatars: one entity per room member (per client: two tabs share one), walked towards a
//! target by the simulation. Their positions decide who hears whom ([`crate::voice`]).
//!
//! Avatars belong to the people in the room right now, not to the universe: snapshots leave
//! them out, transfers refuse them, clicks do not push them, and the simulation exempts them
//! from wandering, gravity, friction and bouncing. Walk targets live here, in the universe,
//! not in the streamed components.

use super::{Entity, PropValue, Renderable, Shape, Universe, UniverseError, Vec2};
use crate::ids::{ClientId, EntityId, UserId};

/// Walking speed of an avatar, world units per simulated second.
pub const AVATAR_SPEED: f32 = 150.0;
/// Entity kind of avatars.
pub const AVATAR_KIND: &str = "avatar";
/// Farthest an avatar starts from the world's centre, world units: well within
/// [`crate::voice::HEARING_RADIUS`] of each other, so members start within earshot.
pub const AVATAR_SPAWN_SPREAD: f32 = 60.0;
/// Diameter of an avatar, world units.
const AVATAR_SIZE: f32 = 16.0;
/// Longest name kept on an avatar, bytes.
const NAME_BYTES: usize = 64;

/// An avatar's bookkeeping: its entity and where it is walking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Avatar {
    pub(super) id: EntityId,
    pub(super) target: Option<Vec2>,
}

impl Universe {
    /// The avatar of `client`, spawned near the world's centre (at an offset derived from
    /// the client id) if it has none yet; otherwise the existing one. It is kind `avatar`,
    /// carries `avatar: Some(client)` and a `name` property, does not wander, and its colour
    /// is the client's member colour ([`crate::room::colour_of`]).
    pub fn spawn_avatar(
        &mut self,
        client: ClientId,
        name: &str,
        owner: Option<UserId>,
    ) -> Result<EntityId, UniverseError> {
        if let Some(id) = self.avatar_of(client) {
            return Ok(id);
        }
        let b = self.config.physics.bounds;
        let offset = spawn_offset(client);
        let centre = b.centre();
        let position = Vec2::new(
            (centre.x + offset.x).clamp(b.x, b.x + b.width.max(0.0)),
            (centre.y + offset.y).clamp(b.y, b.y + b.height.max(0.0)),
        );
        let look = Renderable {
            shape: Shape::Circle,
            colour: crate::room::colour_of(client),
            size: AVATAR_SIZE,
        };
        let mut entity = Entity::new(AVATAR_KIND, position, look).with_tags(&[AVATAR_KIND]);
        entity.wanders = false;
        entity.owner = owner;
        entity.avatar = Some(client);
        let name = truncate(name, NAME_BYTES);
        entity
            .properties
            .insert("name".into(), PropValue::Text(name.to_owned()));
        let id = self.spawn(entity)?;
        self.avatars.insert(client, Avatar { id, target: None });
        Ok(id)
    }

    /// Walks `client`'s avatar towards `to`, clamped to the world; it arrives at
    /// [`AVATAR_SPEED`] and stops exactly there.
    pub fn move_avatar(&mut self, client: ClientId, to: Vec2) -> Result<(), UniverseError> {
        let to = self.checked_point(to)?;
        self.avatar_of(client)
            .ok_or(UniverseError::NoAvatar(client))?;
        if let Some(avatar) = self.avatars.get_mut(&client) {
            avatar.target = Some(to);
        }
        Ok(())
    }

    /// Removes `client`'s avatar; whether it had one.
    pub fn remove_avatar(&mut self, client: ClientId) -> bool {
        let Some(avatar) = self.avatars.remove(&client) else {
            return false;
        };
        self.despawn(avatar.id).is_ok()
    }

    /// The entity of `client`'s avatar, if it has one.
    pub fn avatar_of(&self, client: ClientId) -> Option<EntityId> {
        let avatar = self.avatars.get(&client)?;
        self.get(avatar.id)
            .is_some_and(|e| e.avatar == Some(client))
            .then_some(avatar.id)
    }

    /// Every avatar's position, by client id.
    pub fn avatar_positions(&self) -> Vec<(ClientId, Vec2)> {
        self.avatars
            .iter()
            .filter_map(|(client, a)| Some((*client, self.get(a.id)?.position)))
            .collect()
    }

    /// Where `client`'s avatar is walking, if it is.
    pub fn avatar_target(&self, client: ClientId) -> Option<Vec2> {
        self.avatars.get(&client)?.target
    }

    /// Gives this universe `other`'s avatars (same clients, names and targets, positions
    /// clamped to these bounds), for a reload that replaces a universe while members are in
    /// its room. Clients that already have an avatar here keep theirs.
    pub fn adopt_avatars(&mut self, other: &Universe) {
        for (client, avatar) in &other.avatars {
            let Some(old) = other.get(avatar.id) else {
                continue;
            };
            if self.avatar_of(*client).is_some() {
                continue;
            }
            let mut entity = old.clone();
            entity.position = self.clamped(entity.position);
            entity.velocity = Vec2::default();
            let Ok(id) = self.spawn(entity) else {
                return; // full
            };
            let target = avatar.target.map(|t| self.clamped(t));
            self.avatars.insert(*client, Avatar { id, target });
        }
    }

    /// Forgets the avatar entry of a despawned entity.
    pub(super) fn forget_avatar(&mut self, id: EntityId, entity: &Entity) {
        if let Some(client) = entity.avatar {
            if self.avatars.get(&client).is_some_and(|a| a.id == id) {
                self.avatars.remove(&client);
            }
        }
    }

    /// Walks every avatar with a target by one tick of `dt` simulated seconds.
    pub(super) fn walk_avatars(&mut self, dt: f32) {
        let tick = self.tick;
        for avatar in self.avatars.values_mut() {
            let Some(target) = avatar.target else {
                continue;
            };
            let Some(slot) = self.slots.get_mut(avatar.id.index as usize) else {
                continue;
            };
            if slot.generation != avatar.id.generation || slot.hidden {
                continue;
            }
            let Some(e) = slot.entity.as_mut() else {
                continue;
            };
            let (position, velocity) = step_towards(e.position, target, AVATAR_SPEED, dt);
            e.position = position;
            if position == target {
                avatar.target = None;
            }
            if e.velocity != velocity {
                e.velocity = velocity;
                slot.meta_tick = tick;
            }
        }
    }

    fn clamped(&self, p: Vec2) -> Vec2 {
        let b = self.config.physics.bounds;
        Vec2::new(
            p.x.clamp(b.x, b.x + b.width.max(0.0)),
            p.y.clamp(b.y, b.y + b.height.max(0.0)),
        )
    }
}

/// One step of at most `speed * dt` from `from` towards `to`: the new position (exactly `to`
/// once within reach) and the velocity of the step (zero on arrival).
fn step_towards(from: Vec2, to: Vec2, speed: f32, dt: f32) -> (Vec2, Vec2) {
    let d = from.distance(to);
    let reach = speed * dt.max(0.0);
    if d <= reach || d == 0.0 {
        return (to, Vec2::default());
    }
    let (ux, uy) = ((to.x - from.x) / d, (to.y - from.y) / d);
    (
        Vec2::new(from.x + ux * reach, from.y + uy * reach),
        Vec2::new(ux * speed, uy * speed),
    )
}

/// Where a client's avatar starts relative to the centre: a stable angle and a distance of
/// 20–60 world units, both from the client id.
fn spawn_offset(client: ClientId) -> Vec2 {
    let bits = client.as_u128();
    let h = (bits as u64) ^ ((bits >> 64) as u64);
    let h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let angle = (h >> 40) as f32 / (1u64 << 24) as f32 * std::f32::consts::TAU;
    let radius = 20.0 + (h & 0xffff) as f32 / 65535.0 * (AVATAR_SPAWN_SPREAD - 20.0);
    Vec2::new(angle.cos() * radius, angle.sin() * radius)
}

/// The longest prefix of `s` of at most `max` bytes ending on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UniverseId;
    use crate::stream::Interaction;
    use crate::universe::{demo_universe, DemoKind, UniverseSnapshot};

    const ANN: ClientId = ClientId(0xA11);
    const BOB: ClientId = ClientId(0xB0B);

    fn world() -> Universe {
        demo_universe(DemoKind::Sandbox, UniverseId::from_u128(1), 20, 500.0, 7)
    }

    #[test]
    fn an_avatar_spawns_near_the_centre_once_per_client() {
        let mut u = world();
        let id = u.spawn_avatar(ANN, "Ann", None).unwrap();
        assert_eq!(u.spawn_avatar(ANN, "Ann again", None), Ok(id), "idempotent");
        let bob = u.spawn_avatar(BOB, &"b".repeat(300), None).unwrap();
        assert_ne!(id, bob);
        assert_eq!(u.len(), 22);
        let e = u.get(id).unwrap();
        assert_eq!(
            (e.kind.as_str(), e.avatar, e.wanders),
            ("avatar", Some(ANN), false)
        );
        assert_eq!(e.renderable.colour, crate::room::colour_of(ANN));
        assert_eq!(
            e.properties.get("name"),
            Some(&PropValue::Text("Ann".into()))
        );
        let centre = u.config().physics.bounds.centre();
        for (_, p) in u.avatar_positions() {
            assert!(p.distance(centre) <= AVATAR_SPAWN_SPREAD + 0.01, "{p:?}");
        }
        assert_ne!(u.get(id).unwrap().position, u.get(bob).unwrap().position);
        assert_eq!(u.avatar_of(BOB), Some(bob));
    }

    #[test]
    fn an_avatar_walks_to_its_target_and_stops_there() {
        let mut u = world();
        let id = u.spawn_avatar(ANN, "Ann", None).unwrap();
        let start = u.get(id).unwrap().position;
        let to = Vec2::new(start.x + 30.0, start.y + 40.0); // 50 away: 7 ticks of 7.5
        u.move_avatar(ANN, to).unwrap();
        u.step();
        let p = u.get(id).unwrap().position;
        assert!(
            (p.distance(start) - AVATAR_SPEED / 20.0).abs() < 1e-3,
            "{p:?}"
        );
        assert!((u.get(id).unwrap().velocity.length() - AVATAR_SPEED).abs() < 1e-2);
        for _ in 0..6 {
            u.step();
        }
        assert_eq!(u.get(id).unwrap().position, to, "exactly at the target");
        assert_eq!(u.get(id).unwrap().velocity, Vec2::default());
        assert_eq!(u.avatar_target(ANN), None);
        u.step();
        assert_eq!(u.get(id).unwrap().position, to, "and stays");
    }

    #[test]
    fn moves_are_clamped_checked_and_need_an_avatar() {
        let mut u = world();
        u.spawn_avatar(ANN, "Ann", None).unwrap();
        u.move_avatar(ANN, Vec2::new(1e9, -5.0)).unwrap();
        assert_eq!(u.avatar_target(ANN), Some(Vec2::new(500.0, 0.0)));
        let nan = Vec2::new(f32::NAN, 1.0);
        assert_eq!(u.move_avatar(ANN, nan), Err(UniverseError::BadPoint));
        assert_eq!(
            u.move_avatar(BOB, Vec2::default()),
            Err(UniverseError::NoAvatar(BOB))
        );
        for _ in 0..200 {
            u.step();
        }
        assert_eq!(u.avatar_positions(), [(ANN, Vec2::new(500.0, 0.0))]);
    }

    #[test]
    fn avatars_ignore_physics_ripples_and_clear_mine() {
        let mut u = world();
        u.config.physics.gravity = 50.0;
        u.config.physics.friction = 0.5;
        let me = UserId::from_u128(3);
        let id = u.spawn_avatar(ANN, "Ann", Some(me)).unwrap();
        let at = u.get(id).unwrap().position;
        u.interact(Some(me), &Interaction::Click { at }).unwrap();
        let clear = Interaction::Command {
            name: "clear_mine".into(),
            at,
        };
        u.interact(Some(me), &clear).unwrap();
        for _ in 0..100 {
            u.step();
        }
        let e = u.get(id).expect("clear_mine leaves avatars alone");
        assert_eq!((e.position, e.velocity), (at, Vec2::default()));
    }

    #[test]
    fn avatars_do_not_change_the_rest_of_the_simulation() {
        let (mut plain, mut visited) = (world(), world());
        visited.spawn_avatar(ANN, "Ann", None).unwrap();
        visited.move_avatar(ANN, Vec2::new(10.0, 10.0)).unwrap();
        for _ in 0..100 {
            plain.step();
            visited.step();
        }
        let others = |u: &Universe| -> Vec<Vec2> {
            u.iter()
                .filter(|(_, e)| e.avatar.is_none())
                .map(|(_, e)| e.position)
                .collect()
        };
        assert_eq!(others(&plain), others(&visited));
    }

    #[test]
    fn removing_forgets_and_despawning_forgets_too() {
        let mut u = world();
        let id = u.spawn_avatar(ANN, "Ann", None).unwrap();
        let bob = u.spawn_avatar(BOB, "Bob", None).unwrap();
        assert!(u.remove_avatar(ANN));
        assert!(!u.remove_avatar(ANN));
        assert!(u.get(id).is_none());
        u.despawn(bob).unwrap();
        assert!(u.avatar_positions().is_empty());
        assert_eq!(u.avatar_of(BOB), None);
        let again = u.spawn_avatar(BOB, "Bob", None).unwrap();
        assert_ne!(again, bob, "a fresh entity, not a stale id");
    }

    #[test]
    fn snapshots_leave_avatars_out_and_restores_drop_them() {
        let mut u = world();
        let id = u.spawn_avatar(ANN, "Ann", None).unwrap();
        let snapshot = u.snapshot();
        assert!(snapshot.entities.iter().all(|s| s.entity.avatar.is_none()));
        let mut restored = Universe::restore(snapshot.clone()).expect("consistent");
        assert_eq!(restored.len(), 20);
        assert_eq!(restored.snapshot(), snapshot);
        let reused = restored.spawn(u.get(id).unwrap().clone()).unwrap();
        assert_eq!(reused.index, id.index);
        assert_ne!(reused, id, "the avatar's id is not issued again");
        // A snapshot written with an avatar in it (an older build) drops it on restore.
        let mut old = UniverseSnapshot::decode(&u.snapshot().encode()).unwrap();
        old.generations[id.index as usize] = id.generation;
        old.free.retain(|i| *i != id.index);
        old.entities.push(crate::universe::SavedEntity {
            index: id.index,
            entity: u.get(id).unwrap().clone(),
        });
        let dropped = Universe::restore(old).expect("consistent");
        assert_eq!(dropped.len(), 20);
        assert!(dropped.get(id).is_none());
    }

    #[test]
    fn a_replacement_universe_adopts_the_avatars() {
        let mut u = world();
        u.spawn_avatar(ANN, "Ann", None).unwrap();
        u.move_avatar(ANN, Vec2::new(1.0, 2.0)).unwrap();
        let mut reloaded = Universe::restore(u.snapshot()).unwrap();
        reloaded.adopt_avatars(&u);
        assert_eq!(reloaded.avatar_positions(), u.avatar_positions());
        assert_eq!(reloaded.avatar_target(ANN), Some(Vec2::new(1.0, 2.0)));
        reloaded.adopt_avatars(&u);
        assert_eq!(reloaded.len(), 21, "once");
    }
}
