//! Who may open a passage into a universe, and what they are granted: the owner's side of
//! the passage handshake.
//!
//! The owner keeps one [`PassagePolicy`] per universe. [`PassagePolicy::evaluate`] turns an
//! incoming [`PassageRequest`] into an [`Admission`]: checks run in this order, the first
//! failure decides — the universe exists, the request is well formed, the access policy
//! admits passages at all, the opener authenticates, the universes are compatible. What is
//! granted is never more than what was asked nor more than the policy allows.
//!
//! | access | listed in `universes` | passages |
//! |---|---|---|
//! | public | yes | anyone who satisfies `auth` |
//! | shared | no (the opener must know the id) | anyone who satisfies `auth` |
//! | private | no | only with an `auth` other than [`PassageAuth::None`] |

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::compat::Compatibility;
use crate::ids::PeerId;
use crate::room::AccessPolicy;
use crate::stream::{InteractionMode, ViewMode};
use crate::universe::UniverseConfig;
use crate::wire::{PassageGrant, PassageRejectReason, PassageRequest};

/// A password as the owner stores it: a salted blake3 hash, never the text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash {
    salt: [u8; 16],
    hash: [u8; 32],
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(…)")
    }
}

impl PasswordHash {
    /// Hashes `password` with `salt` (fresh randomness from the driver).
    pub fn new(password: &str, salt: [u8; 16]) -> Self {
        PasswordHash {
            salt,
            hash: *Self::digest(password, &salt).as_bytes(),
        }
    }

    /// Whether `password` is the one hashed (compared in constant time).
    pub fn verify(&self, password: &str) -> bool {
        // `blake3::Hash` compares in constant time.
        Self::digest(password, &self.salt) == blake3::Hash::from_bytes(self.hash)
    }

    fn digest(password: &str, salt: &[u8; 16]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_derive_key("multiverse 2026 passage password v1");
        h.update(salt);
        h.update(password.as_bytes());
        h.finalize()
    }
}

/// How an opener proves it may open a passage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PassageAuth {
    /// Nothing to prove (not allowed for private universes).
    #[default]
    None,
    /// The request must carry this password.
    Password(PasswordHash),
    /// Only these peers.
    AllowList(BTreeSet<PeerId>),
    /// The owner approves each request: the passage waits in
    /// [`super::PassageState::PendingApproval`].
    Approval,
}

/// The owner's rules for passages into one universe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassagePolicy {
    /// Who may open passages (see the module table).
    pub access: AccessPolicy,
    /// How openers authenticate.
    pub auth: PassageAuth,
    /// The most view granted (`None`: no portal views at all).
    pub max_view: Option<ViewMode>,
    /// The most interaction granted.
    pub max_interaction: InteractionMode,
}

impl Default for PassagePolicy {
    /// Shared, no auth, participate with full interaction.
    fn default() -> Self {
        PassagePolicy {
            access: AccessPolicy::Shared,
            auth: PassageAuth::None,
            max_view: Some(ViewMode::Participate),
            max_interaction: InteractionMode::Full,
        }
    }
}

/// The owner's answer to a passage request.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Open it with this grant.
    Accept(PassageGrant),
    /// Ask the owner; on approval, open it with this grant.
    Pending(PassageGrant),
    /// Refuse.
    Reject {
        /// Machine-readable reason.
        reason: PassageRejectReason,
        /// For people.
        message: String,
    },
}

impl PassagePolicy {
    /// Whether the universe appears in `universes` answers.
    pub fn is_listed(&self) -> bool {
        self.access == AccessPolicy::Public
    }

    /// Decides a request from `from` into the universe configured as `local` (`None`: no
    /// such universe here). See the module docs for the order of checks.
    pub fn evaluate(
        &self,
        from: PeerId,
        request: &PassageRequest,
        local: Option<&UniverseConfig>,
    ) -> Admission {
        let reject = |reason, message: &str| Admission::Reject {
            reason,
            message: message.to_owned(),
        };
        let Some(local) = local.filter(|c| c.id == request.to_universe) else {
            return reject(
                PassageRejectReason::UniverseNotFound,
                "no such universe here",
            );
        };
        if !(1..=60).contains(&request.sync_hz) {
            return reject(PassageRejectReason::Invalid, "sync_hz must be 1-60");
        }
        if self.access == AccessPolicy::Private && self.auth == PassageAuth::None {
            return reject(
                PassageRejectReason::Private,
                "this universe is private and admits no passages",
            );
        }
        let authenticated = match &self.auth {
            PassageAuth::None | PassageAuth::Approval => true,
            PassageAuth::Password(hash) => {
                request.password.as_deref().is_some_and(|p| hash.verify(p))
            }
            PassageAuth::AllowList(peers) => peers.contains(&from),
        };
        if !authenticated {
            return reject(
                PassageRejectReason::Unauthorized,
                "wrong or missing password, or this peer is not allowed",
            );
        }
        let compatibility = Compatibility::between(&request.from_config, local);
        if let Err(message) = compatibility.check() {
            return reject(PassageRejectReason::Incompatible, &message);
        }
        let view = least_view(request.view, self.max_view);
        let interaction = match view {
            Some(ViewMode::Participate) => request.interaction.min(self.max_interaction),
            _ => InteractionMode::None,
        };
        let grant = PassageGrant {
            passage: request.passage,
            view,
            interaction,
            score: compatibility.score(),
            costs: compatibility.costs(),
        };
        if self.auth == PassageAuth::Approval {
            Admission::Pending(grant)
        } else {
            Admission::Accept(grant)
        }
    }
}

