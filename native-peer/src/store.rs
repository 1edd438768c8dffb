//! The peer's durable store: one redb database, `<data dir>/multiverse.redb`.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | u64 (`schema_version`) |
//! | `universes` | universe id | encoded [`UniverseSnapshot`] |
//! | `worlds` | universe id | JSON [`WorldRecord`] |
//! | `world_names` | (owner, lower-cased name) | universe id |
//! | `users` | user id | JSON [`UserRecord`] |
//! | `chat` | (room, seq) | JSON [`ChatMessage`] |
//! | `rooms` | room | JSON [`RoomRecord`] (settings, owner, invites) |
//! | `passages` | passage id | JSON [`crate::passages::PassageRecord`] (no passwords) |
//! | `journal` | (universe, n) | bitcode transfer [`JournalRecord`], in the order written |
//!
//! Every method is one write transaction committed with redb's default immediate durability
//! (fsync) before it returns, so whatever a caller acknowledges survives a crash, and
//! multi-table changes (a world and its universe) appear together or not at all. Methods
//! block: call them from `spawn_blocking` in async code.

use std::path::Path;

use multiverse_core::federation::JournalRecord;
use multiverse_core::ids::{RoomId, UniverseId, UserId};
use multiverse_core::room::{ChatMessage, RoomRecord, CHAT_MEMORY};
use multiverse_core::universe::UniverseSnapshot;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

/// The layout version this build writes; a store with a higher one is refused.
pub const SCHEMA_VERSION: u64 = 1;
/// File name of the database inside the data dir.
pub const FILE_NAME: &str = "multiverse.redb";

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const UNIVERSES: TableDefinition<u128, &[u8]> = TableDefinition::new("universes");
const WORLDS: TableDefinition<u128, &[u8]> = TableDefinition::new("worlds");
const WORLD_NAMES: TableDefinition<(u128, &str), u128> = TableDefinition::new("world_names");
const USERS: TableDefinition<u128, &[u8]> = TableDefinition::new("users");
const CHAT: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("chat");
const ROOMS: TableDefinition<&str, &[u8]> = TableDefinition::new("rooms");
const JOURNAL: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("journal");
const PASSAGES: TableDefinition<u128, &[u8]> = TableDefinition::new("passages");

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Written by a newer Multiverse.
    #[error("the store was written by a newer Multiverse (schema {found}; this build reads up to {SCHEMA_VERSION}); upgrade, or use another --data-dir")]
    NewerSchema {
        /// The version found.
        found: u64,
    },
    /// The disk or the database failed. The write is whole or absent, never half-done: if
    /// only the final sync failed it may still be there after a restart, so callers must
    /// not promise either way.
    #[error("storage failed: {0}")]
    Storage(String),
    /// A stored value does not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The owner already has a world with this name.
    #[error("you already have a world named {0:?}")]
    DuplicateName(String),
    /// No such record.
    #[error("not found")]
    NotFound,
}

macro_rules! storage_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(e.to_string())
            }
        }
    )*};
}
storage_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<StoreError> for std::io::Error {
    fn from(e: StoreError) -> Self {
        std::io::Error::other(e)
    }
}

/// A user the peer issued a session to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Who.
    pub id: UserId,
    /// Name shown to others.
    pub display_name: String,
    /// Persistent users keep their worlds; anonymous users' worlds expire when idle.
    pub persistent: bool,
    /// Wall-clock milliseconds of creation.
    pub created_ms: u64,
}

/// A user's own universe, cloned from a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldRecord {
    /// The universe.
    pub id: UniverseId,
    /// Its owner.
    pub owner: UserId,
    /// The owner's name for it (unique per owner, case-insensitively).
    pub name: String,
    /// The template it was cloned from.
    pub template: String,
    /// Wall-clock milliseconds of creation.
    pub created_ms: u64,
    /// Wall-clock milliseconds of the last save.
    pub saved_ms: u64,
    /// Wall-clock milliseconds of the last time someone had it open.
    pub active_ms: u64,
}

