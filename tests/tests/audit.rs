//! The audit trail end to end: the real gateway binary writes one JSON line per applied or
//! rejected change to stdout and to `audit.file`, and a dry-run gateway changes nothing.

use std::time::{Duration, Instant};

use kubeknobs_tests::harness::{Gateway, gen_certs, osc_send};
use kubeknobs_tests::pipeline::{bridge_config, gateway_config};

fn audit_lines(path: &std::path::Path, want: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
            .collect();
        if lines.len() >= want || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn applied_changes_are_audited_as_json_lines_and_a_dry_run_changes_nothing() {
    kubeknobs_tests::harness::require_tool("oscsend");
    let dir = tempfile::tempdir().expect("tempdir");
    gen_certs(dir.path());
    let config = gateway_config("backend = \"sandbox\"\ndry_run = true", "default", "web")
        .replace("[cluster]", "[audit]\nfile = \"audit.jsonl\"\n\n[cluster]");
    let gateway = Gateway::start(dir.path(), &config);
    let phone = kubeknobs_tests::harness::OscDump::start();
    let bridge = kubeknobs_tests::harness::Bridge::start(
        dir.path(),
        &bridge_config(
            dir.path(),
            &gateway,
            phone.port,
            kubeknobs_tests::pipeline::TOKEN,
        )
        .replace("range = [0.0, 1.0]", "range = [0.0, 0.5]"),
    );
    bridge.process.wait_for(&["connected", "alice"]);
    osc_send(bridge.osc_port, "/1/fader1", "f", "0.25");
    gateway.process.wait_for(&["applied", "value=10"]);

    let lines = audit_lines(&dir.path().join("audit.jsonl"), 1);
    let applied = &lines[0];
    assert_eq!(applied["operator"], "alice");
    assert_eq!(applied["target"], "web");
    assert_eq!(applied["old"], 2.0);
    assert_eq!(applied["new"], 10.0);
    assert_eq!(applied["outcome"], "applied");
    assert_eq!(applied["dry_run"], true);
    assert!(applied["latency_ms"].as_f64().expect("latency") >= 0.0);
    assert!(
        gateway.process.printed("\"outcome\":\"applied\""),
        "also on stdout"
    );
    // Dry run: the sandbox still has its initial 2 replicas; the phone is shown that.
    phone.wait_for("/1/label1", "\"web 2/2\"");
}
