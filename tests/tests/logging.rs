//! Logging flags on the real binaries: `--log-level` wins over `RUST_LOG` both ways (it hides
//! what `RUST_LOG` shows, and shows what `RUST_LOG` hides), and a level that does not parse is
//! refused before anything starts.

use std::process::Command;

use kubeknobs_tests::harness::{Process, binary, gen_certs};
use kubeknobs_tests::pipeline::gateway_config;

#[test]
fn log_level_overrides_rust_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_certs(dir.path());
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        gateway_config("backend = \"sandbox\"", "default", "web"),
    )
    .unwrap();
    // RUST_LOG=info (the harness's) would show every info line; the flag shows info only from
    // the server module.
    let mut command = Command::new(binary("kubeknobs-gateway"));
    command
        .args(["run", "--listen", "127.0.0.1:0", "--log-level"])
        .arg("warn,kubeknobs_gateway::server=info")
        .arg("--config")
        .arg(&path);
    let gateway = Process::spawn("gateway", command);
    gateway.wait_for(&["INFO", "kubeknobs_gateway::server", "gRPC listening on"]);
    gateway.terminate();
    // Logged by the server module after the shutdown module's info line "signal received", on
    // the same stream: once this is read, that one would have been too.
    gateway.wait_for(&["INFO", "shutting down: closing sessions"]);
    assert!(
        !gateway.printed("signal received"),
        "--log-level hides the shutdown module's info lines though RUST_LOG=info"
    );
    assert_eq!(gateway.wait_exit(), Some(0));
}

/// A bridge whose gateway is not there (so it logs a WARN line for every retry), run with
/// `RUST_LOG=warn` and `extra` arguments.
fn bridge_under_rust_log_warn(dir: &std::path::Path, extra: &[&str]) -> Process {
    let path = dir.join("bridge.toml");
    std::fs::write(dir.join("token.txt"), "a-token-for-logging\n").expect("token");
    std::fs::write(
        &path,
        "[gateway]\nurl = \"https://127.0.0.1:1\"\nca = \"certs/ca.pem\"\ntoken_file = \"token.txt\"\n\
         [osc]\nlisten = \"127.0.0.1:0\"\n",
    )
    .expect("bridge.toml");
    let mut command = Command::new(binary("kubeknobs-bridge"));
    command
        .env("RUST_LOG", "warn")
        .arg("run")
        .args(extra)
        .arg("--config")
        .arg(&path);
    Process::spawn("bridge", command)
}

#[test]
fn the_bridges_log_level_shows_what_rust_log_hides() {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_certs(dir.path());
    // Without the flag, RUST_LOG=warn hides the INFO line the bridge logs before its first
    // connection attempt fails.
    let quiet = bridge_under_rust_log_warn(dir.path(), &[]);
    quiet.wait_for(&["WARN", "gateway session ended; retrying"]);
    assert!(
        !quiet.printed("OSC listening on"),
        "RUST_LOG=warn hides info lines"
    );
    // With it, the flag decides.
    let loud = bridge_under_rust_log_warn(dir.path(), &["--log-level", "info"]);
    loud.wait_for(&["INFO", "OSC listening on"]);
}

#[test]
fn a_bad_log_level_is_refused_with_exit_code_2() {
    for (program, args) in [
        ("kubeknobs-gateway", vec!["run", "--config", "none.toml"]),
        ("kubeknobs-bridge", vec!["check", "--config", "none.toml"]),
    ] {
        let out = Command::new(binary(program))
            .args(&args)
            .args(["--log-level", "info,=nope="])
            .env("KUBEKNOBS_LOG_FORMAT", "plain")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{program}: {stderr}");
        assert!(
            stderr.contains("error: invalid --log-level \"info,=nope=\""),
            "{program}: {stderr}"
        );
    }
}
