//! The gRPC uplink to the gateway.
//!
//! Contract: keeps one `kubeknobs.v1.Knobs/Session` open, over TLS with the configured CA (or
//! plaintext to a loopback host), authenticated with `authorization: Bearer <token>`. Each session
//! starts with `Hello` and expects `Welcome`; then mapped moves go up as `ControlEvent`s with a
//! per-session increasing `seq` (see [`crate::link`]), outcomes are logged, and every state the
//! gateway pushes goes to feedback as an [`Event`]. When a session ends it reconnects forever with jittered exponential
//! backoff (250 ms doubling to 10 s, ±20%). Moves made while disconnected are never replayed:
//! only the last one per target is held, and sent first in the next session if it is still fresh
//! (`gateway.resend_within_ms`, see [`crate::link`]).

mod backoff;
mod session;

use std::time::{Duration, Instant};

use kubeknobs_runtime::telemetry;
use tokio::sync::{mpsc, watch};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tracing::{error, info, warn};

use crate::config::GatewayConfig;
use crate::event::Event;
use crate::link::Publisher;
use backoff::Backoff;

/// How long the TCP connect, and then the TLS handshake, may each take before the attempt fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings detect a dead connection (Wi-Fi gone, gateway host down) while nothing moves.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the uplink cannot start, or why one session ended.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `gateway.url`, the CA or the server name cannot make a gRPC endpoint.
    #[error("cannot use gateway {url}")]
    Endpoint {
        /// The URL from the config.
        url: String,
        /// tonic's reason.
        #[source]
        source: tonic::transport::Error,
    },
    /// The token cannot be sent as a gRPC metadata value.
    #[error("the token cannot be sent in an authorization header")]
    Token,
    /// Connecting to the gateway failed (refused, timed out, TLS handshake, …).
    #[error("cannot connect")]
    Connect(#[source] tonic::transport::Error),
    /// The gateway refused the bearer token.
    #[error("the gateway refused our token: {0}")]
    Unauthenticated(String),
    /// The session call or stream failed with a gRPC status.
    #[error("session failed: {}: {}", .0.code(), .0.message())]
    Status(tonic::Status),
    /// The gateway did not follow the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The gateway ended the session.
    #[error("the gateway closed the session")]
    Closed,
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Error {
        match status.code() {
            tonic::Code::Unauthenticated => Error::Unauthenticated(status.message().to_owned()),
            _ => Error::Status(status),
        }
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub(crate) struct BearerAuth {
    value: MetadataValue<Ascii>,
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.value.clone());
        Ok(request)
    }
}

/// A configured, not yet connected uplink.
pub struct Uplink {
    endpoint: Endpoint,
    auth: BearerAuth,
    bridge_id: String,
    url: String,
}

impl Uplink {
    /// Checks the endpoint, TLS settings and token; connects nothing yet.
    pub fn new(bridge_id: &str, gateway: &GatewayConfig) -> Result<Uplink> {
        let url = gateway.url.clone();
        let endpoint_error = |source| Error::Endpoint {
            url: url.clone(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(endpoint_error)?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        if let Some(ca) = &gateway.ca_pem {
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .timeout(CONNECT_TIMEOUT);
            if let Some(domain) = &gateway.domain {
                tls = tls.domain_name(domain.clone());
            }
            endpoint = endpoint.tls_config(tls).map_err(endpoint_error)?;
        }
        let mut value: MetadataValue<Ascii> = format!("Bearer {}", gateway.token)
            .parse()
            .map_err(|_| Error::Token)?;
        value.set_sensitive(true);
        Ok(Uplink {
            endpoint,
            auth: BearerAuth { value },
            bridge_id: bridge_id.to_owned(),
            url,
        })
    }

    /// Keeps a session open, reconnecting with backoff, until `stop` turns true: then the live
    /// session is closed cleanly (the gateway logs a bridge that closed, not a broken stream).
    pub(crate) async fn run(
        self,
        publisher: Publisher,
        feedback: mpsc::Sender<Event>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut backoff = Backoff::default();
        while !*stop.borrow() {
            info!(url = %self.url, "connecting to gateway");
            let started = Instant::now();
            // Before its Welcome a session does not watch `stop`; the caller bounds the wait.
            let ended = session::run(&self, &publisher, &feedback, &mut stop).await;
            if ended.is_ok() {
                return;
            }
            if started.elapsed() > backoff::HEALTHY {
                backoff.reset();
            }
            let err = match ended {
                Ok(()) => Error::Closed,
                Err(e) => e,
            };
            if let Error::Unauthenticated(_) = err {
                backoff.give_up_hurrying();
            }
            // Phones keep their last state, marked stale, until a new session brings the truth.
            let _ = feedback.send(Event::Disconnected(err.to_string())).await;
            let delay = backoff.next_delay();
            match &err {
                Error::Unauthenticated(_) => error!(
                    error = %telemetry::chain(&err), retry_in = ?delay,
                    "gateway refused the token; check gateway.token_file; retrying"
                ),
                _ => warn!(
                    error = %telemetry::chain(&err), retry_in = ?delay,
                    "gateway session ended; retrying"
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(url: &str, token: &str) -> GatewayConfig {
        GatewayConfig::new(url.into(), None, token.into())
    }

    #[test]
    fn a_refused_token_is_its_own_error() {
        let err = Error::from(tonic::Status::unauthenticated("unknown token"));
        assert!(matches!(&err, Error::Unauthenticated(m) if m == "unknown token"));
        assert!(matches!(
            Error::from(tonic::Status::unavailable("down")),
            Error::Status(_)
        ));
    }

    #[test]
    fn checks_url_and_token_before_connecting() {
        assert!(Uplink::new("b", &gateway("http://127.0.0.1:1", "tok")).is_ok());
        let bad_token = Uplink::new("b", &gateway("http://127.0.0.1:1", "a\nb"));
        assert!(matches!(bad_token, Err(Error::Token)));
        let bad_url = Uplink::new("b", &gateway("not a url", "tok"));
        assert!(matches!(bad_url, Err(Error::Endpoint { .. })));
    }
}
