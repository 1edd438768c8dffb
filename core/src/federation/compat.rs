//! How well two universes' laws fit together, and what a passage between them costs.
//!
//! ## The score
//! The compatibility score of configurations `a` and `b` is a weighted sum of one
//! *difference* per law; 0 means identical laws, and a score above [`MAX_COMPATIBLE_SCORE`]
//! refuses the passage with a reason naming the law that contributes most.
//!
//! | law | difference | weight | e.g. |
//! |---|---|---|---|
//! | gravity | `|ga − gb| / max(|ga|, |gb|, 10)` (relative, floor 10 u/s²) | 1.5 | 0 vs 100 → 1.5 |
//! | friction | `|fa − fb| / max(fa, fb, 0.1)` (relative, floor 0.1 /s) | 1.0 | 0 vs 0.5 → 1.0 |
//! | max speed | `|ln(va / vb)|` (values floored at 0.01) | 1.0 | 60 vs 8 → 2.0 |
//! | wander rate | `|ln((wa + 0.05) / (wb + 0.05))|` | 0.5 | 0.6 vs 0.05 → 0.9 |
//! | time scale | `|ln(ta / tb)|` (floored at 0.01) | 2.0 | 1 vs 20 → 6.0 |
//! | tick rate | `|ln(ra / rb)|` (floored at 1) | 0.5 | 20 vs 60 → 0.55 |
//! | world size | `|ln(areaA / areaB)| / 2` (ratio of side lengths; areas floored at 1) | 0.5 | 500² vs 5000² → 1.15 |
//!
//! Ratios use logarithms so that "twice as fast" counts the same in both directions;
//! forces that may be zero use a difference relative to the larger value (with a floor, so
//! 0 vs 0.001 is not a huge mismatch). Each difference is capped at [`MAX_DIFFERENCE`], and a
//! law with a non-finite value on either side counts as that cap. The built-in demo universes
//! score 0.9 (sandbox–aquarium) to 3.0 (sandbox–galaxy): all compatible.
//!
//! ## Costs
//! The *base crossing cost* of a passage is `10 × (1 + score)` energy units: 10 between
//! identical universes, 60 at the limit. Creating a passage costs 30 % of it, each traversal
//! (an entity crossing) 10 %.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::universe::UniverseConfig;

/// Scores above this refuse a passage.
pub const MAX_COMPATIBLE_SCORE: f32 = 5.0;
/// Largest difference one law contributes before its weight (also used for non-finite values).
pub const MAX_DIFFERENCE: f32 = 10.0;
/// Base crossing cost between identical universes, in energy units.
pub const BASE_COST_UNIT: f32 = 10.0;
/// Share of the base cost paid to create a passage.
pub const CREATION_SHARE: f32 = 0.30;
/// Share of the base cost paid per traversal.
pub const TRAVERSAL_SHARE: f32 = 0.10;

/// One law compared by the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Law {
    /// `physics.gravity`.
    Gravity,
    /// `physics.friction`.
    Friction,
    /// `physics.max_speed`.
    MaxSpeed,
    /// `physics.wander_rate`.
    WanderRate,
    /// `time_scale`.
    TimeScale,
    /// `tick_rate`.
    TickRate,
    /// `physics.bounds` area.
    WorldSize,
}

impl Law {
    /// Every law, in table order.
    pub const ALL: [Law; 7] = [
        Law::Gravity,
        Law::Friction,
        Law::MaxSpeed,
        Law::WanderRate,
        Law::TimeScale,
        Law::TickRate,
        Law::WorldSize,
    ];

    /// The law's weight in the score.
    pub const fn weight(self) -> f32 {
        match self {
            Law::Gravity => 1.5,
            Law::Friction | Law::MaxSpeed => 1.0,
            Law::WanderRate | Law::TickRate | Law::WorldSize => 0.5,
            Law::TimeScale => 2.0,
        }
    }

