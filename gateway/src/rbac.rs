//! The Kubernetes permissions a gateway needs for its config, and nothing more.
//!
//! Every API call the backends make is listed here next to the target kind that makes it, so
//! the deploy manifests can be checked against the code (`tests/tests/manifests.rs`) and an
//! admin can print the exact RBAC for their own config (`kubeknobs-gateway rbac`).
//!
//! Every rule names its objects (`resourceNames`) wherever Kubernetes allows it:
//! - the catalogued Deployments, StatefulSets, CronJobs, Nodes and HPAs, for every verb, `list` and
//!   `watch` included: the API server applies `resourceNames` to those only when the request
//!   selects `metadata.name=NAME` with a field selector, which every watch of the gateway does;
//! - the leader-election Lease for `get`/`update` (its `create` cannot be named: the API server
//!   authorizes a create before the object, and so its name, exists);
//! - `impersonate` on exactly the users, groups and ServiceAccounts the config can produce
//!   ([`crate::config::Impersonation`]; never `system:masters`);
//! - `create` on `tokenreviews` cannot be named (a TokenReview has no name);
//! - `list`/`watch` on `horizontalpodautoscalers` cannot be named: which HPA scales a replica
//!   target is not known in advance, so it is granted namespace-wide, read-only, and only in
//!   namespaces with replica targets (HPA-bound targets get their HPA by name as usual).
//!
//! The rules that cannot be named carry a comment in the output saying why. RBAC objects are
//! named after the gateway's ServiceAccount ([`object_name`]), so two gateways' never collide.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{Catalog, TargetKind};
use crate::config::Config;

/// One RBAC rule: verbs on a resource (or subresource, `deployments/scale`) of an API group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    /// API group (`apps`), empty for the core group.
    pub api_group: &'static str,
    /// Resource, with `/subresource` when it is one.
    pub resource: &'static str,
    /// Verbs, sorted.
    pub verbs: BTreeSet<&'static str>,
    /// The objects the rule is limited to (`resourceNames`); empty only where Kubernetes cannot
    /// limit the verbs by name, which `note` then says.
    pub resource_names: BTreeSet<String>,
    /// Why the rule is as it is, written as a comment above it.
    pub note: Option<&'static str>,
}

/// Why `rbac` cannot print manifests.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ServiceAccount or its namespace is not a valid Kubernetes name.
    #[error(
        "{what} {value:?} is not a Kubernetes name (lower-case letters, digits, '-' and '.', at most 253)"
    )]
    Name {
        /// `--service-account` or `--namespace`.
        what: &'static str,
        /// The value given.
        value: String,
    },
}

/// Why a rule that reads by `list`/`watch` can still name its objects.
const LIST_BY_NAME: &str = "list and watch are limited to resourceNames because every watch selects its object with fieldSelector=metadata.name=NAME";
/// Why the Lease's create rule names nothing.
const CREATE_LEASE: &str = "create cannot be limited by name (the API server authorizes it before the object exists); the Lease itself is limited below";
/// Why the HPA watch of a namespace with replica targets names nothing.
const WATCH_HPAS: &str = "list and watch on horizontalpodautoscalers cannot be limited by name: which HPA scales a replica target is not known in advance (any HPA, KEDA's included, may name it in scaleTargetRef), so the gateway watches every HPA of a namespace that has replica targets, and only there; it reads them, never writes them";
/// Why the TokenReview rule names nothing.
const CREATE_REVIEW: &str = "create on tokenreviews cannot be limited by name (a TokenReview has no name); it only asks who a token belongs to";

/// The calls a target kind makes on its object: (API group, resource, verbs).
fn calls(kind: TargetKind) -> &'static [Call] {
    match kind {
        // The watcher lists and watches the object; writes go through the scale subresource.
        TargetKind::DeploymentReplicas => &[
            ("apps", "deployments", &["list", "watch"]),
            ("apps", "deployments/scale", &["patch"]),
        ],
        TargetKind::StatefulSetReplicas => &[
            ("apps", "statefulsets", &["list", "watch"]),
            ("apps", "statefulsets/scale", &["patch"]),
        ],
        // Pause and rollout restart are merge patches of the Deployment itself.
        TargetKind::DeploymentPaused | TargetKind::DeploymentRestart => {
            &[("apps", "deployments", &["list", "watch", "patch"])]
        }
        // Suspend is a merge patch of the CronJob.
        TargetKind::CronJobSuspended => &[("batch", "cronjobs", &["list", "watch", "patch"])],
        // Cordon is a merge patch of the Node; Nodes are cluster-scoped, so this rule goes in
        // the ClusterRole (see `cluster_rules`), never in a namespace's Role.
        TargetKind::NodeCordoned => &[("", "nodes", &["list", "watch", "patch"])],
        // An HPA's bounds are merge patches of the HPA itself, watched by name like the others.
        TargetKind::HpaMinReplicas | TargetKind::HpaMaxReplicas => &[(
            "autoscaling",
            "horizontalpodautoscalers",
            &["list", "watch", "patch"],
        )],
    }
}

