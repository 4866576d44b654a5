//! The Kubernetes permissions a gateway needs for its catalog, and nothing more.
//!
//! Every API call the backends make is listed here next to the target kind that makes it, so
//! the deploy manifests can be checked against the code (`tests/tests/manifests.rs`) and an
//! admin can print the exact Role for their own catalog (`kubeknobs-gateway rbac`).

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
    /// The objects the rule is limited to (`resourceNames`); empty: all of them.
    pub resource_names: BTreeSet<String>,
}

/// The calls a target kind makes: (API group, resource, verbs).
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
    }
}

/// The cluster-wide rules the gateway needs: those of cluster-scoped targets (Nodes), TokenReview
/// for Kubernetes identities, impersonation when writes are made as the operator.
pub fn cluster_rules(config: &Config) -> Vec<Rule> {
    let mut rules = merged(
        config
            .catalog
            .iter()
            .filter(|t| t.kind.is_cluster_scoped())
            .flat_map(|t| calls(t.kind)),
    );
    if config.token_review {
        rules.push(Rule {
            api_group: "authentication.k8s.io",
            resource: "tokenreviews",
            verbs: ["create"].into(),
            resource_names: BTreeSet::new(),
        });
    }
    if config.impersonate {
        for resource in ["groups", "users"] {
            rules.push(Rule {
                api_group: "",
                resource,
                verbs: ["impersonate"].into(),
                resource_names: BTreeSet::new(),
            });
        }
    }
    rules
}

/// One call as `calls` lists it: (API group, resource, verbs).
type Call = (&'static str, &'static str, &'static [&'static str]);

/// `calls` merged into one rule per resource, sorted by group and resource.
fn merged<'a>(calls: impl Iterator<Item = &'a Call>) -> Vec<Rule> {
    let mut rules: BTreeMap<(&'static str, &'static str), BTreeSet<&'static str>> = BTreeMap::new();
    for (group, resource, verbs) in calls {
        rules
            .entry((group, resource))
            .or_default()
            .extend(verbs.iter().copied());
    }
    rules
        .into_iter()
        .map(|((api_group, resource), verbs)| Rule {
            api_group,
            resource,
            verbs,
            resource_names: BTreeSet::new(),
        })
        .collect()
}

/// The rules each namespace needs for `config`, by namespace: the catalog's
/// ([`required_rules`]) and, with leader election, its Lease's. Creating an object cannot be
/// limited by name; reading and renewing the Lease is.
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
            },
            Rule {
                api_group: group,
                resource: "leases",
                verbs: ["get", "update"].into(),
                resource_names: [lease.name.clone()].into(),
            },
        ]);
    }
    rules
}

/// The rules each namespace needs for `catalog`, merged per resource, by namespace. Targets of
/// cluster-scoped kinds (Nodes) need no namespace; their rules are in [`cluster_rules`].
pub fn required_rules(catalog: &Catalog) -> BTreeMap<String, Vec<Rule>> {
    let mut by_namespace: BTreeMap<String, Vec<&Call>> = BTreeMap::new();
    for target in catalog.iter().filter(|t| !t.kind.is_cluster_scoped()) {
        by_namespace
            .entry(target.namespace.clone())
            .or_default()
            .extend(calls(target.kind));
    }
    by_namespace
        .into_iter()
        .map(|(ns, calls)| (ns, merged(calls.into_iter())))
        .collect()
}

/// A Role and RoleBinding per namespace (and a ClusterRole and binding when Node targets or the
/// auth modes need one), as YAML, granting `service_account` (in `sa_namespace`) exactly what `config` needs.
pub fn manifests(config: &Config, service_account: &str, sa_namespace: &str) -> String {
    let mut out = String::new();
    let cluster = cluster_rules(config);
    if !cluster.is_empty() {
        out.push_str("---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: kubeknobs-gateway\nrules:\n");
        push_rules(&mut out, cluster);
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: kubeknobs-gateway\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: kubeknobs-gateway\nsubjects:\n  - kind: ServiceAccount\n    name: {service_account}\n    namespace: {sa_namespace}\n"
        ));
    }
    for (namespace, rules) in namespace_rules(config) {
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: kubeknobs-gateway\n  namespace: {namespace}\nrules:\n"
        ));
        push_rules(&mut out, rules);
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: kubeknobs-gateway\n  namespace: {namespace}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: kubeknobs-gateway\nsubjects:\n  - kind: ServiceAccount\n    name: {service_account}\n    namespace: {sa_namespace}\n"
        ));
    }
    out
}