/// The open store.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Storage(e.to_string()))?;
        Store::init(Database::create(dir.join(FILE_NAME))?)
    }

    /// Opens a store on any redb backend (tests use one that fails on demand).
    pub fn open_with_backend(backend: impl redb::StorageBackend) -> Result<Store, StoreError> {
        Store::init(Database::builder().create_with_backend(backend)?)
    }

    fn init(db: Database) -> Result<Store, StoreError> {
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => return Err(StoreError::NewerSchema { found: v }),
                Some(_) => {}
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
            }
            // Create every table so readers never meet a missing one.
            tx.open_table(UNIVERSES)?;
            tx.open_table(WORLDS)?;
            tx.open_table(WORLD_NAMES)?;
            tx.open_table(USERS)?;
            tx.open_table(CHAT)?;
            tx.open_table(ROOMS)?;
            tx.open_table(JOURNAL)?;
            tx.open_table(PASSAGES)?;
        }
        tx.commit()?;
        Ok(Store { db })
    }

    /// The schema version recorded in the store.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        Ok(meta.get("schema_version")?.map_or(0, |v| v.value()))
    }

    /// Writes a value into the meta table (used by tests to simulate a newer schema).
    pub fn set_meta(&self, key: &str, value: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(META)?.insert(key, value)?;
        tx.commit()?;
        Ok(())
    }

    // ----- universes -----

    /// Saves a universe snapshot (replacing the previous one).
    pub fn put_universe(&self, snapshot: &UniverseSnapshot) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(UNIVERSES)?
            .insert(snapshot.config.id.as_u128(), snapshot.encode().as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// The last saved snapshot of a universe.
    pub fn universe(&self, id: UniverseId) -> Result<Option<UniverseSnapshot>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(UNIVERSES)?;
        let Some(bytes) = table.get(id.as_u128())? else {
            return Ok(None);
        };
        UniverseSnapshot::decode(bytes.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("universe {id}: {e}")))
    }

    // ----- users -----

    /// Creates or replaces a user.
    pub fn put_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(USERS)?
            .insert(user.id.as_u128(), json(user).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// A user.
    pub fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(USERS)?;
        let value = table.get(id.as_u128())?;
        value.map(|v| parse(v.value(), "user")).transpose()
    }

    // ----- worlds -----

    /// Stores a new world and its universe together; refuses a name the owner already uses.
    pub fn create_world(
        &self,
        world: &WorldRecord,
        snapshot: &UniverseSnapshot,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut names = tx.open_table(WORLD_NAMES)?;
            let key = (world.owner.as_u128(), world.name.to_lowercase());
            if names.get((key.0, key.1.as_str()))?.is_some() {
                return Err(StoreError::DuplicateName(world.name.clone()));
            }
            names.insert((key.0, key.1.as_str()), world.id.as_u128())?;
            tx.open_table(WORLDS)?
                .insert(world.id.as_u128(), json(world).as_slice())?;
            tx.open_table(UNIVERSES)?
                .insert(world.id.as_u128(), snapshot.encode().as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Saves a world's universe and records when; with a transfer `checkpoint`, the
    /// universe's journal is replaced by it in the same transaction.
    pub fn save_world(
        &self,
        world: &WorldRecord,
        snapshot: &UniverseSnapshot,
        checkpoint: Option<&[JournalRecord]>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut worlds = tx.open_table(WORLDS)?;
            if worlds.get(world.id.as_u128())?.is_none() {
                return Err(StoreError::NotFound);
            }
            worlds.insert(world.id.as_u128(), json(world).as_slice())?;
            tx.open_table(UNIVERSES)?
                .insert(world.id.as_u128(), snapshot.encode().as_slice())?;
            if let Some(checkpoint) = checkpoint {
                replace_journal(&mut tx.open_table(JOURNAL)?, world.id, checkpoint)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Updates a world's record only (its activity time).
    pub fn touch_world(&self, world: &WorldRecord) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut worlds = tx.open_table(WORLDS)?;
            if worlds.get(world.id.as_u128())?.is_none() {
                return Err(StoreError::NotFound);
            }
            worlds.insert(world.id.as_u128(), json(world).as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// One world.
    pub fn world(&self, id: UniverseId) -> Result<Option<WorldRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(WORLDS)?;
        let value = table.get(id.as_u128())?;
        value.map(|v| parse(v.value(), "world")).transpose()
    }

    /// Every world, in id order.
    pub fn worlds(&self) -> Result<Vec<WorldRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(WORLDS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_, v) = row?;
            out.push(parse(v.value(), "world")?);
        }
        Ok(out)
    }

    /// Removes a world, its name and its universe together.
    pub fn delete_world(&self, id: UniverseId) -> Result<WorldRecord, StoreError> {
        let tx = self.db.begin_write()?;
        let world: WorldRecord = {
            let mut worlds = tx.open_table(WORLDS)?;
            let world: WorldRecord = match worlds.remove(id.as_u128())? {
                Some(v) => parse(v.value(), "world")?,
                None => return Err(StoreError::NotFound),
            };
            let name = world.name.to_lowercase();
            tx.open_table(WORLD_NAMES)?
                .remove((world.owner.as_u128(), name.as_str()))?;
            tx.open_table(UNIVERSES)?.remove(id.as_u128())?;
            world
        };
        tx.commit()?;
        Ok(world)
    }

    // ----- rooms -----

    /// Stores a room's settings.
    pub fn put_room(&self, record: &RoomRecord) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(ROOMS)?
            .insert(record.config.id.as_str(), json(record).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// A room's stored settings.
    pub fn room(&self, id: &RoomId) -> Result<Option<RoomRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ROOMS)?;
        let value = table.get(id.as_str())?;
        value.map(|v| parse(v.value(), "room")).transpose()
    }

    /// Rooms with stored settings.
    pub fn room_count(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(ROOMS)?.len()?)
    }

    // ----- chat -----

    /// Appends a chat message durably.
    pub fn append_chat(&self, room: &RoomId, message: &ChatMessage) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(CHAT)?
            .insert((room.as_str(), message.seq), json(message).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// The newest messages of a room (up to `limit`), oldest first.
    pub fn chat(&self, room: &RoomId, limit: usize) -> Result<Vec<ChatMessage>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CHAT)?;
        let mut newest = Vec::new();
        for row in table
            .range((room.as_str(), 0)..=(room.as_str(), u64::MAX))?
            .rev()
            .take(limit)
        {
            let (_, v) = row?;
            newest.push(parse(v.value(), "chat message")?);
        }
        newest.reverse();
        Ok(newest)
    }
}

