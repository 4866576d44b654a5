//! `[server]` and `[auth]` as written: the listener, TLS material, session limits and client
//! certificates, validated (and their files read) at load so `check` catches a missing file.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{ClientAuth, Result, SessionLimits, Source, TlsIdentity};

/// `[auth]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) tokens_file: Option<Spanned<String>>,
    pub(super) client_ca: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) client_cert_required: bool,
    pub(super) token_review: Option<Spanned<bool>>,
    pub(super) token_review_audiences: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub(super) token_review_any_identity: bool,
}

impl RawAuth {
    /// `auth.token_review`.
    pub(super) fn token_review(&self) -> bool {
        self.token_review.as_ref().is_some_and(|r| *r.get_ref())
    }
}

/// The audiences a TokenReview asks for (`auth.token_review_audiences`): the default
/// [`crate::auth::DEFAULT_TOKEN_AUDIENCE`], or the configured ones, none of them empty.
pub(super) fn validate_audiences(auth: &RawAuth, src: &Source<'_>) -> Result<Vec<String>> {
    let Some(list) = &auth.token_review_audiences else {
        return Ok(vec![crate::auth::DEFAULT_TOKEN_AUDIENCE.to_owned()]);
    };
    let audiences: Vec<String> = list.as_ref().iter().map(|a| a.trim().to_owned()).collect();
    if audiences.is_empty() || audiences.iter().any(String::is_empty) {
        return Err(src.invalid(
            list.span().start,
            "auth.token_review_audiences",
            format!(
                "list one or more audiences (none empty), such as [\"{}\"]: bridges then carry tokens from `kubectl create token NAME --audience {}`, which the API server itself refuses",
                crate::auth::DEFAULT_TOKEN_AUDIENCE,
                crate::auth::DEFAULT_TOKEN_AUDIENCE
            ),
        ));
    }
    Ok(audiences)
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    #[serde(default = "default_listen")]
    pub(super) listen: Spanned<String>,
    pub(super) tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    hello_timeout_ms: Option<Spanned<i64>>,
    max_message_bytes: Option<Spanned<i64>>,
    state_updates_per_second: Option<Spanned<i64>>,
    pub(super) ops_listen: Option<Spanned<String>>,
    max_pending_connections: Option<Spanned<i64>>,
    max_pending_per_peer: Option<Spanned<i64>>,
    auth_timeout_ms: Option<Spanned<i64>>,
    max_streams_per_connection: Option<Spanned<i64>>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            hello_timeout_ms: None,
            max_message_bytes: None,
            state_updates_per_second: None,
            ops_listen: None,
            max_pending_connections: None,
            max_pending_per_peer: None,
            auth_timeout_ms: None,
            max_streams_per_connection: None,
        }
    }
}

fn default_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:50051".to_owned())
}

pub(super) fn validate_client_auth(auth: &RawAuth, src: &Source<'_>) -> Result<Option<ClientAuth>> {
    let Some(ca) = &auth.client_ca else {
        if auth.client_cert_required {
            return Err(src.invalid(0, "auth.client_cert_required", "needs auth.client_ca"));
        }
        return Ok(None);
    };
    let shown = src.resolve(ca.as_ref());
    let (_, ca_pem) = src.read_file(ca.as_ref()).map_err(|err| {
        let message = format!("cannot read {}: {err}", shown.display());
        src.invalid(ca.span().start, "auth.client_ca", message)
    })?;
    let client = ClientAuth {
        ca_pem,
        required: auth.client_cert_required,
    };
    // Serve-ready now, or say so: the CA must hold a certificate rustls can verify with.
    if let Err(err) = crate::tls::client_verifier(&client) {
        let message = format!("{}: {err}", shown.display());
        return Err(src.invalid(ca.span().start, "auth.client_ca", message));
    }
    Ok(Some(client))
}

