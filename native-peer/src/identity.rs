//! The peer's stable identity, kept in its data dir so other peers recognise it after a
//! restart.

use std::io;
use std::path::Path;

use multiverse_core::ids::PeerId;

const PEER_ID_FILE: &str = "peer-id";

/// Reads the peer id from `data_dir`, creating the dir and a fresh random id on first start.
/// The file is written to a temporary name, synced, then renamed, so a crash never leaves a
/// half-written id behind.
pub fn load_or_create_peer_id(data_dir: &Path) -> io::Result<PeerId> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(PEER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is corrupt ({e}); delete it to get a new peer id",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = PeerId::from_u128(uuid::Uuid::new_v4().as_u128());
            let tmp = data_dir.join(format!("{PEER_ID_FILE}.tmp"));
            {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                writeln!(f, "{id}")?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_survives_a_restart_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_peer_id(dir.path()).unwrap();
        assert_eq!(load_or_create_peer_id(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join(PEER_ID_FILE), "garbage").unwrap();
        let err = load_or_create_peer_id(dir.path()).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
