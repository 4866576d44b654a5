//! Touch ownership: while an operator holds a target's control (TouchOSC `/…/z 1`, a motor
//! fader's touch note), other operators' moves on that target are rejected as `held by <name>`,
//! until the holder releases it plus a grace period (`limits.touch_grace_ms`). This is how two
//! people avoid fighting over one fader.
//!
//! A touch on a target someone else holds does not take it over. A hold ends with its session:
//! a bridge that disconnects mid-touch releases its holds (and the grace period starts).
//! Time is tokio's, so the grace period is tested with `tokio::time::pause`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::presence::SessionId;

/// Why a move was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Another operator holds the target.
    #[error("held by {holder}: {holder} is touching the control of target {target}")]
    Held {
        /// Who holds it.
        holder: String,
        /// The target.
        target: String,
    },
}

#[derive(Debug, Clone)]
struct Hold {
    operator: Arc<str>,
    session: SessionId,
    /// `None` while touched; when released, the hold lasts until this plus the grace period.
    released: Option<Instant>,
}

/// Every target's hold.
#[derive(Debug)]
pub struct Holds {
    /// Nanoseconds a released hold lasts (changed by a config reload).
    grace_ns: AtomicU64,
    holds: Mutex<HashMap<String, Hold>>,
}

impl Holds {
    /// Holds that outlast their release by `grace`.
    pub fn new(grace: Duration) -> Holds {
        Holds {
            grace_ns: AtomicU64::new(nanos(grace)),
            holds: Mutex::new(HashMap::new()),
        }
    }

    /// Changes the grace period for releases from now on.
    pub fn set_grace(&self, grace: Duration) {
        self.grace_ns.store(nanos(grace), Ordering::Relaxed);
    }

    fn grace(&self) -> Duration {
        Duration::from_nanos(self.grace_ns.load(Ordering::Relaxed))
    }

    /// Records a touch (`touched`) or release of `target` by `operator` in `session`.
    /// Returns the other operator who holds it, if the touch could not take it.
    pub fn touch(
        &self,
        target: &str,
        operator: &Arc<str>,
        session: SessionId,
        touched: bool,
    ) -> Result<(), Error> {
        let now = Instant::now();
        let mut holds = self.lock();
        if let Some(hold) = holds
            .get(target)
            .filter(|h| self.active(h, now) && h.operator != *operator)
        {
            return Err(Error::Held {
                holder: hold.operator.to_string(),
                target: target.to_owned(),
            });
        }
        let released = (!touched).then_some(now);
        let hold = Hold {
            operator: operator.clone(),
            session,
            released,
        };
        holds.insert(target.to_owned(), hold);
        Ok(())
    }

    /// Allows a move of `target` by `operator` unless someone else holds it.
    pub fn check(&self, target: &str, operator: &str) -> Result<(), Error> {
        let now = Instant::now();
        match self.lock().get(target) {
            Some(h) if self.active(h, now) && &*h.operator != operator => Err(Error::Held {
                holder: h.operator.to_string(),
                target: target.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Releases every target `session` still touches (the session ended).
    pub fn release_session(&self, session: SessionId) {
        let now = Instant::now();
        for hold in self.lock().values_mut() {
            if hold.session == session && hold.released.is_none() {
                hold.released = Some(now);
            }
        }
    }

    fn active(&self, hold: &Hold, now: Instant) -> bool {
        hold.released.is_none_or(|at| now < at + self.grace())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Hold>> {
        self.holds.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_held_target_refuses_others_until_release_plus_grace() {
        let holds = Holds::new(Duration::from_millis(500));
        let (alice, bob): (Arc<str>, Arc<str>) = ("alice".into(), "bob".into());
        holds.touch("web", &alice, 1, true).unwrap();
        assert_eq!(holds.check("web", "alice"), Ok(()));
        let err = holds.check("web", "bob").unwrap_err();
        assert!(err.to_string().starts_with("held by alice"), "{err}");
        assert!(holds.touch("web", &bob, 2, true).is_err(), "no take-over");
        assert_eq!(holds.check("db", "bob"), Ok(()), "other targets are free");

        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(
            holds.check("web", "bob").is_err(),
            "held as long as touched"
        );
        holds.touch("web", &alice, 1, false).unwrap();
        tokio::time::advance(Duration::from_millis(400)).await;
        assert!(holds.check("web", "bob").is_err(), "grace period");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(holds.check("web", "bob"), Ok(()));
        holds.touch("web", &bob, 2, true).unwrap();
        assert!(holds.check("web", "alice").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_that_ends_releases_its_holds() {
        let holds = Holds::new(Duration::from_millis(500));
        holds.touch("web", &"alice".into(), 7, true).unwrap();
        holds.release_session(7);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(holds.check("web", "bob"), Ok(()));
    }
}
