//! The cluster behind the gateway: a real one through kube-rs, or the in-memory sandbox.
//!
//! Both do the same two things: *write* a target's value (the [`Writer`] the coalescer drives)
//! and *watch* every target, reporting what they observe to the [`StateHub`]. Writes never
//! report state themselves: feedback comes from the watch, so changes made elsewhere show too.

mod kube;
mod sandbox;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, TargetSpec};
use crate::coalesce::{Actor, WriteError, Writer};
use crate::config::{BackendConfig, Impersonation};
use crate::state::StateHub;

pub use self::kube::{KubeBackend, USER_AGENT};
pub use self::sandbox::Sandbox;

/// Why the gateway could not reach its cluster at start-up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be read or used.
    #[error("cannot load kubeconfig: {0}")]
    Kubeconfig(String),
    /// The Kubernetes client could not be built.
    #[error("cannot create Kubernetes client: {0}")]
    Client(#[source] ::kube::Error),
}

/// The cluster a gateway drives.
#[derive(Clone)]
pub enum Backend {
    /// In-memory, for demos.
    Sandbox(Arc<Sandbox>),
    /// A real cluster.
    Kube(Arc<KubeBackend>),
}

impl Backend {
    /// Connects to the cluster `config` names; with `impersonate`, a real cluster's writes are
    /// made as the operator, with only the groups it names (see `KubeBackend::impersonating`).
    pub async fn connect(
        config: &BackendConfig,
        catalog: &Catalog,
        impersonate: Option<&Impersonation>,
    ) -> Result<Backend, Error> {
        match config {
            BackendConfig::Sandbox => Ok(Backend::Sandbox(Arc::new(Sandbox::new(catalog)))),
            BackendConfig::Kube {
                kubeconfig,
                context,
            } => {
                let backend =
                    KubeBackend::connect(kubeconfig.as_deref(), context.as_deref()).await?;
                let backend = match impersonate {
                    Some(bound) => backend
                        .impersonating()
                        .impersonating_only_groups(bound.groups.clone()),
                    None => backend,
                };
                Ok(Backend::Kube(Arc::new(backend)))
            }
        }
    }

    /// A name for the cluster: the kubeconfig context or server, or "sandbox".
    pub fn cluster_name(&self) -> String {
        match self {
            Backend::Sandbox(_) => "sandbox".to_owned(),
            Backend::Kube(kube) => kube.cluster_name().to_owned(),
        }
    }

    /// True for the in-memory sandbox.
    pub fn is_sandbox(&self) -> bool {
        matches!(self, Backend::Sandbox(_))
    }

    /// Starts watching every target in `catalog`, reporting to `hub` until `shutdown`.
    pub fn spawn_watchers(
        &self,
        catalog: &Catalog,
        hub: Arc<StateHub>,
        shutdown: CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        match self {
            Backend::Sandbox(sandbox) => vec![tokio::spawn(sandbox.clone().run(
                catalog.clone(),
                hub,
                shutdown,
            ))],
            Backend::Kube(kube) => {
                let mut tasks: Vec<JoinHandle<()>> = catalog
                    .iter()
                    .map(|target| {
                        tokio::spawn(kube.clone().watch(
                            target.clone(),
                            hub.clone(),
                            shutdown.clone(),
                        ))
                    })
                    .collect();
                // One watch of the HPAs per namespace with replica targets (who autoscales them).
                let mut scaled: BTreeMap<String, Vec<Arc<TargetSpec>>> = BTreeMap::new();
                for target in catalog.iter().filter(|t| t.kind.is_autoscalable()) {
                    let namespace = target.namespace.clone();
                    scaled.entry(namespace).or_default().push(target.clone());
                }
                for (namespace, targets) in scaled {
                    // Not ready until it knows who autoscales the targets (before any probe).
                    hub.waiting_for(
                        &autoscalers_of(&namespace),
                        Some("not listed yet".to_owned()),
                    );
                    tasks.push(tokio::spawn(kube.clone().watch_autoscalers(
                        namespace,
                        targets,
                        hub.clone(),
                        shutdown.clone(),
                    )));
                }
                tasks
            }
        }
    }
}

/// What the gateway waits for before it is ready, per namespace with replica targets.
pub(crate) fn autoscalers_of(namespace: &str) -> String {
    format!("HorizontalPodAutoscalers of {namespace}")
}

impl Writer for Backend {
    async fn write(
        &self,
        target: &TargetSpec,
        value: i32,
        actor: Actor<'_>,
    ) -> Result<(), WriteError> {
        match self {
            Backend::Sandbox(sandbox) => sandbox.write(target, value),
            Backend::Kube(kube) => kube.write(target, value, actor).await,
        }
    }
}
