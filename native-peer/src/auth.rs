//! Signed session tokens: a user id the peer chose, and an HMAC-SHA256 over it with a key
//! that never leaves the data dir. Whoever holds the token acts as that user; nobody can
//! mint one for an id they were not given, and a token from another peer is refused.
//!
//! Token: `<user id as 32 hex digits>.<HMAC-SHA256(key, "multiverse-session-v1:" + id) as 64
//! hex digits>`.

use std::io::{self, Write};
use std::path::Path;

use hmac::{Hmac, Mac};
use multiverse_core::ids::{ClientId, UserId};
use sha2::Sha256;

const KEY_FILE: &str = "session.key";
const CONTEXT: &[u8] = b"multiverse-session-v1:";

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `<id>.<mac>`.
    #[error("the session token is malformed")]
    Malformed,
    /// The signature does not match (forged, damaged, or issued by another peer).
    #[error("the session token was not issued by this peer")]
    BadSignature,
}

/// Issues and checks session tokens with the peer's key.
#[derive(Clone)]
pub struct SessionKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    /// Reads `<data dir>/session.key`, creating it (32 random bytes, mode 0600, written to a
    /// temporary name, synced, renamed) on first start.
    pub fn load_or_create(data_dir: &Path) -> io::Result<Self> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.try_into().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} is not 32 bytes; delete it to sign everyone out",
                            path.display()
                        ),
                    )
                })?;
                Ok(SessionKeys { key })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)?;
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(io::Error::other)?;
                let tmp = data_dir.join(format!("{KEY_FILE}.tmp"));
                {
                    let mut options = std::fs::OpenOptions::new();
                    options.write(true).create(true).truncate(true);
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                    let mut f = options.open(&tmp)?;
                    f.write_all(&key)?;
                    f.sync_all()?;
                }
                std::fs::rename(&tmp, &path)?;
                Ok(SessionKeys { key })
            }
            Err(e) => Err(e),
        }
    }

    /// A key for tests.
    pub fn from_key(key: [u8; 32]) -> Self {
        SessionKeys { key }
    }

    fn mac(&self, user: UserId) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length works");
        mac.update(CONTEXT);
        mac.update(user.as_u128().to_be_bytes().as_slice());
        mac
    }

    /// The user an unauthenticated connection acts as: derived from its client id with the
    /// key, so it can never be made to equal a user id the peer issued.
    pub fn guest(&self, client: ClientId) -> UserId {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length works");
        mac.update(b"multiverse-guest-v1:");
        mac.update(client.as_u128().to_be_bytes().as_slice());
        let tag = mac.finalize().into_bytes();
        let mut bits = [0u8; 16];
        bits.copy_from_slice(&tag[..16]);
        UserId::from_u128(u128::from_be_bytes(bits))
    }

    /// The user a visitor from another peer acts as here: derived from that peer's id and
    /// its user id with the key, so no remote peer can act as one of our users.
    pub fn visitor(&self, peer: multiverse_core::ids::PeerId, user: UserId) -> UserId {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length works");
        mac.update(b"multiverse-visitor-v1:");
        mac.update(peer.as_u128().to_be_bytes().as_slice());
        mac.update(user.as_u128().to_be_bytes().as_slice());
        let tag = mac.finalize().into_bytes();
        let mut bits = [0u8; 16];
        bits.copy_from_slice(&tag[..16]);
        UserId::from_u128(u128::from_be_bytes(bits))
    }

    /// The token for `user`.
    pub fn issue(&self, user: UserId) -> String {
        let tag = self.mac(user).finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("{:032x}.{hex}", user.as_u128())
    }

    /// The user a token speaks for, if this peer signed it (compared in constant time).
    pub fn verify(&self, token: &str) -> Result<UserId, TokenError> {
        let (id, tag) = token.trim().split_once('.').ok_or(TokenError::Malformed)?;
        if id.len() != 32 || tag.len() != 64 {
            return Err(TokenError::Malformed);
        }
        let user =
            UserId::from_u128(u128::from_str_radix(id, 16).map_err(|_| TokenError::Malformed)?);
        let tag: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&tag[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| TokenError::Malformed)?;
        self.mac(user)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_the_issuing_key_and_id() {
        let keys = SessionKeys::from_key([7; 32]);
        let user = UserId::from_u128(0xabc);
        let token = keys.issue(user);
        assert_eq!(keys.verify(&token), Ok(user));
        // Claiming another id with the same signature fails.
        let forged = format!("{:032x}{}", 0xabd, &token[32..]);
        assert_eq!(keys.verify(&forged), Err(TokenError::BadSignature));
        // Another peer's key fails.
        assert_eq!(
            SessionKeys::from_key([8; 32]).verify(&token),
            Err(TokenError::BadSignature)
        );
        for bad in [
            "",
            "x",
            "abc.def",
            &token[..token.len() - 1],
            &token.replace('.', ""),
        ] {
            assert_eq!(keys.verify(bad), Err(TokenError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn the_key_survives_restarts_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = SessionKeys::load_or_create(dir.path()).unwrap();
        let b = SessionKeys::load_or_create(dir.path()).unwrap();
        let user = UserId::from_u128(1);
        assert_eq!(b.verify(&a.issue(user)), Ok(user));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        assert!(SessionKeys::load_or_create(dir.path()).is_err());
    }
}
