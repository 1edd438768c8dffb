//! Who hears whom: avatar-distance hearing sets with hysteresis.
//!
//! Every room member has an avatar in the room's universe. A *listener* hears a *speaker*
//! (a member publishing audio) when their avatars are close: the speaker enters the
//! listener's **hearing set** at [`HEARING_RADIUS`] world units and leaves it only beyond
//! `HEARING_RADIUS + HEARING_HYSTERESIS`. The band in between is the hysteresis: a speaker
//! pacing along the edge of earshot does not flap in and out, so the SFU does not start and
//! stop forwarding (and the browser does not renegotiate) on every step.
//!
//! The radius matches what the browser does with the sound anyway: each remote voice goes
//! through a `PannerNode` (inverse distance model, [`PANNER_REF_DISTANCE`],
//! [`PANNER_MAX_DISTANCE`], [`PANNER_ROLLOFF`], in audio units), and a speaker at the
//! panner's maximum distance is as quiet as it gets, so forwarding it further is wasted
//! bandwidth. [`panner_position`] converts world offsets to audio units
//! ([`WORLD_UNITS_PER_AUDIO_UNIT`]).
//!
//! [`hearing_set`] is the pure rule for one listener; [`HearingTable`] applies it to every
//! listener once per universe tick and reports only the sets that changed. Both are generic
//! over the member key (a client id, a membership number) and use ordered collections, so
//! results are deterministic.

use std::collections::{BTreeMap, BTreeSet};

use crate::universe::Vec2;

/// World units per audio unit: the scale between universe coordinates and the browser's
/// `PannerNode` coordinates.
pub const WORLD_UNITS_PER_AUDIO_UNIT: f32 = 2.0;
/// `PannerNode.refDistance`, audio units: closer than this, a voice is at full volume.
pub const PANNER_REF_DISTANCE: f32 = 10.0;
/// `PannerNode.maxDistance`, audio units: beyond this, a voice gets no quieter.
pub const PANNER_MAX_DISTANCE: f32 = 100.0;
/// `PannerNode.rolloffFactor` of the inverse distance model.
pub const PANNER_ROLLOFF: f32 = 2.0;
/// Distance, world units, within which a speaker enters a hearing set (200): the panner's
/// maximum distance in world units.
pub const HEARING_RADIUS: f32 = PANNER_MAX_DISTANCE * WORLD_UNITS_PER_AUDIO_UNIT;
/// Extra distance, world units, a speaker already heard may move away before it leaves the
/// hearing set (20).
pub const HEARING_HYSTERESIS: f32 = 20.0;

/// The distances of the hearing rule, world units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HearingParams {
    /// A speaker this close (or closer) enters the set ([`HEARING_RADIUS`]).
    pub radius: f32,
    /// A speaker already in the set stays while within `radius + hysteresis`
    /// ([`HEARING_HYSTERESIS`]).
    pub hysteresis: f32,
}

impl Default for HearingParams {
    fn default() -> Self {
        HearingParams {
            radius: HEARING_RADIUS,
            hysteresis: HEARING_HYSTERESIS,
        }
    }
}

impl HearingParams {
    /// Whether a speaker at `distance` is heard, given whether it was heard before.
    /// Non-finite distances are never heard.
    pub fn hears(&self, distance: f32, was_heard: bool) -> bool {
        let limit = if was_heard {
            self.radius + self.hysteresis
        } else {
            self.radius
        };
        distance <= limit
    }
}

/// The speakers `listener` hears: everyone in `positions` but the listener itself within
/// `params.radius`, plus those of `previous` still within `radius + hysteresis`. Speakers
/// without a position are not heard; a listener without a position hears nobody.
pub fn hearing_set<K: Ord + Copy>(
    listener: K,
    positions: &BTreeMap<K, Vec2>,
    previous: &BTreeSet<K>,
    params: HearingParams,
) -> BTreeSet<K> {
    let candidates = positions.iter().map(|(k, p)| (*k, *p));
    hearing_among(
        listener,
        positions.get(&listener).copied(),
        candidates,
        previous,
        params,
    )
}

/// [`hearing_set`] over explicit candidates, with the listener's position given.
fn hearing_among<K: Ord + Copy>(
    listener: K,
    at: Option<Vec2>,
    candidates: impl Iterator<Item = (K, Vec2)>,
    previous: &BTreeSet<K>,
    params: HearingParams,
) -> BTreeSet<K> {
    let Some(at) = at else {
        return BTreeSet::new();
    };
    candidates
        .filter(|(k, p)| *k != listener && params.hears(at.distance(*p), previous.contains(k)))
        .map(|(k, _)| k)
        .collect()
}

/// Where the browser puts a speaker's `PannerNode`, audio units, with the listener at the
/// origin facing the default way: the world's x to the right, the world's y (downwards on
/// the canvas) along the audio z axis, nothing above or below.
pub fn panner_position(listener: Vec2, speaker: Vec2) -> [f32; 3] {
    [
        (speaker.x - listener.x) / WORLD_UNITS_PER_AUDIO_UNIT,
        0.0,
        (speaker.y - listener.y) / WORLD_UNITS_PER_AUDIO_UNIT,
    ]
}

