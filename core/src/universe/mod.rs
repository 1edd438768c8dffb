//! A universe: entities in a bounded 2-D world, stepped deterministically.
//!
//! Entities live in generational slots ([`EntityId`] = index + generation). Every change to
//! anything but position stamps the entity's `meta_tick`, so the stream server can find the
//! few entities whose non-positional components changed without comparing every field of
//! every entity each tick. Positions are compared after quantisation instead (see
//! [`crate::stream`]).
//!
//! Room members walk *avatars* here (`avatar.rs`): entities the simulation only walks to a
//! target, never saved and never transferred.

mod avatar;
mod bus;
mod components;
mod demo;
mod interact;
mod sim;
mod snapshot;
mod transit;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use avatar::{AVATAR_KIND, AVATAR_SPAWN_SPREAD, AVATAR_SPEED};
pub use bus::{EventBus, EventKind};
pub use components::{Entity, PropValue, Rect, Renderable, Shape, Vec2};
pub use demo::{demo_universe, DemoKind};
pub use interact::{RIPPLE_RADIUS, SPAWN_LIMIT_PER_USER};
pub use snapshot::{SavedEntity, SnapshotError, UniverseSnapshot, SNAPSHOT_FORMAT};

use crate::ids::{ClientId, EntityId, UniverseId};
use crate::rng::Rng;

/// The universe's laws: what the passage compatibility score compares between universes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Physics {
    /// World bounds; entities bounce off the edges.
    pub bounds: Rect,
    /// Downward acceleration, world units/s² (0 for top-down worlds).
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub gravity: f32,
    /// Fraction of speed lost per second (0 = none).
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub friction: f32,
    /// Speed limit, world units/s.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub max_speed: f32,
    /// How often a wandering entity picks a new heading, per second.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub wander_rate: f32,
}

/// Identity, pace and laws of a universe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UniverseConfig {
    /// Stable id.
    pub id: UniverseId,
    /// Display name.
    pub name: String,
    /// Simulated seconds per real second.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub time_scale: f32,
    /// Simulation ticks per second (1–60).
    pub tick_rate: u32,
    /// The laws.
    pub physics: Physics,
    /// Seed of the simulation's random numbers.
    pub seed: u64,
}

/// A coloured rectangle drawn under the entities; static.
#[derive(
    Debug, Clone, Copy, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TerrainPatch {
    /// Where.
    pub rect: Rect,
    /// 0xRRGGBB.
    pub colour: u32,
}

/// Something that happened in a tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UniverseEvent {
    /// An entity appeared.
    Spawned {
        /// Which.
        entity: EntityId,
    },
    /// An entity disappeared.
    Despawned {
        /// Which.
        entity: EntityId,
    },
    /// A non-positional component of an entity changed.
    Changed {
        /// Which.
        entity: EntityId,
    },
    /// A universe-specific happening, such as a ripple where someone clicked.
    Custom {
        /// What happened, e.g. "ripple".
        name: String,
        /// The entity involved, if any.
        entity: Option<EntityId>,
        /// Where it happened, if anywhere.
        at: Option<Vec2>,
    },
}

impl UniverseEvent {
    /// The entity this event is about, if any.
    pub fn entity(&self) -> Option<EntityId> {
        match self {
            UniverseEvent::Spawned { entity }
            | UniverseEvent::Despawned { entity }
            | UniverseEvent::Changed { entity } => Some(*entity),
            UniverseEvent::Custom { entity, .. } => *entity,
        }
    }
}

/// What a client learns about a universe before and when subscribing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UniverseInfo {
    /// Stable id.
    pub id: UniverseId,
    /// Display name.
    pub name: String,
    /// Simulation ticks per second.
    pub tick_rate: u32,
    /// World bounds.
    pub bounds: Rect,
    /// Live entities.
    pub entities: u32,
    /// Current tick.
    pub tick: u64,
}

impl UniverseInfo {
    /// The summary of a universe.
    pub fn of(u: &Universe) -> Self {
        UniverseInfo {
            id: u.config.id,
            name: u.config.name.clone(),
            tick_rate: u.config.tick_rate,
            bounds: u.config.physics.bounds,
            entities: u32::try_from(u.live).unwrap_or(u32::MAX),
            tick: u.tick,
        }
    }
}

