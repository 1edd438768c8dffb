//! Time as the drivers hand it to the core.
//!
//! The core never reads a clock. Drivers pass a [`Moment`]: milliseconds since an epoch the
//! driver chooses (process start on the peer, page load in the browser, zero in tests). Only
//! differences between moments of the same driver mean anything.

use std::time::Duration;

/// A point in time, in milliseconds since the driver's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Moment(pub u64);

impl Moment {
    /// The driver's epoch.
    pub const ZERO: Moment = Moment(0);

    /// Builds a moment from milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Moment(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This moment plus `d`, saturating at the far future.
    pub fn plus(self, d: Duration) -> Moment {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Moment(self.0.saturating_add(ms))
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Moment) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_and_since_are_inverse_and_saturate() {
        let t = Moment::from_millis(1_000);
        assert_eq!(
            t.plus(Duration::from_millis(250)).since(t),
            Duration::from_millis(250)
        );
        assert_eq!(t.since(t.plus(Duration::from_secs(1))), Duration::ZERO);
        assert_eq!(
            Moment(u64::MAX - 1).plus(Duration::from_secs(5)),
            Moment(u64::MAX)
        );
    }
}
