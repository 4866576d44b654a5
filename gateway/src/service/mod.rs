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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kubeknobs_proto::v1::{
    self, ClientMessage, ServerMessage, client_message, server_message::Msg,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::audit::Audit;
use crate::auth::{Identity, PendingReview, TokenReviewer};
use crate::catalog::Catalog;
use crate::coalesce::{Coalescer, Reply};
use crate::config::SessionLimits;
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::presence::{Member, Roster};
use crate::ratelimit::{Cooldowns, OperatorLimits, SessionPermit};
use crate::state::StateHub;
use crate::state::frames::{Frames, Visible};
use crate::summary::LogSummary;
use crate::touch::Holds;

/// Messages buffered towards one bridge; a session this far behind loses outcomes, not state.
const OUTBOUND_CAPACITY: usize = 4096;

/// The status a session ends with when a config reload changed what its `Welcome` said.
pub const RELOADED: &str = "gateway configuration reloaded; reconnect for the new catalog";

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

/// What every session shares.
pub struct Shared {
    /// Catalog, policy and session limits in force. A session ends (UNAVAILABLE, "reconnect")
    /// when the catalog or policy changes, so its bridge gets a `Welcome` that matches them.
    pub view: watch::Sender<Arc<View>>,
    /// Per-operator event rates and session counts.
    pub limits: OperatorLimits,
    /// Who is connected.
    pub roster: Arc<Roster>,
    /// Who holds which target's control.
    pub holds: Holds,
    /// When each one-shot target last acted.
    pub cooldowns: Cooldowns,
    /// The audit trail.
    pub audit: Arc<Audit>,
    /// Checks bearer tokens no operator has with the cluster (`auth.token_review`).
    pub reviewer: Option<TokenReviewer>,
    /// Live state of every target.
    pub hub: Arc<StateHub>,
    /// The hub's state, framed for sessions.
    pub frames: Arc<Frames>,
    /// One coalescer per target, by name.
    pub coalescers: HashMap<String, Coalescer>,
    /// The cluster's name for `Welcome`.
    pub cluster: String,
    /// True when the cluster is the sandbox.
    pub sandbox: bool,
    /// Cancelled when the gateway shuts down: sessions close with UNAVAILABLE.
    pub shutdown: CancellationToken,
    /// What the gateway counts.
    pub metrics: Metrics,
    /// This gateway's part in the leader election; it serves sessions only while it leads.
    pub role: watch::Receiver<crate::leader::Role>,
    /// The Lease of the election (`[cluster.leader_election]`), if any.
    pub lease: Option<crate::leader::LeaseSettings>,
}

impl Shared {
    /// Why this gateway does not serve sessions now (a standby), if it does not.
    pub fn standby(&self) -> Option<String> {
        let lease = self.lease.as_ref()?;
        self.role.borrow().standby_reason(lease)
    }

    /// The view in force now.
    pub fn view(&self) -> Arc<View> {
        self.view.borrow().clone()
    }
}

/// The gRPC service.
#[derive(Clone)]
pub struct KnobsService {
    shared: Arc<Shared>,
}

impl KnobsService {
    /// A service over `shared`.
    pub fn new(shared: Arc<Shared>) -> KnobsService {
        KnobsService { shared }
    }
}

impl KnobsService {
    /// `kubeknobs.v1.Knobs/Session`: checks who it is and their `Hello`, answers `Welcome` and
    /// starts the session's task; the response streams the session's [`Outbox`].
    pub async fn session(
        &self,
        request: Request<Streaming<ClientMessage>>,
    ) -> Result<Response<Outbox>, Status> {
        if let Some(reason) = self.shared.standby() {
            tracing::info!(%reason, "session refused: this gateway is a standby");
            return Err(Status::unavailable(format!(
                "{reason}; connect to the leading gateway (through the Service)"
            )));
        }
        let identity = match (
            request.extensions().get::<Identity>(),
            request.extensions().get::<PendingReview>(),
            &self.shared.reviewer,
        ) {
            (Some(identity), _, _) => identity.clone(),
            (None, Some(pending), Some(reviewer)) => {
                reviewer.review(pending).await.inspect_err(|status| {
                    tracing::warn!(reason = status.message(), "session refused");
                })?
            }
            _ => return Err(Status::unauthenticated("no operator identity")),
        };
        let permit = self
            .shared
            .limits
            .open_session(&identity.name)
            .inspect_err(|err| {
                tracing::warn!(operator = %identity.name, reason = %err, "session refused");
            })?;
        let mut inbound = request.into_inner();
        let view = self.shared.view();
        let hello = await_hello(&mut inbound, view.session.hello_timeout).await?;
        tracing::info!(operator = %identity.name, bridge = %crate::telemetry::clip(&hello.bridge_id), "session opened");

        let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        // The session is sent every frame after the current one, and its Welcome shows the
        // hub's state now (as new as that frame or newer: the next frame brings what changed).
        let mut frames = self.shared.frames.subscribe();
        let seen = frames.borrow_and_update().number;
        let snapshot = self.shared.hub.snapshot();
        let welcome = v1::Welcome {
            operator: identity.name.to_string(),
            cluster: self.shared.cluster.clone(),
            sandbox: self.shared.sandbox,
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
            shared: self.shared.clone(),
            operator: identity.name.clone(),
            member: self
                .shared
                .roster
                .join(identity.name.clone(), hello.bridge_id.clone()),
            identity,
            permit,
            armed: Default::default(),
            bridge: hello.bridge_id,
            reply: Reply::new(tx.clone(), self.shared.metrics.clone()),
            noise: Default::default(),
            tx,
        };
        tokio::spawn(session.run(inbound));
        let presence = self.shared.roster.subscribe();
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
    shared: Arc<Shared>,
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
        let _counted = self.shared.metrics.session();
        let mut views = self.shared.view.subscribe();
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
                        let message = format!("bad client message: {}", status.message());
                        let _ = self.tx.try_send(Err(Status::new(status.code(), message.clone())));
                        break message;
                    }
                },
                () = sleep_until_some(wake), if wake.is_some() => self.unpark(&mut parked),
                () = sleep_until_some(summary_due), if summary_due.is_some() => self.log_summary(),
                _ = views.changed() => {
                    let now = views.borrow_and_update().clone();
                    if (&now.catalog, &now.policy) != (&self.welcomed.catalog, &self.welcomed.policy) {
                        let status = Status::unavailable(RELOADED);
                        let _ = self.tx.send(Err(status)).await;
                        break "configuration reloaded".to_owned();
                    }
                }
                () = self.tx.closed() => break "bridge went away".to_owned(),
                () = self.shared.shutdown.cancelled() => {
                    let _ = self.tx.send(Err(Status::unavailable("gateway is shutting down; reconnect later"))).await;
                    break "gateway shutting down".to_owned();
                }
            }
        };
        // The operator's last moves are theirs to keep, whatever the rate: at most one per target.
        for waiting in parked.drain() {
            self.admit(waiting);
        }
        self.log_summary();
        self.shared.holds.release_session(self.member.id);
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

mod control;
mod hello;
mod outbox;
mod parked;
mod touch;
mod wire;

use crate::pace::sleep_until_some;
use hello::await_hello;
pub use outbox::Outbox;
use parked::Parked;
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
