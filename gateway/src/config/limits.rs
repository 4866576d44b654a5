//! `[limits]` as written, and its validation into [`Limits`].

use std::num::NonZeroU32;

use serde::Deserialize;
use toml::Spanned;

use super::{Result, Source};
use crate::ratelimit::Limits;

/// The highest per-operator event rate or burst that may be configured.
const MAX_EVENTS: i64 = 100_000;

/// `[limits]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    events_per_second: Option<Spanned<i64>>,
    events_burst: Option<Spanned<i64>>,
    sessions_per_operator: Option<Spanned<i64>>,
    writes_per_second: Option<Spanned<f64>>,
    touch_grace_ms: Option<Spanned<i64>>,
}

fn count(src: &Source<'_>, value: &Spanned<i64>, field: &str, max: i64) -> Result<u32> {
    let v = *value.as_ref();
    if !(1..=max).contains(&v) {
        return Err(src.invalid(
            value.span().start,
            format!("limits.{field}"),
            format!("{v} must be within 1..={max}"),
        ));
    }
    Ok(v as u32)
}

/// Checks `[limits]`; what is not set keeps its default.
pub(super) fn validate(raw: &RawLimits, src: &Source<'_>) -> Result<Limits> {
    let mut limits = Limits::default();
    let nonzero = |v: u32| NonZeroU32::new(v).expect("validated >= 1");
    if let Some(v) = &raw.events_per_second {
        limits.events_per_second = nonzero(count(src, v, "events_per_second", MAX_EVENTS)?);
        limits.events_burst = limits.events_per_second;
    }
    if let Some(v) = &raw.events_burst {
        limits.events_burst = nonzero(count(src, v, "events_burst", MAX_EVENTS)?);
    }
    if let Some(v) = &raw.sessions_per_operator {
        limits.sessions_per_operator = count(src, v, "sessions_per_operator", 1000)?;
    }
    if let Some(v) = &raw.writes_per_second {
        let rate = *v.as_ref();
        if !(rate > 0.0 && rate <= 1000.0) {
            return Err(src.invalid(
                v.span().start,
                "limits.writes_per_second",
                format!("{rate} must be above 0 and at most 1000"),
            ));
        }
        limits.writes_per_second = rate;
    }
    if let Some(v) = &raw.touch_grace_ms {
        let ms = *v.as_ref();
        if !(0..=60_000).contains(&ms) {
            return Err(src.invalid(
                v.span().start,
                "limits.touch_grace_ms",
                format!("{ms} must be within 0..=60000"),
            ));
        }
        limits.touch_grace = std::time::Duration::from_millis(ms as u64);
    }
    Ok(limits)
}
