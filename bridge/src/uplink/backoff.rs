//! Jittered exponential backoff for reconnecting to the gateway: 250 ms doubling to 10 s, each
//! delay ±20%, back to the start once a session has lasted long enough to count as healthy.

use std::time::Duration;

use rand::Rng;

/// First delay after a failure.
pub const INITIAL: Duration = Duration::from_millis(250);
/// Longest delay.
pub const MAX: Duration = Duration::from_secs(10);
/// A session that lasted longer than this resets the backoff.
pub const HEALTHY: Duration = Duration::from_secs(10);
/// Each delay is scaled by a random factor in `1 ± JITTER`, so bridges do not reconnect in step.
const JITTER: f64 = 0.2;

/// The delay sequence between reconnection attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: INITIAL }
    }
}

impl Backoff {
    /// The next delay, jittered; doubles the one after it up to [`MAX`].
    pub fn next_delay(&mut self) -> Duration {
        self.next_with(rand::rng().random_range(-JITTER..=JITTER))
    }

    /// [`Backoff::next_delay`] with a chosen jitter in `-0.2..=0.2` (for tests).
    fn next_with(&mut self, jitter: f64) -> Duration {
        let delay = self.next.mul_f64(1.0 + jitter.clamp(-JITTER, JITTER));
        self.next = (self.next * 2).min(MAX);
        delay
    }

    /// Start over from [`INITIAL`] (after a healthy session).
    pub fn reset(&mut self) {
        self.next = INITIAL;
    }

    /// Wait the longest from now on (after the gateway refused our credentials).
    pub fn give_up_hurrying(&mut self) {
        self.next = MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_max_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<u128> = (0..8).map(|_| b.next_with(0.0).as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
        b.reset();
        assert_eq!(b.next_with(0.0), INITIAL);
        b.give_up_hurrying();
        assert_eq!(b.next_with(0.0), MAX);
    }

    #[test]
    fn jitters_within_twenty_percent() {
        let mut b = Backoff::default();
        assert_eq!(b.next_with(0.2).as_millis(), 300);
        assert_eq!(b.next_with(-0.2).as_millis(), 400);
        assert_eq!(b.next_with(5.0).as_millis(), 1200);
        for _ in 0..100 {
            let d = Backoff::default().next_delay();
            assert!(
                d >= Duration::from_millis(200) && d <= Duration::from_millis(300),
                "{d:?}"
            );
        }
    }
}
