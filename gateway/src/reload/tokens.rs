//! Token rotation without a restart: the operators in force are the config's plus those of
//! `auth.tokens_file`, re-read whenever that file changes, and handed to the [`Authenticator`].
//!
//! The file is polled (see [`super::trigger`]), which works the same on every filesystem,
//! including the symlink swaps Kubernetes uses for mounted Secrets. A file that no longer parses,
//! or clashes with the config's operators, is logged and the previous operators stay in force: a
//! typo never locks everyone out. Sessions already open are not cut. A config reload replaces
//! both sources at once ([`Tokens::replace`]).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;

use super::trigger::{FileWatch, POLL};
use crate::auth::{Authenticator, Operators};
use crate::config;

/// Where operators come from: the config file's, plus those of the tokens file.
#[derive(Debug, Clone)]
struct Sources {
    fixed: Operators,
    file: Option<PathBuf>,
}

impl Sources {
    /// All operators, reading the tokens file now.
    fn read(&self) -> Result<Operators, config::Error> {
        let Some(path) = &self.file else {
            return Ok(self.fixed.clone());
        };
        let extra = config::load_tokens(path)?;
        self.fixed
            .merged(&extra)
            .map_err(|err| config::Error::Invalid {
                path: path.clone(),
                line: 1,
                field: "operators".into(),
                message: err.to_string(),
            })
    }
}

/// Keeps an [`Authenticator`]'s operators those of the config and the tokens file.
#[derive(Debug)]
pub struct Tokens {
    auth: Arc<Authenticator>,
    sources: RwLock<Sources>,
}

impl Tokens {
    /// Puts the config's `fixed` operators plus those of `file` (read now), if any, in force
    /// in `auth`.
    pub fn load(
        auth: Arc<Authenticator>,
        fixed: Operators,
        file: Option<PathBuf>,
    ) -> Result<Tokens, config::Error> {
        let sources = Sources { fixed, file };
        auth.set_operators(sources.read()?);
        Ok(Tokens {
            auth,
            sources: RwLock::new(sources),
        })
    }

    /// Replaces both sources (a config reload), or changes nothing if the tokens file cannot be
    /// used with `fixed`.
    pub fn replace(&self, fixed: Operators, file: Option<PathBuf>) -> Result<(), config::Error> {
        let sources = Sources { fixed, file };
        let operators = sources.read()?;
        *self.sources.write().unwrap_or_else(|p| p.into_inner()) = sources;
        self.auth.set_operators(operators);
        Ok(())
    }

    fn sources(&self) -> Sources {
        self.sources
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
                self.auth.set_operators(operators);
            }
            Err(cause) => {
                tracing::warn!(file = %path.display(), %cause, "tokens file not reloaded; the previous operators stay in force")
            }
        }
    }

    /// Polls the tokens file (whichever the sources name now) and reloads it when it changes,
    /// until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut watch = self.sources().file.map(FileWatch::new);
        loop {
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = shutdown.cancelled() => return,
            }
            let file = self.sources().file;
            match (&mut watch, file) {
                (Some(w), Some(path)) if w.path() == path => {
                    if w.changed() {
                        self.reload();
                    }
                }
                (_, path) => watch = path.map(FileWatch::new),
            }
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

    fn load(path: PathBuf) -> Result<(Arc<Authenticator>, Tokens), config::Error> {
        let auth = Arc::new(Authenticator::new(Operators::default()));
        let tokens = Tokens::load(auth.clone(), fixed(), Some(path))?;
        Ok((auth, tokens))
    }

    #[test]
    fn a_changed_file_rotates_tokens_and_a_broken_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, tokens(&[("bob", "bob-token-1")])).unwrap();
        let (auth, file) = load(path.clone()).expect("loads");
        assert!(auth.operators().authenticate("alice-token").is_some());
        assert!(auth.operators().authenticate("bob-token-1").is_some());

        std::fs::write(&path, tokens(&[("bob", "bob-token-2")])).unwrap();
        file.reload();
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
        file.reload();
        assert!(
            auth.operators().authenticate("bob-token-2").is_some(),
            "kept"
        );
        std::fs::write(&path, tokens(&[("alice", "other-token")])).unwrap();
        file.reload();
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
        let err = load(path).unwrap_err().to_string();
        assert!(
            err.contains("tokens.toml:4: operators[0].token_sha256"),
            "{err}"
        );
    }
}