fn push_rules(out: &mut String, rules: Vec<Rule>) {
    for rule in rules {
        let quoted = |items: Vec<&str>| {
            let items: Vec<_> = items.iter().map(|v| format!("\"{v}\"")).collect();
            items.join(", ")
        };
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
mod tests {
    use super::*;
    use crate::catalog::TargetSpec;

    fn spec(name: &str, kind: TargetKind, namespace: &str) -> TargetSpec {
        TargetSpec {
            max_writes_per_second: 1.0,
            ..TargetSpec::for_test(name, kind, namespace, 3)
        }
    }

    #[test]
    fn rules_are_merged_per_namespace_and_resource() {
        let mut catalog = Catalog::default();
        catalog.insert(spec("web", TargetKind::DeploymentReplicas, "shop"));
        catalog.insert(spec("api", TargetKind::DeploymentReplicas, "shop"));
        catalog.insert(spec("db", TargetKind::StatefulSetReplicas, "data"));
        let rules = required_rules(&catalog);
        assert_eq!(rules.keys().collect::<Vec<_>>(), ["data", "shop"]);
        let shop = &rules["shop"];
        assert_eq!(shop.len(), 2, "two deployments share one rule per resource");
        assert_eq!(shop[0].resource, "deployments");
        assert_eq!(
            shop[0].verbs.iter().copied().collect::<Vec<_>>(),
            ["list", "watch"]
        );
        assert_eq!(shop[1].resource, "deployments/scale");
        assert_eq!(shop[1].verbs.iter().copied().collect::<Vec<_>>(), ["patch"]);
        assert_eq!(rules["data"][0].resource, "statefulsets");
    }

    #[test]
    fn toggles_and_buttons_patch_the_deployment() {
        let mut catalog = Catalog::default();
        catalog.insert(spec("pause", TargetKind::DeploymentPaused, "shop"));
        catalog.insert(spec("restart", TargetKind::DeploymentRestart, "shop"));
        let shop = &required_rules(&catalog)["shop"];
        assert_eq!(shop.len(), 1);
        assert_eq!(
            shop[0].verbs.iter().copied().collect::<Vec<_>>(),
            ["list", "patch", "watch"]
        );
    }

    #[test]
    fn a_cronjob_toggle_gets_a_role_in_its_namespace() {
        let mut catalog = Catalog::default();
        catalog.insert(spec("nightly", TargetKind::CronJobSuspended, "batch-jobs"));
        let rules = required_rules(&catalog);
        assert_eq!(rules.keys().collect::<Vec<_>>(), ["batch-jobs"]);
        let rule = &rules["batch-jobs"][0];
        assert_eq!((rule.api_group, rule.resource), ("batch", "cronjobs"));
        assert_eq!(
            rule.verbs.iter().copied().collect::<Vec<_>>(),
            ["list", "patch", "watch"]
        );
    }

    #[test]
    fn a_node_toggle_gets_a_cluster_wide_rule_and_no_role() {
        let text = format!(
            "[[operators]]\nname = \"a\"\ntoken_sha256 = \"{}\"\n[targets.worker]\nkind = \"node-cordoned\"\nname = \"worker-1\"\n",
            crate::auth::hash_token("t")
        );
        let config = Config::parse(&text, std::path::Path::new("rbac-test.toml")).expect("valid");
        assert!(
            required_rules(&config.catalog).is_empty(),
            "no namespace for a node"
        );
        let cluster = cluster_rules(&config);
        assert_eq!(cluster.len(), 1);
        assert_eq!((cluster[0].api_group, cluster[0].resource), ("", "nodes"));
        assert_eq!(
            cluster[0].verbs.iter().copied().collect::<Vec<_>>(),
            ["list", "patch", "watch"]
        );
        let yaml = manifests(&config, "gw", "kk");
        assert!(yaml.contains("kind: ClusterRole\n"), "{yaml}");
        assert!(
            yaml.contains("apiGroups: [\"\"]\n    resources: [\"nodes\"]\n    verbs: [\"list\", \"patch\", \"watch\"]"),
            "{yaml}"
        );
        assert!(yaml.contains("kind: ClusterRoleBinding"), "{yaml}");
        assert!(!yaml.contains("kind: Role\n"), "{yaml}");
    }

    fn config(extra: &str) -> Config {
        let text = format!(
            "{extra}\n[[operators]]\nname = \"a\"\ntoken_sha256 = \"{}\"\n[targets.web]\nkind = \"deployment-replicas\"\nnamespace = \"shop\"\nname = \"web\"\nmax = 3\n",
            crate::auth::hash_token("t")
        );
        Config::parse(&text, std::path::Path::new("rbac-test.toml")).expect("valid config")
    }

    #[test]
    fn manifests_bind_the_service_account_in_each_namespace() {
        let yaml = manifests(&config(""), "kubeknobs-gateway", "kubeknobs");
        assert!(
            yaml.contains("kind: Role\nmetadata:\n  name: kubeknobs-gateway\n  namespace: shop")
        );
        assert!(yaml.contains("resources: [\"deployments/scale\"]\n    verbs: [\"patch\"]"));
        assert!(yaml.contains("name: kubeknobs-gateway\n    namespace: kubeknobs"));
        assert!(
            !yaml.contains("ClusterRole"),
            "no cluster-wide rights without the auth modes"
        );
    }

    #[test]
    fn token_review_and_impersonation_get_a_cluster_role() {
        let yaml = manifests(
            &config("[auth]\ntoken_review = true\n[cluster]\nimpersonate = true"),
            "gw",
            "kk",
        );
        assert!(yaml.contains("kind: ClusterRole\n"));
        assert!(yaml.contains("apiGroups: [\"authentication.k8s.io\"]\n    resources: [\"tokenreviews\"]\n    verbs: [\"create\"]"));
        assert!(yaml.contains("resources: [\"users\"]\n    verbs: [\"impersonate\"]"));
        assert!(yaml.contains("kind: ClusterRoleBinding"));
    }

    #[test]
    fn leader_election_may_create_leases_and_renew_only_its_own() {
        let yaml = manifests(
            &config("[cluster.leader_election]\nnamespace = \"ops\"\nlease = \"kk\""),
            "gw",
            "kk",
        );
        let role = "kind: Role\nmetadata:\n  name: kubeknobs-gateway\n  namespace: ops\nrules:\n";
        assert!(yaml.contains(role), "{yaml}");
        assert!(yaml.contains(
            "  - apiGroups: [\"coordination.k8s.io\"]\n    resources: [\"leases\"]\n    verbs: [\"create\"]\n"
        ));
        assert!(yaml.contains(
            "    resources: [\"leases\"]\n    resourceNames: [\"kk\"]\n    verbs: [\"get\", \"update\"]\n"
        ));
        assert!(!manifests(&config(""), "gw", "kk").contains("leases"));
    }
}
