//! The `kubeknobs.v1.Knobs/Session` handler: one task per bridge session.
//!
//! The operator was authenticated by the interceptor before we get here. A session must open
//! with `Hello` (within `server.hello_timeout_ms`); it is answered with `Welcome` (identity, cluster,
//! catalog with live state), then the session task forwards every state change to the bridge
//! and checks each control event before handing it to its target's coalescer. Every event gets
//! exactly one `Outcome`, here (unknown target, bad value) or from the coalescer.
//!
//! State updates and presence lists are paced per session (see [`pace`]): at most
//! `server.state_updates_per_second` updates and one presence list a second, latest state wins,
//! and the end of a burst is sent at the next frame.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use kubeknobs_proto::v1::{
    self, ClientMessage, ServerMessage, client_message, knobs_server::Knobs, server_message::Msg,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::catalog::Catalog;
use crate::coalesce::Reply;
use crate::config::SessionLimits;
use crate::identity::Identity;
use crate::policy::Policy;
use crate::presence::Member;
use crate::ratelimit::SessionPermit;
use crate::state;
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

type SessionStream = Pin<Box<dyn Stream<Item = Result<ServerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Knobs for KnobsService {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<ClientMessage>>,
    ) -> Result<Response<SessionStream>, Status> {
        self.open(request).await.map_err(Status::from)
    }
}

impl KnobsService {
    /// Opens a session: the caller's identity, a slot among the operator's sessions, `Hello`,
    /// `Welcome`; then the session runs on its own task.
    async fn open(
        &self,
        request: Request<Streaming<ClientMessage>>,
    ) -> Result<Response<SessionStream>, Error> {
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
        tokio::spawn(session.run(inbound, snapshot));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
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
    /// State updates and the closing status.
    tx: mpsc::Sender<Result<ServerMessage, Status>>,
    /// Outcomes, counted.
    reply: Reply,
    /// Rejected and merged moves, logged as one line per kind per second.
    noise: std::sync::Mutex<LogSummary>,
}

impl Session {
    async fn run(self, mut inbound: Streaming<ClientMessage>, mut last_sent: state::Snapshot) {
        let _counted = self.report.metrics.session();
        let mut states = self.feeds.hub.subscribe();
        states.mark_unchanged();
        let mut presence = self.feeds.roster.subscribe();
        let mut views = self.control.view.subscribe();
        let mut parked = Parked::default();
        let mut state_pace = Pace::per_second(self.control.view().session.updates_per_second);
        let mut presence_pace = Pace::new(PRESENCE_INTERVAL);
        let end = loop {
            let wake = parked.wake();
            let summary_due = self.noise_due();
            let (state_due, presence_due) = (state_pace.due(), presence_pace.due());
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
                // While a change waits for its frame, further changes are not listened for:
                // the frame sends the latest state, whatever came in between.
                changed = states.changed(), if state_due.is_none() => {
                    if changed.is_err() { break "state hub closed".to_owned() }
                    if state_pace.changed() && !self.send_states(&mut states, &mut last_sent).await {
                        break "bridge went away".to_owned();
                    }
                }
                () = sleep_until_some(state_due), if state_due.is_some() => {
                    state_pace.sent();
                    if !self.send_states(&mut states, &mut last_sent).await {
                        break "bridge went away".to_owned();
                    }
                }
                changed = presence.changed(), if presence_due.is_none() => {
                    if changed.is_err() { break "roster closed".to_owned() }
                    if presence_pace.changed() && !self.send_presence(&mut presence).await {
                        break "bridge went away".to_owned();
                    }
                }
                () = sleep_until_some(presence_due), if presence_due.is_some() => {
                    presence_pace.sent();
                    if !self.send_presence(&mut presence).await {
                        break "bridge went away".to_owned();
                    }
                }
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

    /// Sends the states that changed since `last_sent` and this operator may see; false when
    /// the bridge is gone.
    async fn send_states(
        &self,
        states: &mut watch::Receiver<state::Snapshot>,
        last_sent: &mut state::Snapshot,
    ) -> bool {
        let now = states.borrow_and_update().clone();
        let mut updates = state::changes(last_sent, &now);
        let policy = &self.control.view().policy;
        updates.retain(|s| policy.can_see(&self.identity, &s.target));
        *last_sent = now;
        updates.is_empty() || self.tx.send(Ok(state_update(updates))).await.is_ok()
    }

    /// Sends the list of who is connected now; false when the bridge is gone.
    async fn send_presence(&self, presence: &mut watch::Receiver<Arc<v1::Presence>>) -> bool {
        let now = (**presence.borrow_and_update()).clone();
        let message = ServerMessage {
            msg: Some(Msg::Presence(now)),
        };
        self.tx.send(Ok(message)).await.is_ok()
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
mod pace;
mod parked;
mod parts;
mod touch;

use admit::Rate;
pub use error::{Error, RELOADED};
use hello::await_hello;
use pace::Pace;
use parked::Parked;
pub use parts::{Control, Entry, Feeds, Report};

/// At most one presence list a second per session: it is read by people, and a storm of N
/// connecting sessions then costs O(N) lists, not one list per session per connect.
const PRESENCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Sleeps until `at` (the caller only polls this when `at` is set).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// True when a stream error only says the bridge went away (it was stopped, or its connection
/// dropped): a reset or a cancelled stream is how HTTP/2 ends a stream without a last message.
fn hung_up(status: &Status) -> bool {
    use tonic::Code;
    matches!(status.code(), Code::Cancelled | Code::Unavailable)
        || status.message().contains("stream no longer needed")
        || status.message().contains("connection reset")
        || status.message().contains("broken pipe")
}

fn state_update(states: Vec<v1::TargetState>) -> ServerMessage {
    ServerMessage {
        msg: Some(Msg::State(v1::StateUpdate { states })),
    }
}
