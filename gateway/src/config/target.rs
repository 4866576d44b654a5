//! One `[targets.NAME]` table as written, and its validation into a [`TargetSpec`]: the object
//! it names, its bounds (by kind: a toggle is 0 or 1 whatever min/max say), how fast and how far
//! one write may go, and its rules about other owners of the value. `kind` is a serde enum, so an
//! unknown one never gets this far.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Error, Result, Source};
use crate::catalog::{Rules, TargetKind, TargetSpec, WhenAutoscaled, WhenGitops};

/// The most replicas a target may be configured for; guards against typos like `max = 20000`.
const MAX_REPLICAS: i64 = 10_000;
/// The cooldown of one-shot targets without `cooldown_ms`.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10);
/// The longest `cooldown_ms`: a day.
const MAX_COOLDOWN_MS: i64 = 86_400_000;
/// The highest write rate a target may be configured for.
const MAX_RATE: f64 = 100.0;

/// `[targets.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    kind: TargetKind,
    namespace: Option<Spanned<String>>,
    name: Spanned<String>,
    #[serde(default = "unset")]
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
    when_autoscaled: Option<Spanned<WhenAutoscaled>>,
    when_gitops: Option<WhenGitops>,
}

/// 0, not written (an empty span).
fn unset() -> Spanned<i64> {
    Spanned::new(0..0, 0)
}

fn default_rate() -> Spanned<f64> {
    Spanned::new(0..0, 2.0)
}

/// What every target takes from `[cluster]` unless it says otherwise.
#[derive(Debug, Clone, Copy)]
pub(super) struct Defaults {
    /// `cluster.dry_run`: every target's writes are dry runs.
    pub dry_run: bool,
    /// `cluster.when_autoscaled`, `cluster.when_gitops`.
    pub ownership: Rules,
}

/// Checks `[targets.NAME]` and builds its spec.
pub(super) fn validate(
    name: &str,
    raw: &Spanned<RawTarget>,
    defaults: Defaults,
    src: &Source<'_>,
) -> Result<TargetSpec> {
    let target = Table { name, raw, src };
    let t = raw.get_ref();
    if !valid_target_name(name) {
        let message = "target names use letters, digits, '-', '_' and '.'";
        return Err(src.invalid(raw.span().start, format!("targets.{name}"), message));
    }
    let namespace = target.namespace()?;
    let object = target.object()?;
    let (min, max) = target.bounds()?;
    let rate = *t.max_writes_per_second.get_ref();
    if !(rate > 0.0 && rate <= MAX_RATE) {
        let message = format!("{rate} must be above 0 and at most {MAX_RATE}");
        let at = target.at(t.max_writes_per_second.span());
        return Err(target.invalid(at, "max_writes_per_second", message));
    }
    let initial = match &t.initial {
        Some(v) if !(min..=max).contains(v.get_ref()) => {
            let message = format!("{} is outside {min}..={max}", v.get_ref());
            return Err(target.invalid(v.span().start, "initial", message));
        }
        Some(v) => *v.get_ref(),
        None => min,
    };
    let max_step = match &t.max_step {
        Some(v) => Some(target.within(v, "max_step", 1, MAX_REPLICAS)? as i32),
        None => None,
    };
    let cooldown = match &t.cooldown_ms {
        Some(v) => {
            Duration::from_millis(target.within(v, "cooldown_ms", 0, MAX_COOLDOWN_MS)? as u64)
        }
        None if t.kind.is_one_shot() => DEFAULT_COOLDOWN,
        None => Duration::ZERO,
    };
    Ok(TargetSpec {
        name: name.to_owned(),
        kind: t.kind,
        namespace,
        object,
        min: min as i32,
        max: max as i32,
        max_writes_per_second: rate,
        sandbox_initial: initial as i32,
        max_step,
        dry_run: t.dry_run || defaults.dry_run,
        cooldown,
        requires_arm: t.requires_arm,
        ownership: target.ownership(defaults.ownership)?,
    })
}

/// A target's table, to name its fields and lines in errors.
struct Table<'a> {
    name: &'a str,
    raw: &'a Spanned<RawTarget>,
    src: &'a Source<'a>,
}

