//! The `kubeknobs.v1.Knobs/Session` handler: one task per bridge session.
//!
//! The operator was authenticated by the interceptor before we get here. A session must open
//! with `Hello` (within `server.hello_timeout_ms`); it is answered with `Welcome` (identity, cluster,
//! catalog with live state), then the session task checks each control event before handing it
//! to its target's coalescer. Every event gets exactly one `Outcome`, here (unknown target, bad
//! value) or from the coalescer.
//!
//! State and presence are not the session task's: they are framed once for every session (at
//! most `server.state_updates_per_second` state frames and one presence list a second, latest
//! state wins, the end of a burst at the next frame; see [`crate::state::frames`] and
//! [`crate::presence`]) and read by the session's [`Outbox`] straight from the connection.

use std::collections::HashSet;
use std::sync::Arc;

use kubeknobs_proto::v1::{
    self, ClientMessage, ServerMessage, client_message, server_message::Msg,
};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use crate::catalog::Catalog;
use crate::coalesce::Reply;
use crate::config::SessionLimits;
use crate::identity::Identity;
use crate::policy::Policy;
use crate::presence::Member;
use crate::ratelimit::SessionPermit;
use crate::state::frames::Visible;
use crate::summary::LogSummary;

/// Messages buffered towards one bridge; a session this far behind loses outcomes, not state.
const OUTBOUND_CAPACITY: usize = 4096;

/// What sessions check control events against; a config reload replaces it as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// The targets.
    pub catalog: Catalog,
    /// Who may see and change which targets.
    pub policy: Policy,
    /// Hello timeout and message size.
    pub session: SessionLimits,
}

/// The gRPC service.
#[derive(Clone)]
pub struct KnobsService {
    entry: Arc<Entry>,
    control: Arc<Control>,
    feeds: Arc<Feeds>,
    report: Report,
}

impl KnobsService {
    /// A service whose sessions are let in by `entry`, have their events admitted and applied
    /// by `control`, stream from `feeds` and account to `report`.
    pub fn new(
        entry: Arc<Entry>,
        control: Arc<Control>,
        feeds: Arc<Feeds>,
        report: Report,
    ) -> KnobsService {
        KnobsService {
            entry,
            control,
            feeds,
            report,
        }
    }
}

impl KnobsService {
    /// `kubeknobs.v1.Knobs/Session` (served by [`KnobsServer`]): the response streams the
    /// session's [`Outbox`].
    pub async fn session(
        &self,
        request: Request<Streaming<ClientMessage>>,
    ) -> Result<Response<Outbox>, Status> {
        self.open(request).await.map_err(Status::from)
    }

    /// Opens a session: the caller's identity, a slot among the operator's sessions, `Hello`,
    /// `Welcome`; then the session runs on its own task.
    async fn open(
        &self,
        request: Request<Streaming<ClientMessage>>,
    ) -> Result<Response<Outbox>, Error> {
        if let Some(reason) = self.entry.standby() {
            tracing::info!(%reason, "session refused: this gateway is a standby");
            return Err(Error::Standby(reason));
        }
        let identity = self.entry.identify(&request).await?;
        let permit = self
            .control
            .limits
            .open_session(&identity.name)
            .inspect_err(|err| {
                tracing::warn!(operator = %identity.name, reason = %err, "session refused");
            })?;
        let mut inbound = request.into_inner();
        let view = self.control.view();
        let hello = await_hello(&mut inbound, view.session.hello_timeout).await?;
        tracing::info!(operator = %identity.name, bridge = %crate::telemetry::clip(&hello.bridge_id), "session opened");

        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        // The session is sent every frame after the current one, and its Welcome shows the
        // hub's state now (as new as that frame or newer: the next frame brings what changed).
        let mut frames = self.feeds.frames.subscribe();
        let seen = frames.borrow_and_update().number;
        let snapshot = self.feeds.hub.snapshot();
        let welcome = v1::Welcome {
            operator: identity.name.to_string(),
            cluster: self.feeds.cluster.clone(),
            sandbox: self.feeds.sandbox,
            targets: view
                .catalog
                .iter()
                .filter(|t| view.policy.can_see(&identity, &t.name))
                .map(|t| t.to_proto(snapshot.get(&t.name).cloned().unwrap_or_default()))
                .collect(),
            protocol_version: v1::PROTOCOL_VERSION,
        };
        let visible = visible(&view, &identity);
        let _ = tx.try_send(Ok(ServerMessage {
            msg: Some(Msg::Welcome(welcome)),
        }));
        let session = Session {
            welcomed: view,
            control: self.control.clone(),
            feeds: self.feeds.clone(),
            report: self.report.clone(),
            operator: identity.name.clone(),
            member: self
                .feeds
                .roster
                .join(identity.name.clone(), hello.bridge_id.clone()),
            identity,
            permit,
            armed: Default::default(),
            bridge: hello.bridge_id,
            reply: Reply::new(tx.clone(), self.report.metrics.clone()),
            noise: Default::default(),
            tx,
        };
        tokio::spawn(session.run(inbound));
        let presence = self.feeds.roster.subscribe();
        let outbox = Outbox::new(rx, presence, frames, seen, visible);
        Ok(Response::new(outbox))
    }
}

