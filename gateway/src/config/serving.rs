//! What a gateway needs before it can serve at all, judged together with the command line's
//! [`Flags`]: TLS, or `--insecure` on a loopback address with no TLS files (and then no client
//! certificates); someone who can connect; something to change; a real cluster when tokens are
//! to be reviewed. These rules span sections, so they run once the sections are validated; they
//! are config rules like any other, so `check`, `run` and reload all refuse the same files.

use std::net::SocketAddr;

use super::server::{RawAuth, RawServer};
use super::{BackendConfig, Flags, Result, Source};

/// What the rules look at, validated.
pub(super) struct Serving<'a> {
    /// `[server]` as written.
    pub server: &'a RawServer,
    /// `[auth]` as written.
    pub auth: &'a RawAuth,
    /// The command line.
    pub flags: &'a Flags,
    /// `server.listen`, validated.
    pub listen: SocketAddr,
    /// True when a server certificate was given or read.
    pub tls: bool,
    /// The cluster.
    pub backend: &'a BackendConfig,
    /// Operators of `[[operators]]` (not counting the tokens file).
    pub operators: usize,
    /// Catalogued targets.
    pub targets: usize,
}

impl Serving<'_> {
    /// Every rule, in the order an admin would fix them.
    pub(super) fn validate(&self, src: &Source<'_>) -> Result<()> {
        self.transport(src)?;
        self.someone_can_connect(src)?;
        if self.targets == 0 {
            let message = "the catalog has no targets: add at least one [targets.NAME] table";
            return Err(src.invalid(0, "targets", message));
        }
        if let Some(review) = self.auth.token_review.as_ref().filter(|r| *r.get_ref())
            && *self.backend == BackendConfig::Sandbox
        {
            let message = "needs a real cluster (cluster.backend = \"kube\")";
            return Err(src.invalid(review.span().start, "auth.token_review", message));
        }
        Ok(())
    }

    /// TLS unless `--insecure`, which needs a loopback address, no TLS files and no client CA.
    fn transport(&self, src: &Source<'_>) -> Result<()> {
        if !self.flags.insecure {
            if self.tls {
                return Ok(());
            }
            let message = "TLS is required: set server.tls_cert and server.tls_key, or pass --insecure on a loopback address";
            return Err(src.invalid(0, "server.tls_cert", message));
        }
        if let Some(cert) = &self.server.tls_cert {
            let message = "--insecure is refused while server.tls_cert and server.tls_key are set: remove them from the config to serve plaintext, or drop --insecure to serve TLS";
            return Err(src.invalid(cert.span().start, "server.tls_cert", message));
        }
        let refused = |addr: SocketAddr| {
            format!(
                "--insecure is refused on {addr}: plaintext gRPC is only allowed on a loopback address (127.0.0.1, ::1)"
            )
        };
        match self.flags.listen {
            Some(addr) if !addr.ip().is_loopback() => {
                return Err(src.flag("--listen", refused(addr)));
            }
            Some(_) => {}
            None if !self.listen.ip().is_loopback() => {
                let at = self.server.listen.span().start;
                return Err(src.invalid(at, "server.listen", refused(self.listen)));
            }
            None => {}
        }
        if let Some(ca) = &self.auth.client_ca {
            let message = "needs TLS: client certificates cannot be checked with --insecure";
            return Err(src.invalid(ca.span().start, "auth.client_ca", message));
        }
        Ok(())
    }

    /// Somebody can connect: an operator, the tokens file, or client certificates.
    fn someone_can_connect(&self, src: &Source<'_>) -> Result<()> {
        if self.operators > 0 || self.auth.tokens_file.is_some() || self.auth.client_ca.is_some() {
            return Ok(());
        }
        let message =
            "no operators are configured: add at least one [[operators]] entry or auth.tokens_file";
        Err(src.invalid(0, "operators", message))
    }
}
