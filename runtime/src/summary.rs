//! Bounded logging for lines a client can cause at will (rejected moves, moves merged under a
//! rate limit, malformed packets, ignored touches): the first line of each kind in an interval is
//! logged as it happens, the rest are only counted, and the counts come out as one summary line
//! per interval. So a flood of any size costs at most two lines per kind per interval, and the
//! first line still shows the operator what went wrong right away. At most
//! [`LogSummary::MAX_KINDS`] kinds are counted apart in one interval (a kind may name a client);
//! the rest share one count under `other`.
//!
//! The interval starts with its first occurrence. An owner with a timer sleeps until
//! [`LogSummary::due`] and then [`LogSummary::take`]s the counts; a summary shared by tasks with
//! no timer (behind a mutex) hands out the counts of an interval that is over with the next
//! occurrence ([`LogSummary::take_if_over`]).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::telemetry::clip;

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
    /// Occurrences of kinds beyond [`LogSummary::MAX_KINDS`], none logged in full.
    others: u64,
}

impl Default for LogSummary {
    fn default() -> LogSummary {
        LogSummary::new(INTERVAL)
    }
}

impl LogSummary {
    /// Most kinds counted apart in one interval.
    pub const MAX_KINDS: usize = 64;

    /// A summary over intervals of `interval`.
    pub fn new(interval: Duration) -> LogSummary {
        LogSummary {
            interval,
            ends: None,
            seen: BTreeMap::new(),
            others: 0,
        }
    }

    /// Notes one occurrence of `kind`; true when it is the first of its kind in this interval
    /// and should be logged in full.
    pub fn note(&mut self, kind: &str) -> bool {
        if self.ends.is_none() {
            self.ends = Some(Instant::now() + self.interval);
        }
        if let Some(n) = self.seen.get_mut(kind) {
            *n += 1;
            return false;
        }
        if self.seen.len() >= Self::MAX_KINDS {
            self.others += 1;
            return false;
        }
        self.seen.insert(kind.to_owned(), 1);
        true
    }

    /// When the current interval ends (and [`LogSummary::take`] has something to say), if
    /// anything happened in it.
    pub fn due(&self) -> Option<Instant> {
        self.ends
    }

    /// Ends the current interval: each kind with the number of occurrences that were only
    /// counted (those beyond the first), leaving out kinds that happened once, then `other`
    /// with the occurrences of kinds beyond [`LogSummary::MAX_KINDS`].
    pub fn take(&mut self) -> Vec<(String, u64)> {
        self.ends = None;
        let mut counted: Vec<(String, u64)> = std::mem::take(&mut self.seen)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(kind, n)| (kind, n - 1))
            .collect();
        let others = std::mem::take(&mut self.others);
        if others > 0 {
            counted.push(("other".to_owned(), others));
        }
        counted
    }

    /// Ends the current interval if it is over, and returns what [`LogSummary::take`] says of
    /// it unless that is nothing: for a summary without a timer, called before each
    /// [`LogSummary::note`].
    pub fn take_if_over(&mut self) -> Option<Vec<(String, u64)>> {
        if self.ends.is_none_or(|ends| Instant::now() < ends) {
            return None;
        }
        Some(self.take()).filter(|counted| !counted.is_empty())
    }

    /// The interval's length, for summary lines ("in the last 1s").
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// Counts as one line's text, `kind: n, kind: n`, each kind clipped for the log.
pub fn describe(counted: &[(String, u64)]) -> String {
    counted
        .iter()
        .map(|(kind, n)| format!("{}: {n}", clip(kind)))
        .collect::<Vec<_>>()
        .join(", ")
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

    #[tokio::test(start_paused = true)]
    async fn without_a_timer_the_next_occurrence_brings_the_summary() {
        let mut summary = LogSummary::new(Duration::from_secs(10));
        assert_eq!(summary.take_if_over(), None);
        assert!(summary.note("a"));
        assert!(!summary.note("a"));
        assert!(!summary.note("a"));
        assert!(summary.note("b"));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(summary.take_if_over(), None, "not over yet");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(summary.take_if_over(), Some(vec![("a".to_owned(), 2)]));
        assert!(summary.note("a"), "a new interval");
        for i in 0..LogSummary::MAX_KINDS + 10 {
            summary.note(&format!("k{i}"));
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            summary.take_if_over(),
            Some(vec![("other".to_owned(), 11)]),
            "kinds beyond the bound share one count"
        );
        assert_eq!(summary.take_if_over(), None, "taken once");
    }

    #[test]
    fn describes_counts_on_one_line_with_kinds_clipped() {
        let long = "y".repeat(100);
        let line = describe(&[("a".to_owned(), 2), (long, 1)]);
        assert_eq!(line, format!("a: 2, {}…(100 bytes): 1", "y".repeat(64)));
    }
}
