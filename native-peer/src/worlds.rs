//! Users' worlds: universes cloned from a template, hosted while the peer runs, saved to the
//! store (on demand, every `autosave`, and at shutdown) and brought back at start-up.
//! Anonymous users' worlds that nobody has had open for `anonymous_ttl` are deleted.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use multiverse_core::federation::JournalRecord;
use multiverse_core::ids::{RoomId, UniverseId, UserId};
use multiverse_core::universe::{Universe, UniverseSnapshot};
use multiverse_core::world::normalize_world_name;
use serde::Serialize;

use crate::host::HostCommand;
use crate::store::{StoreError, WorldRecord};
use crate::Shared;

/// Why a world request failed; each maps to one API error code.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The name is not allowed.
    #[error("invalid world name: {0}")]
    InvalidName(#[from] multiverse_core::world::NameError),
    /// No template by that name.
    #[error("no template named {0:?}; GET /api/templates lists them")]
    UnknownTemplate(String),
    /// No world with that id.
    #[error("no world {0}")]
    UnknownWorld(UniverseId),
    /// Somebody else's world.
    #[error("world {0} belongs to someone else")]
    NotOwner(UniverseId),
    /// The owner already has a world with this name.
    #[error("you already have a world named {0:?}")]
    DuplicateName(String),
    /// The store failed; nothing of the request was kept.
    #[error("could not store the world: {0}")]
    Storage(String),
    /// The world's universe is not running (the peer is stopping).
    #[error("the world is not running")]
    NotRunning,
}

impl From<StoreError> for WorldError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DuplicateName(n) => WorldError::DuplicateName(n),
            other => WorldError::Storage(other.to_string()),
        }
    }
}

/// What the API shows of a world.
#[derive(Debug, Clone, Serialize)]
pub struct WorldView {
    /// The universe id.
    pub id: UniverseId,
    /// The owner's name for it.
    pub name: String,
    /// The template it came from.
    pub template: String,
    /// Live entities now.
    pub entities: u32,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: u64,
    /// When it was last saved.
    pub saved_ms: u64,
    /// The room that shows it.
    pub room: RoomId,
}

/// The room of a world: `w-` and the first 12 hex digits of its id.
pub fn room_of(id: UniverseId) -> RoomId {
    let hex = format!("{:032x}", id.as_u128());
    RoomId::new(&format!("w-{}", &hex[..12])).expect("w-<hex> is a valid room id")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Storage(e.to_string()))?
}

/// The view of a stored world, with its live entity count.
pub fn view(shared: &Shared, world: &WorldRecord) -> WorldView {
    let entities = shared
        .universes
        .get(world.id)
        .map_or(0, |h| h.stats.borrow().info.entities);
    WorldView {
        id: world.id,
        name: world.name.clone(),
        template: world.template.clone(),
        entities,
        created_ms: world.created_ms,
        saved_ms: world.saved_ms,
        room: room_of(world.id),
    }
}

fn host(shared: &Shared, world: &WorldRecord, universe: Universe) {
    let interaction = shared
        .templates
        .get(&world.template)
        .map_or(multiverse_core::stream::InteractionMode::Full, |t| {
            t.interaction
        });
    shared.universes.insert(universe, interaction, false);
    shared.rooms.bind(room_of(world.id), world.id);
}

/// Creates a world for `owner` from `template`, stores it, and starts hosting it.
pub async fn create(
    shared: &Arc<Shared>,
    owner: UserId,
    template: &str,
    name: &str,
) -> Result<WorldRecord, WorldError> {
    let name = normalize_world_name(name)?;
    let template = shared
        .templates
        .get(template)
        .ok_or_else(|| WorldError::UnknownTemplate(template.to_owned()))?
        .clone();
    let id = UniverseId::from_u128(uuid::Uuid::new_v4().as_u128());
    let universe = template.instantiate(id, &name, uuid::Uuid::new_v4().as_u64_pair().0);
    let now = now_ms();
    let world = WorldRecord {
        id,
        owner,
        name,
        template: template.name.clone(),
        created_ms: now,
        saved_ms: now,
        active_ms: now,
    };
    let snapshot = universe.snapshot();
    let (store, record) = (shared.store.clone(), world.clone());
    blocking(move || store.create_world(&record, &snapshot)).await?;
    host(shared, &world, universe);
    tracing::info!(world = %world.id, owner = %owner, template = %world.template, "world created");
    Ok(world)
}

