//! Config reload on the real processes: SIGHUP and file changes, for the gateway and the bridge.
//! A usable file takes effect (new bounds reach the bridge through a new `Welcome`, a new mapping
//! drives the target); an unusable one is logged with its file, line and field, and the running
//! config stays in force.

use std::path::Path;

use kubeknobs_tests::harness::osc_send;
use kubeknobs_tests::pipeline::{Pipeline, bridge_config, connected, gateway_config};

const SANDBOX: &str = "backend = \"sandbox\"";
const WEB: (&str, &str) = ("default", "web");

fn gateway_toml() -> String {
    gateway_config(SANDBOX, WEB.0, WEB.1)
}

/// Rewrites `path` but keeps its modification time (`text` must have the old length), so only a
/// SIGHUP — not the file watch — can notice the change.
fn rewrite_unnoticed(path: &Path, text: &str) {
    let old = std::fs::metadata(path).expect("stat");
    assert_eq!(
        old.len(),
        text.len() as u64,
        "same length, or the watch sees it"
    );
    let file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .expect("open");
    std::io::Write::write_all(&mut &file, text.as_bytes()).expect("write");
    file.set_modified(old.modified().expect("mtime"))
        .expect("restore mtime");
}

/// The fader at the top, and the value the gateway applies for it.
fn full_fader_applies(p: &Pipeline, address: &str, nth: usize, value: &str) {
    osc_send(p.bridge.osc_port, address, "f", "1.0");
    let applied = format!("value={value}");
    let line = p
        .gateway
        .process
        .wait_for_nth(&["applied", "operator=alice"], nth);
    assert!(line.contains(&applied), "expected {applied}: {line}");
}

#[test]
fn sighup_reloads_the_gateway_and_bridges_get_the_new_bounds() {
    let p = connected(SANDBOX, WEB);
    full_fader_applies(&p, "/1/fader1", 1, "20");

    let path = p.dir.path().join("gateway.toml");
    rewrite_unnoticed(&path, &gateway_toml().replace("max = 20", "max = 10"));
    p.gateway.process.hang_up();
    p.gateway
        .process
        .wait_for(&["config reloaded", "cause=SIGHUP", "sessions_reconnect=true"]);
    p.bridge
        .process
        .wait_for(&["gateway configuration reloaded; reconnect for the new catalog"]);
    p.bridge
        .process
        .wait_for_nth(&["connected to gateway", "operator=alice"], 2);

    // The bridge maps the fader onto the new bounds: the top is now 10.
    full_fader_applies(&p, "/1/fader1", 2, "10");
    assert!(
        !p.gateway.process.printed("file changed"),
        "the mtime was kept: only SIGHUP could have reloaded"
    );
}

#[test]
fn an_edited_gateway_file_reloads_by_itself_and_a_bad_one_changes_nothing() {
    let p = connected(SANDBOX, WEB);
    let path = p.dir.path().join("gateway.toml");

    std::fs::write(
        &path,
        gateway_toml().replace("max = 20", "max = \"twenty\""),
    )
    .unwrap();
    let refused = p
        .gateway
        .process
        .wait_for(&["config not reloaded", "cause=file changed"]);
    assert!(
        refused.contains("gateway.toml:") && refused.contains("targets.web.max"),
        "names the file, line and field: {refused}"
    );
    full_fader_applies(&p, "/1/fader1", 1, "20");

    let with_new_target = format!(
        "{}\n[targets.api]\nkind = \"deployment-replicas\"\nnamespace = \"default\"\nname = \"api\"\nmin = 0\nmax = 3\n",
        gateway_toml()
    );
    std::fs::write(&path, with_new_target).unwrap();
    p.gateway.process.wait_for(&[
        "config not reloaded",
        "the targets or the objects they name changed, which takes effect only on restart",
    ]);

    std::fs::write(&path, gateway_toml().replace("max = 20", "max = 5")).unwrap();
    p.gateway
        .process
        .wait_for(&["config reloaded", "cause=file changed"]);
    p.bridge
        .process
        .wait_for_nth(&["connected to gateway", "operator=alice"], 2);
    full_fader_applies(&p, "/1/fader1", 2, "5");
    assert!(p.gateway.process.is_running() && p.bridge.process.is_running());
}

#[test]
fn the_bridge_reloads_its_mappings_and_keeps_them_when_the_file_is_bad() {
    let p = connected(SANDBOX, WEB);
    let path = p.dir.path().join("bridge.toml");
    let original = bridge_config(
        p.dir.path(),
        &p.gateway,
        p.phone.port,
        kubeknobs_tests::pipeline::TOKEN,
    );

    std::fs::write(&path, original.replace("/1/fader1", "/1/fader2")).unwrap();
    p.bridge.process.wait_for(&[
        "config reloaded",
        "cause=file changed",
        "the gateway session stays",
    ]);
    full_fader_applies(&p, "/1/fader2", 1, "20");
    // Feedback follows the new mapping at once: the phone's new fader shows the cluster's value.
    p.phone.wait_for("/1/fader2", "f 1.000000");

    std::fs::write(
        &path,
        original.replace("range = [0.0, 1.0]", "range = [1.0, 0.0]"),
    )
    .unwrap();
    let refused = p.bridge.process.wait_for(&["config not reloaded"]);
    assert!(
        refused.contains("bridge.toml:") && refused.contains("osc.mappings[0].range"),
        "names the file, line and field: {refused}"
    );

    let moved = original.replace("/1/fader1", "/1/fader2").replace(
        "[osc]\nlisten = \"127.0.0.1:0\"",
        "[osc]\nlisten = \"127.0.0.1:1\"",
    );
    std::fs::write(&path, moved).unwrap();
    p.bridge.process.wait_for(&[
        "config not reloaded",
        "osc.listen changed, which takes effect only on restart",
    ]);

    // Still the reloaded mapping, on the first session: a reload that keeps `[gateway]` and
    // `bridge_id` never reconnects (a second session would also release the operator's touches).
    osc_send(p.bridge.osc_port, "/1/fader2", "f", "0.5");
    p.gateway
        .process
        .wait_for(&["applied", "value=10", "operator=alice"]);
    assert_eq!(
        p.bridge
            .process
            .output()
            .iter()
            .filter(|l| l.contains("connected to gateway"))
            .count(),
        1
    );
}
