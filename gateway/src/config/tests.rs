use super::*;

/// A valid config: sandbox, operator `alice`, target `web` (1..=20, 4 writes/s).
pub(crate) const GOOD: &str = r#"
[server]
listen = "127.0.0.1:50051"

[cluster]
backend = "sandbox"

[[operators]]
name = "alice"
token_sha256 = "9c220f200955d76c0a38d308225e0ef10c5f971acaf2f8d1d8f732affa5bd1dc"

[targets.web]
kind = "deployment-replicas"
namespace = "shop"
name = "web"
min = 1
max = 20
max_writes_per_second = 4
"#;

/// The operator of [`GOOD`], alone.
const ALICE: &str = "[[operators]]\nname = \"alice\"\ntoken_sha256 = \"9c220f200955d76c0a38d308225e0ef10c5f971acaf2f8d1d8f732affa5bd1dc\"\n";

/// `--insecure`: the configs here have no TLS files and listen on loopback.
pub(crate) const PLAINTEXT: Flags = Flags {
    listen: None,
    insecure: true,
};

fn parse(text: &str) -> Result<Config> {
    Config::parse(text, Path::new("/etc/kubeknobs/gateway.toml"), &PLAINTEXT)
}

fn error_of(text: &str) -> String {
    parse(text).expect_err("must be refused").to_string()
}

#[test]
fn a_good_config_is_validated_into_its_parts() {
    let config = parse(GOOD).expect("valid");
    assert_eq!(config.listen, "127.0.0.1:50051".parse().unwrap());
    assert_eq!(config.backend, BackendConfig::Sandbox);
    assert_eq!(config.operators.len(), 1);
    assert!(config.operators.authenticate("alice-token").is_some());
    let web = config.catalog.get("web").expect("web catalogued");
    assert_eq!(
        (
            web.namespace.as_str(),
            web.object.as_str(),
            web.min,
            web.max
        ),
        ("shop", "web", 1, 20)
    );
    assert_eq!(web.max_writes_per_second, 4.0);
    assert!(config.tls.is_none());
}

#[test]
fn defaults_fill_what_is_left_out() {
    let config = parse(&format!(
        "[targets.db]\nkind = \"statefulset-replicas\"\nname = \"db\"\nmax = 3\n{ALICE}"
    ))
    .expect("valid");
    let db = config.catalog.get("db").expect("db");
    assert_eq!(
        (db.namespace.as_str(), db.min, db.max_writes_per_second),
        ("default", 0, 2.0)
    );
    assert_eq!(config.listen.port(), 50051);
    assert_eq!(
        config.backend,
        BackendConfig::Kube {
            kubeconfig: None,
            context: None
        }
    );
}

#[test]
fn errors_name_the_file_line_and_field() {
    let bad = GOOD.replace("max = 20", "max = 0");
    let err = error_of(&bad);
    assert!(
        err.starts_with("/etc/kubeknobs/gateway.toml:17: targets.web.max:"),
        "{err}"
    );

    let err = error_of(&GOOD.replace("deployment-replicas", "daemonset-replicas"));
    assert!(
        err.contains(":13: targets.web.kind: unknown value `daemonset-replicas`, expected one of"),
        "{err}"
    );

    let err = error_of(&GOOD.replace("127.0.0.1:50051", "localhost"));
    assert!(err.contains(":3: server.listen:"), "{err}");

    let err = error_of(&GOOD.replace("max_writes_per_second = 4", "max_writes_per_second = 0"));
    assert!(
        err.contains(":18: targets.web.max_writes_per_second:"),
        "{err}"
    );

    let err = error_of(&GOOD.replace("9c220f20", "zz"));
    assert!(
        err.contains(":10: operators[0].token_sha256: not a hex SHA-256"),
        "{err}"
    );
}

#[test]
fn syntax_and_unknown_fields_are_located() {
    let err = error_of(&GOOD.replace("min = 1", "min = one"));
    assert!(err.starts_with("/etc/kubeknobs/gateway.toml:16:"), "{err}");
    let err = error_of(&GOOD.replace("min = 1", "minimum = 1"));
    assert!(err.contains(":16:") && err.contains("minimum"), "{err}");
}

