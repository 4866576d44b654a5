//! Who is calling: a verified client certificate (mutual TLS, see `cert`), or a bearer token
//! of one of the operators in force.
//!
//! The operators in force are replaced at once, never edited: when the tokens file or the config
//! is reloaded (`crate::reload::Tokens`), sessions already open are not cut.

use std::sync::{Arc, RwLock};

use tonic::{Request, Status};

use super::Operators;

/// Authenticates requests against the current operators.
#[derive(Debug)]
pub struct Authenticator {
    /// Unknown bearer tokens are handed on for a TokenReview (`auth.token_review`).
    token_review: bool,
    current: RwLock<Arc<Operators>>,
}

impl Authenticator {
    /// Authenticates against `operators` until they are replaced.
    pub fn new(operators: Operators) -> Authenticator {
        Authenticator {
            token_review: false,
            current: RwLock::new(Arc::new(operators)),
        }
    }

    /// Puts `operators` in force, for every request from now on.
    pub fn set_operators(&self, operators: Operators) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(operators);
    }

    /// Hands tokens no operator has on to a TokenReview (see `review`).
    pub fn with_token_review(mut self, enabled: bool) -> Authenticator {
        self.token_review = enabled;
        self
    }

    /// The operators in force now.
    pub fn operators(&self) -> Arc<Operators> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A verified client certificate names the operator (mutual TLS); otherwise the bearer
    /// token does.
    fn identify(&self, request: &Request<()>) -> Result<super::Identity, super::Error> {
        if let Some(leaf) = request.peer_certs().as_deref().and_then(|c| c.first()) {
            return super::identity_from_der(leaf);
        }
        self.operators().check(request)
    }

    /// A tonic interceptor that authenticates each call and stores its [`super::Identity`].
    /// Each outcome is told to `admission`, which bounds what unauthenticated clients can do
    /// and logs refusals as summaries.
    pub fn interceptor(
        self: Arc<Self>,
        admission: crate::admission::Admission,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        move |mut request: Request<()>| {
            let peer = request.remote_addr();
            let identity = match self.identify(&request) {
                Ok(identity) => identity,
                Err(refused) => match super::bearer_token(&request) {
                    Ok(token)
                        if self.token_review
                            && request.peer_certs().is_none()
                            && super::check_token_length(token).is_ok() =>
                    {
                        let pending = super::PendingReview(token.to_owned());
                        request.extensions_mut().insert(pending);
                        // The API server decides from here; its answer is remembered.
                        admission.authenticated(peer);
                        return Ok(request);
                    }
                    _ => {
                        let status = Status::from(refused);
                        admission.refused(peer, status.message());
                        return Err(status);
                    }
                },
            };
            admission.authenticated(peer);
            request.extensions_mut().insert(identity);
            Ok(request)
        }
    }
}
