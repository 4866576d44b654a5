//! The gateway's configuration: parsed from TOML into [`raw`] structs, then validated into a
//! [`Config`] the rest of the gateway uses without further checks.
//!
//! Every error names the file, the line and the field that is wrong, so `kubeknobs-gateway check`
//! can point an admin at the exact spot. Relative paths (TLS files) are resolved against the
//! directory of the config file, and TLS files are read here so a missing key fails at start-up.

mod impersonation;
mod leader;
mod limits;
mod operators;
mod policy;
mod raw;
mod server;
mod serving;
mod target;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kubeknobs_runtime::config_file::{self, line_of};

use crate::auth::Operators;
use crate::catalog::Catalog;
use crate::policy::Policy;
use crate::ratelimit::Limits;

pub use crate::tls::{ClientAuth, TlsIdentity};
pub use impersonation::{Impersonation, MASTERS, service_account};
pub use operators::load_tokens;
pub use raw::RawConfig;

/// A validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the gRPC server listens (`[server] listen`, or `--listen`).
    pub listen: SocketAddr,
    /// Where `/metrics`, `/healthz`, `/readyz` and plaintext gRPC health are served
    /// (`[server] ops_listen`); `None`: not served.
    pub ops_listen: Option<SocketAddr>,
    /// The server certificate and key; `None` only with `--insecure` (see [`Flags`]).
    pub tls: Option<TlsIdentity>,
    /// Which cluster the gateway drives.
    pub backend: BackendConfig,
    /// Who may connect, by bearer token.
    pub operators: Operators,
    /// The targets bridges may change.
    pub catalog: Catalog,
    /// Who may see and change which targets (`[[policy]]`).
    pub policy: Policy,
    /// How fast operators and the gateway may go (`[limits]`).
    pub limits: Limits,
    /// Limits on the session protocol itself (`[server]`).
    pub session: SessionLimits,
    /// Bounds on clients that have not authenticated yet (`[server]`, see `crate::admission`).
    pub admission: crate::admission::Limits,
    /// A file that gets every audit line too (`audit.file`, relative to the config file).
    pub audit_file: Option<PathBuf>,
    /// More operators, re-read whenever the file changes (`auth.tokens_file`).
    pub tokens_file: Option<PathBuf>,
    /// Bearer tokens no operator has are checked with a TokenReview (`auth.token_review`).
    pub token_review: bool,
    /// The audiences a TokenReview asks for (`auth.token_review_audiences`).
    pub token_review_audiences: Vec<String>,
    /// `"*"` and the open default cover identities from TokenReview too
    /// (`auth.token_review_any_identity`, only with `auth.token_review`).
    pub token_review_any_identity: bool,
    /// Writes impersonate the operator (`cluster.impersonate`; real clusters only).
    pub impersonate: bool,
    /// Whom `cluster.impersonate` may impersonate: all named (empty without it).
    pub impersonation: Impersonation,
    /// Only the holder of this Lease serves sessions (`[cluster.leader_election]`).
    pub leader_election: Option<crate::leader::LeaseSettings>,
    /// Mutual TLS: client certificates from this CA name their operator (`auth.client_ca`).
    pub client_auth: Option<ClientAuth>,
}

/// What the command line says besides the file: `run` and `check` take the same flags, so
/// `check` judges the config `run` would serve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--listen`: listen here instead of `server.listen`.
    pub listen: Option<SocketAddr>,
    /// `--insecure`: serve plaintext gRPC, only on a loopback address and only without TLS files.
    pub insecure: bool,
}

/// Limits on the gRPC session protocol (`server.hello_timeout_ms`, `server.max_message_bytes`,
/// `server.state_updates_per_second`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLimits {
    /// How long a new session may take to say `Hello`.
    pub hello_timeout: Duration,
    /// The largest gRPC message the gateway decodes; larger ones fail the session.
    pub max_message_bytes: usize,
    /// The most `StateUpdate`s a session is sent per second (its frame rate); the latest state
    /// wins and the end of a burst is sent at the next frame.
    pub updates_per_second: u32,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            hello_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
            updates_per_second: 30,
        }
    }
}

