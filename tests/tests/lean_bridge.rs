//! The bridge a Raspberry Pi runs (`--no-default-features`, what docs/raspberry-pi.md builds and
//! deploy/bridge/kubeknobs-bridge.service runs) links neither the gateway nor the Kubernetes
//! client: it only streams to a gateway. Read from the locked dependency graph (`cargo tree`).

use std::process::Command;

/// Crates of the normal (linked) dependency graph of the bridge built with `features`.
fn linked_crates(features: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let output = Command::new(cargo)
        .args(["tree", "--locked", "--manifest-path", manifest])
        .args(["-p", "kubeknobs-bridge", "-e", "normal", "--prefix", "none"])
        .args(features)
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(' ').next())
        .map(str::to_owned)
        .collect()
}

const GATEWAY_SIDE: [&str; 3] = ["kubeknobs-gateway", "kube", "k8s-openapi"];

#[test]
fn the_pi_build_links_no_gateway_and_no_kubernetes_client() {
    let lean = linked_crates(&["--no-default-features"]);
    assert!(lean.iter().any(|c| c == "kubeknobs-bridge"), "{lean:?}");
    for name in GATEWAY_SIDE {
        assert!(
            !lean.iter().any(|c| c == name),
            "the lean bridge links {name}"
        );
    }
}

/// The check above can fail: the default build (with the demo) does link them.
#[test]
fn the_demo_build_embeds_the_gateway() {
    let full = linked_crates(&[]);
    for name in GATEWAY_SIDE {
        assert!(
            full.iter().any(|c| c == name),
            "the demo build lacks {name}"
        );
    }
}
