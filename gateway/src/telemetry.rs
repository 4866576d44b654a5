//! Logging for the gateway: `tracing` to stderr, level from `RUST_LOG` (default `info`),
//! plain text for people or JSON lines for log collectors (by default: JSON when stderr is not a
//! terminal, as in a pod).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Auto if terminal => builder.init(),
        LogFormat::Json | LogFormat::Auto => builder.json().init(),
    }
}
