//! `kubeknobs-gateway check` and `rbac` on configs about cluster rights, through the real binary:
//! a config that would need unbounded impersonation exits 2 naming its line, the "any identity"
//! opt-in is warned about, and `rbac` refuses names that are no Kubernetes names.

use std::process::{Command, Output};

use kubeknobs_gateway::auth::hash_token;
use kubeknobs_tests::harness::binary;

/// Runs the gateway with `args`, the last one being a config file holding `config`.
fn gateway(args: &[&str], config: &str) -> (Output, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(binary("kubeknobs-gateway"))
        .args(args)
        .arg(&path)
        .output()
        .expect("run kubeknobs-gateway");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn config(extra: &str) -> String {
    format!(
        "{extra}\n[[operators]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\ngroups = [\"stage\"]\n\
         [targets.web]\nkind = \"deployment-replicas\"\nname = \"web\"\nmax = 3\n",
        hash_token("t")
    )
}

#[test]
fn check_refuses_a_config_that_would_need_unbounded_impersonation() {
    let text = config(
        "[auth]\ntoken_review = true\n[cluster]\nimpersonate = true\n\
         [[policy]]\noperators = [\"group:ops\"]\ntargets = [\"*\"]\n",
    );
    let (out, _, stderr) = gateway(&["check", "--insecure", "--config"], &text);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("gateway.toml:6: policy[0].operators: \"group:ops\" lets any identity the cluster authenticates"),
        "{stderr}"
    );
    let (out, _, stderr) = gateway(&["rbac", "--config"], &text);
    assert_eq!(out.status.code(), Some(2), "rbac refuses it too: {stderr}");

    let masters = config(
        "[cluster]\nimpersonate = true\n[[policy]]\noperators = [\"group:system:masters\"]\ntargets = [\"*\"]\n",
    );
    let (out, _, stderr) = gateway(&["check", "--insecure", "--config"], &masters);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(":4: policy[0].operators: system:masters"),
        "{stderr}"
    );
}

#[test]
fn check_warns_about_letting_any_authenticated_identity_in_and_names_the_bound() {
    let text = config("[auth]\ntoken_review = true\ntoken_review_any_identity = true\n");
    let (out, stdout, stderr) = gateway(&["check", "--insecure", "--config"], &text);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("TokenReview for tokens minted for [\"kubeknobs\"]"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: ")
            && stderr
                .contains("auth.token_review_any_identity: any identity the cluster authenticates"),
        "{stderr}"
    );

    let bounded = config(
        "[auth]\ntoken_review = true\n[cluster]\nimpersonate = true\n[[policy]]\noperators = [\"alice\", \"system:serviceaccount:ops:frank\"]\ntargets = [\"*\"]\n",
    );
    let (out, stdout, stderr) = gateway(&["check", "--insecure", "--config"], &bounded);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("impersonates only users {\"alice\"}, groups {\"stage\"}, ServiceAccounts [\"ops/frank\"]"),
        "{stdout}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn rbac_prints_objects_named_after_the_account_and_refuses_bad_names() {
    let text = config("");
    let (out, stdout, stderr) = gateway(
        &[
            "rbac",
            "--service-account",
            "gw-a",
            "--namespace",
            "team-a",
            "--config",
        ],
        &text,
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("  name: \"kubeknobs:team-a:gw-a\"\n  namespace: default\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    resourceNames: [\"web\"]\n"),
        "{stdout}"
    );
    let (out, _, stderr) = gateway(&["rbac", "--service-account", "GW:A", "--config"], &text);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--service-account \"GW:A\" is not a Kubernetes name"),
        "{stderr}"
    );
}
