//! Moves over the operator's event rate wait here instead of being refused.
//!
//! Contract: a session keeps at most one parked move per target, the latest (a newer one
//! replaces it, and the replaced one is answered `superseded`), in the order targets were first
//! parked. When the operator's limiter admits events again the parked moves go on through
//! admission in that order, one event each. So the rate limit decides *when* a move is looked at,
//! never *which* value is final, and a flood costs the gateway one slot per catalogued target.
//! A target with a parked move parks every later move too, so no move overtakes an older one.

use kubeknobs_proto::v1::ControlEvent;
use tokio::time::Instant;

/// One parked move.
#[derive(Debug)]
pub(super) struct Waiting {
    /// The move.
    pub event: ControlEvent,
    /// When the gateway received it (for the audit's latency).
    pub received: Instant,
}

/// The parked moves of one session.
#[derive(Debug, Default)]
pub(super) struct Parked {
    queue: Vec<Waiting>,
    /// When the limiter admits the next event.
    wake: Option<Instant>,
}

impl Parked {
    /// True when `target` has a parked move (so a new move for it must be parked too).
    pub fn holds(&self, target: &str) -> bool {
        self.queue.iter().any(|w| w.event.target == target)
    }

    /// Parks `waiting` as its target's pending move, to be looked at no earlier than `wake`;
    /// returns the move it replaces.
    pub fn park(&mut self, waiting: Waiting, wake: Instant) -> Option<Waiting> {
        self.wake = Some(self.wake.map_or(wake, |w| w.min(wake)));
        match self
            .queue
            .iter_mut()
            .find(|w| w.event.target == waiting.event.target)
        {
            Some(slot) => Some(std::mem::replace(slot, waiting)),
            None => {
                self.queue.push(waiting);
                None
            }
        }
    }

    /// When to try the parked moves again, if any are parked.
    pub fn wake(&self) -> Option<Instant> {
        self.wake.filter(|_| !self.queue.is_empty())
    }

    /// The oldest parked move.
    pub fn pop(&mut self) -> Option<Waiting> {
        if self.queue.is_empty() {
            self.wake = None;
            return None;
        }
        Some(self.queue.remove(0))
    }

    /// Puts back a move that the limiter did not admit yet, first in line, until `wake`.
    pub fn unpop(&mut self, waiting: Waiting, wake: Instant) {
        self.queue.insert(0, waiting);
        self.wake = Some(wake);
    }

    /// Every parked move, oldest first (the session is ending).
    pub fn drain(&mut self) -> Vec<Waiting> {
        self.wake = None;
        std::mem::take(&mut self.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(target: &str, value: f64) -> Waiting {
        Waiting {
            event: ControlEvent {
                seq: 0,
                target: target.to_owned(),
                value,
            },
            received: Instant::now(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_the_latest_move_per_target_in_first_parked_order() {
        let mut parked = Parked::default();
        let soon = Instant::now() + std::time::Duration::from_millis(10);
        assert!(parked.park(waiting("web", 1.0), soon).is_none());
        assert!(parked.park(waiting("db", 2.0), soon).is_none());
        let replaced = parked.park(waiting("web", 3.0), soon).expect("replaced");
        assert_eq!(replaced.event.value, 1.0);
        assert!(parked.holds("web") && parked.holds("db") && !parked.holds("api"));
        assert_eq!(parked.wake(), Some(soon));
        let first = parked.pop().expect("web");
        assert_eq!(
            (first.event.target.as_str(), first.event.value),
            ("web", 3.0)
        );
        parked.unpop(first, soon);
        assert_eq!(parked.drain().len(), 2);
        assert_eq!(parked.wake(), None, "nothing parked, nothing to wake for");
    }
}
