//! The universes this peer hosts: one host task each, found by id.

use std::collections::BTreeMap;

use multiverse_core::ids::{PeerId, UniverseId};
use multiverse_core::stream::{InteractionMode, StreamServer};
use multiverse_core::universe::{demo_universe, DemoKind, UniverseInfo};
use tokio_util::sync::CancellationToken;

use crate::host::{self, HostHandle};

/// Every hosted universe, in a stable order.
#[derive(Debug, Default)]
pub struct Universes {
    hosts: BTreeMap<UniverseId, HostHandle>,
    order: Vec<UniverseId>,
}

/// The demo universes every peer starts with: (kind, entities, world size, what visitors may do).
const DEMOS: [(DemoKind, usize, f32, InteractionMode); 3] = [
    (DemoKind::Sandbox, 300, 1000.0, InteractionMode::Full),
    (DemoKind::Aquarium, 120, 800.0, InteractionMode::Limited),
    (DemoKind::Galaxy, 500, 1200.0, InteractionMode::None),
];

impl Universes {
    /// Starts the demo universes ("sandbox", "aquarium", "galaxy").
    pub fn start_demos(peer: PeerId, shutdown: &CancellationToken) -> Self {
        let mut universes = Universes::default();
        for (i, (kind, count, size, interaction)) in DEMOS.into_iter().enumerate() {
            let id = universe_id(peer, kind.name());
            let universe = demo_universe(kind, id, count, size, 0x5EED + i as u64);
            let handle = host::spawn(
                universe,
                StreamServer::new(id, interaction),
                shutdown.clone(),
            );
            universes.hosts.insert(id, handle);
            universes.order.push(id);
        }
        universes
    }

    /// The host of a universe.
    pub fn get(&self, id: UniverseId) -> Option<&HostHandle> {
        self.hosts.get(&id)
    }

    /// Current info of every universe.
    pub fn list(&self) -> Vec<UniverseInfo> {
        self.order
            .iter()
            .map(|id| self.hosts[id].stats.borrow().info.clone())
            .collect()
    }

    /// Every host, in order.
    pub fn hosts(&self) -> impl Iterator<Item = &HostHandle> + '_ {
        self.order.iter().map(|id| &self.hosts[id])
    }
}

/// A universe id stable across restarts: derived from the peer id and the universe name
/// (FNV-1a over both), so links and passages keep working.
pub fn universe_id(peer: PeerId, name: &str) -> UniverseId {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in peer.as_u128().to_le_bytes().iter().chain(name.as_bytes()) {
        h ^= u128::from(*b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    UniverseId::from_u128(h)
}
