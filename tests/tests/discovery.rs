//! Zero-configuration discovery, end to end: the real `kubeknobs-bridge` binary advertises its OSC
//! services (UDP and TCP) over mDNS, and python-zeroconf, a browser the project did not write,
//! finds them, resolves them, sends OSC to what it resolved, and sees them withdrawn when the
//! bridge stops.
//!
//! mDNS is multicast, so the bridge and the browser each run in a network namespace made for the
//! test, joined by a veth pair (see `kubeknobs_tests::netns`): nothing reaches the machine's own
//! network. No gateway is needed: the bridge keeps OSC and mDNS up while it retries the uplink.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use kubeknobs_tests::harness::{Bridge, Process, binary, python_with};
use kubeknobs_tests::netns::{self, Lan};

/// The instance name the bridge advertises (`discovery.name`).
const NAME: &str = "Stage left";
/// The bridge's OSC port inside its namespace.
const OSC_PORT: u16 = 8000;

/// Browses `_osc._udp` and `_osc._tcp` on the interface with the address in argv[1]; prints
/// `ready`, then one `added {json}` per resolved service (after sending it one OSC message,
/// `/kk/ping`, at the address and port it resolved: a datagram, or a SLIP frame on a connection),
/// one `updated {json}` per changed TXT record, and one `removed NAME` per withdrawn service.
const BROWSER: &str = r#"
import json, socket, sys, time
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

PING = b"/kk/ping\x00\x00\x00\x00,\x00\x00\x00"

def changed(zeroconf, service_type, name, state_change):
    if state_change is ServiceStateChange.Added:
        info = zeroconf.get_service_info(service_type, name, timeout=5000)
        if info is None:
            print("unresolved " + name, flush=True)
            return
        addresses = info.parsed_addresses()
        props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
        for address in addresses:
            if service_type.startswith("_osc._tcp"):
                with socket.create_connection((address, info.port), timeout=5) as tcp:
                    tcp.sendall(b"\xc0" + PING + b"\xc0")
            else:
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(PING, (address, info.port))
        print("added " + json.dumps({"name": name, "port": info.port,
              "addresses": addresses, "txt": props}), flush=True)
    elif state_change is ServiceStateChange.Updated:
        info = zeroconf.get_service_info(service_type, name, timeout=5000)
        props = {k.decode(): (v or b"").decode() for k, v in (info.properties if info else {}).items()}
        print("updated " + json.dumps({"name": name, "txt": props}), flush=True)
    elif state_change is ServiceStateChange.Removed:
        print("removed " + name, flush=True)

zc = Zeroconf(interfaces=[sys.argv[1]], ip_version=IPVersion.V4Only)
ServiceBrowser(zc, ["_osc._udp.local.", "_osc._tcp.local."], handlers=[changed])
print("ready", flush=True)
time.sleep(90)
zc.close()
"#;

/// A bridge config with OSC on `listen` and a gateway that is not there (plaintext loopback, so
/// no certificates are needed).
fn bridge_config(dir: &Path, listen: &str) -> String {
    std::fs::write(dir.join("token.txt"), "discovery-test-token\n").expect("write token");
    format!(
        r#"
bridge_id = "pi-stage-left"

[gateway]
url = "http://127.0.0.1:9"
token_file = "token.txt"

[osc]
listen = "{listen}"
tcp_listen = "{listen}"
feedback_port = 9000

[discovery]
name = "{NAME}"
"#
    )
}

/// The JSON after `event ` (`added`, `updated`) in a browser line.
fn json_after(event: &str, line: &str) -> serde_json::Value {
    let start = line
        .find(event)
        .unwrap_or_else(|| panic!("no {event:?} in {line:?}"));
    let json = &line[start + event.len()..];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json:?} is not JSON: {e}"))
}

/// The private LAN, or `None` after a loud `SKIPPED:` line where namespaces cannot be made.
fn lan(tag: &str) -> Option<Lan> {
    match Lan::create(tag) {
        Ok(lan) => Some(lan),
        Err(why) => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: cannot make network namespaces for the mDNS test: {why}"
            );
            None
        }
    }
}

/// python-zeroconf browsing from host `b`, once it is ready.
fn browser(lan: &Lan) -> Process {
    let python = python_with("zeroconf", "python-zeroconf");
    let mut command = lan.b.command(&python);
    command.args(["-c", BROWSER]).arg(lan.b.addr.to_string());
    let browser = Process::spawn("zeroconf", command);
    browser.wait_for(&["ready"]);
    browser
}

