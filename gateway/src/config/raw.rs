//! The config file as written: serde structs that mirror the TOML, with spans kept on the fields
//! that need checking so errors can name their line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

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
use super::{BackendConfig, Config, Result, Source, TlsIdentity};
use crate::catalog::{Catalog, TargetKind, TargetSpec};
use crate::ownership::{Rules, WhenAutoscaled, WhenGitops};

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
    targets: BTreeMap<String, Spanned<RawTarget>>,
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
    backend: Option<Spanned<String>>,
    #[serde(default)]
    dry_run: bool,
    impersonate: Option<Spanned<bool>>,
    kubeconfig: Option<String>,
    context: Option<String>,
    leader_election: Option<Spanned<super::leader::RawLeaderElection>>,
    when_autoscaled: Option<Spanned<String>>,
    when_gitops: Option<Spanned<String>>,
}

/// One `[targets.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    kind: Spanned<String>,
    namespace: Option<Spanned<String>>,
    name: Spanned<String>,
    #[serde(default = "default_min")]
    min: Spanned<i64>,
    max: Option<Spanned<i64>>,
    #[serde(default = "default_rate")]
    max_writes_per_second: Spanned<f64>,
    initial: Option<Spanned<i64>>,
    max_step: Option<Spanned<i64>>,
    #[serde(default)]
    dry_run: bool,
    cooldown_ms: Option<Spanned<i64>>,
    #[serde(default)]
    requires_arm: bool,
    when_autoscaled: Option<Spanned<String>>,
    when_gitops: Option<Spanned<String>>,
}

fn default_min() -> Spanned<i64> {
    Spanned::new(0..0, 0)
}

fn default_rate() -> Spanned<f64> {
    Spanned::new(0..0, 2.0)
}

/// The most replicas a target may be configured for; guards against typos like `max = 20000`.
const MAX_REPLICAS: i64 = 10_000;
/// The cooldown of one-shot targets without `cooldown_ms`.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10);
/// The highest write rate a target may be configured for.
const MAX_RATE: f64 = 100.0;

