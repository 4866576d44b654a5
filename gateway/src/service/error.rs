//! Why a session call ends with an error status, or never opens (each mapped to its code in
//! `crate::status`).

use std::time::Duration;

use kubeknobs_proto::v1::PROTOCOL_VERSION;
use tonic::Status;

use crate::auth;
use crate::ratelimit;

/// The status a session ends with when a config reload changed what its `Welcome` said.
pub const RELOADED: &str = "gateway configuration reloaded; reconnect for the new catalog";

/// Why a session ends, or is not opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This gateway is a standby (the reason says who leads).
    #[error("{0}; connect to the leading gateway (through the Service)")]
    Standby(String),
    /// The caller is not an operator.
    #[error(transparent)]
    Auth(#[from] auth::Error),
    /// The operator has too many sessions.
    #[error(transparent)]
    Limit(#[from] ratelimit::Error),
    /// No first message within the hello timeout.
    #[error("no Hello within {0:?} (server.hello_timeout_ms): a session must start with Hello")]
    NoHello(Duration),
    /// A `Hello` in a protocol version this gateway does not speak.
    #[error("protocol version {0} is not supported; this gateway speaks {PROTOCOL_VERSION}")]
    Protocol(u32),
    /// A first message other than `Hello`.
    #[error("the first message of a session must be Hello")]
    NotHello,
    /// The stream failed before its first message: its own status ends the call.
    #[error("{}", .0.message())]
    Stream(Status),
    /// A message the gateway could not decode (too big, not protobuf).
    #[error("bad client message: {}", .0.message())]
    BadMessage(Status),
    /// A config reload changed the catalog or policy the session's `Welcome` showed.
    #[error("{RELOADED}")]
    Reloaded,
    /// The gateway is shutting down.
    #[error("gateway is shutting down; reconnect later")]
    ShuttingDown,
}
