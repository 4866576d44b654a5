//! The workload kinds the fake serves and their names on the wire.

/// The workload kinds the fake serves (group `apps`, version `v1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `apps/v1` Deployment (`deployments`).
    Deployment,
    /// `apps/v1` StatefulSet (`statefulsets`).
    StatefulSet,
}

impl Kind {
    /// The plural resource name used in URL paths.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::StatefulSet => "statefulsets",
        }
    }

    /// The `kind` field of objects of this kind.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
        }
    }

    /// The kind served under a plural resource name, if any.
    pub fn from_resource(resource: &str) -> Option<Kind> {
        match resource {
            "deployments" => Some(Kind::Deployment),
            "statefulsets" => Some(Kind::StatefulSet),
            _ => None,
        }
    }
}