/// One slot of the entity table.
#[derive(Debug, Clone)]
struct Slot {
    generation: u32,
    entity: Option<Entity>,
    /// Tick of the last change to anything but the position.
    meta_tick: u64,
    /// Hidden from streams, interactions and the simulation: an entity in transit to another
    /// peer, or one arriving that is not committed yet (see [`Universe::set_hidden`]).
    /// Transient: snapshots do not record it; the transfer journal restores it.
    hidden: bool,
    /// The least generation the slot takes when its entity is despawned: ids a transfer
    /// journal retired while an older entity held the slot (see [`Universe::retire`]).
    /// Transient, like `hidden`.
    floor: u32,
}

/// A live universe. See the module docs.
#[derive(Debug, Clone)]
pub struct Universe {
    config: UniverseConfig,
    tick: u64,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    rng: Rng,
    terrain: Vec<TerrainPatch>,
    events: Vec<UniverseEvent>,
    /// Members' avatars by client, with their walk targets (see [`Universe::spawn_avatar`]).
    /// Transient: snapshots leave avatars out.
    avatars: BTreeMap<ClientId, avatar::Avatar>,
}

/// Why a universe refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UniverseError {
    /// No live entity has this id.
    #[error("no entity {0}")]
    NoSuchEntity(EntityId),
    /// The universe is at its entity limit.
    #[error("the universe is full ({0} entities)")]
    Full(usize),
    /// The command is not one this universe knows.
    #[error("unknown command {0:?}; try spawn or clear_mine")]
    UnknownCommand(String),
    /// A coordinate is not a finite number.
    #[error("coordinates must be finite numbers")]
    BadPoint,
    /// Spawning needs a known user to own the entity.
    #[error("spawning needs a signed-in user")]
    AnonymousSpawn,
    /// The user has spawned as many entities as allowed.
    #[error("you already have {0} spawned entities here; clear_mine first")]
    SpawnLimit(usize),
    /// [`Universe::insert_with_id`]: the slot holds another live entity.
    #[error("slot of {0} holds another entity")]
    SlotTaken(EntityId),
    /// [`Universe::insert_with_id`]: the slot was reused after this id, so the entity with
    /// this id was removed later and must not come back.
    #[error("{0} was superseded by a later entity in its slot")]
    Superseded(EntityId),
    /// The client has no avatar in this universe (it is not in a room showing it).
    #[error("client {0} has no avatar here; join the room first")]
    NoAvatar(ClientId),
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}v{}", self.index, self.generation)
    }
}

/// Most entities a universe holds.
pub const MAX_ENTITIES: usize = 100_000;

impl Universe {
    /// An empty universe.
    pub fn new(config: UniverseConfig) -> Self {
        let rng = Rng::new(config.seed);
        Universe {
            config,
            tick: 0,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            rng,
            terrain: Vec::new(),
            events: Vec::new(),
            avatars: BTreeMap::new(),
        }
    }

    /// Identity, pace and laws.
    pub fn config(&self) -> &UniverseConfig {
        &self.config
    }

    /// Changes the display name.
    pub fn rename(&mut self, name: &str) {
        name.clone_into(&mut self.config.name);
    }

    /// Ticks stepped so far.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Number of live entities.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether there are no live entities.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// One past the highest slot index ever used (for index-sized scratch tables).
    pub fn slot_capacity(&self) -> usize {
        self.slots.len()
    }

    /// The static terrain.
    pub fn terrain(&self) -> &[TerrainPatch] {
        &self.terrain
    }

    /// Replaces the terrain.
    pub fn set_terrain(&mut self, terrain: Vec<TerrainPatch>) {
        self.terrain = terrain;
    }

    /// Events not yet drained.
    pub fn events(&self) -> &[UniverseEvent] {
        &self.events
    }

    /// Takes the events recorded since the last drain (steps and changes alike).
    pub fn drain_events(&mut self) -> Vec<UniverseEvent> {
        std::mem::take(&mut self.events)
    }