/// The cluster behind the gateway (`[cluster]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// An in-memory cluster with the same semantics, for demos; never mistaken for a real one.
    Sandbox,
    /// A real cluster through kube-rs.
    Kube {
        /// Kubeconfig file; `None` infers (`KUBECONFIG`, `~/.kube/config`, in-cluster).
        kubeconfig: Option<PathBuf>,
        /// Kubeconfig context; `None` uses the current context.
        context: Option<String>,
    },
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file (or a file it names) could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or a value has the wrong type.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// What the TOML parser said.
        message: String,
    },
    /// A command-line flag does not fit the config (see [`Flags`]).
    #[error("{}: {flag}: {message}", path.display())]
    Flag {
        /// The config file.
        path: PathBuf,
        /// The flag, e.g. `--listen`.
        flag: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A field has a value the gateway cannot use.
    #[error("{}:{line}: {field}: {message}", path.display())]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the field.
        line: usize,
        /// Dotted path of the field, e.g. `targets.web.max`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Result of loading a config.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Config {
    /// With `cluster.impersonate`, whom the gateway may impersonate; `None` without it.
    pub fn impersonated(&self) -> Option<&Impersonation> {
        self.impersonate.then_some(&self.impersonation)
    }

    /// What a valid config does that an admin should know about (`check` prints them and the
    /// gateway logs them at start).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.token_review_any_identity {
            warnings.push(format!(
                "auth.token_review_any_identity: any identity the cluster authenticates for {:?} is covered by \"*\" policy rules{}: every ServiceAccount that can be given such a token, in every namespace",
                self.token_review_audiences,
                if self.policy.rules().is_empty() {
                    " and, with no [[policy]], may change every target"
                } else {
                    ""
                }
            ));
        }
        warnings
    }

    /// Reads and validates the config file at `path` as `run` with `flags` would serve it: the
    /// one judgement `check`, `run` and every reload make.
    pub fn load(path: &Path, flags: &Flags) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path, flags)
    }

    /// Validates config `text`; `origin` names it in errors and anchors relative paths.
    pub fn parse(text: &str, origin: &Path, flags: &Flags) -> Result<Config> {
        let raw: RawConfig = deserialize(text, origin)?;
        raw.validate(&Source { text, origin }, flags, Given::default())
    }

    /// Like [`Config::parse`] without flags, but serves `tls` instead of reading
    /// `server.tls_cert`/`tls_key` (tests that make their certificates in memory).
    pub fn parse_with_tls(text: &str, origin: &Path, tls: TlsIdentity) -> Result<Config> {
        let given = Given {
            tls: Some(tls),
            operators: None,
        };
        Config::parse_given(text, origin, given)
    }

    /// Like [`Config::parse`] without flags, with what `given` supplies in place of the file's
    /// own settings (the demo, which makes its certificates and its one operator per run).
    pub fn parse_given(text: &str, origin: &Path, given: Given) -> Result<Config> {
        let raw: RawConfig = deserialize(text, origin)?;
        raw.validate(&Source { text, origin }, &Flags::default(), given)
    }
}

/// What a program embedding the gateway supplies instead of reading it from the config file.
#[derive(Debug, Default)]
pub struct Given {
    /// Serve this identity; `server.tls_cert`/`tls_key` are then not read.
    pub tls: Option<TlsIdentity>,
    /// These operators replace `[[operators]]` and `auth.tokens_file`, so a config without
    /// operators of its own is valid.
    pub operators: Option<Operators>,
}

/// Deserializes TOML `text` read from `origin`. A value of the wrong type is an `Invalid` error
/// naming its field (`targets.web.max`); broken TOML is a `Syntax` error at its line. A closed
/// set of names (`kind`, `cluster.backend`, `when_gitops`, `actions`) is a serde enum, so a name
/// outside it is refused here, listing every valid one.
pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(text: &str, origin: &Path) -> Result<T> {
    config_file::deserialize(text).map_err(|err| {
        let (path, line) = (origin.to_owned(), err.at.map_or(1, |at| line_of(text, at)));
        match err.field.as_str() {
            "" => Error::Syntax {
                path,
                line,
                message: err.message,
            },
            _ => Error::Invalid {
                path,
                line,
                field: err.field,
                message: err.message,
            },
        }
    })
}

/// The text a raw config came from, to turn spans into lines and relative paths into files.
pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub origin: &'a Path,
}

impl Source<'_> {
    /// A `Flag` error for `flag`.
    pub fn flag(&self, flag: &'static str, message: impl Into<String>) -> Error {
        Error::Flag {
            path: self.origin.to_owned(),
            flag,
            message: message.into(),
        }
    }

    /// An `Invalid` error for `field` at byte offset `at`.
    pub fn invalid(
        &self,
        at: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Error {
        Error::Invalid {
            path: self.origin.to_owned(),
            line: line_of(self.text, at),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Resolves `path` against the config file's directory and reads it.
    pub fn read_file(&self, path: &str) -> std::io::Result<(PathBuf, Vec<u8>)> {
        let resolved = self.resolve(path);
        std::fs::read(&resolved).map(|bytes| (resolved, bytes))
    }

    /// Resolves `path` against the config file's directory.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let dir = self.origin.parent().unwrap_or(Path::new("."));
        dir.join(path)
    }
}

#[cfg(test)]
pub(crate) mod tests;
