//! The handle through which every control surface (OSC, MIDI, the web page) sends moves, touches
//! and arm presses into the live gateway session; the uplink publishes each session into it.
//!
//! Contract: a move is sent only while a session is live, scaled with the bounds of *that*
//! session's catalog and numbered with *that* session's sequence. With no live session the move
//! is *held*: only the last one per target, never the sweep that led to it. When the next
//! session goes live, each held move younger than `gateway.resend_within_ms` is sent first (the
//! operator's final value lands after a reconnect); older ones are dropped as stale and logged.
//! With `resend_within_ms = 0` nothing is held.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kubeknobs_proto::v1::{ArmEvent, ClientMessage, ControlEvent, TouchEvent, client_message};
use tokio::sync::{Mutex, mpsc, watch};
use tracing::{debug, info, warn};

use crate::mapping::{Bounds, Mapping};
use crate::ops::Metrics;

/// One live session as the OSC side sees it.
pub(crate) struct LiveSession {
    /// Target name → usable bounds (`None`: catalogued, but the bounds could not be used).
    catalog: HashMap<String, Option<Bounds>>,
    /// The session's outbound stream.
    tx: mpsc::Sender<ClientMessage>,
    /// The last `seq` used in this session.
    seq: AtomicU64,
}

impl LiveSession {
    pub(crate) fn new(
        catalog: HashMap<String, Option<Bounds>>,
        tx: mpsc::Sender<ClientMessage>,
    ) -> LiveSession {
        LiveSession {
            catalog,
            tx,
            seq: AtomicU64::new(0),
        }
    }
}

type Slot = Option<Arc<LiveSession>>;

/// The last move per target made while no session was live.
struct HeldMove {
    mapping: Mapping,
    value: f64,
    at: Instant,
}

/// Held moves by target. Locked across the check for a live session and across publishing one,
/// so a move is either sent or held, and a held one is never sent after a newer live one.
type Held = Arc<Mutex<HashMap<String, HeldMove>>>;

/// Sends moves into whatever session is live. Cheap to clone.
#[derive(Clone)]
pub struct Link {
    rx: watch::Receiver<Slot>,
    metrics: Metrics,
    held: Held,
    resend_within: Duration,
    pace: Arc<Mutex<HashMap<String, Pace>>>,
}

/// At most this many moves per second per target leave the bridge; a fader flick of hundreds
/// of events a second becomes this many, the last one always among them.
pub const MOVES_PER_SECOND: u32 = 25;

/// One target's pacing: when its next move may leave, and the latest move waiting for then.
#[derive(Default)]
struct Pace {
    next: Option<tokio::time::Instant>,
    waiting: Option<(Mapping, f64)>,
    /// A task sends `waiting` when its turn comes.
    draining: bool,
}

/// The uplink's side of a [`Link`]: publishes the live session.
pub(crate) struct Publisher {
    tx: watch::Sender<Slot>,
    link: Link,
}

/// A connected pair: the uplink publishes, the OSC and MIDI sides send; both count in `metrics`.
/// Moves made while disconnected are held for up to `resend_within` (zero: not held).
pub(crate) fn pair(metrics: Metrics, resend_within: Duration) -> (Publisher, Link) {
    let (tx, rx) = watch::channel(None);
    let link = Link {
        rx,
        metrics,
        held: Held::default(),
        resend_within,
        pace: Arc::default(),
    };
    (
        Publisher {
            tx,
            link: link.clone(),
        },
        link,
    )
}

impl Publisher {
    /// Sends the held moves that are still fresh into `session`, then makes it the live one
    /// until the returned guard is dropped, however the session ends.
    pub(crate) async fn publish(&self, session: LiveSession) -> Published<'_> {
        let session = Arc::new(session);
        let mut held = self.link.held.lock().await;
        for (_, held) in held.drain() {
            self.link.resend(&session, held).await;
        }
        self.tx.send_replace(Some(session));
        drop(held);
        self.link.metrics.set_connected(true);
        Published { publisher: self }
    }
}

/// Clears the live session when dropped.
pub(crate) struct Published<'a> {
    publisher: &'a Publisher,
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        self.publisher.tx.send_replace(None);
        self.publisher.link.metrics.set_connected(false);
    }
}