    /// The name people see in a refusal.
    pub const fn name(self) -> &'static str {
        match self {
            Law::Gravity => "gravity",
            Law::Friction => "friction",
            Law::MaxSpeed => "max speed",
            Law::WanderRate => "wander rate",
            Law::TimeScale => "time scale",
            Law::TickRate => "tick rate",
            Law::WorldSize => "world size",
        }
    }

    /// The law's value in a configuration, as compared.
    fn value(self, c: &UniverseConfig) -> f32 {
        let p = &c.physics;
        match self {
            Law::Gravity => p.gravity,
            Law::Friction => p.friction,
            Law::MaxSpeed => p.max_speed,
            Law::WanderRate => p.wander_rate,
            Law::TimeScale => c.time_scale,
            Law::TickRate => c.tick_rate as f32,
            Law::WorldSize => p.bounds.width * p.bounds.height,
        }
    }

    /// The unweighted difference of two values (see the module table).
    fn difference(self, a: f32, b: f32) -> f32 {
        if !a.is_finite() || !b.is_finite() {
            return MAX_DIFFERENCE;
        }
        let relative = |a: f32, b: f32, floor: f32| (a - b).abs() / a.abs().max(b.abs()).max(floor);
        let log_ratio = |a: f32, b: f32, floor: f32| (a.max(floor) / b.max(floor)).ln().abs();
        let d = match self {
            Law::Gravity => relative(a, b, 10.0),
            Law::Friction => relative(a.max(0.0), b.max(0.0), 0.1),
            Law::MaxSpeed | Law::TimeScale => log_ratio(a, b, 0.01),
            Law::WanderRate => log_ratio(a.max(0.0) + 0.05, b.max(0.0) + 0.05, 0.05),
            Law::TickRate => log_ratio(a, b, 1.0),
            Law::WorldSize => log_ratio(a, b, 1.0) / 2.0,
        };
        d.min(MAX_DIFFERENCE)
    }
}

impl fmt::Display for Law {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a passage costs, in energy units.
#[derive(
    Debug, Clone, Copy, PartialEq, Serialize, Deserialize, bitcode::Encode, bitcode::Decode,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CrossingCost {
    /// `10 × (1 + score)`.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub base: f32,
    /// Creating the passage: 30 % of the base.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub creation: f32,
    /// Each traversal: 10 % of the base.
    #[cfg_attr(test, proptest(strategy = "crate::testing::finite_f32()"))]
    pub traversal: f32,
}

impl CrossingCost {
    /// The costs of a passage between universes with compatibility `score`.
    pub fn for_score(score: f32) -> Self {
        let base = BASE_COST_UNIT * (1.0 + score.max(0.0));
        CrossingCost {
            base,
            creation: base * CREATION_SHARE,
            traversal: base * TRAVERSAL_SHARE,
        }
    }
}

/// The compared laws of two universes and their score.
#[derive(Debug, Clone, PartialEq)]
pub struct Compatibility {
    score: f32,
    /// `(law, weighted contribution, value in a, value in b)`, in [`Law::ALL`] order.
    terms: Vec<(Law, f32, f32, f32)>,
}

impl Compatibility {
    /// Compares two configurations (symmetric: `between(a, b) == between(b, a)` in score).
    pub fn between(a: &UniverseConfig, b: &UniverseConfig) -> Self {
        let terms: Vec<(Law, f32, f32, f32)> = Law::ALL
            .into_iter()
            .map(|law| {
                let (va, vb) = (law.value(a), law.value(b));
                (law, law.weight() * law.difference(va, vb), va, vb)
            })
            .collect();
        let score = terms.iter().map(|t| t.1).sum();
        Compatibility { score, terms }
    }

    /// 0 = identical laws; higher is less compatible.
    pub fn score(&self) -> f32 {
        self.score
    }

    /// Each law's weighted contribution to the score.
    pub fn contributions(&self) -> impl Iterator<Item = (Law, f32)> + '_ {
        self.terms.iter().map(|t| (t.0, t.1))
    }

    /// The law contributing most (the first of equals).
    pub fn largest(&self) -> (Law, f32) {
        self.contributions()
            .fold((Law::Gravity, f32::MIN), |best, t| {
                if t.1 > best.1 {
                    t
                } else {
                    best
                }
            })
    }

