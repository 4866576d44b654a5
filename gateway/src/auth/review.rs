//! Kubernetes identities: a bearer token that is not one of the configured operators' is asked
//! about with a `TokenReview` against the cluster (`auth.token_review`), so operators can use a
//! ServiceAccount or user token (`kubectl create token NAME --audience kubeknobs`). The username
//! is the operator and the groups are the user's groups; the [`Identity`] is marked `reviewed`,
//! so the policy gives it only what a rule names it for.
//!
//! Every review asks for the gateway's audiences (`auth.token_review_audiences`, default
//! [`DEFAULT_TOKEN_AUDIENCE`]): the API server then authenticates only tokens minted for one of
//! them, which it refuses as credentials for itself, so a stolen bridge token is no API server
//! credential. As the TokenReview API asks of audience-aware clients, an answer must also name
//! one of those audiences in `status.audiences`; one that does not (an API server that ignored
//! them) is refused.
//!
//! The review is a network call, which a tonic interceptor cannot make, so the interceptor
//! hands the token on as a [`PendingReview`] and the session handler finishes authentication
//! with [`TokenReviewer::review`] before reading anything else. The token is never logged.
//!
//! A token the cluster authenticated is remembered for [`REMEMBER_FOR`] (by its SHA-256, never in
//! clear), so a bridge that reconnects, or many at once after a gateway restart, cost the API
//! server one review per token rather than one per session. A refusal is never remembered: a
//! token created a moment ago works at once. (The API server's own webhook cache keeps answers
//! for two minutes; a session, once open, is not reviewed again in any case.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Error, Identity};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::Api;
use kube::api::PostParams;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// A token the interceptor could not match, to be checked with a TokenReview.
#[derive(Clone)]
pub struct PendingReview(pub(super) String);

impl std::fmt::Debug for PendingReview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingReview(<redacted>)")
    }
}

/// The audience TokenReviews ask for unless `auth.token_review_audiences` says otherwise.
pub const DEFAULT_TOKEN_AUDIENCE: &str = "kubeknobs";

/// How long a token the cluster authenticated is taken without asking again.
pub const REMEMBER_FOR: Duration = Duration::from_secs(10);
/// Most tokens remembered at once; beyond it, the oldest answer is forgotten first.
const REMEMBER_AT_MOST: usize = 1024;

/// Asks the cluster who a token belongs to.
#[derive(Clone)]
pub struct TokenReviewer {
    client: kube::Client,
    audiences: Arc<[String]>,
    remembered: Arc<Mutex<Remembered>>,
}

impl TokenReviewer {
    /// Reviews tokens with `client` (the gateway's own cluster client), accepting only tokens
    /// minted for one of `audiences`.
    pub fn new(client: kube::Client, audiences: Vec<String>) -> TokenReviewer {
        TokenReviewer {
            client,
            audiences: audiences.into(),
            remembered: Arc::default(),
        }
    }

    /// The identity the cluster gives `pending`'s token, or why not.
    pub async fn review(&self, pending: &PendingReview) -> Result<Identity, Error> {
        let key = Remembered::key(&pending.0);
        if let Some(identity) = self.remembered().get(&key, Instant::now()) {
            return Ok(identity);
        }
        let identity = self.ask(pending).await?;
        self.remembered().put(key, identity.clone(), Instant::now());
        Ok(identity)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.remembered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Posts a TokenReview for `pending`'s token.
    async fn ask(&self, pending: &PendingReview) -> Result<Identity, Error> {
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(pending.0.clone()),
                audiences: Some(self.audiences.to_vec()),
            },
            ..Default::default()
        };
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|err| {
                tracing::warn!(cause = %err, "token review failed");
                Error::ReviewFailed(err)
            })?;
        let status = answer.status.unwrap_or_default();
        let user = status.user.unwrap_or_default();
        let audience_ok = status
            .audiences
            .iter()
            .flatten()
            .any(|a| self.audiences.contains(a));
        match (status.authenticated, user.username) {
            (Some(true), Some(_)) if !audience_ok => Err(Error::WrongAudience {
                asked: self.audiences.to_vec(),
                answered: status.audiences.unwrap_or_default(),
            }),
            (Some(true), Some(name)) if !name.is_empty() => {
                Ok(Identity::reviewed(&name, user.groups.unwrap_or_default()))
            }
            _ => Err(Error::NotAuthenticated(
                status.error.unwrap_or_else(|| "no reason given".to_owned()),
            )),
        }
    }
}

/// Identities the cluster gave tokens lately, by the token's SHA-256.
#[derive(Debug, Default)]
struct Remembered {
    answers: HashMap<[u8; 32], (Identity, Instant)>,
}

impl Remembered {
    fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The identity given to `key` less than [`REMEMBER_FOR`] before `now`.
    fn get(&mut self, key: &[u8; 32], now: Instant) -> Option<Identity> {
        match self.answers.get(key) {
            Some((identity, at)) if now.saturating_duration_since(*at) < REMEMBER_FOR => {
                Some(identity.clone())
            }
            Some(_) => {
                self.answers.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers `identity` for `key` from `now`, forgetting expired answers, and the oldest
    /// when there are too many.
    fn put(&mut self, key: [u8; 32], identity: Identity, now: Instant) {
        self.answers
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < REMEMBER_FOR);
        if self.answers.len() >= REMEMBER_AT_MOST
            && let Some(oldest) = self
                .answers
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| *k)
        {
            self.answers.remove(&oldest);
        }
        self.answers.insert(key, (identity, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_remembered_for_a_while_and_by_hash_only() {
        let mut remembered = Remembered::default();
        let frank = Identity::new("frank", vec!["ops".into()]);
        let key = Remembered::key("sa-token");
        assert_ne!(&key[..], b"sa-token".as_slice());
        assert_eq!(remembered.get(&key, Instant::now()), None);
        remembered.put(key, frank.clone(), Instant::now());
        assert_eq!(remembered.get(&key, Instant::now()), Some(frank.clone()));
        assert_eq!(
            remembered.get(&Remembered::key("other"), Instant::now()),
            None
        );
        tokio::time::advance(REMEMBER_FOR - Duration::from_millis(1)).await;
        assert_eq!(remembered.get(&key, Instant::now()), Some(frank));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(remembered.get(&key, Instant::now()), None, "asked again");
        assert!(remembered.answers.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_so_many_answers_are_kept_oldest_first_out() {
        let mut remembered = Remembered::default();
        for i in 0..=REMEMBER_AT_MOST {
            let name = format!("sa-{i}");
            remembered.put(
                Remembered::key(&name),
                Identity::new(&name, vec![]),
                Instant::now(),
            );
            tokio::time::advance(Duration::from_micros(1)).await;
        }
        assert_eq!(remembered.answers.len(), REMEMBER_AT_MOST);
        let now = Instant::now();
        assert_eq!(
            remembered.get(&Remembered::key("sa-0"), now),
            None,
            "the oldest went"
        );
        assert!(remembered.get(&Remembered::key("sa-1"), now).is_some());
    }
}
