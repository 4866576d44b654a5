//! How a kube client reaches the fake: a kubeconfig file, a `kube::Config`, a ready `Client`.

use std::path::{Path, PathBuf};

use super::FakeApiServer;

impl FakeApiServer {
    /// Writes `dir/kubeconfig` with context `fake` (namespace `default`) pointing at
    /// [`url`](Self::url), and returns its path.
    ///
    /// # Panics
    /// If the file cannot be written.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    \
             user: fake\n    namespace: default\ncurrent-context: fake\n",
            url = self.url()
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// A kube `Config` for [`url`](Self::url) (`kube::Config::new`), to adjust before building
    /// a client (impersonation, `default_retry`, timeouts).
    ///
    /// # Panics
    /// Never in practice: the URL is always valid.
    pub fn config(&self) -> kube::Config {
        kube::Config::new(self.url().parse().expect("the fake's URL is a valid URI"))
    }

    /// A kube client for this server, from [`config`](Self::config) unchanged.
    ///
    /// # Panics
    /// If kube cannot build a client (no TLS is involved, so this does not happen).
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("kube client for the fake API server")
    }
}
