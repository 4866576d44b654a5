//! Who is on the other end of a session: bearer tokens checked against SHA-256 hashes.
//!
//! The gateway never stores a token, only its hash; a presented token is hashed and compared
//! with every operator's hash in constant time, so timing reveals neither which operator nor how
//! many bytes matched. The check runs in a tonic interceptor at the edge: handlers read the
//! [`Identity`] from request extensions and never see credentials.

mod cert;
mod reload;
mod review;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

pub use cert::identity_from_der;
pub use reload::Authenticator;
pub use review::{DEFAULT_TOKEN_AUDIENCE, PendingReview, TokenReviewer};

/// An operator allowed to connect.
#[derive(Clone)]
pub struct Operator {
    name: Arc<str>,
    token_sha256: [u8; 32],
    groups: Arc<[String]>,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Operator {
    /// An operator named `name` whose token hashes to `token_sha256`.
    pub fn new(name: &str, token_sha256: [u8; 32]) -> Operator {
        Operator {
            name: name.into(),
            token_sha256,
            groups: Arc::new([]),
        }
    }

    /// The same operator, member of `groups` (for `group:NAME` policy rules).
    pub fn with_groups(mut self, groups: Vec<String>) -> Operator {
        self.groups = groups.into();
        self
    }

    /// Parses a hex SHA-256 as written in the config (`token_sha256`).
    pub fn parse_hash(hex_hash: &str) -> Result<[u8; 32], String> {
        let bytes = hex::decode(hex_hash.trim()).map_err(|err| {
            format!("not a hex SHA-256 ({err}); make one with `kubeknobs-gateway hash-token`")
        })?;
        bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "a SHA-256 has 32 bytes (64 hex digits), this has {}",
                b.len()
            )
        })
    }
}

/// The authenticated operator of a request, put into request extensions by
/// [`Authenticator::interceptor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The operator's configured name.
    pub name: Arc<str>,
    /// The groups the operator belongs to.
    pub groups: Arc<[String]>,
    /// True when the cluster vouched for it (`auth.token_review`) rather than the config or a
    /// client certificate: such an identity gets only what a policy rule names it for.
    pub reviewed: bool,
}

impl Identity {
    /// An identity named `name` in `groups`.
    pub fn new(name: &str, groups: Vec<String>) -> Identity {
        Identity {
            name: name.into(),
            groups: groups.into(),
            reviewed: false,
        }
    }

    /// An identity the cluster authenticated with a TokenReview.
    pub fn reviewed(name: &str, groups: Vec<String>) -> Identity {
        Identity {
            reviewed: true,
            ..Identity::new(name, groups)
        }
    }
}

/// Every operator that may connect.
#[derive(Debug, Clone, Default)]
pub struct Operators {
    list: Vec<Operator>,
}

/// The hex SHA-256 of `token`, the form `token_sha256` takes in the config.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

impl Operators {
    /// A set with one operator, for the demo and tests.
    pub fn single(name: &str, token_sha256_hex: &str) -> Operators {
        let hash = Operator::parse_hash(token_sha256_hex).unwrap_or([0; 32]);
        Operators {
            list: vec![Operator::new(name, hash)],
        }
    }

    /// Adds an operator; names and tokens must be unique.
    pub fn add(&mut self, op: Operator) -> Result<(), String> {
        if self.list.iter().any(|o| o.name == op.name) {
            return Err(format!("operator {:?} is defined twice", op.name));
        }
        if self
            .list
            .iter()
            .any(|o| bool::from(o.token_sha256.ct_eq(&op.token_sha256)))
        {
            return Err(format!(
                "operator {:?} has the same token as another operator",
                op.name
            ));
        }
        self.list.push(op);
        Ok(())
    }

    /// These operators and `other`'s, refused if a name or token is in both.
    pub fn merged(&self, other: &Operators) -> Result<Operators, String> {
        let mut all = self.clone();
        for op in &other.list {
            all.add(op.clone())?;
        }
        Ok(all)
    }

    /// Every operator's name and groups, in the order they were added.
    pub fn names_and_groups(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.list.iter().map(|op| (&*op.name, &*op.groups))
    }

    /// Number of operators.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when no operator may connect.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The operator whose token is `token`, compared in constant time against all of them.
    pub fn authenticate(&self, token: &str) -> Option<Identity> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for op in &self.list {
            if bool::from(op.token_sha256.ct_eq(&presented)) {
                found = Some(Identity {
                    name: op.name.clone(),
                    groups: op.groups.clone(),
                    reviewed: false,
                });
            }
        }
        found
    }

    /// Authenticates a request from its `authorization: Bearer <token>` metadata.
    pub fn check(&self, request: &Request<()>) -> Result<Identity, Status> {
        let token = bearer_token(request)?;
        self.authenticate(token).ok_or_else(|| {
            Status::unauthenticated("invalid bearer token: no operator has this token")
        })
    }
}

/// The bearer token of a request's `authorization` metadata, trimmed.
pub fn bearer_token(request: &Request<()>) -> Result<&str, Status> {
    let header = request.metadata().get("authorization").ok_or_else(|| {
        Status::unauthenticated(
            "missing bearer token: send metadata `authorization: Bearer <token>`",
        )
    })?;
    header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            Status::unauthenticated("malformed authorization metadata: expected `Bearer <token>`")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operators() -> Operators {
        let mut ops = Operators::default();
        for (name, token) in [("alice", "alice-secret"), ("bob", "bob-secret")] {
            let hash = Operator::parse_hash(&hash_token(token)).expect("valid hash");
            ops.add(Operator::new(name, hash)).expect("unique");
        }
        ops
    }

    fn request(auth: Option<&str>) -> Request<()> {
        let mut req = Request::new(());
        if let Some(value) = auth {
            req.metadata_mut()
                .insert("authorization", value.parse().expect("ascii"));
        }
        req
    }

    #[test]
    fn right_token_names_its_operator() {
        let id = operators()
            .check(&request(Some("Bearer bob-secret")))
            .expect("authenticated");
        assert_eq!(&*id.name, "bob");
    }

    #[test]
    fn wrong_missing_or_malformed_tokens_are_unauthenticated() {
        let ops = operators();
        for (auth, needle) in [
            (Some("Bearer nope"), "invalid bearer token"),
            (None, "missing bearer token"),
            (Some("Basic YWxpY2U="), "malformed"),
        ] {
            let status = ops.check(&request(auth)).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            assert!(
                status.message().contains(needle),
                "{auth:?}: {}",
                status.message()
            );
            assert!(
                !status.message().contains("nope"),
                "the secret must not be echoed"
            );
        }
    }

    #[test]
    fn duplicate_names_and_tokens_are_refused() {
        let mut ops = operators();
        let alice_hash = Operator::parse_hash(&hash_token("alice-secret")).expect("hash");
        assert!(
            ops.add(Operator::new("alice", [7; 32]))
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            ops.add(Operator::new("carol", alice_hash))
                .unwrap_err()
                .contains("same token")
        );
    }

    #[test]
    fn hashes_must_be_64_hex_digits() {
        assert!(Operator::parse_hash("zz").unwrap_err().contains("hex"));
        assert!(
            Operator::parse_hash("abcd")
                .unwrap_err()
                .contains("32 bytes")
        );
        assert!(Operator::parse_hash(&hash_token("x")).is_ok());
    }
}
