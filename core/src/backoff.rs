//! Capped exponential backoff with deterministic jitter.
//!
//! Used by the browser to reconnect to its peer and (later) by peers to reconnect federation
//! links. Jitter comes from a small seeded generator so tests are reproducible; the browser
//! seeds it from `Math.random`, so a room full of clients that lost the same peer does not
//! reconnect in lock-step.

use std::time::Duration;

use crate::rng::Rng;

/// Tunables of a [`Backoff`]. Defaults suit a browser on a LAN: first retry after 0.5 s,
/// doubling to at most 15 s, ±20 % jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Upper bound of any delay (before jitter).
    pub max: Duration,
    /// Multiplier applied after each failed attempt.
    pub factor: u32,
    /// Fraction of the delay, 0.0–1.0, that is randomised in both directions.
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(15),
            factor: 2,
            jitter: 0.2,
        }
    }
}

/// Produces successive retry delays; [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    rng: Rng,
}

impl Backoff {
    /// A backoff with the given tunables and jitter seed.
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        Backoff {
            config,
            attempt: 0,
            rng: Rng::new(seed),
        }
    }

    /// Number of delays handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Forgets past failures: the next delay is the initial one again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt; grows until the cap.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.base_delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let spread = base.as_secs_f64() * self.config.jitter.clamp(0.0, 1.0);
        let offset = (f64::from(self.rng.unit()) * 2.0 - 1.0) * spread;
        Duration::from_secs_f64((base.as_secs_f64() + offset).max(0.0))
    }

    fn base_delay(&self, attempt: u32) -> Duration {
        let factor = self.config.factor.max(1);
        let mut delay = self.config.initial;
        for _ in 0..attempt {
            delay = delay.saturating_mul(factor);
            if delay >= self.config.max {
                return self.config.max;
            }
        }
        delay.min(self.config.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> BackoffConfig {
        BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        }
    }

    #[test]
    fn doubles_until_the_cap_and_resets() {
        let mut b = Backoff::new(no_jitter(), 7);
        let ms: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let mut b = Backoff::new(BackoffConfig::default(), 42);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            b.reset();
            let d = b.next_delay().as_millis();
            assert!((400..=600).contains(&d), "{d} ms outside 500 ms ± 20 %");
            seen.insert(d);
        }
        assert!(seen.len() > 5, "jitter should vary the delay: {seen:?}");
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(no_jitter(), 1);
        for _ in 0..10_000 {
            assert!(b.next_delay() <= Duration::from_secs(15));
        }
    }
}
