//! A frame rate for what the gateway sends on its own: state updates and presence lists.
//!
//! Contract: the first change after a quiet interval goes out at once; while changes keep
//! coming, at most one frame per interval goes out, carrying the latest state (latest state
//! wins, as latest value wins for writes); and the change that ends a burst goes out at the
//! next frame, never later. One pace is kept per kind of message for the whole gateway (not one
//! per session), so every session is sent the same frames at the same moments: the frame is
//! built and encoded once, and a burst of N sessions' sends happens at one wakeup instead of N
//! timers. So the cost follows the frame rate, not how often the cluster changes (the sandbox's
//! ready-count steps alone change a target hundreds of times a second).

use std::time::Duration;

use tokio::time::Instant;

/// The pacing of one kind of message for one session.
#[derive(Debug)]
pub struct Pace {
    interval: Duration,
    /// The earliest time the next message may go.
    next: Instant,
    /// When the change waiting for its frame goes, if one is waiting.
    due: Option<Instant>,
}

impl Pace {
    /// At most one message per `interval`.
    pub fn new(interval: Duration) -> Pace {
        Pace {
            interval,
            next: Instant::now(),
            due: None,
        }
    }

    /// At most `per_second` messages a second.
    pub fn per_second(per_second: u32) -> Pace {
        Pace::new(Self::interval_of(per_second))
    }

    /// Changes the rate to `per_second` from the next frame on (a config reload).
    pub fn set_per_second(&mut self, per_second: u32) {
        self.interval = Self::interval_of(per_second);
    }

    fn interval_of(per_second: u32) -> Duration {
        Duration::from_secs(1) / per_second.max(1)
    }

    /// A change happened: true when it is to be sent now; otherwise it waits for [`Pace::due`].
    pub fn changed(&mut self) -> bool {
        if self.due.is_some() {
            return false;
        }
        let now = Instant::now();
        if now >= self.next {
            self.next = now + self.interval;
            true
        } else {
            self.due = Some(self.next);
            false
        }
    }

    /// When a waiting change is to be sent; `None` when nothing waits (the caller then listens
    /// for changes again).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// The waiting change is being sent now.
    pub fn sent(&mut self) {
        self.due = None;
        self.next = Instant::now() + self.interval;
    }
}

/// Sleeps until `at` (callers only poll this when `at` is set; `None` never wakes).
pub async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(100);

    #[tokio::test(start_paused = true)]
    async fn a_lone_change_goes_at_once() {
        let mut pace = Pace::new(FRAME);
        assert!(pace.changed());
        tokio::time::advance(FRAME).await;
        assert!(pace.changed(), "a frame later is quiet again");
        assert_eq!(pace.due(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_once_per_frame_and_its_end_at_the_next_frame() {
        let mut pace = Pace::new(FRAME);
        let start = Instant::now();
        assert!(pace.changed(), "the first change of the burst");
        let mut sent = 1;
        // 100 changes a millisecond apart: one frame every 100 ms, the rest wait.
        for _ in 0..100 {
            tokio::time::advance(Duration::from_millis(1)).await;
            if let Some(due) = pace.due()
                && Instant::now() >= due
            {
                pace.sent();
                sent += 1;
            }
            if pace.changed() {
                sent += 1;
            }
        }
        assert_eq!(sent, 2, "one at once, one at the 100 ms frame");
        let due = pace
            .due()
            .expect("the burst's last change waits for its frame");
        assert_eq!(due, start + 2 * FRAME, "the next frame, not later");
        tokio::time::advance(due - Instant::now()).await;
        pace.sent();
        assert_eq!(pace.due(), None);
    }

    #[test]
    fn a_rate_is_a_frame_length() {
        let pace = Pace::per_second(30);
        assert_eq!(pace.interval, Duration::from_secs(1) / 30);
        assert_eq!(Pace::per_second(0).interval, Duration::from_secs(1));
    }
}
