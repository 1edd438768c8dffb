//! The peer's clock: turns tokio's monotonic time into core [`Moment`]s and back.

use multiverse_core::clock::Moment;
use tokio::time::Instant;

/// Monotonic time since the peer started. Uses tokio's clock so tests can pause it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn start() -> Self {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// The current moment.
    pub fn now(&self) -> Moment {
        let ms = Instant::now().duration_since(self.epoch).as_millis();
        Moment::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// The tokio instant of a core moment, for `sleep_until`.
    pub fn instant(&self, moment: Moment) -> Instant {
        self.epoch + std::time::Duration::from_millis(moment.as_millis())
    }
}

/// Sleeps until `deadline`, or forever when there is none (for `select!` arms driven by a
/// state machine's `poll_timeout`).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
