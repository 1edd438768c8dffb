//! What federation needs from a universe: hiding entities that are between universes, and
//! putting an entity back at the exact id a transfer journal recorded.

use super::{Entity, Slot, Universe, UniverseError, UniverseEvent, MAX_ENTITIES};
use crate::ids::EntityId;

impl Universe {
    /// Hides or shows a live entity. A hidden entity is *in transit* (leaving for another
    /// peer) or *pending* (arrived, not committed): it still exists and keeps its id, but
    /// streams leave it out, interactions do not touch it and the simulation freezes it.
    pub fn set_hidden(&mut self, id: EntityId, hidden: bool) -> Result<(), UniverseError> {
        let slot = self.slot_mut(id).ok_or(UniverseError::NoSuchEntity(id))?;
        slot.hidden = hidden;
        Ok(())
    }

    /// Whether `id` is a live, hidden entity.
    pub fn is_hidden(&self, id: EntityId) -> bool {
        self.get(id).is_some() && self.is_hidden_at(id.index)
    }

    /// Whether slot `index` holds a hidden entity.
    pub fn is_hidden_at(&self, index: u32) -> bool {
        self.slots
            .get(index as usize)
            .is_some_and(|s| s.entity.is_some() && s.hidden)
    }

    /// Puts `entity` in the universe at exactly `id` (visible), for repairs from a journal
    /// after a restart: the universe may come from a save older than the journal.
    ///
    /// Refused when the slot holds a live entity ([`UniverseError::SlotTaken`]) or was
    /// reused after `id` ([`UniverseError::Superseded`]: the entity was removed later and
    /// must not come back). Slots past the end are created empty and join the free list, and
    /// `id`'s slot leaves it, so ids stay unique and the free list complete.
    pub fn insert_with_id(&mut self, id: EntityId, entity: Entity) -> Result<(), UniverseError> {
        let index = id.index as usize;
        if let Some(slot) = self.slots.get(index) {
            if slot.entity.is_some() {
                return Err(UniverseError::SlotTaken(id));
            }
            if slot.generation > id.generation {
                return Err(UniverseError::Superseded(id));
            }
        }
        if self.live >= MAX_ENTITIES || index >= 4 * MAX_ENTITIES {
            return Err(UniverseError::Full(MAX_ENTITIES));
        }
        self.grow_to(index);
        let at = self
            .free
            .iter()
            .position(|&i| i == id.index)
            .expect("every empty slot is on the free list");
        self.free.remove(at);
        let tick = self.tick;
        let slot = &mut self.slots[index];
        slot.generation = id.generation;
        slot.entity = Some(entity);
        slot.meta_tick = tick;
        slot.hidden = false;
        self.live += 1;
        self.events.push(UniverseEvent::Spawned { entity: id });
        Ok(())
    }

    /// Makes sure `id` is never issued again, for repairs after a restart: a save older
    /// than the transfer journal has rolled generations back, and an id the journal says is
    /// gone must not come back naming another entity. Despawns `id` if live; otherwise its
    /// slot's next generation is raised past it (once the older entity holding the slot, if
    /// any, is despawned).
    pub fn retire(&mut self, id: EntityId) {
        if self.get(id).is_some() {
            let _ = self.despawn(id);
            return;
        }
        let index = id.index as usize;
        if index >= 4 * MAX_ENTITIES {
            return; // never issued by this universe
        }
        self.grow_to(index);
        let past = id.generation.saturating_add(1);
        let slot = &mut self.slots[index];
        if slot.entity.is_some() {
            slot.floor = slot.floor.max(past);
        } else {
            slot.generation = slot.generation.max(past);
        }
    }

