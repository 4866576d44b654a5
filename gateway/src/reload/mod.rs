//! Config reload: on SIGHUP, or when the config file changes, the gateway reads the file again,
//! validates it exactly as at start-up, and replaces the running settings only if all of it can
//! be used. A file that cannot be used changes nothing; the log says why.
//!
//! What reloads: operators (`[[operators]]`, `auth.tokens_file`), `[[policy]]`, `[limits]`,
//! `server.hello_timeout_ms`, `server.state_updates_per_second` (from the next state frame on),
//! and every setting of a catalogued target except which object it names (bounds, rate, step,
//! cooldown, arm, dry run). What needs a restart — the listen
//! addresses, TLS and client CA, the cluster and how it is reached (`cluster.backend`,
//! `kubeconfig`, `context`, `leader_election`), `auth.token_review` and its audiences,
//! `cluster.impersonate` and the groups it may send (the RBAC grants them by name), `audit.file`, `server.max_message_bytes`, and the set of targets with the object each names
//! (their watches and RBAC are set up at start) — is compared, and a file that changes any of it
//! is refused as a whole, naming the fields: a reload is never half applied.
//!
//! Sessions whose catalog or policy changed end with UNAVAILABLE ([`crate::service::RELOADED`]);
//! bridges reconnect at once and get a `Welcome` with the new bounds.
//!
//! The tokens file is also re-read on its own whenever it changes ([`Tokens`]).

mod tokens;
pub use kubeknobs_runtime::reload as trigger;

use std::sync::{Arc, Mutex};

pub use tokens::Tokens;
use tokio_util::sync::CancellationToken;
use trigger::FileWatch;

use crate::config::{self, Config};
use crate::ratelimit::WriteBudget;
use crate::service::{Control, View};

/// Reads the config file again (with the command line's overrides applied).
pub type Load = Box<dyn Fn() -> Result<Config, config::Error> + Send + Sync>;

/// Where the running config came from, so it can be read again.
pub struct Source {
    /// The config file, watched from before it was first read.
    pub file: FileWatch,
    /// How to read it.
    pub load: Load,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The file does not parse or validate, or a file it names cannot be read.
    #[error(transparent)]
    Invalid(#[from] config::Error),
    /// It changes settings that only a restart can apply.
    #[error("{} changed, which takes effect only on restart", .0.join(", "))]
    NeedsRestart(Vec<&'static str>),
}

/// Applies reloaded configs to the running gateway.
pub struct Reloader {
    load: Load,
    running: Mutex<Config>,
    control: Arc<Control>,
    tokens: Arc<Tokens>,
    budget: Arc<WriteBudget>,
}

impl Reloader {
    /// A reloader for the gateway running `config`, read again with `load`.
    pub fn new(
        load: Load,
        config: Config,
        control: Arc<Control>,
        tokens: Arc<Tokens>,
        budget: Arc<WriteBudget>,
    ) -> Reloader {
        Reloader {
            load,
            running: Mutex::new(config),
            control,
            tokens,
            budget,
        }
    }

    /// Reloads on SIGHUP and whenever the config file of `watch` changes, until `shutdown`.
    pub async fn run(self, watch: FileWatch, shutdown: CancellationToken) {
        let file = watch.path().display().to_string();
        let mut triggers = trigger::Triggers::new(watch);
        loop {
            let cause = tokio::select! {
                cause = triggers.next() => cause,
                () = shutdown.cancelled() => return,
            };
            match self.reload() {
                Ok(closed) => {
                    tracing::info!(%file, %cause, sessions_reconnect = closed, "config reloaded")
                }
                Err(reason) => tracing::warn!(
                    %file, %cause, %reason,
                    "config not reloaded; the running config stays in force"
                ),
            }
        }
    }

    /// Reads, checks and applies the file. `Ok(true)` when the catalog or policy changed, so
    /// sessions were told to reconnect.
    pub fn reload(&self) -> Result<bool, Refused> {
        let new = (self.load)()?;
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let changed = needs_restart(&running, &new);
        if !changed.is_empty() {
            return Err(Refused::NeedsRestart(changed));
        }
        // The only step that can still fail (it reads the tokens file), so it goes first.
        self.tokens
            .replace(new.operators.clone(), new.tokens_file.clone())?;
        self.control.limits.reconfigure(new.limits.clone());
        self.control.holds.set_grace(new.limits.touch_grace);
        self.budget.set_rate(new.limits.writes_per_second);
        for target in new.catalog.iter() {
            if let Some(coalescer) = self.control.coalescers.get(&target.name) {
                coalescer.reconfigure(target.clone());
            }
        }
        let reconnect = new.catalog != running.catalog || new.policy != running.policy;
        self.control.view.send_replace(Arc::new(View {
            catalog: new.catalog.clone(),
            policy: new.policy.clone(),
            session: new.session.clone(),
        }));
        *running = new;
        Ok(reconnect)
    }
}

/// The settings `new` changes that only a restart applies, by config field name.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let pem = |tls: &Option<config::TlsIdentity>| {
        tls.as_ref()
            .map(|t| (t.cert_pem.clone(), t.key_pem.clone()))
    };
    let client =
        |c: &Option<config::ClientAuth>| c.as_ref().map(|c| (c.ca_pem.clone(), c.required));
    let objects = |c: &Config| -> Vec<_> {
        c.catalog
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.kind,
                    t.namespace.clone(),
                    t.object.clone(),
                )
            })
            .collect()
    };
    let checks = [
        ("server.listen", old.listen != new.listen),
        ("server.ops_listen", old.ops_listen != new.ops_listen),
        ("server.tls_cert/tls_key", pem(&old.tls) != pem(&new.tls)),
        (
            "server.max_message_bytes",
            old.session.max_message_bytes != new.session.max_message_bytes,
        ),
        (
            "server.max_pending_connections/max_pending_per_peer/auth_timeout_ms/max_streams_per_connection",
            old.admission != new.admission,
        ),
        (
            "cluster.backend/kubeconfig/context",
            old.backend != new.backend,
        ),
        ("cluster.impersonate", old.impersonate != new.impersonate),
        (
            "the groups cluster.impersonate may send",
            old.impersonation.groups != new.impersonation.groups,
        ),
        (
            "auth.client_ca/client_cert_required",
            client(&old.client_auth) != client(&new.client_auth),
        ),
        ("auth.token_review", old.token_review != new.token_review),
        (
            "auth.token_review_audiences",
            old.token_review_audiences != new.token_review_audiences,
        ),
        ("audit.file", old.audit_file != new.audit_file),
        (
            "[cluster.leader_election]",
            old.leader_election != new.leader_election,
        ),
        (
            "the targets or the objects they name",
            objects(old) != objects(new),
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(field, changed)| changed.then_some(field))
        .collect()
}

#[cfg(test)]
mod tests;
