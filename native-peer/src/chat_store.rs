//! Where chat history lives between restarts: the seam between rooms and the store.
//!
//! Rooms only need [`ChatStore`]; the peer passes its redb [`crate::store::Store`], and room
//! tests can pass anything that keeps messages.

use std::io;

use multiverse_core::ids::RoomId;
use multiverse_core::room::ChatMessage;

/// Durable chat history.
pub trait ChatStore: Send + Sync + std::fmt::Debug {
    /// The newest messages of a room (up to [`multiverse_core::room::CHAT_MEMORY`]), oldest
    /// first.
    fn load(&self, room: &RoomId) -> io::Result<Vec<ChatMessage>>;
    /// Stores a message durably; returns only once it would survive a crash.
    fn append(&self, room: &RoomId, message: &ChatMessage) -> io::Result<()>;
}
