//! Logging for both programs (the bridge compiles this file in with `#[path]`; it builds without
//! the gateway crate): `tracing` to stderr, so stdout stays for what the user asked for (`check`'s
//! summary, the demo's instructions). The level is `--log-level` if given, else `RUST_LOG`, else
//! `info`, either as one level (`debug`) or a filter (`info,kubeknobs_gateway::leader=debug`); the
//! format is plain text for people or JSON lines for log collectors (by default: JSON when stderr
//! is not a terminal, as in a pod or under journald). [`chain`] renders an error with its causes
//! for a log line.

use std::io::IsTerminal;

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
        LogFormat::Plain => builder.try_init(),
        LogFormat::Auto if terminal => builder.try_init(),
        LogFormat::Json | LogFormat::Auto => builder.json().try_init(),
    }
    .map_err(Error::Install)
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
    fn chains_causes_once() {
        assert_eq!(chain(&Outer(Repeats(Plain("root")))), "outer: middle: root");
    }
}