/// One call as `calls` lists it: (API group, resource, verbs).
type Call = (&'static str, &'static str, &'static [&'static str]);

/// `calls`, each on the named object, as rules limited by name: one per resource and set of
/// names, so no object gets a verb that only another object needs.
fn named<'a>(calls: impl Iterator<Item = (&'a Call, &'a str)>) -> Vec<Rule> {
    type Verbs = BTreeMap<&'static str, BTreeSet<String>>;
    let mut by_resource: BTreeMap<(&'static str, &'static str), Verbs> = BTreeMap::new();
    for ((group, resource, verbs), object) in calls {
        let names = by_resource.entry((group, resource)).or_default();
        for verb in verbs.iter() {
            names.entry(verb).or_default().insert(object.to_owned());
        }
    }
    let mut rules = Vec::new();
    for ((api_group, resource), verbs) in by_resource {
        let mut by_names: BTreeMap<BTreeSet<String>, BTreeSet<&'static str>> = BTreeMap::new();
        for (verb, names) in verbs {
            by_names.entry(names).or_default().insert(verb);
        }
        for (resource_names, verbs) in by_names {
            let reads = verbs.contains("list") || verbs.contains("watch");
            rules.push(Rule {
                api_group,
                resource,
                verbs,
                resource_names,
                note: reads.then_some(LIST_BY_NAME),
            });
        }
    }
    rules
}

/// A rule granting `verb` on `resource` of the core group, for `names` only.
fn impersonate(resource: &'static str, names: &BTreeSet<String>) -> Rule {
    Rule {
        api_group: "",
        resource,
        verbs: ["impersonate"].into(),
        resource_names: names.clone(),
        note: None,
    }
}

/// The cluster-wide rules the gateway needs: those of cluster-scoped targets (Nodes), TokenReview
/// for Kubernetes identities, impersonation of the users and groups the config names.
pub fn cluster_rules(config: &Config) -> Vec<Rule> {
    let mut rules = named(
        config
            .catalog
            .iter()
            .filter(|t| t.kind.is_cluster_scoped())
            .flat_map(|t| calls(t.kind).iter().map(|c| (c, t.object.as_str()))),
    );
    if config.token_review {
        rules.push(Rule {
            api_group: "authentication.k8s.io",
            resource: "tokenreviews",
            verbs: ["create"].into(),
            resource_names: BTreeSet::new(),
            note: Some(CREATE_REVIEW),
        });
    }
    if config.impersonate {
        let bound = &config.impersonation;
        if !bound.groups.is_empty() {
            rules.push(impersonate("groups", &bound.groups));
        }
        if !bound.users.is_empty() {
            rules.push(impersonate("users", &bound.users));
        }
    }
    rules
}

/// The rules each namespace needs for `config`, by namespace: the catalog's
/// ([`required_rules`]), with leader election its Lease's, and with impersonation the
/// ServiceAccounts of that namespace the config names.
pub fn namespace_rules(config: &Config) -> BTreeMap<String, Vec<Rule>> {
    let mut rules = required_rules(&config.catalog);
    if let Some(lease) = &config.leader_election {
        let group = "coordination.k8s.io";
        rules.entry(lease.namespace.clone()).or_default().extend([
            Rule {
                api_group: group,
                resource: "leases",
                verbs: ["create"].into(),
                resource_names: BTreeSet::new(),
                note: Some(CREATE_LEASE),
            },
            Rule {
                api_group: group,
                resource: "leases",
                verbs: ["get", "update"].into(),
                resource_names: [lease.name.clone()].into(),
                note: None,
            },
        ]);
    }
    if config.impersonate {
        for (namespace, accounts) in &config.impersonation.service_accounts {
            let rule = impersonate("serviceaccounts", accounts);
            rules.entry(namespace.clone()).or_default().push(rule);
        }
    }
    rules
}

