//! Federation tests: the passage lifecycle against a fake clock (`passage`); transfers one
//! step at a time (`engine`), restore and repair (`restore`), and the two-peer simulation
//! over a hostile network (`sim`).

mod engine;
mod passage;
mod restore;
mod sim;

use std::collections::BTreeMap;

use super::*;
use crate::clock::Moment;
use crate::ids::{EntityId, PassageId, PeerId, UniverseId};
use crate::universe::{Entity, PropValue, Renderable, Shape, Universe, Vec2};
use crate::wire::PeerMessage;

pub(super) const A: PeerId = PeerId(0xA);
pub(super) const B: PeerId = PeerId(0xB);
pub(super) const UA: UniverseId = UniverseId(0x1A);
pub(super) const UB: UniverseId = UniverseId(0x1B);
pub(super) const PASSAGE: PassageId = PassageId(0x77);

/// An empty 500 × 500 universe with id `id`.
pub(super) fn universe(id: UniverseId) -> Universe {
    let mut config = crate::universe::demo_universe(
        crate::universe::DemoKind::Sandbox,
        id,
        0,
        500.0,
        u64::from(id.0 as u32),
    )
    .config()
    .clone();
    config.id = id;
    Universe::new(config)
}

/// An entity carrying a unique `tag` property.
pub(super) fn tagged(tag: i64) -> Entity {
    let look = Renderable {
        shape: Shape::Circle,
        colour: 0x123456,
        size: 8.0,
    };
    let mut e = Entity::new("ball", Vec2::new(100.0, 100.0), look).with_tags(&["travelling"]);
    e.properties.insert("tag".into(), PropValue::Int(tag));
    e
}

/// The `tag` property of an entity.
pub(super) fn tag_of(e: &Entity) -> i64 {
    match e.properties.get("tag") {
        Some(PropValue::Int(t)) => *t,
        other => panic!("untagged entity: {other:?}"),
    }
}

/// Everything an engine wants done, in order.
pub(super) fn drain(engine: &mut TransferEngine) -> Vec<TransferOutput> {
    std::iter::from_fn(|| engine.poll_output()).collect()
}

/// The messages among outputs.
pub(super) fn sent(outputs: &[TransferOutput]) -> Vec<(PeerId, PeerMessage)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            TransferOutput::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

/// The journal records among outputs.
pub(super) fn journaled(outputs: &[TransferOutput]) -> Vec<JournalRecord> {
    outputs
        .iter()
        .filter_map(|o| match o {
            TransferOutput::Journal(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// A request to move `entity` from A's universe to B's.
pub(super) fn request(entity: EntityId, target_universe: UniverseId) -> TransferRequest {
    TransferRequest {
        universe: UA,
        entity,
        target: B,
        passage: PASSAGE,
        target_universe,
        exit: Vec2::new(250.0, 250.0),
    }
}

/// One peer for the step-by-step tests: an engine and its universes.
pub(super) struct Side {
    pub(super) engine: TransferEngine,
    pub(super) universes: BTreeMap<UniverseId, Universe>,
}

impl Side {
    pub(super) fn new(peer: PeerId, universe_id: UniverseId) -> Side {
        Side {
            engine: TransferEngine::new(peer, TransferConfig::default(), peer.0 as u64),
            universes: [(universe_id, universe(universe_id))].into(),
        }
    }

    /// Handles `message` from `from` and returns everything it caused.
    pub(super) fn receive(
        &mut self,
        from: PeerId,
        message: &PeerMessage,
        now: Moment,
    ) -> Vec<TransferOutput> {
        assert!(self
            .engine
            .handle_message(from, message, &mut self.universes, now));
        drain(&mut self.engine)
    }

    pub(super) fn u(&self, id: UniverseId) -> &Universe {
        &self.universes[&id]
    }
}
