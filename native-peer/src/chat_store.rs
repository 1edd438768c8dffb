//! Where chat history lives between restarts.
//!
//! [`ChatStore`] is the seam the persistence issue's redb store will implement; until then
//! [`FileChatStore`] keeps one append-only JSON-lines file per room in the data dir and
//! syncs it to disk before a message is acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;

use multiverse_core::ids::RoomId;
use multiverse_core::room::{ChatMessage, CHAT_MEMORY};

/// Durable chat history.
pub trait ChatStore: Send + Sync + std::fmt::Debug {
    /// The newest messages of a room (up to [`CHAT_MEMORY`]), oldest first.
    fn load(&self, room: &RoomId) -> io::Result<Vec<ChatMessage>>;
    /// Stores a message durably; returns only once it would survive a crash.
    fn append(&self, room: &RoomId, message: &ChatMessage) -> io::Result<()>;
}

/// One `<room>.jsonl` file per room under `<data dir>/chat/`.
#[derive(Debug)]
pub struct FileChatStore {
    dir: PathBuf,
}

impl FileChatStore {
    /// A store in `dir` (created if missing).
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(FileChatStore { dir })
    }

    fn path(&self, room: &RoomId) -> PathBuf {
        // Room ids are slugs of [a-z0-9_-]: safe as file names.
        self.dir.join(format!("{room}.jsonl"))
    }
}

impl ChatStore for FileChatStore {
    fn load(&self, room: &RoomId) -> io::Result<Vec<ChatMessage>> {
        let file = match File::open(self.path(room)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut messages = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line?;
            match serde_json::from_str::<ChatMessage>(&line) {
                Ok(m) => messages.push(m),
                // A crash can cut the last line short; it was never acknowledged.
                Err(e) => {
                    tracing::warn!(%room, line = n + 1, "skipping unreadable chat record: {e}")
                }
            }
        }
        let skip = messages.len().saturating_sub(CHAT_MEMORY);
        Ok(messages.split_off(skip))
    }

    fn append(&self, room: &RoomId, message: &ChatMessage) -> io::Result<()> {
        let mut line = serde_json::to_vec(message).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(room))?;
        file.write_all(&line)?;
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multiverse_core::ids::{ClientId, MessageId};

    #[test]
    fn messages_survive_reopening_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let room = RoomId::new("den").unwrap();
        let store = FileChatStore::open(dir.path().to_path_buf()).unwrap();
        for seq in 1..=3 {
            let m = ChatMessage {
                seq,
                id: MessageId::from_u128(seq.into()),
                from: ClientId::from_u128(1),
                name: "a".into(),
                text: format!("#{seq}"),
                at_ms: 0,
            };
            store.append(&room, &m).unwrap();
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(store.path(&room))
            .unwrap();
        f.write_all(b"{\"seq\":4,\"id\":").unwrap();
        let reopened = FileChatStore::open(dir.path().to_path_buf()).unwrap();
        let seqs: Vec<u64> = reopened
            .load(&room)
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert!(reopened
            .load(&RoomId::new("empty").unwrap())
            .unwrap()
            .is_empty());
    }
}
