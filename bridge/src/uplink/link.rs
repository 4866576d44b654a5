//! The handle through which the OSC side sends moves into the live gateway session.
//!
//! Contract: a move is sent only while a session is live, scaled with the bounds of *that*
//! session's catalog and numbered with *that* session's sequence. With no live session the move is
//! dropped with a warning: moves are never queued, so a reconnect never replays stale values.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kubeknobs_proto::v1::{ArmEvent, ClientMessage, ControlEvent, TouchEvent, client_message};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

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

/// Sends moves into whatever session is live. Cheap to clone.
#[derive(Clone)]
pub struct Link {
    rx: watch::Receiver<Slot>,
    metrics: Metrics,
}

/// The uplink's side of a [`Link`]: publishes the live session.
pub(crate) struct Publisher {
    tx: watch::Sender<Slot>,
    metrics: Metrics,
}

/// A connected pair: the uplink publishes, the OSC and MIDI sides send; both count in `metrics`.
pub(crate) fn pair(metrics: Metrics) -> (Publisher, Link) {
    let (tx, rx) = watch::channel(None);
    let link = Link {
        rx,
        metrics: metrics.clone(),
    };
    (Publisher { tx, metrics }, link)
}

impl Publisher {
    /// Makes `session` the live one until the returned guard is dropped, however the session ends.
    pub(crate) fn publish(&self, session: LiveSession) -> Published<'_> {
        self.tx.send_replace(Some(Arc::new(session)));
        self.metrics.set_connected(true);
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
        self.publisher.metrics.set_connected(false);
    }
}

impl Link {
    /// True while a session is live.
    pub fn is_live(&self) -> bool {
        self.rx.borrow().is_some()
    }

    /// Scales a control value with `mapping` and sends it as a `ControlEvent`, or drops it with a
    /// log line saying why.
    pub async fn send_move(&self, mapping: &Mapping, value: f64) {
        // Clone the Arc out: a watch borrow must not be held across an await.
        let session = self.rx.borrow().clone();
        let Some(session) = session else {
            let address = &mapping.address;
            warn!(%address, "not connected to gateway; move of {address} not sent");
            self.metrics.moved("not_connected");
            return;
        };
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
                let address = &mapping.address;
                warn!(%address, "not connected to gateway; move of {address} not sent");
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
