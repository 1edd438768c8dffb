//! The client's mirror of a streamed universe (`StreamCache`).
//!
//! It applies a snapshot, then updates in sequence. An update whose `base_seq` is not the
//! mirror's `seq` means a frame went missing: the mirror stops applying, reports the gap, and
//! waits for a snapshot (the driver sends `resync`). A size cap protects the client from a
//! peer that would flood it.

use std::collections::BTreeMap;

use super::state::{EntityState, Snapshot, StreamUpdate};
use super::MAX_STREAM_ENTITIES;
use crate::ids::{EntityId, UniverseId};
use crate::universe::TerrainPatch;

/// Why an update could not be applied; after any of these the mirror waits for a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// A frame is missing between the mirror and this update.
    #[error("gap in the stream: mirror is at {have:?}, update applies to {base}")]
    Gap {
        /// The mirror's sequence number (`None` before the first snapshot).
        have: Option<u64>,
        /// The update's `base_seq`.
        base: u64,
    },
    /// The update refers to an entity the mirror does not hold.
    #[error("update refers to unknown entity {0}")]
    UnknownEntity(EntityId),
    /// The update adds an entity the mirror already holds.
    #[error("update adds entity {0}, which is already present")]
    Duplicate(EntityId),
    /// The frame would make the mirror larger than its cap.
    #[error("the view would exceed {cap} entities")]
    Overflow {
        /// The cap.
        cap: usize,
    },
    /// The frame is for another universe.
    #[error("frame for another universe")]
    WrongUniverse,
    /// Updates are ignored until the requested snapshot arrives.
    #[error("waiting for a snapshot")]
    AwaitingSnapshot,
}

/// A mirror of one universe as one subscriber sees it.
#[derive(Debug, Clone)]
pub struct StreamCache {
    universe: UniverseId,
    cap: usize,
    seq: Option<u64>,
    tick: u64,
    entities: BTreeMap<u32, EntityState>,
    terrain: Vec<TerrainPatch>,
    awaiting_snapshot: bool,
}

impl StreamCache {
    /// An empty mirror of `universe` holding at most `cap` entities.
    pub fn new(universe: UniverseId, cap: usize) -> Self {
        StreamCache {
            universe,
            cap,
            seq: None,
            tick: 0,
            entities: BTreeMap::new(),
            terrain: Vec::new(),
            awaiting_snapshot: true,
        }
    }

    /// An empty mirror with the default cap ([`MAX_STREAM_ENTITIES`]).
    pub fn with_default_cap(universe: UniverseId) -> Self {
        StreamCache::new(universe, MAX_STREAM_ENTITIES as usize)
    }

    /// The universe mirrored.
    pub fn universe(&self) -> UniverseId {
        self.universe
    }

    /// Sequence number of the last frame applied.
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// Universe tick the mirror reflects.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Number of entities held.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether no entity is held.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// Whether updates are being ignored until a snapshot arrives.
    pub fn needs_snapshot(&self) -> bool {
        self.awaiting_snapshot
    }

    /// The entity in slot `index`.
    pub fn get(&self, index: u32) -> Option<&EntityState> {
        self.entities.get(&index)
    }

    /// Every entity, ordered by id.
    pub fn entities(&self) -> impl Iterator<Item = &EntityState> + '_ {
        self.entities.values()
    }

    /// The terrain of the last snapshot.
    pub fn terrain(&self) -> &[TerrainPatch] {
        &self.terrain
    }

    /// Replaces everything with a snapshot.
    pub fn apply_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), MirrorError> {
        if snapshot.universe != self.universe {
            return Err(MirrorError::WrongUniverse);
        }
        if snapshot.entities.len() > self.cap {
            self.awaiting_snapshot = true;
            return Err(MirrorError::Overflow { cap: self.cap });
        }
        self.entities = snapshot
            .entities
            .iter()
            .map(|e| (e.id.index, e.clone()))
            .collect();
        if self.entities.len() != snapshot.entities.len() {
            self.awaiting_snapshot = true;
            let dup = first_duplicate(&snapshot.entities);
            return Err(MirrorError::Duplicate(dup));
        }
        self.terrain.clone_from(&snapshot.terrain);
        self.seq = Some(snapshot.seq);
        self.tick = snapshot.tick;
        self.awaiting_snapshot = false;
        Ok(())
    }

    /// Applies an update. On any error the mirror waits for a snapshot; the caller should
    /// ask for one (once) when the error is not [`MirrorError::AwaitingSnapshot`].
    pub fn apply_update(&mut self, update: &StreamUpdate) -> Result<(), MirrorError> {
        if update.universe != self.universe {
            return Err(MirrorError::WrongUniverse);
        }
        if self.awaiting_snapshot {
            return Err(MirrorError::AwaitingSnapshot);
        }
        if self.seq != Some(update.base_seq) {
            self.awaiting_snapshot = true;
            return Err(MirrorError::Gap {
                have: self.seq,
                base: update.base_seq,
            });
        }
        let result = self.apply_changes(update);
        if result.is_err() {
            self.awaiting_snapshot = true;
        } else {
            self.seq = Some(update.seq);
            self.tick = update.tick;
        }
        result
    }

    fn apply_changes(&mut self, u: &StreamUpdate) -> Result<(), MirrorError> {
        for id in &u.left {
            match self.entities.get(&id.index) {
                Some(e) if e.id == *id => {
                    self.entities.remove(&id.index);
                }
                _ => return Err(MirrorError::UnknownEntity(*id)),
            }
        }
        if self.entities.len() + u.entered.len() > self.cap {
            return Err(MirrorError::Overflow { cap: self.cap });
        }
        for e in &u.entered {
            if self.entities.insert(e.id.index, e.clone()).is_some() {
                return Err(MirrorError::Duplicate(e.id));
            }
        }
        if !u.moves.is_well_formed() {
            return Err(MirrorError::UnknownEntity(EntityId {
                index: u32::MAX,
                generation: 0,
            }));
        }
        for (index, dx, dy) in u.moves.iter() {
            let e = self
                .entities
                .get_mut(&index)
                .ok_or(MirrorError::UnknownEntity(EntityId {
                    index,
                    generation: 0,
                }))?;
            e.x = e.x.wrapping_add(dx);
            e.y = e.y.wrapping_add(dy);
        }
        for change in &u.changes {
            match self.entities.get_mut(&change.id.index) {
                Some(e) if e.id == change.id => e.apply(&change.deltas),
                _ => return Err(MirrorError::UnknownEntity(change.id)),
            }
        }
        Ok(())
    }
}

fn first_duplicate(entities: &[EntityState]) -> EntityId {
    let mut seen = std::collections::BTreeSet::new();
    entities.iter().find(|e| !seen.insert(e.id.index)).map_or(
        EntityId {
            index: 0,
            generation: 0,
        },
        |e| e.id,
    )
}
