//! `kubeknobs-runtime`: the process plumbing the gateway and the bridge share, in one crate so
//! that the bridge builds without the gateway (and its Kubernetes dependencies) on a Raspberry Pi.
//!
//! - [`telemetry`] — logging: the logger, escaping what clients chose, error chains;
//! - [`summary`] — bounded logging of lines a client can repeat at will;
//! - [`shutdown`] — SIGINT/SIGTERM: graceful first, at once on the second;
//! - [`reload`] — when to reload a config file: SIGHUP, or the file changed;
//! - [`config_file`] — TOML errors with the field's path and line.

pub mod config_file;
pub mod reload;
pub mod shutdown;
pub mod summary;
pub mod telemetry;
