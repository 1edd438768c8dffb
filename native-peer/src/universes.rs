//! The universes this peer hosts: one host task each, found by id. The built-in templates
//! run as public demos ("listed"); user worlds are added and removed while the peer runs and
//! are reached through their room links instead of the public list.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use multiverse_core::ids::{PeerId, UniverseId};
use multiverse_core::stream::{InteractionMode, StreamServer};
use multiverse_core::universe::{Universe, UniverseInfo};
use multiverse_core::world::Template;
use tokio_util::sync::CancellationToken;

use crate::host::{self, HostCommand, HostHandle, TransferContext};

#[derive(Debug)]
struct Hosted {
    handle: HostHandle,
    listed: bool,
}

type Hosts = Arc<RwLock<BTreeMap<UniverseId, Hosted>>>;

/// Every hosted universe; listed ones in start order.
#[derive(Debug)]
pub struct Universes {
    /// Shared with every [`HostDirectory`].
    hosts: Hosts,
    order: RwLock<Vec<UniverseId>>,
    shutdown: CancellationToken,
    transfer_ctx: TransferContext,
    tasks: tokio_util::task::TaskTracker,
}

impl Universes {
    /// Starts a demo universe per built-in template ("sandbox", "aquarium", "galaxy"), as
    /// last saved if the store has it (entities that travelled stay travelled).
    pub fn start_demos(
        peer: PeerId,
        shutdown: &CancellationToken,
        transfer_ctx: TransferContext,
    ) -> Self {
        let universes = Universes {
            hosts: Hosts::default(),
            order: RwLock::default(),
            shutdown: shutdown.clone(),
            transfer_ctx,
            tasks: tokio_util::task::TaskTracker::new(),
        };
        for (i, template) in Template::builtin().into_iter().enumerate() {
            let id = universe_id(peer, &template.name);
            let saved = universes
                .transfer_ctx
                .store
                .universe(id)
                .map_err(|e| tracing::error!(universe = %id, "cannot load the saved demo: {e}"))
                .ok()
                .flatten()
                .and_then(|s| {
                    Universe::restore(s)
                        .map_err(|e| tracing::error!(universe = %id, "saved demo unusable: {e}"))
                        .ok()
                });
            let universe = saved
                .unwrap_or_else(|| template.instantiate(id, &template.name, 0x5EED + i as u64));
            universes.insert(universe, template.interaction, true);
        }
        universes
    }

    /// Starts hosting `universe`; `listed` ones appear in the public list.
    pub fn insert(
        &self,
        universe: Universe,
        interaction: InteractionMode,
        listed: bool,
    ) -> HostHandle {
        let id = universe.config().id;
        let journal = self.transfer_ctx.store.journal(id).unwrap_or_else(|e| {
            // Without its journal a universe must not take part in transfers blindly; the
            // records stay on disk for the next start.
            tracing::error!(universe = %id, "cannot read the transfer journal: {e}");
            Vec::new()
        });
        let handle = host::spawn(
            &self.tasks,
            universe,
            StreamServer::new(id, interaction),
            self.shutdown.child_token(),
            self.transfer_ctx.clone(),
            journal,
        );
        let old = self.hosts.write().expect("universes lock").insert(
            id,
            Hosted {
                handle: handle.clone(),
                listed,
            },
        );
        if let Some(old) = old {
            let _ = old
                .handle
                .commands
                .try_send(HostCommand::Stop("replaced".into()));
        }
        if listed {
            self.order.write().expect("universes lock").push(id);
        }
        handle
    }

    /// Stops hosting a universe, telling its viewers `reason`.
    pub fn remove(&self, id: UniverseId, reason: &str) -> bool {
        let Some(hosted) = self.hosts.write().expect("universes lock").remove(&id) else {
            return false;
        };
        self.order
            .write()
            .expect("universes lock")
            .retain(|u| *u != id);
        let _ = hosted
            .handle
            .commands
            .try_send(HostCommand::Stop(reason.to_owned()));
        true
    }

    /// The host of a universe.
    pub fn get(&self, id: UniverseId) -> Option<HostHandle> {
        let hosts = self.hosts.read().expect("universes lock");
        hosts.get(&id).map(|h| h.handle.clone())
    }

    /// A cheap, cloneable way to find hosts, for tasks that outlive a borrow of `self`
    /// (room tasks reach their universe's host through it).
    pub fn directory(&self) -> HostDirectory {
        HostDirectory(self.hosts.clone())
    }

    /// Current info of every listed universe.
    pub fn list(&self) -> Vec<UniverseInfo> {
        let hosts = self.hosts.read().expect("universes lock");
        let order = self.order.read().expect("universes lock");
        order
            .iter()
            .filter_map(|id| hosts.get(id))
            .map(|h| h.handle.stats.borrow().info.clone())
            .collect()
    }

    /// Every transfer event of every host, as they happen.
    pub fn transfer_events(
        &self,
    ) -> tokio::sync::broadcast::Receiver<(UniverseId, multiverse_core::federation::TransferEvent)>
    {
        self.transfer_ctx.events.subscribe()
    }

    /// Every hosted universe id, listed or not.
    pub fn ids(&self) -> Vec<UniverseId> {
        self.hosts
            .read()
            .expect("universes lock")
            .keys()
            .copied()
            .collect()
    }

    /// Every host, listed or not.
    pub fn all(&self) -> Vec<HostHandle> {
        let hosts = self.hosts.read().expect("universes lock");
        hosts.values().map(|h| h.handle.clone()).collect()
    }

    /// Stops every host (after the final save at shutdown) and waits until they have (so
    /// the store is free to open again).
    pub async fn stop_all(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Whether a universe is in the public list.
    pub fn is_listed(&self, id: UniverseId) -> bool {
        let hosts = self.hosts.read().expect("universes lock");
        hosts.get(&id).is_some_and(|h| h.listed)
    }
}

/// Finds the host of a universe; sees universes added and removed later.
#[derive(Debug, Clone)]
pub struct HostDirectory(Hosts);

impl HostDirectory {
    /// The host of a universe hosted here.
    pub fn get(&self, id: UniverseId) -> Option<HostHandle> {
        let hosts = self.0.read().expect("universes lock");
        hosts.get(&id).map(|h| h.handle.clone())
    }
}

impl Drop for Universes {
    fn drop(&mut self) {
        self.shutdown.cancel();
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