/// `server.FIELD`'s value `v` as a count, if it lies within `lo..=hi`; otherwise an error that
/// names the file, line and field.
fn within(src: &Source<'_>, v: &Spanned<i64>, field: &str, lo: i64, hi: i64) -> Result<u64> {
    let n = *v.as_ref();
    if (lo..=hi).contains(&n) {
        Ok(n as u64)
    } else {
        Err(src.invalid(
            v.span().start,
            format!("server.{field}"),
            format!("{n} must be within {lo}..={hi}"),
        ))
    }
}

pub(super) fn validate_session(server: &RawServer, src: &Source<'_>) -> Result<SessionLimits> {
    let mut session = SessionLimits::default();
    let within = |v: &Spanned<i64>, field: &str, lo: i64, hi: i64| within(src, v, field, lo, hi);
    if let Some(v) = &server.hello_timeout_ms {
        session.hello_timeout = Duration::from_millis(within(v, "hello_timeout_ms", 1, 600_000)?);
    }
    if let Some(v) = &server.max_message_bytes {
        session.max_message_bytes = within(v, "max_message_bytes", 256, 16 << 20)? as usize;
    }
    if let Some(v) = &server.state_updates_per_second {
        session.updates_per_second = within(v, "state_updates_per_second", 1, 1000)? as u32;
    }
    Ok(session)
}

/// The bounds on unauthenticated clients (`server.max_pending_connections`, …).
pub(super) fn validate_admission(
    server: &RawServer,
    src: &Source<'_>,
) -> Result<crate::admission::Limits> {
    let mut limits = crate::admission::Limits::default();
    let within = |v: &Spanned<i64>, field: &str, lo: i64, hi: i64| within(src, v, field, lo, hi);
    if let Some(v) = &server.max_pending_connections {
        limits.max_pending = within(v, "max_pending_connections", 1, 100_000)? as usize;
    }
    if let Some(v) = &server.max_pending_per_peer {
        limits.max_pending_per_peer = within(v, "max_pending_per_peer", 1, 100_000)? as usize;
    }
    if let Some(v) = &server.auth_timeout_ms {
        limits.auth_timeout = Duration::from_millis(within(v, "auth_timeout_ms", 100, 600_000)?);
    }
    if let Some(v) = &server.max_streams_per_connection {
        limits.max_streams = within(v, "max_streams_per_connection", 1, 10_000)? as u32;
    }
    Ok(limits)
}

pub(super) fn validate_tls(server: &RawServer, src: &Source<'_>) -> Result<Option<TlsIdentity>> {
    let read = |field: &str, path: &Spanned<String>| {
        src.read_file(path.as_ref())
            .map(|(_, bytes)| bytes)
            .map_err(|err| {
                let shown = src.resolve(path.as_ref());
                src.invalid(
                    path.span().start,
                    format!("server.{field}"),
                    format!("cannot read {}: {err}", shown.display()),
                )
            })
    };
    match (&server.tls_cert, &server.tls_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            let identity = TlsIdentity {
                cert_pem: read("tls_cert", cert)?,
                key_pem: read("tls_key", key)?,
            };
            // Serve-ready now, or say which file is wrong.
            if let Err(err) = crate::tls::server_config(&identity, None) {
                let (field, path) = match err {
                    crate::tls::Error::Cert(_) => ("tls_cert", cert),
                    _ => ("tls_key", key),
                };
                let shown = src.resolve(path.as_ref());
                let message = format!("{}: {err}", shown.display());
                return Err(src.invalid(path.span().start, format!("server.{field}"), message));
            }
            Ok(Some(identity))
        }
        (Some(cert), None) => Err(src.invalid(
            cert.span().start,
            "server.tls_key",
            "tls_cert is set but tls_key is missing",
        )),
        (None, Some(key)) => Err(src.invalid(
            key.span().start,
            "server.tls_cert",
            "tls_key is set but tls_cert is missing",
        )),
    }
}
