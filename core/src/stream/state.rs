//! The wire forms of streamed state: entity states, field deltas, packed moves, frames.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, EntityId, UniverseId, UserId};
use crate::universe::{Entity, PropValue, Renderable, Shape, TerrainPatch, UniverseEvent, Vec2};

/// Positions and velocities travel as integers in units of 1/16 world unit (0.0625):
/// finer than a pixel at any zoom the client offers, and small moves fit in a byte.
pub const POSITION_QUANTUM: f32 = 1.0 / 16.0;

/// World units → wire integer (round to nearest, saturating).
pub fn quantise(v: f32) -> i32 {
    let q = (v / POSITION_QUANTUM).round();
    if q.is_nan() {
        0
    } else {
        q.clamp(i32::MIN as f32, i32::MAX as f32) as i32
    }
}

/// Wire integer → world units.
pub fn dequantise(q: i32) -> f32 {
    q as f32 * POSITION_QUANTUM
}

/// An entity as a mirror holds it: every streamed component, positions quantised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct EntityState {
    /// Which entity.
    pub id: EntityId,
    /// Its kind.
    pub kind: String,
    /// Position x, in 1/16 units.
    pub x: i32,
    /// Position y, in 1/16 units.
    pub y: i32,
    /// Velocity x, in 1/16 units per second.
    pub vx: i32,
    /// Velocity y, in 1/16 units per second.
    pub vy: i32,
    /// How it looks.
    pub renderable: Renderable,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// Its owner.
    pub owner: Option<UserId>,
    /// Whose avatar it is.
    pub avatar: Option<ClientId>,
    /// Its properties.
    pub properties: BTreeMap<String, PropValue>,
}

impl EntityState {
    /// The streamed form of a universe entity.
    pub fn of(id: EntityId, e: &Entity) -> Self {
        EntityState {
            id,
            kind: e.kind.clone(),
            x: quantise(e.position.x),
            y: quantise(e.position.y),
            vx: quantise(e.velocity.x),
            vy: quantise(e.velocity.y),
            renderable: e.renderable,
            tags: e.tags.clone(),
            owner: e.owner,
            avatar: e.avatar,
            properties: e.properties.clone(),
        }
    }

    /// Position in world units.
    pub fn position(&self) -> Vec2 {
        Vec2::new(dequantise(self.x), dequantise(self.y))
    }

    /// Velocity in world units per second.
    pub fn velocity(&self) -> Vec2 {
        Vec2::new(dequantise(self.vx), dequantise(self.vy))
    }

    /// The field deltas that turn `self` into `new`, positions excluded (they travel as
    /// [`Moves`]).
    pub fn diff(&self, new: &EntityState) -> Vec<ComponentDelta> {
        let mut out = Vec::new();
        if self.kind != new.kind {
            out.push(ComponentDelta::Kind {
                kind: new.kind.clone(),
            });
        }
        if (self.vx, self.vy) != (new.vx, new.vy) {
            out.push(ComponentDelta::Velocity {
                vx: new.vx,
                vy: new.vy,
            });
        }
        if self.renderable != new.renderable {
            let (a, b) = (self.renderable, new.renderable);
            out.push(ComponentDelta::Renderable {
                shape: (a.shape != b.shape).then_some(b.shape),
                colour: (a.colour != b.colour).then_some(b.colour),
                size: (a.size != b.size).then_some(b.size),
            });
        }
        for tag in new.tags.iter().filter(|t| !self.tags.contains(t)) {
            out.push(ComponentDelta::TagAdded { tag: tag.clone() });
        }
        for tag in self.tags.iter().filter(|t| !new.tags.contains(t)) {
            out.push(ComponentDelta::TagRemoved { tag: tag.clone() });
        }
        if self.owner != new.owner {
            out.push(ComponentDelta::Owner { owner: new.owner });
        }
        if self.avatar != new.avatar {
            out.push(ComponentDelta::Avatar { avatar: new.avatar });
        }
        for (key, value) in &new.properties {
            if self.properties.get(key) != Some(value) {
                out.push(ComponentDelta::PropertySet {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
        }
        for key in self
            .properties
            .keys()
            .filter(|k| !new.properties.contains_key(*k))
        {
            out.push(ComponentDelta::PropertyRemoved { key: key.clone() });
        }
        out
    }

    /// Applies field deltas produced by [`EntityState::diff`].
    pub fn apply(&mut self, deltas: &[ComponentDelta]) {
        for d in deltas {
            match d {
                ComponentDelta::Kind { kind } => self.kind.clone_from(kind),
                ComponentDelta::Velocity { vx, vy } => (self.vx, self.vy) = (*vx, *vy),
                ComponentDelta::Renderable {
                    shape,
                    colour,
                    size,
                } => {
                    if let Some(s) = shape {
                        self.renderable.shape = *s;
                    }
                    if let Some(c) = colour {
                        self.renderable.colour = *c;
                    }
                    if let Some(z) = size {
                        self.renderable.size = *z;
                    }
                }
                ComponentDelta::TagAdded { tag } => {
                    if let Err(at) = self.tags.binary_search(tag) {
                        self.tags.insert(at, tag.clone());
                    }
                }
                ComponentDelta::TagRemoved { tag } => self.tags.retain(|t| t != tag),
                ComponentDelta::Owner { owner } => self.owner = *owner,
                ComponentDelta::Avatar { avatar } => self.avatar = *avatar,
                ComponentDelta::PropertySet { key, value } => {
                    self.properties.insert(key.clone(), value.clone());
                }
                ComponentDelta::PropertyRemoved { key } => {
                    self.properties.remove(key);
                }
            }
        }
    }
}

/// One field-level change of one component (add / update / remove).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(tag = "component", rename_all = "snake_case")]
pub enum ComponentDelta {
    /// The kind changed.
    Kind {
        /// New kind.
        kind: String,
    },
    /// The velocity changed (1/16 units per second).
    Velocity {
        /// New x.
        vx: i32,
        /// New y.
        vy: i32,
    },
    /// Some renderable fields changed; absent fields are unchanged.
    Renderable {
        /// New shape.
        shape: Option<Shape>,
        /// New colour.
        colour: Option<u32>,
        /// New size.
        #[cfg_attr(
            test,
            proptest(strategy = "proptest::option::of(crate::testing::finite_f32())")
        )]
        size: Option<f32>,
    },
    /// A tag was added.
    TagAdded {
        /// The tag.
        tag: String,
    },
    /// A tag was removed.
    TagRemoved {
        /// The tag.
        tag: String,
    },
    /// The owner changed.
    Owner {
        /// New owner.
        owner: Option<UserId>,
    },
    /// The avatar marker changed.
    Avatar {
        /// New avatar marker.
        avatar: Option<ClientId>,
    },
    /// A property was added or updated.
    PropertySet {
        /// The key.
        key: String,
        /// The new value.
        value: PropValue,
    },
    /// A property was removed.
    PropertyRemoved {
        /// The key.
        key: String,
    },
}

/// The non-positional changes of one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct EntityChange {
    /// Which entity.
    pub id: EntityId,
    /// Its field deltas, in order.
    pub deltas: Vec<ComponentDelta>,
}

