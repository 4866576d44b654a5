//! The generated rules: limited by name wherever Kubernetes allows it, impersonation bounded to
//! what the config names, object names from the ServiceAccount.

use super::*;
use crate::catalog::TargetSpec;

fn spec(name: &str, kind: TargetKind, namespace: &str) -> TargetSpec {
    TargetSpec {
        max_writes_per_second: 1.0,
        ..TargetSpec::for_test(name, kind, namespace, 3)
    }
}

fn verbs(rule: &Rule) -> Vec<&str> {
    rule.verbs.iter().copied().collect()
}

fn names(rule: &Rule) -> Vec<&str> {
    rule.resource_names.iter().map(String::as_str).collect()
}

fn parse(text: &str) -> Config {
    let flags = crate::config::tests::PLAINTEXT;
    Config::parse(text, std::path::Path::new("rbac-test.toml"), &flags).expect("valid config")
}

fn plain_config(extra: &str) -> Config {
    parse(&format!(
        "{extra}\n[[operators]]\nname = \"a\"\ntoken_sha256 = \"{}\"\n[targets.web]\nkind = \"deployment-replicas\"\nnamespace = \"shop\"\nname = \"web\"\nmax = 3\n",
        crate::auth::hash_token("t")
    ))
}

/// A config that uses every kind, both auth modes, impersonation and leader election.
fn everything() -> Config {
    parse(&config_text())
}

fn config_text() -> String {
    let hash = crate::auth::hash_token;
    format!(
        r#"
[auth]
token_review = true
[cluster]
impersonate = true
[cluster.leader_election]
namespace = "ops"
lease = "kk"
[[operators]]
name = "alice"
token_sha256 = "{}"
groups = ["stage"]
[[operators]]
name = "system:serviceaccount:ops:bridge"
token_sha256 = "{}"
[targets.web]
kind = "deployment-replicas"
namespace = "shop"
name = "web"
max = 3
[targets.db]
kind = "statefulset-replicas"
namespace = "data"
name = "db"
max = 3
[targets.pause]
kind = "deployment-paused"
namespace = "shop"
name = "api"
[targets.restart]
kind = "deployment-restart"
namespace = "shop"
name = "api"
[targets.nightly]
kind = "cronjob-suspended"
namespace = "batch-jobs"
name = "nightly"
[targets.worker]
kind = "node-cordoned"
name = "worker-1"
[[policy]]
operators = ["alice", "system:serviceaccount:ops:bridge"]
targets = ["*"]
[[policy]]
operators = ["system:serviceaccount:team-a:frank", "jane@example.com"]
targets = ["web"]
actions = ["move"]
[[policy]]
operators = ["group:viewers"]
targets = ["*"]
actions = []
"#,
        hash("a"),
        hash("b"),
    )
}

/// Every rule `rbac` would print for `config`, with where it goes (`""`: the ClusterRole).
fn all_rules(config: &Config) -> Vec<(String, Rule)> {
    let cluster = cluster_rules(config)
        .into_iter()
        .map(|r| (String::new(), r));
    let namespaced = namespace_rules(config)
        .into_iter()
        .flat_map(|(ns, rules)| rules.into_iter().map(move |r| (ns.clone(), r)));
    cluster.chain(namespaced).collect()
}

#[test]
fn no_rule_without_resource_names_where_the_api_allows_them() {
    let rules = all_rules(&everything());
    assert!(rules.len() >= 10, "{rules:#?}");
    for (ns, rule) in &rules {
        let unnamable = (verbs(rule) == ["create"]
            && matches!(rule.resource, "leases" | "tokenreviews"))
            || (verbs(rule) == ["list", "watch"] && rule.resource == "horizontalpodautoscalers");
        if unnamable {
            assert!(rule.resource_names.is_empty(), "{ns}: {rule:?}");
            assert!(
                rule.note.is_some(),
                "{ns}: an unnamed rule says why: {rule:?}"
            );
        } else {
            assert!(
                !rule.resource_names.is_empty(),
                "{ns}: not limited by name: {rule:?}"
            );
        }
        assert!(
            !rule.verbs.contains("*") && rule.resource != "*",
            "{rule:?}"
        );
        assert!(
            rule.resource_names.iter().all(|n| !n.contains('*')),
            "{rule:?}"
        );
    }
}

#[test]
fn each_object_gets_only_the_verbs_its_own_targets_need() {
    let config = everything();
    let shop = &namespace_rules(&config)["shop"];
    let find = |resource: &str, verb: &str| -> Vec<&str> {
        shop.iter()
            .filter(|r| r.resource == resource && r.verbs.contains(verb))
            .flat_map(names)
            .collect()
    };
    assert_eq!(find("deployments", "watch"), ["api", "web"]);
    assert_eq!(
        find("deployments", "patch"),
        ["api"],
        "web is scaled, never patched"
    );
    assert_eq!(find("deployments/scale", "patch"), ["web"]);
    let cluster = cluster_rules(&config);
    let nodes = cluster
        .iter()
        .find(|r| r.resource == "nodes")
        .expect("nodes");
    assert_eq!(names(nodes), ["worker-1"], "only the catalogued node");
    assert_eq!(verbs(nodes), ["list", "patch", "watch"]);
    assert_eq!(nodes.note, Some(LIST_BY_NAME));
}

