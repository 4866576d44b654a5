//! Who is on the other end of a session: bearer tokens checked against SHA-256 hashes.
//!
//! The gateway never stores a token, only its hash; a presented token is hashed and compared
//! with every operator's hash in constant time, so timing reveals neither which operator nor how
//! many bytes matched. The check runs in a tonic interceptor at the edge: handlers read the
//! [`Identity`] from request extensions and never see credentials.

mod authenticator;
mod cert;
mod error;
mod review;

use std::collections::HashSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::Request;

pub use crate::identity::Identity;
pub use authenticator::Authenticator;
pub use cert::identity_from_der;
pub use error::{Error, InvalidOperator};
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
    pub fn parse_hash(hex_hash: &str) -> Result<[u8; 32], InvalidOperator> {
        let bytes =
            hex::decode(hex_hash.trim()).map_err(|err| InvalidOperator::NotHex(err.to_string()))?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| InvalidOperator::WrongLength(b.len()))?;
        if hash == <[u8; 32]>::from(Sha256::digest(b"")) {
            return Err(InvalidOperator::EmptyTokenHash);
        }
        Ok(hash)
    }
}

/// Every operator that may connect.
#[derive(Clone, Default)]
pub struct Operators {
    list: Vec<Operator>,
    /// Names and token hashes in use, so adding one is not a scan of all the others (20,000
    /// operators took 7 s to load that way).
    names: HashSet<Arc<str>>,
    hashes: HashSet<[u8; 32]>,
}

impl std::fmt::Debug for Operators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operators")
            .field("list", &self.list)
            .finish_non_exhaustive()
    }
}

/// The fewest characters a token may have: shorter ones (the empty one above all) are refused
/// when hashed, in configs (the hash of the empty token) and when presented.
pub const MIN_TOKEN_LEN: usize = 8;

/// The hex SHA-256 of `token`, the form `token_sha256` takes in the config.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Refuses a token (surrounding whitespace ignored) shorter than [`MIN_TOKEN_LEN`].
pub fn check_token_length(token: &str) -> Result<(), InvalidOperator> {
    let len = token.trim().chars().count();
    if len == 0 {
        return Err(InvalidOperator::EmptyToken);
    }
    if len < MIN_TOKEN_LEN {
        return Err(InvalidOperator::ShortToken(len));
    }
    Ok(())
}

impl Operators {
    /// A set with one operator, for the demo and tests.
    pub fn single(name: &str, token_sha256_hex: &str) -> Operators {
        let hash = Operator::parse_hash(token_sha256_hex).unwrap_or([0; 32]);
        let mut operators = Operators::default();
        let _ = operators.add(Operator::new(name, hash));
        operators
    }

    /// Adds an operator; names and tokens must be unique. (Comparing hashes of configured
    /// tokens with each other reveals nothing to a client, so a hash set does it.)
    pub fn add(&mut self, op: Operator) -> Result<(), InvalidOperator> {
        if self.names.contains(&op.name) {
            return Err(InvalidOperator::DuplicateName(op.name.to_string()));
        }
        if self.hashes.contains(&op.token_sha256) {
            return Err(InvalidOperator::DuplicateToken(op.name.to_string()));
        }
        self.names.insert(op.name.clone());
        self.hashes.insert(op.token_sha256);
        self.list.push(op);
        Ok(())
    }

    /// These operators and `other`'s, refused if a name or token is in both.
    pub fn merged(&self, other: &Operators) -> Result<Operators, InvalidOperator> {
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
        if check_token_length(token).is_err() {
            return None;
        }
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
    pub fn check(&self, request: &Request<()>) -> Result<Identity, Error> {
        let token = bearer_token(request)?;
        check_token_length(token).map_err(|_| Error::TokenTooShort)?;
        self.authenticate(token).ok_or(Error::UnknownToken)
    }
}

/// The bearer token of a request's `authorization` metadata, trimmed.
pub fn bearer_token(request: &Request<()>) -> Result<&str, Error> {
    let header = request
        .metadata()
        .get("authorization")
        .ok_or(Error::MissingToken)?;
    // The scheme is case-insensitive (RFC 7235 section 2.1): `bearer`, `BEARER` are fine.
    header
        .to_str()
        .ok()
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Error::MalformedMetadata)
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
            let status = tonic::Status::from(ops.check(&request(auth)).expect_err("refused"));
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
                .to_string()
                .contains("twice")
        );
        assert!(
            ops.add(Operator::new("carol", alice_hash))
                .unwrap_err()
                .to_string()
                .contains("same token")
        );
    }

    #[test]
    fn empty_and_short_tokens_never_get_in() {
        let mut ops = operators();
        // A config could only hold the empty token's hash by mistake: it is refused there.
        let empty = hash_token("");
        assert!(
            Operator::parse_hash(&empty)
                .unwrap_err()
                .to_string()
                .contains("empty token")
        );
        // Even if such a hash got in, the empty token is not accepted.
        let raw: [u8; 32] = hex::decode(&empty).unwrap().try_into().unwrap();
        ops.add(Operator::new("nobody", raw)).expect("added");
        for auth in ["Bearer ", "Bearer    ", "Bearer short"] {
            let status = tonic::Status::from(ops.check(&request(Some(auth))).expect_err(auth));
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{auth:?}");
        }
        assert!(check_token_length("1234567").is_err());
        assert!(check_token_length(" 12345678 ").is_ok());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for auth in [
            "bearer bob-secret",
            "BEARER bob-secret",
            "BeArEr  bob-secret",
        ] {
            let id = operators().check(&request(Some(auth))).expect(auth);
            assert_eq!(&*id.name, "bob");
        }
    }

    #[test]
    fn many_operators_load_in_linear_time() {
        let started = std::time::Instant::now();
        let mut ops = Operators::default();
        for i in 0..20_000u32 {
            let mut hash = [0u8; 32];
            hash[..4].copy_from_slice(&i.to_be_bytes());
            ops.add(Operator::new(&format!("op{i}"), hash))
                .expect("unique");
        }
        assert_eq!(ops.len(), 20_000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "20,000 operators took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn hashes_must_be_64_hex_digits() {
        assert!(
            Operator::parse_hash("zz")
                .unwrap_err()
                .to_string()
                .contains("hex")
        );
        assert!(
            Operator::parse_hash("abcd")
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
        assert!(Operator::parse_hash(&hash_token("x")).is_ok());
    }
}