#[test]
fn tls_files_are_read_relative_to_the_config_and_missing_ones_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = crate::tls::CertBundle::generate(&["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("server.pem"), &certs.cert_pem).unwrap();
    let text = GOOD.replace(
        "[cluster]",
        "tls_cert = \"server.pem\"\ntls_key = \"server.key\"\n\n[cluster]",
    );
    let origin = dir.path().join("gateway.toml");
    let err = Config::parse(&text, &origin, &Flags::default())
        .expect_err("key missing")
        .to_string();
    assert!(
        err.contains("server.tls_key: cannot read") && err.contains("server.key"),
        "{err}"
    );

    std::fs::write(dir.path().join("server.key"), &certs.key_pem).unwrap();
    let tls = Config::parse(&text, &origin, &Flags::default())
        .expect("valid")
        .tls
        .expect("tls set");
    assert_eq!(
        (tls.cert_pem.as_slice(), tls.key_pem.as_slice()),
        (certs.cert_pem.as_bytes(), certs.key_pem.as_bytes())
    );
}

#[test]
fn a_half_tls_config_or_duplicate_operator_is_refused() {
    let err = error_of(&GOOD.replace("[cluster]", "tls_cert = \"a.pem\"\n[cluster]"));
    assert!(err.contains("tls_key is missing"), "{err}");
    let twice = format!(
        "{GOOD}\n[[operators]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\n",
        crate::auth::hash_token("other")
    );
    assert!(error_of(&twice).contains("defined twice"));
}

#[test]
fn given_tls_material_replaces_the_files_without_reading_them() {
    let text = GOOD.replace(
        "[cluster]",
        "tls_cert = \"missing.pem\"\ntls_key = \"missing.key\"\n[cluster]",
    );
    let given = TlsIdentity {
        cert_pem: b"C".to_vec(),
        key_pem: b"K".to_vec(),
    };
    let config = Config::parse_with_tls(&text, Path::new("/nowhere/gateway.toml"), given)
        .expect("files not read");
    assert_eq!(config.tls.expect("tls").cert_pem, b"C");
    assert!(parse(&text).is_err(), "plain parse still reads them");
}

#[test]
fn policy_rules_are_validated_with_their_line() {
    let rule = "\n[[policy]]\nrule = \"r\"\noperators = [\"alice\"]\ntargets = [\"nope\"]\n";
    let err = error_of(&format!("{GOOD}{rule}"));
    assert!(
        err.contains(":23: policy[0].targets: no target named \"nope\""),
        "{err}"
    );
    let rule = "\n[[policy]]\noperators = [\"*\"]\ntargets = [\"web\"]\nactions = [\"fly\"]\n";
    let err = error_of(&format!("{GOOD}{rule}"));
    assert!(
        err.contains(
            ":23: policy[0].actions[0]: unknown value `fly`, expected one of `move`, `restart`, `toggle`"
        ),
        "{err}"
    );
    let rule =
        "\n[[policy]]\noperators = [\"group:ops\"]\ntargets = [\"w*\"]\nactions = [\"move\"]\n";
    let config = parse(&format!("{GOOD}{rule}")).expect("valid");
    let ops = crate::auth::Identity::new("x", vec!["ops".into()]);
    assert!(config.policy.can_see(&ops, "web"));
}

#[test]
fn a_pause_toggle_is_zero_to_one_and_replica_kinds_need_max() {
    let toggle = GOOD.replace("deployment-replicas", "deployment-paused");
    let web = parse(&toggle)
        .expect("valid")
        .catalog
        .get("web")
        .cloned()
        .expect("web");
    assert_eq!((web.min, web.max), (0, 1));
    assert_eq!(web.kind.action(), crate::policy::Action::Toggle);
    let err = error_of(&GOOD.replace("max = 20\n", ""));
    assert!(err.contains("targets.web.max: required"), "{err}");
}

#[test]
fn an_unknown_kind_lists_every_kind() {
    let err = error_of(&GOOD.replace("deployment-replicas", "job-replicas"));
    for kind in [
        "deployment-replicas",
        "statefulset-replicas",
        "deployment-paused",
        "deployment-restart",
        "cronjob-suspended",
        "node-cordoned",
        "hpa-min-replicas",
        "hpa-max-replicas",
    ] {
        assert!(err.contains(&format!("`{kind}`")), "{kind} missing: {err}");
        // Each one listed is one the config takes.
        let text = GOOD
            .replace("deployment-replicas", kind)
            .replace("min = 1\n", "");
        let text = match kind {
            "node-cordoned" => text.replace("namespace = \"shop\"\n", ""),
            _ => text,
        };
        parse(&text).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

#[test]
fn a_cronjob_toggle_is_namespaced_and_zero_to_one() {
    let cron = parse(&GOOD.replace("deployment-replicas", "cronjob-suspended")).expect("valid");
    let web = cron.catalog.get("web").expect("web");
    assert_eq!((web.min, web.max), (0, 1));
    assert_eq!(web.namespace, "shop");
    assert_eq!(web.describe(), "cronjob shop/web");
    assert_eq!(web.kind.action(), crate::policy::Action::Toggle);
}

#[test]
fn a_node_toggle_takes_no_namespace() {
    let node = GOOD.replace("deployment-replicas", "node-cordoned");
    let err = error_of(&node);
    assert!(
        err.starts_with("/etc/kubeknobs/gateway.toml:14: targets.web.namespace:"),
        "{err}"
    );
    assert!(
        err.contains("a node is cluster-scoped: remove the namespace (\"shop\")"),
        "{err}"
    );

    let config = parse(&node.replace("namespace = \"shop\"\n", "")).expect("valid");
    let web = config.catalog.get("web").expect("web");
    assert_eq!(web.namespace, "");
    assert_eq!((web.min, web.max), (0, 1));
    assert_eq!(web.describe(), "node web");
}

#[test]
fn an_empty_namespace_is_refused() {
    let err = error_of(&GOOD.replace("namespace = \"shop\"", "namespace = \"\""));
    assert!(
        err.contains(":14: targets.web.namespace: must not be empty"),
        "{err}"
    );
}

#[test]
fn a_value_of_the_wrong_type_names_its_field() {
    let err = error_of(&GOOD.replace("max = 20", "max = \"twenty\""));
    assert!(
        err.starts_with("/etc/kubeknobs/gateway.toml:17: targets.web.max: invalid type"),
        "{err}"
    );
}

#[test]
fn leader_election_has_defaults_and_needs_a_real_cluster() {
    let kube = GOOD.replace("backend = \"sandbox\"", "backend = \"kube\"");
    let config = parse(&format!("{kube}\n[cluster.leader_election]\n")).expect("valid");
    let lease = config.leader_election.expect("enabled");
    assert_eq!(
        (
            lease.namespace.as_str(),
            lease.name.as_str(),
            lease.duration.as_secs()
        ),
        ("kubeknobs", "kubeknobs-gateway", 15)
    );
    assert!(parse(&kube).expect("valid").leader_election.is_none());
    let err = error_of(&format!("{GOOD}\n[cluster.leader_election]\n"));
    assert!(
        err.contains(": cluster.leader_election: needs a real cluster"),
        "{err}"
    );
    let err = error_of(&format!(
        "{kube}\n[cluster.leader_election]\nlease = \"Bad_Name\"\n"
    ));
    assert!(
        err.contains(": cluster.leader_election.lease: must be a lowercase DNS name"),
        "{err}"
    );
    let err = error_of(&format!(
        "{kube}\n[cluster.leader_election]\nduration_secs = 0\n"
    ));
    assert!(
        err.contains(": cluster.leader_election.duration_secs: must be 1..300"),
        "{err}"
    );
}

#[test]
fn ownership_rules_default_per_gateway_and_per_target() {
    use crate::catalog::{WhenAutoscaled, WhenGitops};
    let config = parse(GOOD).expect("valid");
    let web = config.catalog.get("web").expect("web");
    assert_eq!(web.ownership.when_autoscaled, WhenAutoscaled::Refuse);
    assert_eq!(web.ownership.when_gitops, WhenGitops::Warn);
    let text = GOOD.replace(
        "backend = \"sandbox\"",
        "backend = \"sandbox\"\nwhen_gitops = \"refuse\"",
    ) + "when_autoscaled = \"allow\"\n[targets.floor]\nkind = \"hpa-min-replicas\"\nname = \"web-hpa\"\nmax = 10\nwhen_gitops = \"allow\"\n";
    let config = parse(&text).expect("valid");
    let web = config.catalog.get("web").expect("web");
    assert_eq!(web.ownership.when_autoscaled, WhenAutoscaled::Allow);
    assert_eq!(
        web.ownership.when_gitops,
        WhenGitops::Refuse,
        "the gateway default"
    );
    let floor = config.catalog.get("floor").expect("floor");
    assert_eq!(floor.ownership.when_gitops, WhenGitops::Allow);
    assert_eq!(
        (floor.min, floor.max),
        (1, 10),
        "an HPA bound is at least 1"
    );
}

#[test]
fn bad_ownership_rules_name_their_field_and_line() {
    let err = error_of(&(GOOD.to_owned() + "when_autoscaled = \"fight\"\n"));
    assert!(
        err.contains(
            ":19: targets.web.when_autoscaled: unknown value `fight`, expected `refuse` or `allow`"
        ),
        "{err}"
    );
    let err = error_of(&GOOD.replace(
        "backend = \"sandbox\"",
        "backend = \"sandbox\"\nwhen_gitops = \"ignore\"",
    ));
    assert!(err.contains("cluster.when_gitops"), "{err}");
    let toggle = GOOD.to_owned()
        + "[targets.nightly]\nkind = \"cronjob-suspended\"\nname = \"nightly\"\nwhen_autoscaled = \"allow\"\n";
    let err = error_of(&toggle);
    assert!(
        err.contains("targets.nightly.when_autoscaled") && err.contains("can be autoscaled"),
        "{err}"
    );
    let zero = GOOD.to_owned()
        + "[targets.floor]\nkind = \"hpa-min-replicas\"\nname = \"h\"\nmin = 0\nmax = 5\n";
    assert!(
        error_of(&zero).contains("targets.floor.min"),
        "{}",
        error_of(&zero)
    );
}

#[test]
fn what_run_needs_to_serve_is_a_config_rule_with_its_field() {
    let origin = Path::new("/etc/kubeknobs/gateway.toml");
    let with = |text: &str, flags: &Flags| {
        Config::parse(text, origin, flags)
            .expect_err("must be refused")
            .to_string()
    };
    let err = with(GOOD, &Flags::default());
    assert!(
        err.starts_with("/etc/kubeknobs/gateway.toml:1: server.tls_cert: TLS is required"),
        "{err}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = crate::tls::CertBundle::generate(&["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("a.pem"), &certs.cert_pem).unwrap();
    std::fs::write(dir.path().join("a.key"), &certs.key_pem).unwrap();
    let tls = GOOD.replace(
        "[cluster]",
        "tls_cert = \"a.pem\"\ntls_key = \"a.key\"\n[cluster]",
    );
    let err = Config::parse(&tls, &dir.path().join("gateway.toml"), &PLAINTEXT)
        .expect_err("TLS files and --insecure")
        .to_string();
    assert!(
        err.contains(":5: server.tls_cert: --insecure is refused while"),
        "{err}"
    );
    let open = GOOD.replace("127.0.0.1:50051", "0.0.0.0:50051");
    let err = with(&open, &PLAINTEXT);
    assert!(
        err.contains(":3: server.listen: --insecure is refused on 0.0.0.0:50051"),
        "{err}"
    );
    let elsewhere = Flags {
        listen: Some("[::]:0".parse().unwrap()),
        insecure: true,
    };
    let err = with(GOOD, &elsewhere);
    assert!(
        err.starts_with("/etc/kubeknobs/gateway.toml: --listen: --insecure is refused on [::]:0"),
        "{err}"
    );
    let here = Flags {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        insecure: true,
    };
    let config = Config::parse(&open, origin, &here).expect("--listen replaces server.listen");
    assert_eq!(config.listen, "127.0.0.1:0".parse().unwrap());
}

#[test]
fn a_gateway_needs_operators_targets_and_a_cluster_for_token_review() {
    let nobody = GOOD.replace(ALICE.trim_end(), "");
    assert!(
        error_of(&nobody).contains(":1: operators: no operators are configured"),
        "{}",
        error_of(&nobody)
    );
    let nothing = GOOD[..GOOD.find("[targets.web]").unwrap()].to_owned();
    assert!(
        error_of(&nothing).contains(":1: targets: the catalog has no targets"),
        "{}",
        error_of(&nothing)
    );
    let review = format!("{GOOD}[auth]\ntoken_review = true\n");
    assert!(
        error_of(&review).contains(":20: auth.token_review: needs a real cluster"),
        "{}",
        error_of(&review)
    );
    parse(&review.replace("\"sandbox\"", "\"kube\"")).expect("a real cluster reviews tokens");
}

#[test]
fn actions_are_spelled_as_they_are_shown() {
    for action in crate::policy::Action::ALL {
        let rule = format!(
            "[[policy]]\noperators = [\"*\"]\ntargets = [\"web\"]\nactions = [\"{action}\"]\n"
        );
        let config = parse(&format!("{GOOD}{rule}")).expect("valid");
        assert_eq!(config.policy.rules()[0].actions, vec![action]);
    }
}

#[test]
fn check_explains_other_owners_in_each_kinds_words() {
    let explain = |kind: &str| {
        let config = parse(&GOOD.replace("deployment-replicas", kind)).expect("valid");
        let web = config.catalog.get("web").cloned().expect("web");
        web.ownership.explain(web.kind)
    };
    assert!(explain("deployment-replicas").contains("when autoscaled: refuses moves"));
    let toggle = explain("deployment-paused");
    assert_eq!(
        toggle,
        "when GitOps-managed: applies changes and warns that Argo CD/Flux may revert them"
    );
    assert!(explain("deployment-restart").contains("applies restarts"));
}