impl RawConfig {
    /// Checks every field and builds the validated [`Config`].
    /// `tls`, when given, replaces the TLS files (which are then not read).
    pub(super) fn validate(self, src: &Source<'_>, tls: Option<TlsIdentity>) -> Result<Config> {
        let listen = socket_addr(&self.server.listen, "server.listen", src)?;
        let ops_listen = match &self.server.ops_listen {
            Some(addr) => Some(socket_addr(addr, "server.ops_listen", src)?),
            None => None,
        };
        let tls = match tls {
            Some(identity) => Some(identity),
            None => validate_tls(&self.server, src)?,
        };
        let backend = validate_cluster(&self.cluster, src)?;
        let leader_election =
            super::leader::validate(self.cluster.leader_election.as_ref(), &backend, src)?;
        let operators = validate_operators(&self.operators, src)?;
        let (tokens_file, everyone) = match &self.auth.tokens_file {
            Some(file) => {
                let path = src.resolve(file.as_ref());
                let extra = super::operators::load_tokens(&path)?;
                let everyone = operators.merged(&extra).map_err(|err| {
                    src.invalid(file.span().start, "auth.tokens_file", err.to_string())
                })?;
                (Some(path), everyone)
            }
            None => (None, operators.clone()),
        };
        let defaults = validate_rules(
            Rules::default(),
            self.cluster.when_autoscaled.as_ref(),
            self.cluster.when_gitops.as_ref(),
            "cluster",
            src,
        )?;
        let mut catalog = Catalog::default();
        for (name, target) in &self.targets {
            let mut spec = validate_target(name, target, src)?;
            spec.dry_run |= self.cluster.dry_run;
            let t = target.as_ref();
            if let Some(set) = t
                .when_autoscaled
                .as_ref()
                .filter(|_| !spec.kind.is_autoscalable())
            {
                let message = format!(
                    "only deployment-replicas and statefulset-replicas targets can be autoscaled; remove it from this {} target",
                    spec.kind.config_name()
                );
                let field = format!("targets.{name}.when_autoscaled");
                return Err(src.invalid(set.span().start, field, message));
            }
            let field = format!("targets.{name}");
            spec.ownership = validate_rules(
                defaults,
                t.when_autoscaled.as_ref(),
                t.when_gitops.as_ref(),
                &field,
                src,
            )?;
            catalog.insert(spec);
        }
        if self.auth.token_review_any_identity && !self.auth.token_review {
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
                token_review: self.auth.token_review,
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
        Ok(Config {
            listen,
            ops_listen,
            tls,
            insecure: false,
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
            token_review: self.auth.token_review,
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
    let Some(backend) = &cluster.backend else {
        return Ok(BackendConfig::Kube {
            kubeconfig: cluster.kubeconfig.as_deref().map(|p| src.resolve(p)),
            context: cluster.context.clone(),
        });
    };
    match backend.as_ref().as_str() {
        "kube" => Ok(BackendConfig::Kube {
            kubeconfig: cluster.kubeconfig.as_deref().map(|p| src.resolve(p)),
            context: cluster.context.clone(),
        }),
        "sandbox" if cluster.kubeconfig.is_some() || cluster.context.is_some() => Err(src.invalid(
            backend.span().start,
            "cluster.backend",
            "kubeconfig/context are set but the backend is \"sandbox\"; remove them or use \"kube\"",
        )),
        "sandbox" => Ok(BackendConfig::Sandbox),
        other => Err(src.invalid(backend.span().start, "cluster.backend", format!("unknown backend {other:?}: expected \"kube\" or \"sandbox\""))),
    }
}

/// `when_autoscaled`/`when_gitops` under `table` (`cluster`, `targets.NAME`), over `defaults`.
fn validate_rules(
    defaults: Rules,
    when_autoscaled: Option<&Spanned<String>>,
    when_gitops: Option<&Spanned<String>>,
    table: &str,
    src: &Source<'_>,
) -> Result<Rules> {
    let mut rules = defaults;
    if let Some(value) = when_autoscaled {
        rules.when_autoscaled = WhenAutoscaled::parse(value.as_ref()).ok_or_else(|| {
            let message = format!("{:?}: expected \"refuse\" or \"allow\"", value.as_ref());
            src.invalid(
                value.span().start,
                format!("{table}.when_autoscaled"),
                message,
            )
        })?;
    }
    if let Some(value) = when_gitops {
        rules.when_gitops = WhenGitops::parse(value.as_ref()).ok_or_else(|| {
            let message = format!(
                "{:?}: expected \"warn\", \"refuse\" or \"allow\"",
                value.as_ref()
            );
            src.invalid(value.span().start, format!("{table}.when_gitops"), message)
        })?;
    }
    Ok(rules)
}

fn validate_target(name: &str, raw: &Spanned<RawTarget>, src: &Source<'_>) -> Result<TargetSpec> {
    let at = |s: std::ops::Range<usize>| {
        if s.start == 0 && s.end == 0 {
            raw.span().start
        } else {
            s.start
        }
    };
    let field = |f: &str| format!("targets.{name}.{f}");
    let t = raw.as_ref();
    if !valid_target_name(name) {
        return Err(src.invalid(
            raw.span().start,
            format!("targets.{name}"),
            "target names use letters, digits, '-', '_' and '.'",
        ));
    }
    let kind = match t.kind.as_ref().as_str() {
        "deployment-replicas" => TargetKind::DeploymentReplicas,
        "statefulset-replicas" => TargetKind::StatefulSetReplicas,
        "deployment-paused" => TargetKind::DeploymentPaused,
        "deployment-restart" => TargetKind::DeploymentRestart,
        "cronjob-suspended" => TargetKind::CronJobSuspended,
        "node-cordoned" => TargetKind::NodeCordoned,
        "hpa-min-replicas" => TargetKind::HpaMinReplicas,
        "hpa-max-replicas" => TargetKind::HpaMaxReplicas,
        other => {
            return Err(src.invalid(
                t.kind.span().start,
                field("kind"),
                format!("unknown kind {other:?}: expected \"deployment-replicas\", \"statefulset-replicas\", \"deployment-paused\", \"deployment-restart\", \"cronjob-suspended\", \"node-cordoned\", \"hpa-min-replicas\" or \"hpa-max-replicas\""),
            ));
        }
    };
    let namespace = match &t.namespace {
        // Nodes belong to no namespace: a namespace here is a mistake, not something to ignore.
        Some(ns) if kind.is_cluster_scoped() => {
            let message = format!(
                "a {} is cluster-scoped: remove the namespace ({:?})",
                kind.object_kind(),
                ns.as_ref()
            );
            return Err(src.invalid(ns.span().start, field("namespace"), message));
        }
        None if kind.is_cluster_scoped() => String::new(),
        Some(ns) if ns.as_ref().trim().is_empty() => {
            let message = "must not be empty (leave it out for \"default\")";
            return Err(src.invalid(ns.span().start, field("namespace"), message));
        }
        Some(ns) => {
            if let Err(why) = dns_label(ns.as_ref()) {
                let message = format!("{:?} is not a Kubernetes namespace: {why}", ns.as_ref());
                return Err(src.invalid(ns.span().start, field("namespace"), message));
            }
            ns.as_ref().clone()
        }
        None => "default".to_owned(),
    };
    if t.name.as_ref().trim().is_empty() {
        return Err(src.invalid(
            t.name.span().start,
            field("name"),
            "the Kubernetes object name must not be empty",
        ));
    }
    if let Err(why) = dns_subdomain(t.name.as_ref()) {
        let message = format!(
            "{:?} is not a Kubernetes object name: {why}",
            t.name.as_ref()
        );
        return Err(src.invalid(t.name.span().start, field("name"), message));
    }
    let max_at = t.max.as_ref().map_or(raw.span().start, |m| m.span().start);
    let (min, max) = match (&t.max, kind.is_toggle()) {
        // A toggle is off (0) or on (1), whatever min/max say.
        (_, true) => (0, 1),
        _ if kind.is_one_shot() => (0, 1),
        (Some(max), false) => (*t.min.as_ref(), *max.as_ref()),
        (None, false) => {
            let message = "required: the most replicas an operator may set";
            return Err(src.invalid(raw.span().start, field("max"), message));
        }
    };
    // An HPA keeps at least one replica (minReplicas 0 needs the HPAScaleToZero feature gate).
    let min = if kind.is_hpa_bound() && t.min.span() == (0..0) {
        1
    } else {
        min
    };
    if kind.is_hpa_bound() && min < 1 {
        let message = format!("{min}: an HPA's minReplicas and maxReplicas are at least 1");
        return Err(src.invalid(at(t.min.span()), field("min"), message));
    }
    if !(0..=MAX_REPLICAS).contains(&min) {
        return Err(src.invalid(
            at(t.min.span()),
            field("min"),
            format!("{min} is outside 0..={MAX_REPLICAS}"),
        ));
    }
    if !(0..=MAX_REPLICAS).contains(&max) || max < min {
        return Err(src.invalid(
            max_at,
            field("max"),
            format!("{max} must be within {min}..={MAX_REPLICAS} (at least min)"),
        ));
    }
    let rate = *t.max_writes_per_second.as_ref();
    if !(rate > 0.0 && rate <= MAX_RATE) {
        return Err(src.invalid(
            at(t.max_writes_per_second.span()),
            field("max_writes_per_second"),
            format!("{rate} must be above 0 and at most {MAX_RATE}"),
        ));
    }
    let initial = match &t.initial {
        Some(v) if !(min..=max).contains(v.as_ref()) => {
            return Err(src.invalid(
                v.span().start,
                field("initial"),
                format!("{} is outside {min}..={max}", v.as_ref()),
            ));
        }
        Some(v) => *v.as_ref(),
        None => min,
    };
    let max_step = match &t.max_step {
        Some(v) if !(1..=MAX_REPLICAS).contains(v.as_ref()) => {
            return Err(src.invalid(
                v.span().start,
                field("max_step"),
                format!("{} must be within 1..={MAX_REPLICAS}", v.as_ref()),
            ));
        }
        Some(v) => Some(*v.as_ref() as i32),
        None => None,
    };
    let cooldown = match &t.cooldown_ms {
        Some(v) if !(0..=86_400_000).contains(v.as_ref()) => {
            let message = format!("{} must be within 0..=86400000", v.as_ref());
            return Err(src.invalid(v.span().start, field("cooldown_ms"), message));
        }
        Some(v) => Duration::from_millis(*v.as_ref() as u64),
        None if kind.is_one_shot() => DEFAULT_COOLDOWN,
        None => Duration::ZERO,
    };
    Ok(TargetSpec {
        name: name.to_owned(),
        kind,
        namespace,
        object: t.name.as_ref().clone(),
        min: min as i32,
        max: max as i32,
        max_writes_per_second: rate,
        sandbox_initial: initial as i32,
        max_step,
        dry_run: t.dry_run,
        cooldown,
        requires_arm: t.requires_arm,
        ownership: Rules::default(),
    })
}

fn valid_target_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A namespace: an RFC 1123 label, as the API server checks it (at most 63 characters of
/// lowercase letters, digits and '-', starting and ending with a letter or digit).
fn dns_label(name: &str) -> std::result::Result<(), String> {
    if name.len() <= 63 && label(name) {
        return Ok(());
    }
    Err("use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit".into())
}

/// An object name (Deployment, StatefulSet, CronJob, Node): an RFC 1123 subdomain, as the API
/// server checks it (at most 253 characters; dot-separated parts of lowercase letters, digits
/// and '-', each starting and ending with a letter or digit).
fn dns_subdomain(name: &str) -> std::result::Result<(), String> {
    if name.len() <= 253 && name.split('.').all(label) {
        return Ok(());
    }
    Err("use at most 253 lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit".into())
}

/// Lowercase letters, digits and '-', starting and ending with a letter or digit.
fn label(part: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    part.starts_with(alnum) && part.ends_with(alnum) && part.chars().all(|c| alnum(c) || c == '-')
}