    /// Whether a passage may join the two universes.
    pub fn is_compatible(&self) -> bool {
        self.score <= MAX_COMPATIBLE_SCORE
    }

    /// `Ok` when compatible, else the reason for people, naming the biggest contributor.
    pub fn check(&self) -> Result<(), String> {
        if self.is_compatible() {
            return Ok(());
        }
        let (law, part) = self.largest();
        let (_, _, a, b) = self.terms.iter().find(|t| t.0 == law).expect("every law");
        Err(format!(
            "the universes are incompatible (score {:.2} > {MAX_COMPATIBLE_SCORE}): {law} differs most ({a} vs {b}, {part:.2} of the score)",
            self.score
        ))
    }

    /// What a passage between the two costs.
    pub fn costs(&self) -> CrossingCost {
        CrossingCost::for_score(self.score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UniverseId;
    use crate::universe::{demo_universe, DemoKind};

    fn config(kind: DemoKind) -> UniverseConfig {
        demo_universe(kind, UniverseId(1), 0, 500.0, 1)
            .config()
            .clone()
    }

    #[test]
    fn identical_universes_score_zero_and_cost_the_base() {
        let c = Compatibility::between(&config(DemoKind::Sandbox), &config(DemoKind::Sandbox));
        assert_eq!(c.score(), 0.0);
        assert!(c.check().is_ok());
        assert_eq!(
            c.costs(),
            CrossingCost {
                base: 10.0,
                creation: 3.0,
                traversal: 1.0
            }
        );
    }

    #[test]
    fn demo_universes_are_compatible_and_the_score_is_symmetric() {
        let kinds = [DemoKind::Sandbox, DemoKind::Aquarium, DemoKind::Galaxy];
        for a in kinds {
            for b in kinds {
                let (ab, ba) = (
                    Compatibility::between(&config(a), &config(b)),
                    Compatibility::between(&config(b), &config(a)),
                );
                assert!((ab.score() - ba.score()).abs() < 1e-5);
                assert!(ab.is_compatible(), "{a:?}–{b:?}: {}", ab.score());
            }
        }
        let sg = Compatibility::between(&config(DemoKind::Sandbox), &config(DemoKind::Galaxy));
        assert!((2.9..3.1).contains(&sg.score()), "{}", sg.score());
        assert_eq!(sg.largest().0, Law::MaxSpeed);
    }

    #[test]
    fn too_different_laws_are_refused_naming_the_biggest_contributor() {
        let a = config(DemoKind::Sandbox);
        let mut b = a.clone();
        b.time_scale = 20.0;
        b.physics.gravity = 5.0;
        let c = Compatibility::between(&a, &b);
        assert!(c.score() > MAX_COMPATIBLE_SCORE);
        let reason = c.check().unwrap_err();
        assert!(reason.contains("time scale differs most"), "{reason}");
        assert!(reason.contains("1 vs 20"), "{reason}");
        let cost = c.costs();
        assert!((cost.creation - 0.3 * cost.base).abs() < 1e-4);
        assert!((cost.traversal - 0.1 * cost.base).abs() < 1e-4);
        assert!((cost.base - 10.0 * (1.0 + c.score())).abs() < 1e-3);
    }

    #[test]
    fn each_law_counts_with_its_weight_and_nonsense_is_capped() {
        let a = config(DemoKind::Sandbox);
        let mut b = a.clone();
        b.physics.gravity = 100.0;
        let c = Compatibility::between(&a, &b);
        assert!((c.score() - 1.5).abs() < 1e-5, "{}", c.score());
        b = a.clone();
        b.physics.bounds.width = 5000.0;
        b.physics.bounds.height = 5000.0;
        let c = Compatibility::between(&a, &b);
        assert!((c.score() - 0.5 * 10f32.ln()).abs() < 1e-4, "{}", c.score());
        b = a.clone();
        b.physics.friction = f32::NAN;
        let c = Compatibility::between(&a, &b);
        assert_eq!(c.score(), MAX_DIFFERENCE);
        assert!(!c.is_compatible());
        assert_eq!(c.largest().0, Law::Friction);
    }
}
