//! Bounded logging for lines a client can cause at will (rejected moves, moves merged under a
//! rate limit): the first line of each kind in an interval is logged as it happens, the rest are
//! only counted, and the counts come out as one summary line per kind when the interval is over.
//! So a flood of any size costs at most two lines per kind per interval, and the first line still
//! shows the operator what went wrong right away.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// How long one counting interval lasts by default.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Counts of log-worthy occurrences by kind, within the current interval.
#[derive(Debug)]
pub struct LogSummary {
    interval: Duration,
    /// When the current interval ends; `None` while nothing has happened.
    ends: Option<Instant>,
    /// Kind → occurrences in this interval (the first of which was logged in full).
    seen: BTreeMap<String, u64>,
}

impl Default for LogSummary {
    fn default() -> LogSummary {
        LogSummary::new(INTERVAL)
    }
}

impl LogSummary {
    /// A summary over intervals of `interval`.
    pub fn new(interval: Duration) -> LogSummary {
        LogSummary {
            interval,
            ends: None,
            seen: BTreeMap::new(),
        }
    }

    /// Notes one occurrence of `kind`; true when it is the first of its kind in this interval
    /// and should be logged in full.
    pub fn note(&mut self, kind: &str) -> bool {
        let now = Instant::now();
        if self.ends.is_none() {
            self.ends = Some(now + self.interval);
        }
        match self.seen.get_mut(kind) {
            Some(n) => {
                *n += 1;
                false
            }
            None => {
                self.seen.insert(kind.to_owned(), 1);
                true
            }
        }
    }

    /// When the current interval ends (and [`LogSummary::take`] has something to say), if
    /// anything happened in it.
    pub fn due(&self) -> Option<Instant> {
        self.ends
    }

    /// Ends the current interval: each kind with the number of occurrences that were only
    /// counted (those beyond the first), leaving out kinds that happened once.
    pub fn take(&mut self) -> Vec<(String, u64)> {
        self.ends = None;
        std::mem::take(&mut self.seen)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(kind, n)| (kind, n - 1))
            .collect()
    }

    /// The interval's length, for summary lines ("in the last 1s").
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn logs_the_first_of_each_kind_and_counts_the_rest() {
        let mut summary = LogSummary::default();
        assert!(summary.due().is_none(), "nothing to say yet");
        assert!(summary.note("OUT_OF_RANGE"));
        assert!(summary.note("HELD"));
        for _ in 0..10_000 {
            assert!(!summary.note("OUT_OF_RANGE"));
        }
        assert_eq!(summary.due(), Some(Instant::now() + INTERVAL));
        assert_eq!(summary.take(), vec![("OUT_OF_RANGE".to_owned(), 10_000)]);
        assert!(summary.due().is_none());
        tokio::time::advance(INTERVAL).await;
        assert!(summary.note("OUT_OF_RANGE"), "a new interval logs again");
    }
}
