//! What sessions share, by role, each part built once by `crate::server` and handed to the
//! service: [`Entry`] lets a session in, [`Control`] admits and applies its control events
//! (and is what a config reload changes), [`Feeds`] is what it streams to its bridge, and
//! [`Report`] is where it accounts for what happened.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Request;

use super::View;
use crate::audit::Audit;
use crate::auth::{self, PendingReview, TokenReviewer};
use crate::coalesce::Coalescer;
use crate::identity::Identity;
use crate::leader::{LeaseSettings, Role};
use crate::metrics::Metrics;
use crate::presence::Roster;
use crate::ratelimit::{Cooldowns, OperatorLimits};
use crate::state::StateHub;
use crate::state::frames::Frames;
use crate::touch::Holds;

/// What lets a session in: this gateway's part in the leader election, and who the caller is.
pub struct Entry {
    /// This gateway's part in the leader election; it serves sessions only while it leads.
    pub role: watch::Receiver<Role>,
    /// The Lease of the election (`[cluster.leader_election]`), if any.
    pub lease: Option<LeaseSettings>,
    /// Checks bearer tokens no operator has with the cluster (`auth.token_review`).
    pub reviewer: Option<TokenReviewer>,
}

impl Entry {
    /// Why this gateway does not serve sessions now (a standby), if it does not.
    pub fn standby(&self) -> Option<String> {
        let lease = self.lease.as_ref()?;
        self.role.borrow().standby_reason(lease)
    }

    /// The operator of `request`: as the interceptor found it, or as the cluster reviews the
    /// token the interceptor handed on.
    pub async fn identify<T>(&self, request: &Request<T>) -> Result<Identity, auth::Error> {
        let extensions = request.extensions();
        match (
            extensions.get::<Identity>(),
            extensions.get::<PendingReview>(),
            &self.reviewer,
        ) {
            (Some(identity), _, _) => Ok(identity.clone()),
            (None, Some(pending), Some(reviewer)) => {
                reviewer.review(pending).await.inspect_err(|err| {
                    tracing::warn!(reason = %err, "session refused");
                })
            }
            _ => Err(auth::Error::NoIdentity),
        }
    }
}

/// What admits control events and applies them; a config reload changes it in place.
pub struct Control {
    /// Catalog, policy and session limits in force. A session ends (UNAVAILABLE, "reconnect")
    /// when the catalog or policy changes, so its bridge gets a `Welcome` that matches them.
    pub view: watch::Sender<Arc<View>>,
    /// Per-operator event rates and session counts.
    pub limits: OperatorLimits,
    /// Who holds which target's control.
    pub holds: Holds,
    /// When each one-shot target last acted.
    pub cooldowns: Cooldowns,
    /// One coalescer per target, by name.
    pub coalescers: HashMap<String, Coalescer>,
}

impl Control {
    /// The view in force now.
    pub fn view(&self) -> Arc<View> {
        self.view.borrow().clone()
    }
}

/// What a session streams to its bridge: live state, who is connected, and when to stop.
pub struct Feeds {
    /// Live state of every target.
    pub hub: Arc<StateHub>,
    /// The hub's state, framed once for every session.
    pub frames: Arc<Frames>,
    /// Who is connected.
    pub roster: Arc<Roster>,
    /// The cluster's name for `Welcome`.
    pub cluster: String,
    /// True when the cluster is the sandbox.
    pub sandbox: bool,
    /// Cancelled when the gateway shuts down: sessions close with UNAVAILABLE.
    pub shutdown: CancellationToken,
}

/// Where sessions account for what happened.
#[derive(Clone)]
pub struct Report {
    /// The audit trail.
    pub audit: Arc<Audit>,
    /// What the gateway counts.
    pub metrics: Metrics,
}
