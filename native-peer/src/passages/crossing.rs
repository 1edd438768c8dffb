//! Which passage an entity may cross between two peers through, on both sides of a transfer.
//!
//! * **Source** ([`transfer_passage`]): a transfer to a universe on a linked peer names an
//!   open passage between the two universes whose grant allows full (or collaborative)
//!   interaction; one is looked up when the caller names none. Either direction counts: a
//!   passage opened from `a` to `b` carries entities `a → b` and back `b → a`.
//! * **Target** ([`admit_arrival`]): an arrival from a linked peer must name such a passage
//!   with that peer at its other end; otherwise it is nacked `passage_closed` (or `rejected`
//!   when the passage is open but grants less than full interaction) and goes home. A
//!   prepare through a passage that was open and is reconnecting (the link dropped) waits
//!   instead ([`reconnecting`]): the source resends it until its deadline.
//!
//! Transfers between two universes of the same peer need no passage (nothing crosses a
//! link); the host never asks this module about them.

use multiverse_core::federation::PassageState;
use multiverse_core::ids::{PassageId, PeerId, UniverseId};
use multiverse_core::stream::InteractionMode;
use multiverse_core::wire::NackReason;

use super::{PassageTable, PassageView};

/// Why no passage lets an entity cross to a linked peer's universe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrossingError {
    /// The passage named is not open between the two universes, or grants less than full
    /// interaction.
    #[error("passage {0} is not open between these universes, or does not grant full interaction")]
    PassageClosed(PassageId),
    /// No passage was named and no open passage between the two universes grants full
    /// interaction; `granted` is the most interaction an open one grants, if any is open.
    #[error("no open passage between these universes grants full interaction")]
    NoPassage {
        /// The most interaction an open passage between them grants (less than full).
        granted: Option<InteractionMode>,
    },
}

fn is_open(p: &PassageView) -> bool {
    matches!(p.state, PassageState::Connected | PassageState::Degraded)
}

/// Whether `p` connects universes `a` and `b`, either way.
fn connects(p: &PassageView, a: UniverseId, b: UniverseId) -> bool {
    (p.from_universe == a && p.to_universe == b) || (p.from_universe == b && p.to_universe == a)
}

/// Whether `p`'s grant lets entities cross: full or collaborative interaction.
fn grants_transfers(p: &PassageView) -> bool {
    p.grant
        .as_ref()
        .is_some_and(|g| g.interaction >= InteractionMode::Full)
}

/// Source side: the passage a transfer from `from` here to `to` on linked peer `peer` goes
/// through — `wanted` if it qualifies, else (when `wanted` is `None`) the first open
/// passage between the two universes, with `peer` at its other end, that grants full
/// interaction.
pub fn transfer_passage(
    table: &PassageTable,
    peer: PeerId,
    from: UniverseId,
    to: UniverseId,
    wanted: Option<PassageId>,
) -> Result<PassageId, CrossingError> {
    let table = table.lock().expect("passages lock");
    let mut between = table
        .values()
        .filter(|p| p.remote == peer && connects(p, from, to) && is_open(p));
    if let Some(id) = wanted {
        return between
            .find(|p| p.id == id && grants_transfers(p))
            .map(|p| p.id)
            .ok_or(CrossingError::PassageClosed(id));
    }
    let mut granted = None;
    for p in between {
        if grants_transfers(p) {
            return Ok(p.id);
        }
        let mode = p.grant.as_ref().map(|g| g.interaction);
        granted = granted.max(mode);
    }
    Err(CrossingError::NoPassage { granted })
}

/// Target side: whether an entity from universe `from` on linked peer `peer` may arrive in
/// `universe` through `passage` (see the module docs for the answers).
pub fn admit_arrival(
    table: &PassageTable,
    peer: PeerId,
    passage: PassageId,
    from: UniverseId,
    universe: UniverseId,
) -> Result<(), NackReason> {
    let table = table.lock().expect("passages lock");
    let p = table
        .get(&passage)
        .filter(|p| p.remote == peer && connects(p, from, universe) && is_open(p))
        .ok_or(NackReason::PassageClosed)?;
    if !grants_transfers(p) {
        return Err(NackReason::Rejected);
    }
    Ok(())
}