    /// Creates empty slots (on the free list) up to and including `index`.
    fn grow_to(&mut self, index: usize) {
        while self.slots.len() <= index {
            let hole = u32::try_from(self.slots.len()).expect("bounded by 4 × MAX_ENTITIES");
            self.slots.push(Slot {
                generation: 0,
                entity: None,
                meta_tick: self.tick,
                hidden: false,
                floor: 0,
            });
            self.free.push(hole);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UniverseId;
    use crate::universe::{demo_universe, DemoKind, Renderable, Shape, Vec2};

    fn blob() -> Entity {
        let look = Renderable {
            shape: Shape::Circle,
            colour: 1,
            size: 2.0,
        };
        Entity::new("blob", Vec2::new(5.0, 5.0), look)
    }

    fn id(index: u32, generation: u32) -> EntityId {
        EntityId { index, generation }
    }

    #[test]
    fn hidden_entities_exist_but_are_frozen_and_untouchable() {
        let mut u = demo_universe(DemoKind::Sandbox, UniverseId::from_u128(1), 5, 100.0, 3);
        let (first, _) = u.iter().next().unwrap();
        u.set_hidden(first, true).unwrap();
        assert!(u.is_hidden(first) && u.is_hidden_at(first.index));
        let before = u.get(first).unwrap().clone();
        for _ in 0..50 {
            u.step();
        }
        assert_eq!(u.get(first), Some(&before), "frozen while hidden");
        u.set_hidden(first, false).unwrap();
        assert!(!u.is_hidden(first));
        u.despawn(first).unwrap();
        assert!(!u.is_hidden_at(first.index));
        assert_eq!(
            u.set_hidden(first, true),
            Err(UniverseError::NoSuchEntity(first))
        );
    }

    #[test]
    fn insert_with_id_keeps_ids_unique_and_the_free_list_complete() {
        let mut u = Universe::new(
            demo_universe(DemoKind::Galaxy, UniverseId(2), 0, 10.0, 1)
                .config()
                .clone(),
        );
        // Past the end: slots 0..3 become holes, slot 3 holds the entity at generation 7.
        u.insert_with_id(id(3, 7), blob()).unwrap();
        assert_eq!(u.len(), 1);
        assert!(u.get(id(3, 7)).is_some());
        assert_eq!(
            u.insert_with_id(id(3, 7), blob()),
            Err(UniverseError::SlotTaken(id(3, 7)))
        );
        assert_eq!(
            u.insert_with_id(id(3, 9), blob()),
            Err(UniverseError::SlotTaken(id(3, 9)))
        );
        u.despawn(id(3, 7)).unwrap();
        assert_eq!(
            u.insert_with_id(id(3, 7), blob()),
            Err(UniverseError::Superseded(id(3, 7))),
            "a removed entity does not come back"
        );
        u.insert_with_id(id(1, 0), blob()).unwrap();
        // The snapshot round trip checks the free list is exactly the empty slots.
        let restored = Universe::restore(u.snapshot()).expect("consistent");
        assert_eq!(restored.len(), 1);
        let mut ids: Vec<EntityId> = (0..4).map(|_| u.spawn(blob()).unwrap()).collect();
        ids.push(id(1, 0));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "spawns never reuse a live slot: {ids:?}");
        assert!(
            u.get(id(3, 8)).is_some(),
            "slot 3 reused at the next generation"
        );
    }

    #[test]
    fn retired_ids_are_never_issued_again() {
        let mut u = Universe::new(
            demo_universe(DemoKind::Galaxy, UniverseId(2), 0, 10.0, 1)
                .config()
                .clone(),
        );
        let first = u.spawn(blob()).unwrap();
        u.retire(id(0, 4)); // live with an older generation: takes effect at its despawn
        u.retire(id(2, 0)); // past the end
        u.despawn(first).unwrap();
        let mut issued: Vec<EntityId> = (0..3).map(|_| u.spawn(blob()).unwrap()).collect();
        issued.sort();
        assert_eq!(issued, [id(0, 5), id(1, 0), id(2, 1)]);
        u.retire(id(1, 0));
        assert!(u.get(id(1, 0)).is_none(), "a live id is despawned");
        assert_eq!(
            u.insert_with_id(id(2, 0), blob()),
            Err(UniverseError::SlotTaken(id(2, 0)))
        );
        assert!(Universe::restore(u.snapshot()).is_ok());
    }
}
