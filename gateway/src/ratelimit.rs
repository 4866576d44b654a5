//! How fast: per-operator limits on control events and sessions, and the whole gateway's budget
//! of writes to the API server.
//!
//! - **Events per operator** use a [`governor`] GCRA limiter per operator, shared by all of that
//!   operator's sessions. The check never waits: it says how long until the next event would
//!   pass, and the session parks an over-rate move as that target's pending value until then
//!   (`service::parked`), so one operator's flood costs other sessions nothing and the rate
//!   never decides which value is final.
//!   (governor was picked for its lock-free GCRA state and exact burst semantics; its clock is
//!   tokio's here, so the limits are tested with `tokio::time::pause`.)
//! - **Sessions per operator** are counted; a session over the limit is refused with
//!   `RESOURCE_EXHAUSTED`, and the count drops when a session ends ([`SessionPermit`]).
//! - **Forgetting operators**: an operator's limiter is dropped once they have had no session
//!   for as long as their whole burst takes to refill (`events_burst / events_per_second`).
//!   By then a fresh limiter is exactly what they would have had, so forgetting them is
//!   invisible (reconnecting sooner does not reset the burst), and the map holds only recent
//!   operators, however many tokens the cluster's TokenReview accepts over time.
//! - **Cooldowns** ([`Cooldowns`]): a one-shot target (rollout restart) acts at most once per
//!   its `cooldown_ms`, whoever presses; presses in between are answered `rate limited`.
//! - **Writes per second for the whole gateway** ([`WriteBudget`]): every target's writer waits
//!   for its turn before each write. Turns are handed out first come, first served (a FIFO
//!   tokio mutex), and a writer has at most one write waiting, so a busy target cannot starve a
//!   quiet one: the budget is shared round-robin among the targets that want to write.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::{Instant, sleep_until};

/// Why an operator was slowed down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The operator already has as many sessions as allowed.
    #[error(
        "operator {operator} already has {limit} session(s) open (limits.sessions_per_operator); close one first"
    )]
    TooManySessions {
        /// The operator.
        operator: String,
        /// The limit.
        limit: u32,
    },
    /// The operator sent control events faster than allowed.
    #[error(
        "rate limited: {operator} sent more than {per_second} control events per second (limits.events_per_second); retry in {retry_ms} ms"
    )]
    TooManyEvents {
        /// The operator.
        operator: String,
        /// The limit.
        per_second: u32,
        /// When the next event would be accepted.
        retry_ms: u128,
    },
}

/// The `[limits]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Control events per second per operator, over all their sessions.
    pub events_per_second: NonZeroU32,
    /// Events an operator may send at once before the per-second rate applies.
    pub events_burst: NonZeroU32,
    /// Concurrent sessions per operator.
    pub sessions_per_operator: u32,
    /// Writes per second to the API server, for the whole gateway.
    pub writes_per_second: f64,
    /// How long a released touch still holds its target (see `touch`).
    pub touch_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            events_per_second: NonZeroU32::new(100).expect("non-zero"),
            events_burst: NonZeroU32::new(100).expect("non-zero"),
            sessions_per_operator: 4,
            writes_per_second: 50.0,
            touch_grace: Duration::from_millis(1000),
        }
    }
}

/// governor's clock, driven by tokio's (so `tokio::time::pause` controls it in tests).
#[derive(Debug, Clone)]
pub struct TokioClock {
    start: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(Instant::now().saturating_duration_since(self.start))
    }
}

type EventLimiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

struct OperatorState {
    events: RwLock<Events>,
    sessions: AtomicU32,
    /// When a session of theirs last ended (or they were first seen), on [`TokioClock`].
    idle_since: AtomicU64,
}

impl OperatorState {
    fn new(limits: &Limits, clock: &TokioClock) -> OperatorState {
        OperatorState {
            events: RwLock::new(Events::new(limits, clock)),
            sessions: AtomicU32::new(0),
            idle_since: AtomicU64::new(clock.now().as_u64()),
        }
    }

    /// No session open, and none for at least `refill`: their limiter is full again.
    fn is_forgettable(&self, now: Nanos, refill: Duration) -> bool {
        // `idle_since` is stored before the session count drops (see `SessionPermit::drop`), so a
        // count of zero read here comes with the end time of the session that made it zero.
        let idle = now
            .as_u64()
            .saturating_sub(self.idle_since.load(Ordering::Acquire));
        self.sessions.load(Ordering::Acquire) == 0 && Duration::from_nanos(idle) >= refill
    }
}

/// One operator's event limiter and the rate it enforces.
struct Events {
    limiter: EventLimiter,
    per_second: u32,
}

impl Events {
    fn new(limits: &Limits, clock: &TokioClock) -> Events {
        let quota = Quota::per_second(limits.events_per_second).allow_burst(limits.events_burst);
        Events {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            per_second: limits.events_per_second.get(),
        }
    }
}

/// Per-operator limits, shared by every session.
pub struct OperatorLimits {
    limits: RwLock<Limits>,
    clock: TokioClock,
    operators: Mutex<HashMap<Arc<str>, Arc<OperatorState>>>,
}

