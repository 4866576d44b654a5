//! Kubernetes identities: a bearer token that is not one of the configured operators' is asked
//! about with a `TokenReview` against the cluster (`auth.token_review`), so operators can use a
//! ServiceAccount or user token (`kubectl create token NAME`). The username is the operator and
//! the groups are the user's groups.
//!
//! The review is a network call, which a tonic interceptor cannot make, so the interceptor
//! hands the token on as a [`PendingReview`] and the session handler finishes authentication
//! with [`TokenReviewer::review`] before reading anything else. The token is never logged.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::Api;
use kube::api::PostParams;
use tonic::Status;

use super::Identity;

/// A token the interceptor could not match, to be checked with a TokenReview.
#[derive(Clone)]
pub struct PendingReview(pub(super) String);

impl std::fmt::Debug for PendingReview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingReview(<redacted>)")
    }
}

/// Asks the cluster who a token belongs to.
#[derive(Clone)]
pub struct TokenReviewer {
    client: kube::Client,
}

impl TokenReviewer {
    /// Reviews tokens with `client` (the gateway's own cluster client).
    pub fn new(client: kube::Client) -> TokenReviewer {
        TokenReviewer { client }
    }

    /// The identity the cluster gives `pending`'s token, or UNAUTHENTICATED saying why not.
    pub async fn review(&self, pending: &PendingReview) -> Result<Identity, Status> {
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(pending.0.clone()),
                audiences: None,
            },
            ..Default::default()
        };
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|err| {
                tracing::warn!(cause = %err, "token review failed");
                Status::unauthenticated(format!(
                    "invalid bearer token: no operator has this token and the cluster could not review it ({err})"
                ))
            })?;
        let status = answer.status.unwrap_or_default();
        let user = status.user.unwrap_or_default();
        match (status.authenticated, user.username) {
            (Some(true), Some(name)) if !name.is_empty() => {
                Ok(Identity::new(&name, user.groups.unwrap_or_default()))
            }
            _ => Err(Status::unauthenticated(format!(
                "invalid bearer token: no operator has this token and the cluster did not authenticate it ({})",
                status.error.as_deref().unwrap_or("no reason given")
            ))),
        }
    }
}