/// Runs the bridge on host `a` with OSC on `listen` (port [`OSC_PORT`]), which it says it
/// advertises `scope`, and checks through the browser on host `b`: it is found with its port,
/// address 10.77.0.1 alone and its TXT record, beside its OSC-over-TCP service; OSC sent to what
/// was resolved reaches it over both; a reload that changes the bridge id and feedback port
/// updates the TXT records it sees; and on SIGTERM it exits promptly and cleanly and the browser
/// sees both withdrawn (a goodbye, not a TTL running out).
fn found_then_withdrawn(lan: &Lan, listen: &str, scope: &str) {
    let browser = browser(lan);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, bridge_config(dir.path(), listen)).expect("write config");
    let mut command = lan.a.command(binary("kubeknobs-bridge"));
    command.args(["run", "--config"]).arg(&config);
    let bridge = Process::spawn("bridge", command);
    bridge.wait_for(&["mDNS: advertising", scope]);

    let found = json_after("added ", &browser.wait_for(&["added ", "_osc._udp"]));
    let fullname = format!("{NAME}._osc._udp.local.");
    assert_eq!(found["name"], fullname.as_str(), "{found}");
    assert_eq!(found["port"], OSC_PORT, "{found}");
    assert_eq!(
        found["addresses"],
        serde_json::json!(["10.77.0.1"]),
        "{found}"
    );
    assert_eq!(found["txt"]["bridge_id"], "pi-stage-left", "{found}");
    assert_eq!(found["txt"]["feedback_port"], "9000", "{found}");
    assert_eq!(found["txt"]["txtvers"], "1", "{found}");
    // What the browser resolved is the bridge's OSC socket: its ping arrived there.
    bridge.wait_for(&["unknown OSC address", "/kk/ping", "from=10.77.0.2:"]);

    // OSC over TCP, on the same address, is advertised beside it under the same name.
    let tcp = json_after("added ", &browser.wait_for(&["added ", "_osc._tcp"]));
    let tcp_name = format!("{NAME}._osc._tcp.local.");
    assert_eq!(tcp["name"], tcp_name.as_str(), "{tcp}");
    assert_eq!(tcp["port"], OSC_PORT, "{tcp}");
    assert_eq!(tcp["addresses"], serde_json::json!(["10.77.0.1"]), "{tcp}");
    assert_eq!(tcp["txt"]["bridge_id"], "pi-stage-left", "{tcp}");
    assert_eq!(tcp["txt"].get("feedback_port"), None, "{tcp}");
    // The browser connected to what it resolved. (Its ping over TCP is not looked for in the
    // log: a second unknown address from the same sender within the window is only counted.)
    bridge.wait_for(&["OSC TCP client connected", "client=10.77.0.2:"]);

    // A reload that changes what the TXT records say announces them again.
    let edited = bridge_config(dir.path(), listen)
        .replace("pi-stage-left", "pi-stage-right")
        .replace("feedback_port = 9000", "feedback_port = 9001");
    std::fs::write(&config, edited).expect("edit config");
    bridge.hang_up();
    bridge.wait_for(&["mDNS: announced", "again", "pi-stage-right"]);
    let updated = json_after(
        "updated ",
        &browser.wait_for(&["updated ", "_osc._udp", "9001"]),
    );
    assert_eq!(updated["name"], fullname.as_str(), "{updated}");
    assert_eq!(updated["txt"]["bridge_id"], "pi-stage-right", "{updated}");
    assert_eq!(updated["txt"]["feedback_port"], "9001", "{updated}");
    browser.wait_for(&["updated ", "_osc._tcp", "pi-stage-right"]);

    bridge.terminate();
    let stopping = Instant::now();
    assert_eq!(bridge.wait_exit(), Some(0), "the bridge exits cleanly");
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopping took {took:?}; withdrawing is bounded"
    );
    assert!(bridge.printed("mDNS: withdrew"), "no goodbye was sent");
    browser.wait_for(&["removed", &fullname]);
    browser.wait_for(&["removed", &tcp_name]);
}

#[test]
fn a_bridge_on_its_lan_address_is_found_and_seen_leaving() {
    let Some(lan) = lan("addr") else { return };
    let listen = format!("{}:{OSC_PORT}", lan.a.addr);
    found_then_withdrawn(&lan, &listen, "on 10.77.0.1 only");
}

#[test]
fn a_bridge_on_every_interface_is_found_on_the_lan() {
    let Some(lan) = lan("any") else { return };
    let listen = format!("0.0.0.0:{OSC_PORT}");
    found_then_withdrawn(&lan, &listen, "on every non-loopback IPv4 interface");
}

#[test]
fn namespaces_are_removed_when_the_lan_is_dropped() {
    let Some(lan) = lan("drop") else { return };
    let names = [lan.a.netns.clone(), lan.b.netns.clone()];
    assert!(names.iter().all(|n| netns::exists(n)), "{names:?} exist");
    drop(lan);
    assert!(!names.iter().any(|n| netns::exists(n)), "{names:?} removed");
}

#[test]
fn a_loopback_bridge_says_why_it_is_not_advertised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bridge = Bridge::start(dir.path(), &bridge_config(dir.path(), "127.0.0.1:0"));
    let line = bridge
        .process
        .wait_for(&["mDNS: OSC service not advertised"]);
    assert!(
        line.contains("loopback 127.0.0.1") && line.contains("cannot reach"),
        "{line}"
    );
    assert!(!bridge.process.printed("mDNS: advertising"));
    bridge.process.terminate();
    assert_eq!(bridge.process.wait_exit(), Some(0));
}
