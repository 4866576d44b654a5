//! The kinds the fake serves and their names on the wire.

/// The kinds the fake serves: apps/v1 workloads, batch/v1 CronJobs and core/v1 Nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `apps/v1` Deployment (`deployments`).
    Deployment,
    /// `apps/v1` StatefulSet (`statefulsets`).
    StatefulSet,
    /// `batch/v1` CronJob (`cronjobs`), namespaced.
    CronJob,
    /// `v1` Node (`nodes`), cluster-scoped: stored with an empty namespace.
    Node,
}

impl Kind {
    /// The plural resource name used in URL paths.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::StatefulSet => "statefulsets",
            Kind::CronJob => "cronjobs",
            Kind::Node => "nodes",
        }
    }

    /// The `kind` field of objects of this kind.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::CronJob => "CronJob",
            Kind::Node => "Node",
        }
    }

    /// The API group, empty for the core group.
    pub fn group(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::StatefulSet => "apps",
            Kind::CronJob => "batch",
            Kind::Node => "",
        }
    }

    /// The `apiVersion` field of objects of this kind.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::StatefulSet => "apps/v1",
            Kind::CronJob => "batch/v1",
            Kind::Node => "v1",
        }
    }

    /// False for cluster-scoped kinds (Nodes).
    pub fn namespaced(self) -> bool {
        self != Kind::Node
    }

    /// `deployments.apps`, `nodes`: the resource as API server messages name it.
    pub(crate) fn qualified(self) -> String {
        match self.group() {
            "" => self.resource().to_owned(),
            group => format!("{}.{group}", self.resource()),
        }
    }

    /// The kind served under a plural resource name, if any.
    pub fn from_resource(resource: &str) -> Option<Kind> {
        match resource {
            "deployments" => Some(Kind::Deployment),
            "statefulsets" => Some(Kind::StatefulSet),
            "cronjobs" => Some(Kind::CronJob),
            "nodes" => Some(Kind::Node),
            _ => None,
        }
    }
}