impl Link {
    /// True while a session is live.
    pub fn is_live(&self) -> bool {
        self.rx.borrow().is_some()
    }

    /// Sends a move of `mapping`'s control, merged per target: the first move after a quiet
    /// spell leaves at once, later ones at most [`MOVES_PER_SECOND`] per target, each the latest
    /// (latest wins), and the last move of a burst always leaves. Every control source (OSC,
    /// MIDI) goes through here, so a flood from a surface costs the gateway little.
    pub async fn send_move(&self, mapping: &Mapping, value: f64) {
        let interval = Duration::from_secs(1) / MOVES_PER_SECOND;
        let mut pace = self.pace.lock().await;
        let p = pace.entry(mapping.target.clone()).or_default();
        let now = tokio::time::Instant::now();
        if !p.draining && p.next.is_none_or(|next| now >= next) {
            p.next = Some(now + interval);
            // Sent under the lock, so a later move of this target never overtakes it.
            return self.deliver(mapping, value).await;
        }
        if p.waiting.replace((mapping.clone(), value)).is_some() {
            self.metrics.moved("merged");
        }
        if !p.draining {
            p.draining = true;
            tokio::spawn(self.clone().drain(mapping.target.clone(), interval));
        }
    }

    /// Sends `target`'s waiting move when its turn comes, and each newer one after it, until
    /// none is waiting.
    async fn drain(self, target: String, interval: Duration) {
        loop {
            let next = self.pace.lock().await.get(&target).and_then(|p| p.next);
            if let Some(next) = next {
                tokio::time::sleep_until(next).await;
            }
            let mut pace = self.pace.lock().await;
            let Some(p) = pace.get_mut(&target) else {
                return;
            };
            let Some((mapping, value)) = p.waiting.take() else {
                p.draining = false;
                return;
            };
            p.next = Some(tokio::time::Instant::now() + interval);
            self.deliver(&mapping, value).await;
        }
    }

    /// Scales a control value with `mapping` and sends it as a `ControlEvent`; holds it while
    /// no session is live; or drops it with a log line saying why.
    async fn deliver(&self, mapping: &Mapping, value: f64) {
        // Clone the Arc out: a watch borrow must not be held across an await.
        let session = self.rx.borrow().clone();
        let session = match session {
            Some(session) => session,
            None => {
                let mut held = self.held.lock().await;
                // A session may have gone live while we waited for the lock.
                let session = self.rx.borrow().clone();
                match session {
                    Some(session) => session,
                    None => return self.hold(&mut held, mapping, value),
                }
            }
        };
        self.send_to(&session, mapping, value).await;
    }

    /// Keeps `value` as the last move of its target until a session goes live.
    fn hold(&self, held: &mut HashMap<String, HeldMove>, mapping: &Mapping, value: f64) {
        let address = &mapping.address;
        self.metrics.moved("not_connected");
        if self.resend_within.is_zero() {
            warn!(%address, "not connected to gateway; move of {address} not sent");
            return;
        }
        let first = held
            .insert(
                mapping.target.clone(),
                HeldMove {
                    mapping: mapping.clone(),
                    value,
                    at: Instant::now(),
                },
            )
            .is_none();
        if first {
            warn!(
                %address, resend_within = ?self.resend_within,
                "not connected to gateway; the last move of {address} is held and sent on reconnect"
            );
        }
    }

    /// Sends a held move into the session about to go live, unless it has gone stale.
    async fn resend(&self, session: &LiveSession, held: HeldMove) {
        let address = &held.mapping.address;
        let age = held.at.elapsed();
        if age > self.resend_within {
            warn!(
                %address, age = ?age, resend_within = ?self.resend_within,
                "move of {address} made while disconnected is stale; dropped"
            );
            self.metrics.moved("stale");
            return;
        }
        info!(%address, value = held.value, age = ?age, "sending the last move made while disconnected");
        self.send_to(session, &held.mapping, held.value).await;
    }