impl OperatorLimits {
    /// Limits as configured.
    pub fn new(limits: Limits) -> OperatorLimits {
        OperatorLimits {
            limits: RwLock::new(limits),
            clock: TokioClock {
                start: Instant::now(),
            },
            operators: Mutex::new(HashMap::new()),
        }
    }

    /// New limits (a config reload): open sessions stay counted, every operator's event rate
    /// starts afresh under the new quota.
    pub fn reconfigure(&self, limits: Limits) {
        let map = self.operators.lock().unwrap_or_else(|p| p.into_inner());
        for state in map.values() {
            *state.events.write().unwrap_or_else(|p| p.into_inner()) =
                Events::new(&limits, &self.clock);
        }
        *self.limits.write().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    fn limits(&self) -> Limits {
        self.limits
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Admits a new session of `operator`, or refuses it when they have too many.
    pub fn open_session(&self, operator: &Arc<str>) -> Result<SessionPermit, Error> {
        let limits = self.limits();
        let mut map = self.operators.lock().unwrap_or_else(|p| p.into_inner());
        let (now, refill) = (self.clock.now(), refill_time(&limits));
        map.retain(|_, state| !state.is_forgettable(now, refill));
        let state = map
            .entry(operator.clone())
            .or_insert_with(|| Arc::new(OperatorState::new(&limits, &self.clock)))
            .clone();
        // Counted under the map's lock, so no sweep forgets an operator being admitted.
        let limit = limits.sessions_per_operator;
        state
            .sessions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| Error::TooManySessions {
                operator: operator.to_string(),
                limit,
            })?;
        Ok(SessionPermit {
            operator: operator.clone(),
            clock: self.clock.clone(),
            state,
        })
    }

    /// How many operators have a limiter (open sessions, or a burst still refilling).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.operators.lock().unwrap().len()
    }
}

/// How long an idle operator's limiter takes to refill its whole burst.
fn refill_time(limits: &Limits) -> Duration {
    Duration::from_secs_f64(
        f64::from(limits.events_burst.get()) / f64::from(limits.events_per_second.get()),
    )
}

/// One admitted session; checks its operator's event rate, and frees its slot when dropped.
pub struct SessionPermit {
    operator: Arc<str>,
    clock: TokioClock,
    state: Arc<OperatorState>,
}

impl SessionPermit {
    /// Counts one control event against the operator's rate; never waits. Over the rate, says
    /// how long until the next event would be admitted.
    pub fn try_event(&self) -> Result<(), Duration> {
        let events = self.state.events.read().unwrap_or_else(|p| p.into_inner());
        events
            .limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Like [`SessionPermit::try_event`], with the refusal worded for the operator.
    pub fn check_event(&self) -> Result<(), Error> {
        self.try_event().map_err(|wait| Error::TooManyEvents {
            operator: self.operator.to_string(),
            per_second: self.per_second(),
            retry_ms: wait.as_millis().max(1),
        })
    }

    /// The operator's event rate in force.
    fn per_second(&self) -> u32 {
        let events = self.state.events.read().unwrap_or_else(|p| p.into_inner());
        events.per_second
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let now = self.clock.now().as_u64();
        self.state.idle_since.store(now, Ordering::Release);
        self.state.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Cooldowns of one-shot targets: the last time each acted.
#[derive(Debug, Default)]
pub struct Cooldowns {
    last: Mutex<HashMap<String, Instant>>,
}

impl Cooldowns {
    /// Starts `target`'s action now unless it acted less than `cooldown` ago; then says how
    /// long is left.
    pub fn try_start(&self, target: &str, cooldown: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = last.get(target) {
            let ready = *at + cooldown;
            if now < ready {
                return Err(ready - now);
            }
        }
        last.insert(target.to_owned(), now);
        Ok(())
    }
}

/// The whole gateway's writes per second, handed out first come, first served.
#[derive(Debug)]
pub struct WriteBudget {
    /// Nanoseconds between turns (changed by a config reload).
    interval_ns: AtomicU64,
    next: tokio::sync::Mutex<Instant>,
}

impl WriteBudget {
    /// A budget of `per_second` writes (> 0).
    pub fn new(per_second: f64) -> WriteBudget {
        let budget = WriteBudget {
            interval_ns: AtomicU64::new(0),
            next: tokio::sync::Mutex::new(Instant::now()),
        };
        budget.set_rate(per_second);
        budget
    }

    /// Changes the budget to `per_second` writes (> 0) from the next turn on.
    pub fn set_rate(&self, per_second: f64) {
        let nanos = Duration::from_secs_f64(1.0 / per_second).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.interval_ns.store(nanos, Ordering::Relaxed);
    }

    /// Waits for this writer's turn; turns are at least `1 / per_second` apart.
    pub async fn acquire(&self) {
        let mut next = self.next.lock().await;
        let at = (*next).max(Instant::now());
        sleep_until(at).await;
        *next = at + Duration::from_nanos(self.interval_ns.load(Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests;