/// The current hearing set of every listener, updated once per tick.
#[derive(Debug, Clone, PartialEq)]
pub struct HearingTable<K> {
    sets: BTreeMap<K, BTreeSet<K>>,
}

impl<K> Default for HearingTable<K> {
    fn default() -> Self {
        HearingTable {
            sets: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy> HearingTable<K> {
    /// No listeners yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Recomputes the set of each of `listeners`, who may hear any of `speakers` (the members
    /// publishing audio), from `positions` (avatar positions; members without one hear and
    /// are heard by nobody). Returns the listeners whose set changed, with the new set, in
    /// key order; a new listener counts as changed when its set is not empty. Listeners
    /// missing from `listeners` are forgotten without being reported.
    pub fn update(
        &mut self,
        listeners: impl IntoIterator<Item = K>,
        speakers: &BTreeSet<K>,
        positions: &BTreeMap<K, Vec2>,
        params: HearingParams,
    ) -> Vec<(K, BTreeSet<K>)> {
        let empty = BTreeSet::new();
        let mut next = BTreeMap::new();
        for listener in listeners {
            let previous = self.sets.get(&listener).unwrap_or(&empty);
            let candidates = speakers
                .iter()
                .filter_map(|s| positions.get(s).map(|p| (*s, *p)));
            let set = hearing_among(
                listener,
                positions.get(&listener).copied(),
                candidates,
                previous,
                params,
            );
            next.insert(listener, set);
        }
        let changed = next
            .iter()
            .filter(|(k, set)| self.sets.get(k).unwrap_or(&empty) != *set)
            .map(|(k, set)| (*k, set.clone()))
            .collect();
        self.sets = next;
        changed
    }

    /// Forgets `member` as a listener and removes it from every other set (it left).
    /// Returns the listeners whose set changed, with the new set, in key order.
    pub fn remove(&mut self, member: K) -> Vec<(K, BTreeSet<K>)> {
        self.sets.remove(&member);
        self.sets
            .iter_mut()
            .filter_map(|(k, set)| set.remove(&member).then(|| (*k, set.clone())))
            .collect()
    }

    /// The current set of `listener`, if it is one.
    pub fn get(&self, listener: K) -> Option<&BTreeSet<K>> {
        self.sets.get(&listener)
    }

    /// Every listener with its set, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (K, &BTreeSet<K>)> + '_ {
        self.sets.iter().map(|(k, set)| (*k, set))
    }

    /// Number of listeners.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Whether there are no listeners.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(x: f32, y: f32) -> Vec2 {
        Vec2::new(x, y)
    }

    fn set(keys: &[u8]) -> BTreeSet<u8> {
        keys.iter().copied().collect()
    }

    #[test]
    fn constants_agree_with_the_panner() {
        assert_eq!(HEARING_RADIUS, 200.0);
        assert_eq!(HearingParams::default().radius, HEARING_RADIUS);
        assert_eq!(HearingParams::default().hysteresis, HEARING_HYSTERESIS);
        assert_eq!(
            panner_position(at(10.0, 10.0), at(30.0, 0.0)),
            [10.0, 0.0, -5.0]
        );
    }

    #[test]
    fn the_radius_admits_and_the_band_keeps() {
        let p = HearingParams::default();
        let positions = BTreeMap::from([
            (0u8, at(0.0, 0.0)),
            (1, at(200.0, 0.0)),
            (2, at(0.0, 210.0)),
            (3, at(221.0, 0.0)),
        ]);
        assert_eq!(
            hearing_set(0, &positions, &set(&[]), p),
            set(&[1]),
            "2 is in the band, not yet heard"
        );
        assert_eq!(
            hearing_set(0, &positions, &set(&[2, 3]), p),
            set(&[1, 2]),
            "2 stays, 3 is too far"
        );
        assert_eq!(
            hearing_set(3, &positions, &set(&[]), p),
            set(&[1]),
            "0 is 221 away"
        );
    }

    #[test]
    fn nobody_hears_without_a_position_or_themselves() {
        let p = HearingParams::default();
        let positions = BTreeMap::from([
            (0u8, at(0.0, 0.0)),
            (1, at(1.0, 0.0)),
            (2, at(f32::NAN, 0.0)),
        ]);
        assert_eq!(
            hearing_set(9, &positions, &set(&[0, 1]), p),
            set(&[]),
            "no position, no hearing"
        );
        assert_eq!(
            hearing_set(0, &positions, &set(&[0, 2, 7]), p),
            set(&[1]),
            "not itself, not NaN, not absent"
        );
    }

    #[test]
    fn the_table_reports_changes_and_removals() {
        let p = HearingParams::default();
        let mut table = HearingTable::new();
        let mut positions = BTreeMap::from([
            (1u8, at(0.0, 0.0)),
            (2, at(100.0, 0.0)),
            (3, at(1000.0, 0.0)),
        ]);
        let everyone = set(&[1, 2, 3]);
        let changed = table.update([1, 2, 3], &everyone, &positions, p);
        assert_eq!(
            changed,
            vec![(1, set(&[2])), (2, set(&[1]))],
            "3 is new but hears nobody"
        );
        assert!(
            table.update([1, 2, 3], &everyone, &positions, p).is_empty(),
            "nothing moved"
        );
        positions.insert(3, at(150.0, 0.0));
        let changed = table.update([1, 2, 3], &set(&[1, 3]), &positions, p);
        assert_eq!(
            changed,
            vec![(1, set(&[3])), (2, set(&[1, 3])), (3, set(&[1]))],
            "2 stopped speaking"
        );
        assert_eq!(table.remove(3), vec![(1, set(&[])), (2, set(&[1]))]);
        assert_eq!(table.get(3), None);
        assert_eq!(table.len(), 2);
        positions.remove(&3);
        let changed = table.update([1], &set(&[1, 3]), &positions, p);
        assert!(changed.is_empty(), "2 is forgotten silently");
        assert_eq!(table.get(2), None);
    }

    fn positions() -> impl Strategy<Value = BTreeMap<u8, Vec2>> {
        proptest::collection::btree_map(
            0u8..8,
            (-400f32..400.0, -400f32..400.0).prop_map(|(x, y)| at(x, y)),
            0..8,
        )
    }

    proptest! {
        #[test]
        fn membership_follows_the_distance_rule(
            positions in positions(),
            listener in 0u8..8,
            previous in proptest::collection::btree_set(0u8..8, 0..8),
        ) {
            let p = HearingParams::default();
            let heard = hearing_set(listener, &positions, &previous, p);
            for (k, pos) in &positions {
                let Some(me) = positions.get(&listener) else {
                    prop_assert!(heard.is_empty());
                    break;
                };
                let d = me.distance(*pos);
                let expected = *k != listener
                    && (d <= p.radius || (previous.contains(k) && d <= p.radius + p.hysteresis));
                prop_assert_eq!(heard.contains(k), expected, "speaker {} at {}", k, d);
                prop_assert!(d <= p.radius + p.hysteresis || !heard.contains(k), "never beyond the band");
            }
            prop_assert!(heard.iter().all(|k| positions.contains_key(k)));
        }

        #[test]
        fn the_distance_rule_is_symmetric(positions in positions(), a in 0u8..8, b in 0u8..8) {
            let p = HearingParams::default();
            let none = BTreeSet::new();
            prop_assert_eq!(
                hearing_set(a, &positions, &none, p).contains(&b),
                hearing_set(b, &positions, &none, p).contains(&a)
            );
        }

        #[test]
        fn a_speaker_in_the_band_never_flaps(steps in proptest::collection::vec(0.0f32..=1.0, 1..50)) {
            let p = HearingParams::default();
            let mut positions = BTreeMap::from([(0u8, at(0.0, 0.0)), (1, at(p.radius, 0.0))]);
            let mut heard = hearing_set(0, &positions, &BTreeSet::new(), p);
            prop_assert!(heard.contains(&1), "enters at the radius");
            for t in steps {
                // Anywhere in (radius, radius + hysteresis].
                let d = (p.radius + p.hysteresis * t).max(p.radius + 0.01);
                positions.insert(1, at(0.0, d));
                heard = hearing_set(0, &positions, &heard, p);
                prop_assert!(heard.contains(&1), "left at {}", d);
            }
        }

        #[test]
        fn a_speaker_beyond_the_band_is_never_heard(
            d in (HEARING_RADIUS + HEARING_HYSTERESIS + 0.01)..5000.0f32,
            angle in 0.0f32..std::f32::consts::TAU,
        ) {
            let positions = BTreeMap::from([(0u8, at(3.0, 4.0)), (1, at(3.0 + d * angle.cos(), 4.0 + d * angle.sin()))]);
            let heard = hearing_set(0, &positions, &set(&[1]), HearingParams::default());
            prop_assert!(heard.is_empty());
        }

        #[test]
        fn the_table_reports_exactly_the_changed_sets(
            moves in proptest::collection::vec((positions(), proptest::collection::btree_set(0u8..8, 0..8)), 1..6),
        ) {
            let p = HearingParams::default();
            let mut table = HearingTable::new();
            let mut before: BTreeMap<u8, BTreeSet<u8>> = BTreeMap::new();
            for (positions, speakers) in moves {
                let listeners: Vec<u8> = positions.keys().copied().collect();
                let changed: BTreeMap<u8, BTreeSet<u8>> =
                    table.update(listeners.iter().copied(), &speakers, &positions, p).into_iter().collect();
                for l in &listeners {
                    let now = table.get(*l).cloned().expect("every listener has a set");
                    let was = before.get(l).cloned().unwrap_or_default();
                    prop_assert_eq!(changed.get(l), (now != was).then_some(&now));
                    prop_assert!(now.is_subset(&speakers));
                }
                prop_assert!(changed.keys().all(|k| listeners.contains(k)));
                before = table.iter().map(|(k, s)| (k, s.clone())).collect();
            }
        }
    }
}