/// The rules each namespace needs for `catalog`, limited to the catalogued objects by name, by
/// namespace. Targets of cluster-scoped kinds (Nodes) need no namespace; their rules are in
/// [`cluster_rules`].
pub fn required_rules(catalog: &Catalog) -> BTreeMap<String, Vec<Rule>> {
    let mut by_namespace: BTreeMap<String, Vec<(&Call, &str)>> = BTreeMap::new();
    for target in catalog.iter().filter(|t| !t.kind.is_cluster_scoped()) {
        by_namespace
            .entry(target.namespace.clone())
            .or_default()
            .extend(
                calls(target.kind)
                    .iter()
                    .map(|c| (c, target.object.as_str())),
            );
    }
    let mut rules: BTreeMap<String, Vec<Rule>> = by_namespace
        .into_iter()
        .map(|(ns, calls)| (ns, named(calls.into_iter())))
        .collect();
    for target in catalog.iter().filter(|t| t.kind.is_autoscalable()) {
        let namespace = rules.entry(target.namespace.clone()).or_default();
        let watch = Rule {
            api_group: "autoscaling",
            resource: "horizontalpodautoscalers",
            verbs: ["list", "watch"].into(),
            resource_names: BTreeSet::new(),
            note: Some(WATCH_HPAS),
        };
        if !namespace.contains(&watch) {
            namespace.push(watch);
        }
    }
    rules
}

/// The name of every RBAC object made for `service_account` in `sa_namespace`:
/// `kubeknobs:NAMESPACE:SERVICE_ACCOUNT`, unique per account, so a second gateway's `rbac`
/// output never replaces the first one's bindings.
pub fn object_name(service_account: &str, sa_namespace: &str) -> String {
    format!("kubeknobs:{sa_namespace}:{service_account}")
}

/// True for a DNS-1123 subdomain, what ServiceAccount and namespace names are.
fn is_kubernetes_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A Role and RoleBinding per namespace (and a ClusterRole and binding when Node targets or the
/// auth modes need one), as YAML, granting `service_account` (in `sa_namespace`) exactly what
/// `config` needs, all named [`object_name`].
pub fn manifests(
    config: &Config,
    service_account: &str,
    sa_namespace: &str,
) -> Result<String, Error> {
    for (what, value) in [
        ("--service-account", service_account),
        ("--namespace", sa_namespace),
    ] {
        if !is_kubernetes_name(value) {
            let value = value.to_owned();
            return Err(Error::Name { what, value });
        }
    }
    let name = object_name(service_account, sa_namespace);
    let subject = format!(
        "subjects:\n  - kind: ServiceAccount\n    name: {service_account}\n    namespace: {sa_namespace}\n"
    );
    let mut out = String::new();
    let cluster = cluster_rules(config);
    if !cluster.is_empty() {
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: \"{name}\"\nrules:\n"
        ));
        push_rules(&mut out, cluster);
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: \"{name}\"\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: \"{name}\"\n{subject}"
        ));
    }
    for (namespace, rules) in namespace_rules(config) {
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: \"{name}\"\n  namespace: {namespace}\nrules:\n"
        ));
        push_rules(&mut out, rules);
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: \"{name}\"\n  namespace: {namespace}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: \"{name}\"\n{subject}"
        ));
    }
    Ok(out)
}

fn push_rules(out: &mut String, rules: Vec<Rule>) {
    let quoted = |items: Vec<&str>| {
        let items: Vec<_> = items.iter().map(|v| format!("{v:?}")).collect();
        items.join(", ")
    };
    for rule in rules {
        if let Some(note) = rule.note {
            out.push_str(&format!("  # {note}\n"));
        }
        out.push_str(&format!(
            "  - apiGroups: [\"{}\"]\n    resources: [\"{}\"]\n",
            rule.api_group, rule.resource
        ));
        if !rule.resource_names.is_empty() {
            let names = rule.resource_names.iter().map(String::as_str).collect();
            out.push_str(&format!("    resourceNames: [{}]\n", quoted(names)));
        }
        out.push_str(&format!(
            "    verbs: [{}]\n",
            quoted(rule.verbs.iter().copied().collect())
        ));
    }
}

#[cfg(test)]
mod tests;
