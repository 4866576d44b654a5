//! The Kubernetes permissions a gateway needs for its catalog, and nothing more.
//!
//! Every API call the backends make is listed here next to the target kind that makes it, so
//! the deploy manifests can be checked against the code (`tests/tests/manifests.rs`) and an
//! admin can print the exact Role for their own catalog (`kubeknobs-gateway rbac`).

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{Catalog, TargetKind};

/// One RBAC rule: verbs on a resource (or subresource, `deployments/scale`) of an API group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    /// API group (`apps`), empty for the core group.
    pub api_group: &'static str,
    /// Resource, with `/subresource` when it is one.
    pub resource: &'static str,
    /// Verbs, sorted.
    pub verbs: BTreeSet<&'static str>,
}

/// The calls a target kind makes: (API group, resource, verbs).
fn calls(kind: TargetKind) -> &'static [(&'static str, &'static str, &'static [&'static str])] {
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
    }
}

/// The rules each namespace needs for `catalog`, merged per resource, by namespace.
pub fn required_rules(catalog: &Catalog) -> BTreeMap<String, Vec<Rule>> {
    let mut by_namespace: BTreeMap<
        String,
        BTreeMap<(&'static str, &'static str), BTreeSet<&'static str>>,
    > = BTreeMap::new();
    for target in catalog.iter() {
        let rules = by_namespace.entry(target.namespace.clone()).or_default();
        for (group, resource, verbs) in calls(target.kind) {
            rules
                .entry((group, resource))
                .or_default()
                .extend(verbs.iter().copied());
        }
    }
    by_namespace
        .into_iter()
        .map(|(ns, rules)| {
            let rules = rules
                .into_iter()
                .map(|((api_group, resource), verbs)| Rule {
                    api_group,
                    resource,
                    verbs,
                })
                .collect();
            (ns, rules)
        })
        .collect()
}

/// A Role and RoleBinding per namespace, as YAML, granting `service_account` (in
/// `sa_namespace`) exactly what `catalog` needs.
pub fn manifests(catalog: &Catalog, service_account: &str, sa_namespace: &str) -> String {
    let mut out = String::new();
    for (namespace, rules) in required_rules(catalog) {
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: kubeknobs-gateway\n  namespace: {namespace}\nrules:\n"
        ));
        for rule in rules {
            let verbs: Vec<_> = rule.verbs.iter().map(|v| format!("\"{v}\"")).collect();
            out.push_str(&format!(
                "  - apiGroups: [\"{}\"]\n    resources: [\"{}\"]\n    verbs: [{}]\n",
                rule.api_group,
                rule.resource,
                verbs.join(", ")
            ));
        }
        out.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: kubeknobs-gateway\n  namespace: {namespace}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: kubeknobs-gateway\nsubjects:\n  - kind: ServiceAccount\n    name: {service_account}\n    namespace: {sa_namespace}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TargetSpec;

    fn spec(name: &str, kind: TargetKind, namespace: &str) -> TargetSpec {
        TargetSpec {
            name: name.into(),
            kind,
            namespace: namespace.into(),
            object: name.into(),
            min: 0,
            max: 3,
            max_writes_per_second: 1.0,
            sandbox_initial: 0,
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
    fn manifests_bind_the_service_account_in_each_namespace() {
        let mut catalog = Catalog::default();
        catalog.insert(spec("web", TargetKind::DeploymentReplicas, "shop"));
        let yaml = manifests(&catalog, "kubeknobs-gateway", "kubeknobs");
        assert!(
            yaml.contains("kind: Role\nmetadata:\n  name: kubeknobs-gateway\n  namespace: shop")
        );
        assert!(yaml.contains("resources: [\"deployments/scale\"]\n    verbs: [\"patch\"]"));
        assert!(yaml.contains("name: kubeknobs-gateway\n    namespace: kubeknobs"));
    }
}
