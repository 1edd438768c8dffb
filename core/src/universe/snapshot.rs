//! Saving a universe and bringing it back exactly: the same entity ids (index and
//! generation), tick, random state and terrain, so links, streams and transfer journals that
//! name an entity still find it after a restart. Whether an entity is hidden (in transit) is
//! not saved: `federation::TransferEngine::restore` hides it again from its journal.
//! Members' avatars are not saved either: they belong to whoever is in the room, so a
//! snapshot records their slots as emptied (as if despawned), and a restore drops any.

use serde::{Deserialize, Serialize};

use super::{Entity, Slot, TerrainPatch, Universe, UniverseConfig, MAX_ENTITIES};
use crate::rng::Rng;

/// First byte of every encoded snapshot; bumped when the layout changes.
pub const SNAPSHOT_FORMAT: u8 = 1;

/// One live entity of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
pub struct SavedEntity {
    /// Its slot.
    pub index: u32,
    /// The entity.
    pub entity: Entity,
}

/// Everything needed to bring a universe back as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode)]
pub struct UniverseSnapshot {
    /// Identity, pace and laws.
    pub config: UniverseConfig,
    /// Ticks stepped.
    pub tick: u64,
    /// The simulation's random state.
    pub rng_state: u64,
    /// Static terrain.
    pub terrain: Vec<TerrainPatch>,
    /// The generation of every slot, live or free, so ids issued before the save are never
    /// issued again to a different entity.
    pub generations: Vec<u32>,
    /// Empty slots in the order they will be reused.
    pub free: Vec<u32>,
    /// Live entities, in slot order.
    pub entities: Vec<SavedEntity>,
}

/// Why bytes could not become a universe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Empty input.
    #[error("the snapshot is empty")]
    Empty,
    /// Written by a newer (or unknown) format.
    #[error("snapshot format {0} is not supported (this build reads format {SNAPSHOT_FORMAT})")]
    Format(u8),
    /// The bytes do not decode.
    #[error("the snapshot is corrupt: {0}")]
    Corrupt(String),
    /// Decoded, but inconsistent (duplicate slots, too many entities, bad numbers).
    #[error("the snapshot is inconsistent: {0}")]
    Invalid(String),
}

impl UniverseSnapshot {
    /// Format byte followed by the bitcode encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![SNAPSHOT_FORMAT];
        out.extend_from_slice(&bitcode::encode(self));
        out
    }

    /// Reads what [`UniverseSnapshot::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let (&format, rest) = bytes.split_first().ok_or(SnapshotError::Empty)?;
        if format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format(format));
        }
        bitcode::decode(rest).map_err(|e| SnapshotError::Corrupt(e.to_string()))
    }
}

impl Universe {
    /// A copy of everything that makes this universe what it is (events are not included:
    /// they are transient; avatars neither: their slots are saved as if despawned).
    pub fn snapshot(&self) -> UniverseSnapshot {
        let mut generations: Vec<u32> = self.slots.iter().map(|s| s.generation).collect();
        let mut free = self.free.clone();
        let mut entities = Vec::with_capacity(self.live);
        for (i, s) in self.slots.iter().enumerate() {
            let Some(entity) = &s.entity else {
                continue;
            };
            if entity.avatar.is_some() {
                generations[i] = s.generation.wrapping_add(1).max(s.floor);
                free.push(i as u32);
                continue;
            }
            entities.push(SavedEntity {
                index: i as u32,
                entity: entity.clone(),
            });
        }
        UniverseSnapshot {
            config: self.config.clone(),
            tick: self.tick,
            rng_state: self.rng.state(),
            terrain: self.terrain.clone(),
            generations,
            free,
            entities,
        }
    }

