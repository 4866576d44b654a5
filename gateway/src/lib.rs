//! kubeknobs gateway: the only door from control surfaces to the cluster.
//!
//! It authenticates each operator ([`auth`]), checks every control event against the target
//! [`catalog`], coalesces floods into a few rate-limited writes ([`coalesce`]), applies them
//! through a [`backend`] (kube-rs or the in-memory sandbox), and streams the observed state of
//! every target to every session ([`state`], [`service`]). [`server::serve`] ties it together.

pub mod admission;
pub mod audit;
pub mod auth;
pub mod backend;
pub mod catalog;
pub mod coalesce;
pub mod config;
pub mod identity;
pub mod leader;
pub mod listener;
pub mod metrics;
pub mod observe;
pub mod ownership;
pub mod pace;
pub mod policy;
pub mod presence;
pub mod ratelimit;
pub mod rbac;
pub mod reload;
pub mod server;
pub mod service;
pub mod state;
pub mod status;
pub mod tls;
pub mod touch;

// Process plumbing shared with the bridge (see `kubeknobs-runtime`), at the paths the gateway's
// modules use.
pub use kubeknobs_runtime::{shutdown, summary, telemetry};