/// A world the caller owns.
pub async fn owned(
    shared: &Arc<Shared>,
    owner: UserId,
    id: UniverseId,
) -> Result<WorldRecord, WorldError> {
    let store = shared.store.clone();
    let world = blocking(move || store.world(id))
        .await?
        .ok_or(WorldError::UnknownWorld(id))?;
    if world.owner != owner {
        return Err(WorldError::NotOwner(id));
    }
    Ok(world)
}

/// The caller's worlds, newest first.
pub async fn list(shared: &Arc<Shared>, owner: UserId) -> Result<Vec<WorldRecord>, WorldError> {
    let store = shared.store.clone();
    let mut mine: Vec<WorldRecord> = blocking(move || store.worlds())
        .await?
        .into_iter()
        .filter(|w| w.owner == owner)
        .collect();
    mine.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.name.cmp(&b.name)));
    Ok(mine)
}

/// A universe's snapshot and the transfer checkpoint valid with it.
type Saved = (UniverseSnapshot, Option<Vec<JournalRecord>>);

async fn snapshot_of(shared: &Shared, id: UniverseId) -> Result<Saved, WorldError> {
    let host = shared.universes.get(id).ok_or(WorldError::NotRunning)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    host.commands
        .send(HostCommand::Snapshot(reply))
        .await
        .map_err(|_| WorldError::NotRunning)?;
    answer.await.map_err(|_| WorldError::NotRunning)
}

/// Saves a world's universe as it is now; `active` also marks it as in use.
pub async fn save(
    shared: &Arc<Shared>,
    mut world: WorldRecord,
    active: bool,
) -> Result<WorldRecord, WorldError> {
    let (snapshot, checkpoint) = snapshot_of(shared, world.id).await?;
    world.saved_ms = now_ms();
    if active {
        world.active_ms = world.saved_ms;
    }
    let (store, record) = (shared.store.clone(), world.clone());
    blocking(move || store.save_world(&record, &snapshot, checkpoint.as_deref())).await?;
    Ok(world)
}

/// Puts the last saved state back in place of the running universe.
pub async fn reload(shared: &Arc<Shared>, world: &WorldRecord) -> Result<(), WorldError> {
    let (store, id) = (shared.store.clone(), world.id);
    let snapshot = blocking(move || store.universe(id))
        .await?
        .ok_or(WorldError::UnknownWorld(id))?;
    let universe = Universe::restore(snapshot).map_err(|e| WorldError::Storage(e.to_string()))?;
    let host = shared.universes.get(id).ok_or(WorldError::NotRunning)?;
    host.commands
        .send(HostCommand::Replace(Box::new(universe)))
        .await
        .map_err(|_| WorldError::NotRunning)
}

/// Deletes a world: from the store first, then stops hosting it.
pub async fn delete(
    shared: &Arc<Shared>,
    world: &WorldRecord,
    reason: &str,
) -> Result<(), WorldError> {
    let (store, id) = (shared.store.clone(), world.id);
    blocking(move || store.delete_world(id)).await?;
    shared.universes.remove(id, reason);
    shared.rooms.unbind(&room_of(id));
    tracing::info!(world = %id, "world deleted: {reason}");
    Ok(())
}

