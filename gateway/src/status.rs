//! Every gateway error that ends a gRPC call, mapped to its status code in one place (as
//! linkerd2-proxy's `errors.rs` does): bad credentials → `UNAUTHENTICATED`, limits →
//! `RESOURCE_EXHAUSTED`, a session that may not go on → `UNAVAILABLE` (standby, reload,
//! shutdown), bad session input → `INVALID_ARGUMENT`/`FAILED_PRECONDITION`/`DEADLINE_EXCEEDED`.
//! The rest of the gateway returns these errors and never builds a [`Status`] itself.
//!
//! Per-event refusals (forbidden, rate limited, out of range) do not end the call; they are
//! `Outcome`s with a `RejectReason` (see `service::admit`).

use tonic::Status;

use crate::auth;
use crate::ratelimit;
use crate::service;

impl From<auth::Error> for Status {
    fn from(err: auth::Error) -> Status {
        Status::unauthenticated(err.to_string())
    }
}

impl From<ratelimit::Error> for Status {
    fn from(err: ratelimit::Error) -> Status {
        Status::resource_exhausted(err.to_string())
    }
}

impl From<service::Error> for Status {
    fn from(err: service::Error) -> Status {
        use service::Error as E;
        let message = err.to_string();
        match err {
            E::Standby(_) | E::Reloaded | E::ShuttingDown => Status::unavailable(message),
            E::NoHello(_) => Status::deadline_exceeded(message),
            E::Protocol(_) => Status::failed_precondition(message),
            E::NotHello => Status::invalid_argument(message),
            E::BadMessage(status) => Status::new(status.code(), message),
            E::Stream(status) => status,
            E::Auth(err) => err.into(),
            E::Limit(err) => err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::Code;

    use super::*;

    /// What clients see: the codes and messages before errors were typed, word for word.
    #[test]
    fn each_error_keeps_its_code_and_message() {
        let cases: Vec<(Status, Code, &str)> = vec![
            (
                service::Error::Standby("standby: gw-1 leads".into()).into(),
                Code::Unavailable,
                "standby: gw-1 leads; connect to the leading gateway (through the Service)",
            ),
            (
                service::Error::Reloaded.into(),
                Code::Unavailable,
                "gateway configuration reloaded; reconnect for the new catalog",
            ),
            (
                service::Error::ShuttingDown.into(),
                Code::Unavailable,
                "gateway is shutting down; reconnect later",
            ),
            (
                service::Error::NoHello(Duration::from_millis(300)).into(),
                Code::DeadlineExceeded,
                "no Hello within 300ms (server.hello_timeout_ms): a session must start with Hello",
            ),
            (
                service::Error::Protocol(7).into(),
                Code::FailedPrecondition,
                "protocol version 7 is not supported; this gateway speaks 1",
            ),
            (
                service::Error::NotHello.into(),
                Code::InvalidArgument,
                "the first message of a session must be Hello",
            ),
            (
                service::Error::Stream(Status::cancelled("gone")).into(),
                Code::Cancelled,
                "gone",
            ),
            (
                service::Error::BadMessage(Status::out_of_range("too big")).into(),
                Code::OutOfRange,
                "bad client message: too big",
            ),
            (
                service::Error::Auth(auth::Error::NoIdentity).into(),
                Code::Unauthenticated,
                "no operator identity",
            ),
            (
                service::Error::Limit(ratelimit::Error::TooManySessions {
                    operator: "alice".into(),
                    limit: 2,
                })
                .into(),
                Code::ResourceExhausted,
                "operator alice already has 2 session(s) open (limits.sessions_per_operator); close one first",
            ),
            (
                auth::Error::MissingToken.into(),
                Code::Unauthenticated,
                "missing bearer token: send metadata `authorization: Bearer <token>`",
            ),
            (
                auth::Error::MalformedMetadata.into(),
                Code::Unauthenticated,
                "malformed authorization metadata: expected `Bearer <token>`",
            ),
            (
                auth::Error::TokenTooShort.into(),
                Code::Unauthenticated,
                "invalid bearer token: too short",
            ),
            (
                auth::Error::UnknownToken.into(),
                Code::Unauthenticated,
                "invalid bearer token: no operator has this token",
            ),
            (
                auth::Error::NoCommonName.into(),
                Code::Unauthenticated,
                "client certificate has no subject common name (CN) to name the operator",
            ),
            (
                auth::Error::WrongAudience {
                    asked: vec!["kubeknobs".into()],
                    answered: vec!["https://kubernetes.default.svc".into()],
                }
                .into(),
                Code::Unauthenticated,
                "invalid bearer token: the cluster authenticated it but not for the audiences [\"kubeknobs\"] (status.audiences [\"https://kubernetes.default.svc\"]); is the API server audience-aware?",
            ),
            (
                auth::Error::NotAuthenticated("no reason given".into()).into(),
                Code::Unauthenticated,
                "invalid bearer token: no operator has this token and the cluster did not authenticate it (no reason given)",
            ),
        ];
        for (status, code, message) in cases {
            assert_eq!((status.code(), status.message()), (code, message));
        }
    }
}
