//! What rooms need from storage: their chat history and settings. The peer passes its redb
//! [`crate::store::Store`]; room tests can pass anything that keeps them.

use std::io;

use multiverse_core::ids::RoomId;
use multiverse_core::room::{ChatMessage, RoomRecord};

/// Durable chat history and room settings.
pub trait ChatStore: Send + Sync + std::fmt::Debug {
    /// The newest messages of a room (up to [`multiverse_core::room::CHAT_MEMORY`]), oldest
    /// first.
    fn load(&self, room: &RoomId) -> io::Result<Vec<ChatMessage>>;
    /// Stores a message durably; returns only once it would survive a crash.
    fn append(&self, room: &RoomId, message: &ChatMessage) -> io::Result<()>;
    /// The room's stored settings (owner, invites, access), if any.
    fn load_settings(&self, room: &RoomId) -> io::Result<Option<RoomRecord>>;
    /// Stores the room's settings durably.
    fn save_settings(&self, record: &RoomRecord) -> io::Result<()>;
}