impl Table<'_> {
    fn invalid(&self, at: usize, field: &str, message: impl Into<String>) -> Error {
        let field = format!("targets.{}.{field}", self.name);
        self.src.invalid(at, field, message)
    }

    /// Where a value is written: its own line, or the table's when it was left out.
    fn at(&self, span: Range<usize>) -> usize {
        if span == (0..0) {
            self.raw.span().start
        } else {
            span.start
        }
    }

    /// `value` of `field`, if it lies within `lo..=hi`.
    fn within(&self, value: &Spanned<i64>, field: &str, lo: i64, hi: i64) -> Result<i64> {
        let v = *value.get_ref();
        if (lo..=hi).contains(&v) {
            return Ok(v);
        }
        let message = format!("{v} must be within {lo}..={hi}");
        Err(self.invalid(self.at(value.span()), field, message))
    }

    /// The namespace: `default` unless written; none for cluster-scoped kinds (Nodes).
    fn namespace(&self) -> Result<String> {
        let kind = self.raw.get_ref().kind;
        let Some(ns) = &self.raw.get_ref().namespace else {
            let none = kind.is_cluster_scoped();
            return Ok(if none { "" } else { "default" }.to_owned());
        };
        let at = ns.span().start;
        if kind.is_cluster_scoped() {
            // Nodes belong to no namespace: a namespace here is a mistake, not to be ignored.
            let message = format!(
                "a {} is cluster-scoped: remove the namespace ({:?})",
                kind.object_kind(),
                ns.get_ref()
            );
            return Err(self.invalid(at, "namespace", message));
        }
        if ns.get_ref().trim().is_empty() {
            let message = "must not be empty (leave it out for \"default\")";
            return Err(self.invalid(at, "namespace", message));
        }
        dns_label(ns.get_ref()).map_err(|why| {
            let message = format!("{:?} is not a Kubernetes namespace: {why}", ns.get_ref());
            self.invalid(at, "namespace", message)
        })?;
        Ok(ns.get_ref().clone())
    }

    /// The Kubernetes object's name.
    fn object(&self) -> Result<String> {
        let name = &self.raw.get_ref().name;
        let at = name.span().start;
        if name.get_ref().trim().is_empty() {
            let message = "the Kubernetes object name must not be empty";
            return Err(self.invalid(at, "name", message));
        }
        dns_subdomain(name.get_ref()).map_err(|why| {
            let message = format!(
                "{:?} is not a Kubernetes object name: {why}",
                name.get_ref()
            );
            self.invalid(at, "name", message)
        })?;
        Ok(name.get_ref().clone())
    }

    /// `(min, max)`: 0 and 1 for toggles and buttons; at least 1 for an HPA's bounds (its min
    /// defaults to 1: minReplicas 0 needs the HPAScaleToZero feature gate); `max` required and
    /// at least `min` for replica counts.
    fn bounds(&self) -> Result<(i64, i64)> {
        let t = self.raw.get_ref();
        if t.kind.is_toggle() || t.kind.is_one_shot() {
            return Ok((0, 1));
        }
        let Some(max) = &t.max else {
            let message = "required: the most replicas an operator may set";
            return Err(self.invalid(self.raw.span().start, "max", message));
        };
        let min_at = self.at(t.min.span());
        let min = match *t.min.get_ref() {
            _ if t.kind.is_hpa_bound() && t.min.span() == (0..0) => 1,
            min if t.kind.is_hpa_bound() && min < 1 => {
                let message = format!("{min}: an HPA's minReplicas and maxReplicas are at least 1");
                return Err(self.invalid(min_at, "min", message));
            }
            min if !(0..=MAX_REPLICAS).contains(&min) => {
                let message = format!("{min} is outside 0..={MAX_REPLICAS}");
                return Err(self.invalid(min_at, "min", message));
            }
            min => min,
        };
        let max_value = *max.get_ref();
        if !(min..=MAX_REPLICAS).contains(&max_value) {
            let message =
                format!("{max_value} must be within {min}..={MAX_REPLICAS} (at least min)");
            return Err(self.invalid(max.span().start, "max", message));
        }
        Ok((min, max_value))
    }

    /// `when_autoscaled` (replica kinds only) and `when_gitops` over the gateway's `defaults`.
    fn ownership(&self, defaults: Rules) -> Result<Rules> {
        let t = self.raw.get_ref();
        let when_autoscaled = match &t.when_autoscaled {
            Some(set) if !t.kind.is_autoscalable() => {
                let message = "only deployment-replicas and statefulset-replicas targets can be autoscaled: remove it from this target";
                return Err(self.invalid(set.span().start, "when_autoscaled", message));
            }
            Some(set) => *set.get_ref(),
            None => defaults.when_autoscaled,
        };
        Ok(Rules {
            when_autoscaled,
            when_gitops: t.when_gitops.unwrap_or(defaults.when_gitops),
        })
    }
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