/// The targets of `view` that `identity` may see.
fn visible(view: &View, identity: &Identity) -> Visible {
    let names: HashSet<String> = view
        .catalog
        .iter()
        .filter(|t| view.policy.can_see(identity, &t.name))
        .map(|t| t.name.clone())
        .collect();
    if names.len() == view.catalog.len() {
        Visible::All
    } else {
        Visible::Only(names)
    }
}

struct Session {
    /// Admits and applies the session's control events.
    control: Arc<Control>,
    /// What the session streams to its bridge.
    feeds: Arc<Feeds>,
    /// Where it accounts for what happened.
    report: Report,
    /// The view this session's `Welcome` showed.
    welcomed: Arc<View>,
    identity: Identity,
    permit: SessionPermit,
    member: Member,
    /// True while the bridge's arm control is held.
    armed: std::sync::atomic::AtomicBool,
    operator: Arc<str>,
    bridge: String,
    /// The closing status (outcomes go through `reply`); closed when the bridge is gone.
    tx: mpsc::Sender<Result<ServerMessage, Status>>,
    /// Outcomes, counted.
    reply: Reply,
    /// Rejected and merged moves, logged as one line per kind per second.
    noise: std::sync::Mutex<LogSummary>,
}

impl Session {
    async fn run(self, mut inbound: Streaming<ClientMessage>) {
        let _counted = self.report.metrics.session();
        let mut views = self.control.view.subscribe();
        let mut parked = Parked::default();
        let end = loop {
            let wake = parked.wake();
            let summary_due = self.noise_due();
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(message)) => self.handle(message, &mut parked),
                    Ok(None) => break "bridge closed the session".to_owned(),
                    Err(status) if hung_up(&status) => break format!("bridge hung up ({})", status.message()),
                    Err(status) => {
                        let bad = Error::BadMessage(status);
                        let message = bad.to_string();
                        let _ = self.tx.try_send(Err(bad.into()));
                        break message;
                    }
                },
                () = sleep_until_some(wake), if wake.is_some() => self.unpark(&mut parked),
                () = sleep_until_some(summary_due), if summary_due.is_some() => self.log_summary(),
                _ = views.changed() => {
                    let now = views.borrow_and_update().clone();
                    if (&now.catalog, &now.policy) != (&self.welcomed.catalog, &self.welcomed.policy) {
                        let _ = self.tx.send(Err(Error::Reloaded.into())).await;
                        break "configuration reloaded".to_owned();
                    }
                }
                () = self.tx.closed() => break "bridge went away".to_owned(),
                () = self.feeds.shutdown.cancelled() => {
                    let _ = self.tx.send(Err(Error::ShuttingDown.into())).await;
                    break "gateway shutting down".to_owned();
                }
            }
        };
        // The operator's last moves are theirs to keep, whatever the rate: at most one per target.
        for waiting in parked.drain() {
            // Exempt from the rate: never handed back.
            let _ = self.admit(waiting, Rate::Exempt);
        }
        self.log_summary();
        self.control.holds.release_session(self.member.id);
        tracing::info!(operator = %self.operator, bridge = %crate::telemetry::clip(&self.bridge), reason = %end, "session closed");
    }

    fn handle(&self, message: ClientMessage, parked: &mut Parked) {
        match message.msg {
            Some(client_message::Msg::Control(event)) => self.control(event, parked),
            Some(client_message::Msg::Touch(touch)) => self.touch(touch),
            Some(client_message::Msg::Arm(arm)) => self.arm(arm),
            Some(client_message::Msg::Hello(_)) => {
                tracing::warn!(operator = %self.operator, "second Hello ignored");
            }
            None => tracing::warn!(operator = %self.operator, "empty client message ignored"),
        }
    }
}

mod admit;
mod control;
mod error;
mod hello;
mod outbox;
mod parked;
mod parts;
mod touch;
mod wire;

use crate::pace::sleep_until_some;
use admit::Rate;
pub use error::{Error, RELOADED};
use hello::await_hello;
pub use outbox::Outbox;
use parked::Parked;
pub use parts::{Control, Entry, Feeds, Report};
pub use wire::{KnobsServer, Outbound, SessionCodec};

/// True when a stream error only says the bridge went away (it was stopped, or its connection
/// dropped): a reset or a cancelled stream is how HTTP/2 ends a stream without a last message.
fn hung_up(status: &Status) -> bool {
    use tonic::Code;
    matches!(status.code(), Code::Cancelled | Code::Unavailable)
        || status.message().contains("stream no longer needed")
        || status.message().contains("connection reset")
        || status.message().contains("broken pipe")
}