/// Starts hosting every stored world (at start-up). A world whose snapshot cannot be read is
/// logged and left in the store untouched.
pub fn restore_all(shared: &Shared) -> Result<usize, StoreError> {
    let mut hosted = 0;
    for world in shared.store.worlds()? {
        let universe = shared
            .store
            .universe(world.id)
            .and_then(|s| s.ok_or(StoreError::NotFound))
            .and_then(|s| Universe::restore(s).map_err(|e| StoreError::Corrupt(e.to_string())));
        match universe {
            Ok(universe) => {
                host(shared, &world, universe);
                hosted += 1;
            }
            Err(e) => tracing::error!(world = %world.id, "cannot bring back world: {e}"),
        }
    }
    Ok(hosted)
}

/// Saves every hosted world; worlds with viewers are marked active. Returns how many saved.
pub async fn save_all(shared: &Arc<Shared>) -> usize {
    let store = shared.store.clone();
    let worlds = match blocking(move || store.worlds()).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("autosave cannot list worlds: {e}");
            return 0;
        }
    };
    let mut saved = 0;
    let worlds_ids: Vec<UniverseId> = worlds.iter().map(|w| w.id).collect();
    // The public demos are saved too, so entities that travelled stay where they went.
    for id in shared.universes.ids() {
        if worlds_ids.contains(&id) || !shared.universes.is_listed(id) {
            continue;
        }
        match snapshot_of(shared, id).await {
            Ok((snapshot, checkpoint)) => {
                let store = shared.store.clone();
                let result = blocking(move || match checkpoint {
                    Some(c) => store.save_with_checkpoint(&snapshot, &c),
                    None => store.put_universe(&snapshot),
                })
                .await;
                match result {
                    Ok(()) => saved += 1,
                    Err(e) => tracing::error!(universe = %id, "autosave failed: {e}"),
                }
            }
            Err(WorldError::NotRunning) => {}
            Err(e) => tracing::error!(universe = %id, "autosave failed: {e}"),
        }
    }
    for world in worlds {
        let active = shared
            .universes
            .get(world.id)
            .is_some_and(|h| h.stats.borrow().subscribers > 0);
        match save(shared, world, active).await {
            Ok(_) => saved += 1,
            Err(WorldError::NotRunning) => {}
            Err(e) => tracing::error!("autosave failed: {e}"),
        }
    }
    saved
}

/// Deletes anonymous users' worlds unused for longer than `ttl`. Returns how many.
pub async fn expire_anonymous(shared: &Arc<Shared>, ttl: Duration) -> usize {
    let store = shared.store.clone();
    let worlds = match blocking(move || store.worlds()).await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("cleanup cannot list worlds: {e}");
            return 0;
        }
    };
    let cutoff = now_ms().saturating_sub(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    let mut removed = 0;
    for world in worlds {
        let in_use = shared
            .universes
            .get(world.id)
            .is_some_and(|h| h.stats.borrow().subscribers > 0);
        if in_use || world.active_ms > cutoff {
            continue;
        }
        let (store, owner) = (shared.store.clone(), world.owner);
        let persistent = match blocking(move || store.user(owner)).await {
            Ok(user) => user.is_some_and(|u| u.persistent),
            Err(e) => {
                tracing::error!("cleanup cannot read user {owner}: {e}");
                continue;
            }
        };
        if !persistent
            && delete(shared, &world, "its anonymous owner's world expired")
                .await
                .is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Runs autosave and anonymous cleanup until shutdown, then saves once more.
pub async fn maintain(shared: Arc<Shared>, autosave: Duration, ttl: Duration) {
    let cleanup_every = (ttl / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
    let mut save_tick = tokio::time::interval(autosave.max(Duration::from_millis(100)));
    let mut cleanup_tick = tokio::time::interval(cleanup_every);
    save_tick.tick().await;
    cleanup_tick.tick().await;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = save_tick.tick() => {
                let n = save_all(&shared).await;
                tracing::debug!("autosaved {n} worlds");
            }
            _ = cleanup_tick.tick() => {
                let n = expire_anonymous(&shared, ttl).await;
                if n > 0 {
                    tracing::info!("removed {n} expired anonymous worlds");
                }
            }
        }
    }
}