/// The lesser of two view modes (`None` < observe < participate).
pub fn least_view(a: Option<ViewMode>, b: Option<ViewMode>) -> Option<ViewMode> {
    let rank = |v: Option<ViewMode>| match v {
        None => 0,
        Some(ViewMode::Observe) => 1,
        Some(ViewMode::Participate) => 2,
    };
    if rank(a) <= rank(b) {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PassageId, UniverseId};
    use crate::universe::{demo_universe, DemoKind};

    fn local() -> UniverseConfig {
        demo_universe(DemoKind::Aquarium, UniverseId(2), 0, 500.0, 1)
            .config()
            .clone()
    }

    fn request(password: Option<&str>) -> PassageRequest {
        PassageRequest {
            passage: PassageId(9),
            from_universe: UniverseId(1),
            from_config: demo_universe(DemoKind::Sandbox, UniverseId(1), 0, 500.0, 1)
                .config()
                .clone(),
            to_universe: UniverseId(2),
            view: Some(ViewMode::Participate),
            interaction: InteractionMode::Collaborative,
            sync_hz: 10,
            password: password.map(str::to_owned),
        }
    }

    fn reason(a: Admission) -> PassageRejectReason {
        match a {
            Admission::Reject { reason, .. } => reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn passwords_are_stored_hashed_and_checked() {
        let hash = PasswordHash::new("hunter2", [7; 16]);
        assert!(hash.verify("hunter2"));
        assert!(!hash.verify("hunter3"));
        assert_ne!(hash, PasswordHash::new("hunter2", [8; 16]), "salted");
        let stored = serde_json::to_string(&hash).unwrap();
        assert!(!stored.contains("hunter2"));
        assert_eq!(format!("{hash:?}"), "PasswordHash(…)");
        let policy = PassagePolicy {
            auth: PassageAuth::Password(hash),
            ..PassagePolicy::default()
        };
        let peer = PeerId(1);
        assert!(matches!(
            policy.evaluate(peer, &request(Some("hunter2")), Some(&local())),
            Admission::Accept(_)
        ));
        for wrong in [None, Some("nope")] {
            let a = policy.evaluate(peer, &request(wrong), Some(&local()));
            assert_eq!(reason(a), PassageRejectReason::Unauthorized);
        }
    }

    #[test]
    fn allow_lists_approval_and_private_access() {
        let allowed = PassagePolicy {
            access: AccessPolicy::Private,
            auth: PassageAuth::AllowList([PeerId(1)].into()),
            ..PassagePolicy::default()
        };
        assert!(matches!(
            allowed.evaluate(PeerId(1), &request(None), Some(&local())),
            Admission::Accept(_)
        ));
        let other = allowed.evaluate(PeerId(2), &request(None), Some(&local()));
        assert_eq!(reason(other), PassageRejectReason::Unauthorized);
        let private = PassagePolicy {
            access: AccessPolicy::Private,
            ..PassagePolicy::default()
        };
        let a = private.evaluate(PeerId(1), &request(None), Some(&local()));
        assert_eq!(reason(a), PassageRejectReason::Private);
        assert!(!private.is_listed());
        let approval = PassagePolicy {
            auth: PassageAuth::Approval,
            ..PassagePolicy::default()
        };
        assert!(matches!(
            approval.evaluate(PeerId(3), &request(None), Some(&local())),
            Admission::Pending(_)
        ));
    }

    #[test]
    fn grants_never_exceed_the_request_or_the_policy() {
        let policy = PassagePolicy {
            access: AccessPolicy::Public,
            max_view: Some(ViewMode::Participate),
            max_interaction: InteractionMode::Limited,
            ..PassagePolicy::default()
        };
        assert!(policy.is_listed());
        let Admission::Accept(g) = policy.evaluate(PeerId(1), &request(None), Some(&local()))
        else {
            panic!("accepted")
        };
        assert_eq!(g.view, Some(ViewMode::Participate));
        assert_eq!(g.interaction, InteractionMode::Limited);
        assert!(g.score > 0.0 && g.costs.base > 10.0);
        let mut observe = request(None);
        observe.view = Some(ViewMode::Observe);
        let Admission::Accept(g) = policy.evaluate(PeerId(1), &observe, Some(&local())) else {
            panic!("accepted")
        };
        assert_eq!(g.interaction, InteractionMode::None, "observers do not act");
    }

    #[test]
    fn unknown_invalid_and_incompatible_requests_are_refused_with_reasons() {
        let policy = PassagePolicy::default();
        let a = policy.evaluate(PeerId(1), &request(None), None);
        assert_eq!(reason(a), PassageRejectReason::UniverseNotFound);
        let mut bad = request(None);
        bad.sync_hz = 0;
        assert_eq!(
            reason(policy.evaluate(PeerId(1), &bad, Some(&local()))),
            PassageRejectReason::Invalid
        );
        let mut far = request(None);
        far.from_config.time_scale = 50.0;
        match policy.evaluate(PeerId(1), &far, Some(&local())) {
            Admission::Reject { reason, message } => {
                assert_eq!(reason, PassageRejectReason::Incompatible);
                assert!(message.contains("time scale"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
