//! The config file as written: serde structs that mirror the TOML, with spans kept on the fields
//! that need checking so errors can name their line.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::impersonation::Impersonation;
use super::limits::RawLimits;
use super::operators::{RawOperator, validate_operators};
use super::policy::RawRule;
use super::server::{
    RawAuth, RawServer, validate_admission, validate_audiences, validate_client_auth,
    validate_session, validate_tls,
};
use super::serving::Serving;
use super::target;
use super::{BackendConfig, Config, Error, Flags, Given, Result, Source};
use crate::catalog::{Catalog, Rules, WhenAutoscaled, WhenGitops};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    cluster: RawCluster,
    #[serde(default)]
    operators: Vec<Spanned<RawOperator>>,
    #[serde(default)]
    // Plain keys, so a type error deep in a target names it (`targets.web.max`).
    targets: BTreeMap<String, Spanned<target::RawTarget>>,
    #[serde(default)]
    policy: Vec<Spanned<RawRule>>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    auth: RawAuth,
}

/// `[audit]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    file: Option<Spanned<String>>,
}

/// `[cluster]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    backend: Option<Spanned<RawBackend>>,
    #[serde(default)]
    dry_run: bool,
    impersonate: Option<Spanned<bool>>,
    kubeconfig: Option<String>,
    context: Option<String>,
    leader_election: Option<Spanned<super::leader::RawLeaderElection>>,
    when_autoscaled: Option<WhenAutoscaled>,
    when_gitops: Option<WhenGitops>,
}

/// `cluster.backend`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawBackend {
    /// A real cluster through kube-rs.
    Kube,
    /// The in-memory sandbox.
    Sandbox,
}

impl RawConfig {
    /// Checks every field and every rule across them, as `run` with `flags` would serve it, and
    /// builds the validated [`Config`]. What `given` holds replaces the file's TLS files or
    /// operators (which are then not read).
    pub(super) fn validate(self, src: &Source<'_>, flags: &Flags, given: Given) -> Result<Config> {
        let listen = socket_addr(&self.server.listen, "server.listen", src)?;
        let ops_listen = match &self.server.ops_listen {
            Some(addr) => Some(socket_addr(addr, "server.ops_listen", src)?),
            None => None,
        };
        let given_operators = given.operators.is_some();
        let tls = match given.tls {
            Some(identity) => Some(identity),
            None => validate_tls(&self.server, src)?,
        };
        let backend = validate_cluster(&self.cluster, src)?;
        let leader_election =
            super::leader::validate(self.cluster.leader_election.as_ref(), &backend, src)?;
        let operators = match given.operators {
            Some(operators) => operators,
            None => validate_operators(&self.operators, src)?,
        };
        let (tokens_file, everyone) = match &self.auth.tokens_file {
            Some(_) if given_operators => (None, operators.clone()),
            Some(file) => {
                let path = src.resolve(file.as_ref());
                let extra = super::operators::load_tokens(&path).map_err(|err| match err {
                    Error::Read { path, source } => src.invalid(
                        file.span().start,
                        "auth.tokens_file",
                        format!("cannot read {}: {source}", path.display()),
                    ),
                    err => err,
                })?;
                let everyone = operators.merged(&extra).map_err(|err| {
                    src.invalid(file.span().start, "auth.tokens_file", err.to_string())
                })?;
                (Some(path), everyone)
            }
            None => (None, operators.clone()),
        };
        let defaults = target::Defaults {
            dry_run: self.cluster.dry_run,
            ownership: Rules {
                when_autoscaled: self.cluster.when_autoscaled.unwrap_or_default(),
                when_gitops: self.cluster.when_gitops.unwrap_or_default(),
            },
        };
        let mut catalog = Catalog::default();
        for (name, raw) in &self.targets {
            catalog.insert(target::validate(name, raw, defaults, src)?);
        }
        if self.auth.token_review_any_identity && !self.auth.token_review() {
            let message =
                "needs auth.token_review = true (it widens what TokenReview identities get)";
            return Err(src.invalid(0, "auth.token_review_any_identity", message));
        }
        let any_reviewed = self.auth.token_review_any_identity;
        let policy = super::policy::validate(&self.policy, &catalog, any_reviewed, src)?;
        let client_auth = validate_client_auth(&self.auth, src)?;
        let impersonate = self
            .cluster
            .impersonate
            .as_ref()
            .is_some_and(|b| *b.as_ref());
        let impersonation = if impersonate {
            let sources = super::impersonation::Sources {
                token_review: self.auth.token_review(),
                any_reviewed,
                client_certs: client_auth.is_some(),
            };
            super::impersonation::validate(
                self.cluster
                    .impersonate
                    .as_ref()
                    .map_or(0, |b| b.span().start),
                &self.operators,
                &everyone,
                &self.policy,
                &policy,
                &sources,
                src,
            )?
        } else {
            Impersonation::default()
        };
        let limits = super::limits::validate(&self.limits, src)?;
        let session = validate_session(&self.server, src)?;
        Serving {
            server: &self.server,
            auth: &self.auth,
            flags,
            listen,
            tls: tls.is_some(),
            backend: &backend,
            operators: operators.len(),
            targets: catalog.len(),
        }
        .validate(src)?;
        Ok(Config {
            listen: flags.listen.unwrap_or(listen),
            ops_listen,
            tls,
            backend,
            operators,
            catalog,
            policy,
            limits,
            session,
            admission: validate_admission(&self.server, src)?,
            audit_file: validate_audit(&self.audit, src)?,
            tokens_file,
            impersonate,
            impersonation,
            leader_election,
            token_review: self.auth.token_review(),
            token_review_audiences: validate_audiences(&self.auth, src)?,
            token_review_any_identity: any_reviewed,
            client_auth,
        })
    }
}

/// `audit.file`, resolved; a directory there is refused now rather than when the gateway starts.
fn validate_audit(audit: &RawAudit, src: &Source<'_>) -> Result<Option<std::path::PathBuf>> {
    let Some(file) = &audit.file else {
        return Ok(None);
    };
    let path = src.resolve(file.as_ref());
    if path.is_dir() {
        let message = format!(
            "{} is a directory; name a file to append to",
            path.display()
        );
        return Err(src.invalid(file.span().start, "audit.file", message));
    }
    Ok(Some(path))
}

fn socket_addr(value: &Spanned<String>, field: &str, src: &Source<'_>) -> Result<SocketAddr> {
    value.as_ref().parse().map_err(|err| {
        src.invalid(
            value.span().start,
            field,
            format!("{err}: expected ADDRESS:PORT such as 0.0.0.0:50051"),
        )
    })
}

fn validate_cluster(cluster: &RawCluster, src: &Source<'_>) -> Result<BackendConfig> {
    let kube = || BackendConfig::Kube {
        kubeconfig: cluster.kubeconfig.as_deref().map(|p| src.resolve(p)),
        context: cluster.context.clone(),
    };
    let Some(backend) = &cluster.backend else {
        return Ok(kube());
    };
    match backend.get_ref() {
        RawBackend::Kube => Ok(kube()),
        RawBackend::Sandbox if cluster.kubeconfig.is_some() || cluster.context.is_some() => {
            Err(src.invalid(
                backend.span().start,
                "cluster.backend",
                "kubeconfig/context are set but the backend is \"sandbox\"; remove them or use \"kube\"",
            ))
        }
        RawBackend::Sandbox => Ok(BackendConfig::Sandbox),
    }
}