    /// Records a custom event in the current tick.
    pub fn emit(&mut self, event: UniverseEvent) {
        self.events.push(event);
    }

    /// Adds an entity; it is streamed from the next sync.
    pub fn spawn(&mut self, entity: Entity) -> Result<EntityId, UniverseError> {
        if self.live >= MAX_ENTITIES {
            return Err(UniverseError::Full(MAX_ENTITIES));
        }
        let tick = self.tick;
        let id = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.entity = Some(entity);
                slot.meta_tick = tick;
                slot.hidden = false;
                EntityId {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("MAX_ENTITIES fits in u32");
                self.slots.push(Slot {
                    generation: 0,
                    entity: Some(entity),
                    meta_tick: tick,
                    hidden: false,
                    floor: 0,
                });
                EntityId {
                    index,
                    generation: 0,
                }
            }
        };
        self.live += 1;
        self.events.push(UniverseEvent::Spawned { entity: id });
        Ok(id)
    }

    /// Removes an entity, returning it.
    pub fn despawn(&mut self, id: EntityId) -> Result<Entity, UniverseError> {
        let slot = self.slot_mut(id).ok_or(UniverseError::NoSuchEntity(id))?;
        let entity = slot
            .entity
            .take()
            .expect("slot_mut only returns live slots");
        slot.generation = slot.generation.wrapping_add(1).max(slot.floor);
        slot.hidden = false;
        self.free.push(id.index);
        self.live -= 1;
        self.events.push(UniverseEvent::Despawned { entity: id });
        self.forget_avatar(id, &entity);
        Ok(entity)
    }

    /// The live entity with this id.
    pub fn get(&self, id: EntityId) -> Option<&Entity> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.entity.as_ref())
            .flatten()
    }

    /// The live entity in slot `index`, with its id.
    pub fn get_by_index(&self, index: u32) -> Option<(EntityId, &Entity)> {
        let slot = self.slots.get(index as usize)?;
        let entity = slot.entity.as_ref()?;
        Some((
            EntityId {
                index,
                generation: slot.generation,
            },
            entity,
        ))
    }

    /// Tick of the last change to anything but the position of entity `index`.
    pub fn meta_tick(&self, index: u32) -> u64 {
        self.slots.get(index as usize).map_or(0, |s| s.meta_tick)
    }

    /// Changes an entity's non-positional components (marks them changed).
    pub fn modify<R>(
        &mut self,
        id: EntityId,
        f: impl FnOnce(&mut Entity) -> R,
    ) -> Result<R, UniverseError> {
        let tick = self.tick;
        let slot = self.slot_mut(id).ok_or(UniverseError::NoSuchEntity(id))?;
        slot.meta_tick = tick;
        let entity = slot
            .entity
            .as_mut()
            .expect("slot_mut only returns live slots");
        let result = f(entity);
        entity.tags.sort();
        entity.tags.dedup();
        self.events.push(UniverseEvent::Changed { entity: id });
        Ok(result)
    }

    /// Moves an entity (positions are tracked without marking components changed).
    pub fn set_position(&mut self, id: EntityId, position: Vec2) -> Result<(), UniverseError> {
        let slot = self.slot_mut(id).ok_or(UniverseError::NoSuchEntity(id))?;
        slot.entity.as_mut().expect("live").position = position;
        Ok(())
    }

    /// Every live entity with its id, in slot order, hidden ones included
    /// (see [`Universe::is_hidden`]).
    pub fn iter(&self) -> impl Iterator<Item = (EntityId, &Entity)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let entity = s.entity.as_ref()?;
            Some((
                EntityId {
                    index: i as u32,
                    generation: s.generation,
                },
                entity,
            ))
        })
    }

    /// Advances the simulation by one tick of `1 / tick_rate` seconds.
    pub fn step(&mut self) {
        let dt = self.config.time_scale / self.config.tick_rate.max(1) as f32;
        self.tick += 1;
        sim::step(self, dt);
    }

    fn slot_mut(&mut self, id: EntityId) -> Option<&mut Slot> {
        let slot = self.slots.get_mut(id.index as usize)?;
        (slot.generation == id.generation && slot.entity.is_some()).then_some(slot)
    }
}

#[cfg(test)]
mod tests;