/// Target side: whether `passage` from `peer` was open and is reconnecting (its link
/// dropped): a prepare through it is held back rather than refused, since the source
/// resends it until its deadline and the passage is likely back by then.
pub fn reconnecting(table: &PassageTable, peer: PeerId, passage: PassageId) -> bool {
    let table = table.lock().expect("passages lock");
    table.get(&passage).is_some_and(|p| {
        p.remote == peer && p.state == PassageState::Connecting && p.grant.is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passages::PassageView;
    use multiverse_core::federation::{CrossingCost, PassageRole};
    use multiverse_core::stream::ViewMode;
    use multiverse_core::wire::PassageGrant;

    const A: UniverseId = UniverseId::from_u128(1);
    const B: UniverseId = UniverseId::from_u128(2);
    const C: UniverseId = UniverseId::from_u128(3);
    const PEER: PeerId = PeerId::from_u128(9);
    const OTHER: PeerId = PeerId::from_u128(8);

    fn passage(id: u128, state: PassageState, interaction: Option<InteractionMode>) -> PassageView {
        let grant = interaction.map(|interaction| PassageGrant {
            passage: PassageId::from_u128(id),
            view: Some(ViewMode::Participate),
            interaction,
            score: 1.0,
            costs: CrossingCost {
                base: 20.0,
                creation: 6.0,
                traversal: 2.0,
            },
        });
        PassageView {
            id: PassageId::from_u128(id),
            role: PassageRole::Opener,
            remote: PEER,
            from_universe: A,
            to_universe: B,
            state,
            health: 1.0,
            error: None,
            grant,
        }
    }

    fn table(passages: Vec<PassageView>) -> PassageTable {
        let t = PassageTable::default();
        t.lock()
            .unwrap()
            .extend(passages.into_iter().map(|p| (p.id, p)));
        t
    }

    #[test]
    fn the_source_finds_an_open_passage_with_full_interaction_either_way() {
        use InteractionMode::{Collaborative, Full, Limited};
        let t = table(vec![
            passage(10, PassageState::Connected, Some(Limited)),
            passage(11, PassageState::Closed, Some(Full)),
            passage(12, PassageState::Degraded, Some(Collaborative)),
        ]);
        let id = PassageId::from_u128(12);
        assert_eq!(transfer_passage(&t, PEER, A, B, None), Ok(id));
        assert_eq!(transfer_passage(&t, PEER, B, A, None), Ok(id));
        assert_eq!(transfer_passage(&t, PEER, A, B, Some(id)), Ok(id));
        let closed = PassageId::from_u128(11);
        assert_eq!(
            transfer_passage(&t, PEER, A, B, Some(closed)),
            Err(CrossingError::PassageClosed(closed))
        );
        assert_eq!(
            transfer_passage(&t, OTHER, A, B, None),
            Err(CrossingError::NoPassage { granted: None })
        );
        assert_eq!(
            transfer_passage(&t, PEER, A, C, None),
            Err(CrossingError::NoPassage { granted: None })
        );
        let limited = table(vec![passage(10, PassageState::Connected, Some(Limited))]);
        assert_eq!(
            transfer_passage(&limited, PEER, A, B, None),
            Err(CrossingError::NoPassage {
                granted: Some(Limited)
            })
        );
    }

    #[test]
    fn the_target_refuses_unknown_closed_foreign_and_view_only_passages() {
        use InteractionMode::{Full, Limited};
        let t = table(vec![
            passage(10, PassageState::Connected, Some(Limited)),
            passage(11, PassageState::Closed, Some(Full)),
            passage(12, PassageState::Connected, Some(Full)),
            passage(13, PassageState::Connecting, Some(Full)),
        ]);
        let id = PassageId::from_u128;
        assert_eq!(admit_arrival(&t, PEER, id(12), A, B), Ok(()));
        assert_eq!(admit_arrival(&t, PEER, id(12), B, A), Ok(()));
        let closed = Err(NackReason::PassageClosed);
        assert_eq!(admit_arrival(&t, PEER, id(99), A, B), closed);
        assert_eq!(admit_arrival(&t, PEER, id(11), A, B), closed);
        assert_eq!(admit_arrival(&t, OTHER, id(12), A, B), closed);
        assert_eq!(admit_arrival(&t, PEER, id(12), C, B), closed);
        assert_eq!(admit_arrival(&t, PEER, id(13), A, B), closed);
        assert_eq!(
            admit_arrival(&t, PEER, id(10), A, B),
            Err(NackReason::Rejected)
        );
        assert!(reconnecting(&t, PEER, id(13)));
        assert!(!reconnecting(&t, OTHER, id(13)));
        assert!(!reconnecting(&t, PEER, id(12)));
        assert!(!reconnecting(&t, PEER, id(99)));
    }
}