#[test]
fn impersonation_is_bounded_to_what_the_config_names() {
    let config = everything();
    let cluster = cluster_rules(&config);
    let rule = |resource: &str| {
        cluster
            .iter()
            .find(|r| r.resource == resource)
            .unwrap_or_else(|| panic!("no {resource} rule: {cluster:#?}"))
    };
    assert_eq!(verbs(rule("users")), ["impersonate"]);
    assert_eq!(names(rule("users")), ["alice", "jane@example.com"]);
    assert_eq!(
        names(rule("groups")),
        ["stage"],
        "operators' groups; not those of view-only rules"
    );
    // Without identities from outside the config, group rules may act and are impersonable.
    let grouped = config_text()
        .replace("token_review = true", "token_review = false")
        .replace(
            "operators = [\"alice\", ",
            "operators = [\"group:oncall\", \"alice\", ",
        );
    let groups = cluster_rules(&parse(&grouped))
        .into_iter()
        .find(|r| r.resource == "groups")
        .expect("groups");
    assert_eq!(names(&groups), ["oncall", "stage"]);
    let namespaced = namespace_rules(&config);
    let accounts = |ns: &str| -> Vec<&str> {
        namespaced[ns]
            .iter()
            .filter(|r| r.resource == "serviceaccounts")
            .inspect(|r| assert_eq!(verbs(r), ["impersonate"]))
            .flat_map(names)
            .collect()
    };
    assert_eq!(accounts("ops"), ["bridge"]);
    assert_eq!(accounts("team-a"), ["frank"], "in its own namespace only");
    for (_, rule) in all_rules(&config) {
        if rule.verbs.contains("impersonate") {
            assert!(!rule.resource_names.is_empty(), "no wildcard impersonation");
            assert!(!rule.resource_names.contains(crate::config::MASTERS));
        }
    }
    assert!(
        all_rules(&plain_config(""))
            .iter()
            .all(|(_, r)| !r.verbs.contains("impersonate")),
        "no impersonation without cluster.impersonate"
    );
}

