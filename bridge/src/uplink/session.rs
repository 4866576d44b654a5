//! One gateway session, from connect to its end: `Hello`, `Welcome`, then control events up and
//! outcomes and state down, until the stream or the connection fails.

use std::collections::HashMap;
use std::time::Duration;

use kubeknobs_proto::v1::knobs_client::KnobsClient;
use kubeknobs_proto::v1::{
    ClientMessage, Hello, OutcomeKind, PROTOCOL_VERSION, ServerMessage, Welcome, client_message,
    server_message,
};
use kubeknobs_runtime::summary::LogSummary;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info, warn};

use super::{Error, Result, Uplink};
use crate::event::Event;
use crate::link::{LiveSession, Publisher};
use crate::mapping::Bounds;

/// Outbound queue of a session. Bounded so a stalled gateway slows the OSC loop down rather than
/// piling up moves in memory; it never outlives its session, so nothing in it is replayed.
const OUTBOUND: usize = 256;

/// How long the gateway may take to answer `Hello` with `Welcome`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one session until it ends with some [`Error`], or until `stop` turns true: then it
/// closes the session cleanly and returns `Ok`.
pub(super) async fn run(
    uplink: &Uplink,
    publisher: &Publisher,
    feedback: &mpsc::Sender<Event>,
    stop: &mut watch::Receiver<bool>,
) -> Result<()> {
    let channel = uplink.endpoint.connect().await.map_err(Error::Connect)?;
    let mut client = KnobsClient::with_interceptor(channel, uplink.auth.clone());
    let (tx, rx) = mpsc::channel(OUTBOUND);
    let hello = Hello {
        bridge_id: uplink.bridge_id.clone(),
        protocol_version: PROTOCOL_VERSION,
    };
    tx.send(ClientMessage {
        msg: Some(client_message::Msg::Hello(hello)),
    })
    .await
    .map_err(|_| Error::Protocol("outbound stream closed before Hello".into()))?;
    let opened = async {
        let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
        match inbound.message().await? {
            Some(ServerMessage {
                msg: Some(server_message::Msg::Welcome(w)),
            }) => Ok((inbound, w)),
            Some(other) => Err(Error::Protocol(format!(
                "expected Welcome first, got {other:?}"
            ))),
            None => Err(Error::Protocol(
                "the gateway closed the session before Welcome".into(),
            )),
        }
    };
    // A gateway that accepts the connection but never answers must not hold the bridge forever.
    let (mut inbound, welcome) = tokio::time::timeout(WELCOME_TIMEOUT, opened)
        .await
        .map_err(|_| {
            Error::Protocol(format!("no Welcome within {} s", WELCOME_TIMEOUT.as_secs()))
        })??;
    let catalog = greet(&welcome);
    // Live first: once a phone shows this session's state, its moves are sent in this session.
    let live = publisher.publish(LiveSession::new(catalog, tx)).await;
    let _ = feedback.send(Event::Welcome(welcome.targets)).await;

    let mut noise = LogSummary::default();
    let stopping = loop {
        let due = noise.due();
        let message = tokio::select! {
            message = inbound.message() => message?,
            () = sleep_until_some(due), if due.is_some() => {
                log_summary(&mut noise);
                continue;
            }
            _ = stop.wait_for(|stop| *stop) => break true,
        };
        let Some(message) = message else { break false };
        match message.msg {
            Some(server_message::Msg::Outcome(o)) => {
                log_outcome(&o, &mut noise);
                if o.kind() == OutcomeKind::Rejected {
                    let _ = feedback.send(Event::Rejected(o)).await;
                }
            }
            Some(server_message::Msg::State(update)) => {
                for s in &update.states {
                    if s.error.is_empty() {
                        debug!(
                            target_name = %s.target, desired = ?s.desired, ready = ?s.ready,
                            changed_by = %s.changed_by, "state"
                        );
                    } else {
                        warn!(target_name = %s.target, error = %s.error, "target state unavailable");
                    }
                }
                let _ = feedback.send(Event::States(update.states)).await;
            }
            Some(server_message::Msg::Presence(presence)) => {
                let names: Vec<&str> = presence.operators.iter().map(|o| o.name.as_str()).collect();
                info!(operators = %names.join(", "), "connected operators");
                let _ = feedback.send(Event::Presence(names.join(" "))).await;
            }
            Some(server_message::Msg::Welcome(_)) => {
                warn!("gateway sent a second Welcome; ignored")
            }
            None => debug!("empty message from gateway; ignored"),
        }
    };
    log_summary(&mut noise);
    if stopping {
        // Ending the outbound stream is a clean close: the gateway ends the session in turn.
        drop(live);
        let drained = async { while let Ok(Some(_)) = inbound.message().await {} };
        if tokio::time::timeout(CLOSE_GRACE, drained).await.is_err() {
            debug!("the gateway did not end the session within {CLOSE_GRACE:?}");
        }
        return Ok(());
    }
    Err(Error::Closed)
}

/// How long a stopping bridge waits for the gateway to end the session after its own close.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Logs who we are to the gateway and returns the catalog's usable bounds by target name.
fn greet(welcome: &Welcome) -> HashMap<String, Option<Bounds>> {
    info!(
        operator = %welcome.operator, cluster = %welcome.cluster, targets = welcome.targets.len(),
        "connected to gateway"
    );
    if welcome.sandbox {
        warn!(
            "SANDBOX: the gateway drives its in-memory sandbox, not a real cluster; \
             nothing you do here changes Kubernetes"
        );
    }
    if welcome.protocol_version != PROTOCOL_VERSION {
        warn!(
            gateway = welcome.protocol_version,
            bridge = PROTOCOL_VERSION,
            "gateway speaks protocol version {}, this bridge {}",
            welcome.protocol_version,
            PROTOCOL_VERSION
        );
    }
    // Feedback, which knows the mappings, says which mapped targets this catalog lacks.
    welcome
        .targets
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.bounds.as_ref().and_then(|b| Bounds::try_from(b).ok()),
            )
        })
        .collect()
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// One line per kind of refusal that was only counted in the interval just ended.
fn log_summary(noise: &mut LogSummary) {
    let interval = noise.interval();
    for (reason, n) in noise.take() {
        warn!(%reason, count = n, "{n} more control events rejected ({reason}) in the last {interval:?}");
    }
}

/// Logs an outcome; refusals are logged in full once per reason per second, then summarised.
fn log_outcome(o: &kubeknobs_proto::v1::Outcome, noise: &mut LogSummary) {
    if o.kind() == OutcomeKind::Rejected && !noise.note(o.reason().as_str_name()) {
        return;
    }
    match o.kind() {
        OutcomeKind::Applied => {
            debug!(seq = o.seq, target_name = %o.target, value = o.value, "applied")
        }
        OutcomeKind::Superseded => {
            debug!(seq = o.seq, target_name = %o.target, value = o.value, "superseded")
        }
        OutcomeKind::Rejected => warn!(
            seq = o.seq, target_name = %o.target, value = o.value, reason = o.reason().as_str_name(),
            message = %o.message, "control event rejected"
        ),
        OutcomeKind::Unspecified => {
            debug!(seq = o.seq, target_name = %o.target, kind = o.kind, "outcome of unknown kind")
        }
    }
}
