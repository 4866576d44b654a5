//! The kinds the fake serves and their names on the wire.

/// The kinds the fake serves: apps/v1 workloads, batch/v1 CronJobs, core/v1 Nodes and
/// autoscaling/v2 HorizontalPodAutoscalers.
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
    /// `autoscaling/v2` HorizontalPodAutoscaler (`horizontalpodautoscalers`), namespaced.
    HorizontalPodAutoscaler,
}

impl Kind {
    /// The plural resource name used in URL paths.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::StatefulSet => "statefulsets",
            Kind::CronJob => "cronjobs",
            Kind::Node => "nodes",
            Kind::HorizontalPodAutoscaler => "horizontalpodautoscalers",
        }
    }

    /// The `kind` field of objects of this kind.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::CronJob => "CronJob",
            Kind::Node => "Node",
            Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
        }
    }

    /// The API group, empty for the core group.
    pub fn group(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::StatefulSet => "apps",
            Kind::CronJob => "batch",
            Kind::Node => "",
            Kind::HorizontalPodAutoscaler => "autoscaling",
        }
    }

    /// The `apiVersion` field of objects of this kind.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::StatefulSet => "apps/v1",
            Kind::CronJob => "batch/v1",
            Kind::Node => "v1",
            Kind::HorizontalPodAutoscaler => "autoscaling/v2",
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
            "horizontalpodautoscalers" => Some(Kind::HorizontalPodAutoscaler),
            _ => None,
        }
    }
}