    /// Scales `value` with `mapping` and the bounds of `session`, and sends it there.
    async fn send_to(&self, session: &LiveSession, mapping: &Mapping, value: f64) {
        let bounds = match session.catalog.get(&mapping.target) {
            Some(Some(bounds)) => bounds,
            // Warned about once when the session started; a line per move would flood the log.
            Some(None) | None => {
                debug!(
                    address = %mapping.address, target_name = %mapping.target,
                    "target not usable in this session; move not sent"
                );
                self.metrics.moved("unmapped");
                return;
            }
        };
        let value = match mapping.to_target(value, bounds) {
            Ok(v) => v,
            Err(e) => {
                warn!(address = %mapping.address, error = %e, "move not sent");
                self.metrics.moved("invalid");
                return;
            }
        };
        let seq = session.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let event = ControlEvent {
            seq,
            target: mapping.target.clone(),
            value,
        };
        let message = ClientMessage {
            msg: Some(client_message::Msg::Control(event)),
        };
        match session.tx.send(message).await {
            Ok(()) => {
                debug!(seq, target_name = %mapping.target, value, "control event sent");
                self.metrics.moved("sent");
            }
            Err(_) => {
                // The session ended under us; the next session's Welcome shows the truth.
                let address = &mapping.address;
                warn!(%address, "gateway session ended; move of {address} not sent");
                self.metrics.moved("not_connected");
            }
        }
    }

    /// Tells the gateway that the control of `mapping` was touched or released (not queued
    /// while disconnected: a reconnect starts with nothing held).
    pub async fn send_touch(&self, mapping: &Mapping, touched: bool) {
        let session = self.rx.borrow().clone();
        let Some(session) = session else {
            debug!(address = %mapping.address, "not connected to gateway; touch not sent");
            return;
        };
        let message = ClientMessage {
            msg: Some(client_message::Msg::Touch(TouchEvent {
                target: mapping.target.clone(),
                touched,
            })),
        };
        match session.tx.send(message).await {
            Ok(()) => debug!(target_name = %mapping.target, touched, "touch sent"),
            Err(_) => {
                debug!(address = %mapping.address, "not connected to gateway; touch not sent")
            }
        }
    }

    /// Tells the gateway the arm control is held (`armed`) or released; not queued while
    /// disconnected, so a new session starts disarmed.
    pub async fn send_arm(&self, armed: bool) {
        let session = self.rx.borrow().clone();
        let Some(session) = session else {
            debug!(armed, "not connected to gateway; arm not sent");
            return;
        };
        let message = ClientMessage {
            msg: Some(client_message::Msg::Arm(ArmEvent { armed })),
        };
        if session.tx.send(message).await.is_err() {
            debug!(armed, "not connected to gateway; arm not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Range;

    fn fader(target: &str) -> Mapping {
        Mapping {
            address: format!("/{target}"),
            target: target.into(),
            range: Range::default(),
            label: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn interleaved_floods_are_merged_per_target_and_each_final_value_is_sent() {
        let (publisher, link) = pair(Metrics::new(), Duration::ZERO);
        let bounds = Bounds::new(0.0, 20.0, 1.0).expect("bounds");
        let catalog = ["web", "api", "db"]
            .into_iter()
            .map(|t| (t.to_owned(), Some(bounds)))
            .collect();
        let (tx, mut rx) = mpsc::channel(4096);
        let _live = publisher.publish(LiveSession::new(catalog, tx)).await;
        let finals = [("web", 20.0), ("api", 0.0), ("db", 10.0)];
        for step in 0..300 {
            for (i, (target, last)) in finals.iter().enumerate() {
                let value = if step == 299 {
                    *last
                } else {
                    f64::from((step * (i as i32 + 3)) % 21)
                };
                link.send_move(&fader(target), value / 20.0).await;
            }
            tokio::time::sleep(Duration::from_micros(1333)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut sent = Vec::new();
        while let Ok(message) = rx.try_recv() {
            if let Some(client_message::Msg::Control(c)) = message.msg {
                sent.push(c);
            }
        }
        for (target, last) in finals {
            let final_sent = sent
                .iter()
                .rev()
                .find(|c| c.target == target)
                .map(|c| c.value);
            assert_eq!(final_sent, Some(last), "{target}: {sent:?}");
        }
        // 0.4 s at 25 per target (10 each), plus first moves and final values: far from 900.
        assert!(sent.len() <= 3 * 20, "{} sent", sent.len());
    }
}