impl Store {
    /// Appends transfer journal records of a universe's engine, durably, in one transaction.
    pub fn append_journal(
        &self,
        universe: UniverseId,
        records: &[JournalRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(JOURNAL)?;
            let key = universe.as_u128();
            let next = table
                .range((key, 0)..=(key, u64::MAX))?
                .next_back()
                .transpose()?
                .map_or(0, |(k, _)| k.value().1 + 1);
            for (n, record) in (next..).zip(records) {
                table.insert((key, n), bitcode::encode(record).as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every journal record of a universe's engine, in the order written.
    pub fn journal(&self, universe: UniverseId) -> Result<Vec<JournalRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(JOURNAL)?;
        let key = universe.as_u128();
        let mut out = Vec::new();
        for row in table.range((key, 0)..=(key, u64::MAX))? {
            let (_, v) = row?;
            out.push(
                bitcode::decode(v.value())
                    .map_err(|e| StoreError::Corrupt(format!("journal of {universe}: {e}")))?,
            );
        }
        Ok(out)
    }

    /// Saves a universe and replaces its journal with `checkpoint` in one transaction (the
    /// engine's compaction rule: the checkpoint is only valid together with that save).
    pub fn save_with_checkpoint(
        &self,
        snapshot: &UniverseSnapshot,
        checkpoint: &[JournalRecord],
    ) -> Result<(), StoreError> {
        let key = snapshot.config.id.as_u128();
        let tx = self.db.begin_write()?;
        {
            replace_journal(&mut tx.open_table(JOURNAL)?, snapshot.config.id, checkpoint)?;
            tx.open_table(UNIVERSES)?
                .insert(key, snapshot.encode().as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl Store {
    /// Stores a passage (replacing its previous record).
    pub fn put_passage(&self, record: &crate::passages::PassageRecord) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(PASSAGES)?
            .insert(record.request.passage.as_u128(), json(record).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Every stored passage.
    pub fn passages(&self) -> Result<Vec<crate::passages::PassageRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(PASSAGES)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (_, v) = row?;
            out.push(parse(v.value(), "passage")?);
        }
        Ok(out)
    }
}

fn replace_journal(
    table: &mut redb::Table<'_, (u128, u64), &[u8]>,
    universe: UniverseId,
    records: &[JournalRecord],
) -> Result<(), StoreError> {
    let key = universe.as_u128();
    table.retain_in((key, 0)..=(key, u64::MAX), |_, _| false)?;
    for (n, record) in records.iter().enumerate() {
        table.insert((key, n as u64), bitcode::encode(record).as_slice())?;
    }
    Ok(())
}

impl crate::chat_store::ChatStore for Store {
    fn load(&self, room: &RoomId) -> std::io::Result<Vec<ChatMessage>> {
        Ok(self.chat(room, CHAT_MEMORY)?)
    }

    fn append(&self, room: &RoomId, message: &ChatMessage) -> std::io::Result<()> {
        Ok(self.append_chat(room, message)?)
    }

    fn load_settings(&self, room: &RoomId) -> std::io::Result<Option<RoomRecord>> {
        Ok(self.room(room)?)
    }

    fn save_settings(&self, record: &RoomRecord) -> std::io::Result<()> {
        Ok(self.put_room(record)?)
    }
}
