//! The audit trail: one JSON line for every change that was applied or rejected, with who,
//! what, from which value to which, the outcome and how long it took. Refusals a client can
//! repeat at will are bounded like the log: the first of each reason per operator session and
//! second is audited in full, the rest as one summary line with a `count`.
//!
//! Lines go to stdout (one `write` per line under the stdout lock, so they never interleave with
//! each other) and, with `audit.file`, are appended to that file too. Superseded events are not
//! audited: they never reached the cluster, and the value that replaced them is. Writing the
//! trail never blocks a session for long and never fails a change: an I/O error is logged.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use tokio::time::Instant;

/// Why the audit file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `audit.file` cannot be opened for appending.
    #[error("cannot open audit file {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// One audited change.
#[derive(Debug, Clone, Serialize)]
pub struct Record<'a> {
    /// RFC 3339 time of the outcome.
    pub time: String,
    /// Who asked.
    pub operator: &'a str,
    /// The catalog target.
    pub target: &'a str,
    /// The target's desired value before the change, when known.
    pub old: Option<f64>,
    /// The value asked for; absent on a summary line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<f64>,
    /// `"applied"` or `"rejected"`.
    pub outcome: &'static str,
    /// The reject reason (`"forbidden"`, `"rate limited"`, …), absent when applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The explanation sent to the operator.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub message: &'a str,
    /// Milliseconds from receiving the event to its outcome.
    pub latency_ms: f64,
    /// True when the write was a server-side dry run (nothing persisted).
    pub dry_run: bool,
    /// On a summary line, how many refusals of this kind from this operator it stands for
    /// (beyond the first, audited in full); absent on the line of one change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Record<'_> {
    /// The time now, as audit lines show it.
    pub fn now() -> String {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(0);
        let millis = since_epoch.subsec_millis() as i32 * 1_000_000;
        k8s_openapi::jiff::Timestamp::new(secs, millis)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// Milliseconds since `received`.
    pub fn latency_since(received: Instant) -> f64 {
        (received.elapsed().as_secs_f64() * 1e6).round() / 1e3
    }
}

/// Where audit lines go.
#[derive(Debug, Default)]
pub struct Audit {
    file: Option<Mutex<File>>,
}

impl Audit {
    /// Audit to stdout, and to `file` when given (appending, created if missing).
    pub fn open(file: Option<&Path>) -> Result<Audit, Error> {
        let file = file
            .map(|path| {
                File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| Error::Open {
                        path: path.to_owned(),
                        source,
                    })
            })
            .transpose()?;
        Ok(Audit {
            file: file.map(Mutex::new),
        })
    }

    /// Writes one line for `record`.
    pub fn record(&self, record: &Record<'_>) {
        let mut line = match serde_json::to_string(record) {
            Ok(line) => line,
            Err(err) => return tracing::warn!(cause = %err, "audit record not serialized"),
        };
        line.push('\n');
        if let Err(err) = std::io::stdout().lock().write_all(line.as_bytes()) {
            tracing::warn!(cause = %err, "audit line not written to stdout");
        }
        if let Some(file) = &self.file {
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(err) = file.write_all(line.as_bytes()) {
                tracing::warn!(cause = %err, "audit line not written to the audit file");
            }
        }
    }
}

/// The short name of a reject reason as audit lines show it.
pub fn reason_name(reason: kubeknobs_proto::v1::RejectReason) -> &'static str {
    use kubeknobs_proto::v1::RejectReason as R;
    match reason {
        R::Unspecified => "unspecified",
        R::UnknownTarget => "unknown target",
        R::OutOfRange => "out of range",
        R::Forbidden => "forbidden",
        R::RateLimited => "rate limited",
        R::ClusterError => "cluster error",
        R::InvalidValue => "invalid value",
        R::Held => "held",
        R::NotArmed => "not armed",
        R::Managed => "managed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_json_with_every_field_and_go_to_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let audit = Audit::open(Some(&path)).expect("open");
        let received = Instant::now();
        for outcome in ["applied", "rejected"] {
            audit.record(&Record {
                time: Record::now(),
                operator: "alice",
                target: "web",
                old: Some(2.0),
                new: Some(5.0),
                outcome,
                reason: (outcome == "rejected").then_some("forbidden"),
                message: "",
                latency_ms: Record::latency_since(received),
                dry_run: false,
                count: None,
            });
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["operator"], "alice");
        assert_eq!(lines[0]["old"], 2.0);
        assert_eq!(lines[0]["new"], 5.0);
        assert!(lines[0].get("reason").is_none());
        assert_eq!(lines[1]["reason"], "forbidden");
        assert!(lines[1]["time"].as_str().expect("time").ends_with('Z'));
    }
}
