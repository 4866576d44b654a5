//! Why authentication failed: [`Error`] for a call (every variant ends it as UNAUTHENTICATED,
//! see `crate::status`), [`InvalidOperator`] for a configured operator or token the gateway
//! refuses to load.
//!
//! The messages name what was wrong and how to fix it, never the token presented.

/// Why a call was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `authorization` metadata.
    #[error("missing bearer token: send metadata `authorization: Bearer <token>`")]
    MissingToken,
    /// `authorization` metadata that is not `Bearer <token>`.
    #[error("malformed authorization metadata: expected `Bearer <token>`")]
    MalformedMetadata,
    /// A token shorter than [`super::MIN_TOKEN_LEN`], which no operator can have.
    #[error("invalid bearer token: too short")]
    TokenTooShort,
    /// A token no operator has (and no TokenReview to ask about it).
    #[error("invalid bearer token: no operator has this token")]
    UnknownToken,
    /// A verified client certificate that cannot be read.
    #[error("client certificate cannot be parsed: {0}")]
    UnreadableCertificate(String),
    /// A verified client certificate without a common name to name the operator.
    #[error("client certificate has no subject common name (CN) to name the operator")]
    NoCommonName,
    /// The TokenReview could not be made.
    #[error(
        "invalid bearer token: no operator has this token and the cluster could not review it ({0})"
    )]
    ReviewFailed(#[source] kube::Error),
    /// The cluster authenticated the token, but not for one of the gateway's audiences.
    #[error(
        "invalid bearer token: the cluster authenticated it but not for the audiences {asked:?} (status.audiences {answered:?}); is the API server audience-aware?"
    )]
    WrongAudience {
        /// The audiences the review asked for.
        asked: Vec<String>,
        /// The audiences the answer named.
        answered: Vec<String>,
    },
    /// The cluster did not authenticate the token.
    #[error(
        "invalid bearer token: no operator has this token and the cluster did not authenticate it ({0})"
    )]
    NotAuthenticated(String),
    /// The call reached the service without an identity or a token to review.
    #[error("no operator identity")]
    NoIdentity,
}

/// Why an operator or a token cannot be used (in the config, the tokens file, `hash-token`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOperator {
    /// `token_sha256` is not hex.
    #[error("not a hex SHA-256 ({0}); make one with `kubeknobs-gateway hash-token`")]
    NotHex(String),
    /// `token_sha256` has the wrong length.
    #[error("a SHA-256 has 32 bytes (64 hex digits), this has {0}")]
    WrongLength(usize),
    /// `token_sha256` is the hash of the empty token.
    #[error("this is the SHA-256 of the empty token, which would let anyone in")]
    EmptyTokenHash,
    /// Two operators with one name.
    #[error("operator {0:?} is defined twice")]
    DuplicateName(String),
    /// Two operators with one token.
    #[error("operator {0:?} has the same token as another operator")]
    DuplicateToken(String),
    /// A token to hash that is empty.
    #[error("the token is empty")]
    EmptyToken,
    /// A token to hash that is too short.
    #[error(
        "the token has {0} characters; tokens need at least {min} (make one with `openssl rand -hex 32`)",
        min = super::MIN_TOKEN_LEN
    )]
    ShortToken(usize),
}