/// Position changes, column by column: entity `i` of the update has slot index
/// `sum(index_gaps[..=i])` and moves by (`dx[i]`, `dy[i]`) sixteenths of a unit. Indices
/// ascend, so gaps are small, and the binary codec packs each column tightly.
#[derive(
    Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, bitcode::Encode, bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Moves {
    /// Differences between successive slot indices (the first is the index itself).
    pub index_gaps: Vec<u32>,
    /// x displacement per entity.
    pub dx: Vec<i32>,
    /// y displacement per entity.
    pub dy: Vec<i32>,
}

impl Moves {
    /// Number of moved entities.
    pub fn len(&self) -> usize {
        self.index_gaps.len()
    }

    /// Whether nothing moved.
    pub fn is_empty(&self) -> bool {
        self.index_gaps.is_empty()
    }

    /// Whether the three columns have the same length.
    pub fn is_well_formed(&self) -> bool {
        self.dx.len() == self.index_gaps.len() && self.dy.len() == self.index_gaps.len()
    }

    /// `(slot index, dx, dy)` for every move.
    pub fn iter(&self) -> impl Iterator<Item = (u32, i32, i32)> + '_ {
        let mut index = 0u32;
        self.index_gaps
            .iter()
            .zip(&self.dx)
            .zip(&self.dy)
            .map(move |((gap, dx), dy)| {
                index = index.wrapping_add(*gap);
                (index, *dx, *dy)
            })
    }
}

/// A subscriber's whole view at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Snapshot {
    /// Which universe.
    pub universe: UniverseId,
    /// Sequence number of this frame in the subscriber's stream.
    pub seq: u64,
    /// Universe tick the view reflects.
    pub tick: u64,
    /// Every entity in view, ordered by id.
    pub entities: Vec<EntityState>,
    /// The static terrain (empty unless `include_terrain`).
    pub terrain: Vec<TerrainPatch>,
    /// Events since the previous frame (only in full-snapshot mode, `delta_only: false`).
    pub events: Vec<UniverseEvent>,
}

/// The changes to a view since the frame with sequence number `base_seq`.
#[derive(
    Debug, Clone, PartialEq, Default, Serialize, Deserialize, bitcode::Encode, bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StreamUpdate {
    /// Which universe.
    pub universe: UniverseId,
    /// Sequence number of this frame.
    pub seq: u64,
    /// The frame this update applies on top of; anything else is a gap.
    pub base_seq: u64,
    /// Universe tick the view now reflects.
    pub tick: u64,
    /// Entities that entered the view (spawned, came into the viewport or the filter), whole.
    pub entered: Vec<EntityState>,
    /// Entities that left the view (despawned, left the viewport or the filter).
    pub left: Vec<EntityId>,
    /// Position changes.
    pub moves: Moves,
    /// Other component changes.
    pub changes: Vec<EntityChange>,
    /// Events of entities in view since the previous frame.
    pub events: Vec<UniverseEvent>,
}

impl StreamUpdate {
    /// Whether the update changes nothing and carries no events.
    pub fn is_empty(&self) -> bool {
        self.entered.is_empty()
            && self.left.is_empty()
            && self.moves.is_empty()
            && self.changes.is_empty()
            && self.events.is_empty()
    }
}
