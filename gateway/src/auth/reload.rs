//! Who is calling: a verified client certificate (mutual TLS, see `cert`), or a bearer token.
//!
//! Token rotation without a restart: the operators of the config plus those of
//! `auth.tokens_file`, re-read whenever that file changes.
//!
//! The file is polled (`crate::reload::watch_tokens` calls [`Authenticator::reload`] when it
//! changes), which works the same on every filesystem, including the symlink swaps Kubernetes
//! uses for mounted Secrets. A file that no longer parses,
//! or clashes with the config's operators, is logged and the previous operators stay in force: a
//! typo never locks everyone out. Sessions already open are not cut. A config reload replaces
//! both sources at once ([`Authenticator::replace`]).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tonic::{Request, Status};

use super::Operators;

/// Authenticates requests against the current operators.
#[derive(Debug)]
pub struct Authenticator {
    /// Unknown bearer tokens are handed on for a TokenReview (`auth.token_review`).
    token_review: bool,
    sources: RwLock<Sources>,
    current: RwLock<Arc<Operators>>,
}

/// Where operators come from: the config file's, plus those of the tokens file.
#[derive(Debug, Clone)]
struct Sources {
    fixed: Operators,
    file: Option<PathBuf>,
}

impl Sources {
    /// All operators, reading the tokens file now.
    fn read(&self) -> Result<Operators, crate::config::Error> {
        let Some(path) = &self.file else {
            return Ok(self.fixed.clone());
        };
        let extra = crate::config::load_tokens(path)?;
        self.fixed
            .merged(&extra)
            .map_err(|err| crate::config::Error::Invalid {
                path: path.clone(),
                line: 1,
                field: "operators".into(),
                message: err.to_string(),
            })
    }
}

impl Authenticator {
    /// The config's `fixed` operators plus those of `file` (read now), if any.
    pub fn load(
        fixed: Operators,
        file: Option<PathBuf>,
    ) -> Result<Authenticator, crate::config::Error> {
        let sources = Sources { fixed, file };
        let current = sources.read()?;
        Ok(Authenticator {
            token_review: false,
            sources: RwLock::new(sources),
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Replaces both sources (a config reload), or changes nothing if the tokens file cannot be
    /// used with `fixed`.
    pub fn replace(
        &self,
        fixed: Operators,
        file: Option<PathBuf>,
    ) -> Result<(), crate::config::Error> {
        let sources = Sources { fixed, file };
        let operators = sources.read()?;
        *self.sources.write().unwrap_or_else(|p| p.into_inner()) = sources;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(operators);
        Ok(())
    }

    fn sources(&self) -> Sources {
        self.sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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

    /// Re-reads the tokens file; keeps the current operators if it is unusable.
    pub fn reload(&self) {
        let sources = self.sources();
        let Some(path) = &sources.file else { return };
        match sources.read() {
            Ok(operators) => {
                tracing::info!(file = %path.display(), operators = operators.len(), "tokens file reloaded");
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(operators);
            }
            Err(cause) => {
                tracing::warn!(file = %path.display(), %cause, "tokens file not reloaded; the previous operators stay in force")
            }
        }
    }

    /// The tokens file the operators are read from now, if any.
    pub fn tokens_file(&self) -> Option<PathBuf> {
        self.sources().file
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Operator, hash_token};

    fn tokens(entries: &[(&str, &str)]) -> String {
        entries
            .iter()
            .map(|(name, token)| {
                format!(
                    "[[operators]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\n",
                    hash_token(token)
                )
            })
            .collect()
    }

    fn fixed() -> Operators {
        let mut ops = Operators::default();
        let hash = Operator::parse_hash(&hash_token("alice-token")).unwrap();
        ops.add(Operator::new("alice", hash)).unwrap();
        ops
    }

    #[test]
    fn a_changed_file_rotates_tokens_and_a_broken_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, tokens(&[("bob", "bob-token-1")])).unwrap();
        let auth = Authenticator::load(fixed(), Some(path.clone())).expect("loads");
        assert!(auth.operators().authenticate("alice-token").is_some());
        assert!(auth.operators().authenticate("bob-token-1").is_some());

        std::fs::write(&path, tokens(&[("bob", "bob-token-2")])).unwrap();
        auth.reload();
        assert!(
            auth.operators().authenticate("bob-token-1").is_none(),
            "old token revoked"
        );
        assert!(auth.operators().authenticate("bob-token-2").is_some());

        std::fs::write(
            &path,
            "[[operators]]\nname = \"bob\"\ntoken_sha256 = \"zz\"\n",
        )
        .unwrap();
        auth.reload();
        assert!(
            auth.operators().authenticate("bob-token-2").is_some(),
            "kept"
        );
        std::fs::write(&path, tokens(&[("alice", "other-token")])).unwrap();
        auth.reload();
        assert!(
            auth.operators().authenticate("other-token").is_none(),
            "a clash is refused"
        );
    }

    #[test]
    fn a_broken_file_at_start_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(
            &path,
            "\n[[operators]]\nname = \"bob\"\ntoken_sha256 = \"zz\"\n",
        )
        .unwrap();
        let err = Authenticator::load(fixed(), Some(path))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tokens.toml:4: operators[0].token_sha256"),
            "{err}"
        );
    }
}
