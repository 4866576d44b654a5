//! Logging for both programs: `tracing` to stderr, so stdout stays for what the user asked for
//! (`check`'s summary, the demo's instructions). The level is `--log-level` if given, else `RUST_LOG`, else
//! `info`, either as one level (`debug`) or a filter (`info,kubeknobs_gateway::leader=debug`); the
//! format is plain text for people or JSON lines for log collectors (by default: JSON when stderr
//! is not a terminal, as in a pod or under journald). [`chain`] renders an error with its causes
//! for a log line.
//!
//! Log lines cannot be forged or blown up by what clients send: in plain lines every field
//! value has its control characters escaped (`\n`, `\u{1b}`) and is cut at [`MAX_FIELD`]
//! characters ([`EscapedFields`]); JSON escapes control characters by itself. Names a client
//! chose are logged through [`clip`]; events a client can repeat at will go through a
//! [`crate::summary::LogSummary`], which logs the first of each kind per interval and counts the
//! rest.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--log-level` is not a valid level or filter.
    #[error(
        "invalid --log-level {0:?} (a level such as debug, or a filter such as info,kubeknobs_bridge=debug)"
    )]
    Flag(String, #[source] tracing_subscriber::filter::ParseError),
    /// `RUST_LOG` is not a valid filter.
    #[error("invalid RUST_LOG")]
    Env(#[source] tracing_subscriber::filter::FromEnvError),
    /// A global logger was already installed.
    #[error("cannot install the logger")]
    Install(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain on a terminal, JSON otherwise (journald, log files).
    #[default]
    Auto,
    /// Human-readable lines.
    Plain,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global logger, with `level` (`--log-level`) before `RUST_LOG`.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), Error> {
    let builder = EnvFilter::builder().with_default_directive(LevelFilter::INFO.into());
    let filter = match level {
        Some(level) => builder
            .parse(level)
            .map_err(|e| Error::Flag(level.to_owned(), e))?,
        None => builder.from_env().map_err(Error::Env)?,
    };
    // Colours only on a terminal.
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal);
    match format {
        LogFormat::Plain => builder.fmt_fields(EscapedFields).try_init(),
        LogFormat::Auto if terminal => builder.fmt_fields(EscapedFields).try_init(),
        LogFormat::Json | LogFormat::Auto => builder.json().try_init(),
    }
    .map_err(Error::Install)
}

/// The most characters of one field value in a plain log line.
pub const MAX_FIELD: usize = 1024;

/// Plain-text fields as the default formatter writes them (`message key=value …`), with control
/// characters escaped and each value cut at [`MAX_FIELD`] characters.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = Escaper {
            writer: &mut writer,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Escaper<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
    first: bool,
}

impl Visit for Escaper<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let text = escape(&format!("{value:?}"), MAX_FIELD);
        let sep = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = match field.name() {
            "message" => write!(self.writer, "{sep}{text}"),
            name => write!(self.writer, "{sep}{name}={text}"),
        };
    }
}

/// `text` with control characters escaped, cut after `max` characters (saying how long it was).
pub fn escape(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 32));
    for (i, c) in text.chars().enumerate() {
        if i == max {
            let _ = write!(out, "…({} bytes)", text.len());
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The most characters of a client-chosen name in a log line.
pub const MAX_NAME: usize = 64;

/// A name a client chose (a target, a bridge id, an OSC address), fit for a log line in any
/// format: control characters escaped, cut at [`MAX_NAME`] characters.
pub fn clip(name: &str) -> String {
    escape(name, MAX_NAME)
}

/// An error and its causes as one line, `outer: cause: root cause`. A cause whose text the line
/// already holds is skipped, since some errors repeat their source in their own message.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Plain(&'static str);

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Repeats);

    /// Repeats its source in its message, as some library errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Repeats(#[source] Plain);

    #[test]
    fn plain_lines_escape_control_characters_and_cut_long_values() {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .finish();
        let forged = "web\n2026-01-01T00:00:00Z  INFO forged: all good \u{1b}[2J";
        let long = "x".repeat(5000);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target_name = %forged, other = %long, "rejected {forged}");
        });
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!out.contains('\u{1b}'), "{out}");
        assert!(out.contains("web\\n2026"), "{out}");
        assert!(out.contains("…(5000 bytes)"), "{out}");
        assert!(out.len() < 2 * MAX_FIELD + 500, "{} bytes", out.len());
    }

    #[test]
    fn names_are_clipped() {
        assert_eq!(
            clip(&"y".repeat(100)).chars().count(),
            MAX_NAME + "…(100 bytes)".chars().count()
        );
    }

    #[test]
    fn chains_causes_once() {
        assert_eq!(chain(&Outer(Repeats(Plain("root")))), "outer: middle: root");
    }
}
