use std::path::Path;

use super::*;
use crate::config::tests::GOOD;

/// The config tests' valid config, with a `[limits]` table to edit.
fn base() -> String {
    format!("{GOOD}\n[limits]\nevents_per_second = 50\n")
}

fn parse(text: &str) -> Config {
    let flags = crate::config::tests::PLAINTEXT;
    Config::parse(text, Path::new("/etc/kubeknobs/gateway.toml"), &flags).expect("valid")
}

fn restart_fields(edit: impl Fn(&str) -> String) -> Vec<&'static str> {
    needs_restart(&parse(&base()), &parse(&edit(&base())))
}

#[test]
fn operators_policy_limits_and_bounds_reload() {
    let edited = |base: &str| {
        base.replace("max = 20", "max = 8\nmax_step = 2")
            .replace("events_per_second = 50", "events_per_second = 5")
            .replace("name = \"alice\"", "name = \"alice-2\"")
            + "\n[[policy]]\noperators = [\"alice-2\"]\ntargets = [\"web\"]\nactions = [\"move\"]\n"
    };
    assert_eq!(restart_fields(edited), Vec::<&str>::new());
}

#[test]
fn what_only_a_restart_applies_is_named() {
    let cases: [(&str, &str, &str); 5] = [
        (
            "listen = \"127.0.0.1:50051\"",
            "listen = \"127.0.0.1:50052\"",
            "server.listen",
        ),
        (
            "name = \"web\"\n",
            "name = \"web-v2\"\n",
            "the targets or the objects they name",
        ),
        (
            "namespace = \"shop\"",
            "namespace = \"other\"",
            "the targets or the objects they name",
        ),
        (
            "[cluster]\nbackend = \"sandbox\"",
            "[cluster]\nbackend = \"kube\"",
            "cluster.backend/kubeconfig/context",
        ),
        (
            "[server]\n",
            "[server]\nmax_message_bytes = 1024\n",
            "server.max_message_bytes",
        ),
    ];
    for (from, to, field) in cases {
        let fields = restart_fields(|base| base.replace(from, to));
        assert_eq!(fields, vec![field], "{from:?} -> {to:?}");
    }
}

#[test]
fn a_new_target_needs_a_restart() {
    let fields = restart_fields(|base| {
        format!(
            "{base}\n[targets.api]\nkind = \"deployment-replicas\"\nnamespace = \"shop\"\nname = \"api\"\nmin = 0\nmax = 3\n"
        )
    });
    assert_eq!(fields, vec!["the targets or the objects they name"]);
}
