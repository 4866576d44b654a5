//! `[cluster.leader_election]` as written, and its validation into [`LeaseSettings`].

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{BackendConfig, Result, Source};
use crate::leader::LeaseSettings;

/// Default `lease`.
pub const DEFAULT_LEASE: &str = "kubeknobs-gateway";
/// Default `namespace`: the one `deploy/` installs into.
pub const DEFAULT_NAMESPACE: &str = "kubeknobs";
/// Default `duration_secs`, client-go's.
pub const DEFAULT_DURATION_SECS: u64 = 15;

/// `[cluster.leader_election]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLeaderElection {
    namespace: Option<Spanned<String>>,
    lease: Option<Spanned<String>>,
    duration_secs: Option<Spanned<u64>>,
}

/// The Lease settings, or `None` when the table is absent.
pub(super) fn validate(
    raw: Option<&Spanned<RawLeaderElection>>,
    backend: &BackendConfig,
    src: &Source<'_>,
) -> Result<Option<LeaseSettings>> {
    let Some(raw) = raw else { return Ok(None) };
    if *backend == BackendConfig::Sandbox {
        return Err(src.invalid(
            raw.span().start,
            "cluster.leader_election",
            "needs a real cluster (cluster.backend = \"kube\"): the sandbox has no Leases",
        ));
    }
    let raw = raw.as_ref();
    let name = |value: &Option<Spanned<String>>, field: &str, default: &str| match value {
        None => Ok(default.to_owned()),
        Some(v) if is_dns_name(v.as_ref()) => Ok(v.as_ref().clone()),
        Some(v) => Err(src.invalid(
            v.span().start,
            format!("cluster.leader_election.{field}"),
            "must be a lowercase DNS name: letters, digits and '-', at most 63 characters",
        )),
    };
    let duration = match &raw.duration_secs {
        None => DEFAULT_DURATION_SECS,
        Some(v) if (1..=300).contains(v.as_ref()) => *v.as_ref(),
        Some(v) => {
            return Err(src.invalid(
                v.span().start,
                "cluster.leader_election.duration_secs",
                "must be 1..300",
            ));
        }
    };
    Ok(Some(LeaseSettings {
        namespace: name(&raw.namespace, "namespace", DEFAULT_NAMESPACE)?,
        name: name(&raw.lease, "lease", DEFAULT_LEASE)?,
        duration: Duration::from_secs(duration),
    }))
}

/// An RFC 1123 label, what Kubernetes takes for namespace names (and, here, Lease names).
fn is_dns_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