#[test]
fn object_names_derive_from_the_service_account() {
    let config = everything();
    let first = manifests(&config, "gw", "team-a").expect("manifests");
    let second = manifests(&config, "gw", "team-b").expect("manifests");
    let names = |yaml: &str| -> BTreeSet<String> {
        yaml.lines()
            .filter_map(|l| l.strip_prefix("  name: "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        names(&first),
        ["\"kubeknobs:team-a:gw\"".to_owned()].into(),
        "every object and roleRef"
    );
    assert!(
        names(&first).is_disjoint(&names(&second)),
        "two gateways never collide"
    );
    assert!(first.contains("kind: ClusterRoleBinding\nmetadata:\n  name: \"kubeknobs:team-a:gw\""));
    assert!(
        first
            .contains("subjects:\n  - kind: ServiceAccount\n    name: gw\n    namespace: team-a\n")
    );
    for bad in ["", "Gw", "a:b", "a/b", "-gw"] {
        let err = manifests(&config, bad, "kk").unwrap_err();
        assert!(err.to_string().contains("--service-account"), "{err}");
        assert!(manifests(&config, "gw", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn unnamable_rules_say_why_in_the_output() {
    let yaml = manifests(&everything(), "gw", "kk").expect("manifests");
    assert!(
        yaml.contains(&format!(
            "  # {CREATE_REVIEW}\n  - apiGroups: [\"authentication.k8s.io\"]\n    resources: [\"tokenreviews\"]\n    verbs: [\"create\"]\n"
        )),
        "{yaml}"
    );
    assert!(
        yaml.contains(&format!(
            "  # {CREATE_LEASE}\n  - apiGroups: [\"coordination.k8s.io\"]\n    resources: [\"leases\"]\n    verbs: [\"create\"]\n"
        )),
        "{yaml}"
    );
    assert!(
        yaml.contains(
            "    resources: [\"leases\"]\n    resourceNames: [\"kk\"]\n    verbs: [\"get\", \"update\"]\n"
        ),
        "{yaml}"
    );
    assert!(
        yaml.contains(&format!(
            "  # {LIST_BY_NAME}\n  - apiGroups: [\"apps\"]\n    resources: [\"deployments\"]\n    resourceNames: [\"api\", \"web\"]\n    verbs: [\"list\", \"watch\"]\n"
        )),
        "{yaml}"
    );
    assert!(
        yaml.contains(
            "    resources: [\"users\"]\n    resourceNames: [\"alice\", \"jane@example.com\"]\n    verbs: [\"impersonate\"]\n"
        ),
        "{yaml}"
    );
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
    assert_eq!(
        shop.len(),
        3,
        "two deployments share one rule per resource, and one HPA watch"
    );
    assert_eq!(shop[0].resource, "deployments");
    assert_eq!(verbs(&shop[0]), ["list", "watch"]);
    assert_eq!(names(&shop[0]), ["api", "web"]);
    assert_eq!(shop[1].resource, "deployments/scale");
    assert_eq!(verbs(&shop[1]), ["patch"]);
    assert_eq!(shop[2].resource, "horizontalpodautoscalers");
    assert_eq!(rules["data"][0].resource, "statefulsets");
    assert_eq!(names(&rules["data"][0]), ["db"]);
}

#[test]
fn hpas_are_watched_namespace_wide_only_where_replica_targets_are_and_moved_by_name() {
    let mut catalog = Catalog::default();
    catalog.insert(spec("web", TargetKind::DeploymentReplicas, "shop"));
    catalog.insert(spec("floor", TargetKind::HpaMinReplicas, "edge"));
    catalog.insert(spec("ceiling", TargetKind::HpaMaxReplicas, "edge"));
    catalog.insert(spec("nightly", TargetKind::CronJobSuspended, "batch"));
    let rules = required_rules(&catalog);
    let hpa_rules = |ns: &str| -> Vec<Rule> {
        rules[ns]
            .iter()
            .filter(|r| r.resource == "horizontalpodautoscalers")
            .cloned()
            .collect()
    };
    let shop = hpa_rules("shop");
    assert_eq!(shop.len(), 1, "{shop:?}");
    assert_eq!(verbs(&shop[0]), ["list", "watch"]);
    assert!(shop[0].resource_names.is_empty());
    assert_eq!(shop[0].api_group, "autoscaling");
    assert_eq!(shop[0].note, Some(WATCH_HPAS));
    assert!(
        hpa_rules("batch").is_empty(),
        "no replica target, no HPA watch"
    );
    let edge = hpa_rules("edge");
    assert_eq!(edge.len(), 1, "{edge:?}");
    assert_eq!(verbs(&edge[0]), ["list", "patch", "watch"]);
    assert_eq!(names(&edge[0]), ["ceiling", "floor"], "the HPAs by name");
    let config = plain_config("");
    let yaml = manifests(&config, "gw", "kk").expect("manifests");
    assert!(
        yaml.contains(&format!(
            "  # {WATCH_HPAS}\n  - apiGroups: [\"autoscaling\"]\n    resources: [\"horizontalpodautoscalers\"]\n    verbs: [\"list\", \"watch\"]\n"
        )),
        "{yaml}"
    );
}

#[test]
fn a_node_toggle_gets_a_cluster_wide_rule_and_no_role() {
    let config = parse(&format!(
        "[[operators]]\nname = \"a\"\ntoken_sha256 = \"{}\"\n[targets.worker]\nkind = \"node-cordoned\"\nname = \"worker-1\"\n",
        crate::auth::hash_token("t")
    ));
    assert!(
        required_rules(&config.catalog).is_empty(),
        "no namespace for a node"
    );
    let cluster = cluster_rules(&config);
    assert_eq!(cluster.len(), 1);
    assert_eq!((cluster[0].api_group, cluster[0].resource), ("", "nodes"));
    let yaml = manifests(&config, "gw", "kk").expect("manifests");
    assert!(yaml.contains("kind: ClusterRole\n"), "{yaml}");
    assert!(
        yaml.contains("resources: [\"nodes\"]\n    resourceNames: [\"worker-1\"]\n    verbs: [\"list\", \"patch\", \"watch\"]"),
        "{yaml}"
    );
    assert!(yaml.contains("kind: ClusterRoleBinding"), "{yaml}");
    assert!(!yaml.contains("kind: Role\n"), "{yaml}");
}

#[test]
fn without_auth_modes_or_nodes_there_is_no_cluster_role() {
    let yaml = manifests(&plain_config(""), "kubeknobs-gateway", "kubeknobs").expect("manifests");
    assert!(yaml.contains(
        "kind: Role\nmetadata:\n  name: \"kubeknobs:kubeknobs:kubeknobs-gateway\"\n  namespace: shop"
    ));
    assert!(yaml.contains(
        "resources: [\"deployments/scale\"]\n    resourceNames: [\"web\"]\n    verbs: [\"patch\"]"
    ));
    assert!(
        !yaml.contains("ClusterRole"),
        "no cluster-wide rights: {yaml}"
    );
    assert!(!yaml.contains("leases"));
}