    /// The universe a snapshot describes, after checking it is consistent.
    pub fn restore(snapshot: UniverseSnapshot) -> Result<Universe, SnapshotError> {
        let invalid = |m: String| Err(SnapshotError::Invalid(m));
        if snapshot.entities.len() > MAX_ENTITIES || snapshot.generations.len() > 4 * MAX_ENTITIES {
            return invalid(format!("more than {MAX_ENTITIES} entities"));
        }
        let tick_rate = snapshot.config.tick_rate;
        if !(1..=60).contains(&tick_rate) {
            return invalid(format!("tick rate {tick_rate} is outside 1–60"));
        }
        let mut slots: Vec<Slot> = snapshot
            .generations
            .iter()
            .map(|&generation| Slot {
                generation,
                entity: None,
                meta_tick: snapshot.tick,
                hidden: false,
                floor: 0,
            })
            .collect();
        let mut free = snapshot.free;
        for saved in snapshot.entities {
            if saved.entity.avatar.is_some() {
                // Written by an older build: avatars do not come back.
                let Some(slot) = slots.get_mut(saved.index as usize) else {
                    return invalid(format!("slot {} is past the slot table", saved.index));
                };
                slot.generation = slot.generation.wrapping_add(1);
                free.push(saved.index);
                continue;
            }
            let p = saved.entity.position;
            if !p.x.is_finite() || !p.y.is_finite() {
                return invalid(format!(
                    "entity in slot {} has no finite position",
                    saved.index
                ));
            }
            let Some(slot) = slots.get_mut(saved.index as usize) else {
                return invalid(format!("slot {} is past the slot table", saved.index));
            };
            if slot.entity.replace(saved.entity).is_some() {
                return invalid(format!("slot {} is used twice", saved.index));
            }
        }
        let mut listed = vec![false; slots.len()];
        for &i in &free {
            match (slots.get(i as usize), listed.get_mut(i as usize)) {
                (Some(slot), Some(seen)) if slot.entity.is_none() && !*seen => *seen = true,
                _ => return invalid(format!("free slot {i} is unknown, live or listed twice")),
            }
        }
        let live = slots.len() - free.len();
        if slots.iter().filter(|s| s.entity.is_some()).count() != live {
            return invalid("an empty slot is missing from the free list".into());
        }
        Ok(Universe {
            config: snapshot.config,
            tick: snapshot.tick,
            slots,
            free,
            live,
            rng: Rng::new(snapshot.rng_state),
            terrain: snapshot.terrain,
            events: Vec::new(),
            avatars: std::collections::BTreeMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UniverseId;
    use crate::universe::{demo_universe, DemoKind};

    fn demo() -> Universe {
        let mut u = demo_universe(DemoKind::Aquarium, UniverseId::from_u128(7), 50, 500.0, 3);
        // Leave holes with bumped generations behind.
        let ids: Vec<_> = u.iter().map(|(id, _)| id).take(5).collect();
        for id in ids {
            u.despawn(id).unwrap();
        }
        for _ in 0..10 {
            u.step();
        }
        u
    }

    #[test]
    fn restore_continues_bit_for_bit() {
        let mut original = demo();
        let bytes = original.snapshot().encode();
        let mut copy = Universe::restore(UniverseSnapshot::decode(&bytes).unwrap()).unwrap();
        assert_eq!(copy.snapshot(), original.snapshot());
        for _ in 0..20 {
            original.step();
            copy.step();
        }
        assert_eq!(
            copy.snapshot(),
            original.snapshot(),
            "same future after restore"
        );
        let a = original.spawn(original.get_by_index(5).unwrap().1.clone());
        let b = copy.spawn(copy.get_by_index(5).unwrap().1.clone());
        assert_eq!(
            a, b,
            "freed slots are reused in the same order with the same generation"
        );
    }

    #[test]
    fn bad_bytes_are_refused_with_reasons() {
        assert_eq!(UniverseSnapshot::decode(&[]), Err(SnapshotError::Empty));
        assert_eq!(
            UniverseSnapshot::decode(&[9, 1]),
            Err(SnapshotError::Format(9))
        );
        let mut bytes = demo().snapshot().encode();
        bytes.truncate(bytes.len() / 2);
        assert!(matches!(
            UniverseSnapshot::decode(&bytes),
            Err(SnapshotError::Corrupt(_))
        ));
        let mut twice = demo().snapshot();
        twice.entities.push(twice.entities[0].clone());
        assert!(matches!(
            Universe::restore(twice),
            Err(SnapshotError::Invalid(_))
        ));
        let mut outside = demo().snapshot();
        outside.entities[0].index = 10_000;
        assert!(matches!(
            Universe::restore(outside),
            Err(SnapshotError::Invalid(_))
        ));
    }
}
