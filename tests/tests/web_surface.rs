//! The bridge's web control surface in a real browser (headless Chromium, see
//! `kubeknobs_tests::browser`): a sandbox gateway with operators alice and bob, alice's bridge
//! serving the page, bob's bridge driven by liblo's `oscsend`. Prints SKIPPED without node or
//! Chromium on a developer's machine; `.ci/run` installs both, so CI runs it.

use std::path::Path;
use std::time::Duration;

use kubeknobs_tests::browser::Browser;
use kubeknobs_tests::harness::{Bridge, Gateway, OscDump, gen_certs, osc_send, token_hash};
use kubeknobs_tests::pipeline::{TOKEN, bridge_config, gateway_config};
use serde_json::{Value, json};

/// Targets besides `web` (0..=20 from `gateway_config`): a second fader, a toggle, a restart.
const MORE_TARGETS: &str = r#"
[targets.api]
kind = "deployment-replicas"
namespace = "default"
name = "api"
max = 10
max_writes_per_second = 5
initial = 3

[targets.api-paused]
kind = "deployment-paused"
namespace = "default"
name = "api"

[targets.api-restart]
kind = "deployment-restart"
namespace = "default"
name = "api"
cooldown_ms = 30000
"#;

/// A bridge of its own (config, token, CA) for `token`, with `web` appended to its config.
fn bridge(dir: &Path, gateway: &Gateway, phone: &OscDump, token: &str, web: &str) -> Bridge {
    let own = dir.join(token);
    std::fs::create_dir_all(own.join("certs")).expect("mkdir");
    std::fs::copy(dir.join("certs/ca.pem"), own.join("certs/ca.pem")).expect("copy ca");
    let config = format!(
        "{}\n{web}\n",
        bridge_config(&own, gateway, phone.port, token)
    );
    Bridge::start(&own, &config)
}

struct Stage {
    _dir: tempfile::TempDir,
    gateway: Gateway,
    alice: Bridge,
    bob: Bridge,
    _phones: (OscDump, OscDump),
    url: String,
}

/// The gateway (sandbox; touch grace 300 ms), alice's bridge with `[web]` plus `web_extra`, and
/// bob's bridge without.
fn stage(web_extra: &str) -> Stage {
    kubeknobs_tests::harness::require_tool("oscsend");
    let dir = tempfile::tempdir().expect("tempdir");
    gen_certs(dir.path());
    let config = format!(
        "{}\n{MORE_TARGETS}\n[[operators]]\nname = \"bob\"\ntoken_sha256 = \"{}\"\n[limits]\ntouch_grace_ms = 300\n",
        gateway_config("backend = \"sandbox\"", "default", "web"),
        token_hash("bob-secret")
    );
    let gateway = Gateway::start(dir.path(), &config);
    let phones = (OscDump::start(), OscDump::start());
    let web = format!("[web]\nlisten = \"127.0.0.1:0\"\n{web_extra}");
    let alice = bridge(dir.path(), &gateway, &phones.0, TOKEN, &web);
    alice.process.wait_for(&["connected", "alice"]);
    let bob = bridge(dir.path(), &gateway, &phones.1, "bob-secret", "");
    bob.process.wait_for(&["connected", "bob"]);
    let url = format!(
        "http://{}/",
        alice.web.expect("alice's bridge logs its web address")
    );
    Stage {
        _dir: dir,
        gateway,
        alice,
        bob,
        _phones: phones,
        url,
    }
}

/// The page's `move` frames for `target` among `frames`, and whether they are framed by a touch
/// and a release.
fn moves_of(frames: &Value, target: &str) -> (Vec<f64>, bool) {
    let frames: Vec<&Value> = frames
        .as_array()
        .expect("frames")
        .iter()
        .filter(|f| f["target"] == target)
        .collect();
    let moves = frames
        .iter()
        .filter(|f| f["type"] == "move")
        .map(|f| f["value"].as_f64().expect("value"))
        .collect();
    let framed = frames
        .first()
        .is_some_and(|f| f["type"] == "touch" && f["on"] == true)
        && frames
            .last()
            .is_some_and(|f| f["type"] == "touch" && f["on"] == false);
    (moves, framed)
}

/// The gateway's log lines saying it applied `value` to `target` for `operator`.
fn applied_lines(gateway: &Gateway, target: &str, value: u32, operator: &str) -> Vec<String> {
    let needles = applied_needles(target, value, operator);
    gateway
        .process
        .output()
        .into_iter()
        .filter(|l| needles.iter().all(|n| l.contains(n.as_str())))
        .collect()
}

fn applied_needles(target: &str, value: u32, operator: &str) -> [String; 4] {
    [
        "applied".into(),
        format!("target_name={target} "),
        format!("value={value} "),
        format!("operator={operator}"),
    ]
}

/// Waits for the gateway to apply `value` to `target` for `operator` once more than the
/// `before` times it had (a sweep may pass through the same value earlier).
fn applied(gateway: &Gateway, target: &str, value: u32, operator: &str, before: usize) {
    let needles = applied_needles(target, value, operator);
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    gateway.process.wait_for_nth(&needles, before + 1);
}

#[test]
fn a_browser_drives_the_gateway_follows_other_operators_and_holds_what_it_touches() {
    let Some(mut browser) = Browser::start() else {
        return;
    };
    let s = stage("");
    let title = browser.call(json!({"cmd": "open", "url": s.url}));
    assert!(
        title.as_str().is_some_and(|t| t.contains("e2e-bridge")),
        "{title}"
    );
    browser.call(
        json!({"cmd": "waitText", "selector": ".card[data-target=web] .label", "contains": "web "}),
    );
    // One control per target, of the kind the catalog says.
    for (target, control) in [
        ("web", ".track"),
        ("api", ".track"),
        ("api-paused", ".toggle"),
        ("api-restart", ".press"),
    ] {
        let selector = format!(".card[data-target=\"{target}\"] {control}");
        browser.call(json!({"cmd": "text", "selector": selector}));
    }
    browser.call(json!({"cmd": "frames"}));

    // A drag with 40 pointer moves: the gateway applies where the finger stopped (0.75 of
    // 0..20), and the page sent one touch, at most one move per step value, and one release.
    let web_before = applied_lines(&s.gateway, "web", 15, "alice").len();
    browser.call(json!({"cmd": "drag", "target": "web", "to": 0.75}));
    applied(&s.gateway, "web", 15, "alice", web_before);
    browser.call(
        json!({"cmd": "waitText", "selector": ".card[data-target=web] .label", "contains": "/15"}),
    );
    let (moves, framed) = moves_of(&browser.call(json!({"cmd": "frames"})), "web");
    assert!(framed, "touch first, release last: {moves:?}");
    assert_eq!(moves.last().copied(), Some(0.75), "{moves:?}");
    assert!(
        moves.len() <= 16 && moves.windows(2).all(|w| w[0] != w[1]),
        "coalesced to distinct values of 0..=15: {moves:?}"
    );

    // Bob moves it from his bridge over OSC (once the page's release is past the touch grace):
    // the page's fader follows and names him.
    std::thread::sleep(Duration::from_millis(600));
    let web_before = applied_lines(&s.gateway, "web", 5, "bob").len();
    osc_send(s.bob.osc_port, "/1/fader1", "f", "0.25");
    applied(&s.gateway, "web", 5, "bob", web_before);
    browser.call(json!({"cmd": "waitValue", "target": "web", "value": 5.0}));
    browser.call(json!({"cmd": "waitText", "selector": ".card[data-target=web] .info", "contains": "changed by bob"}));

    // A finger held on the page's fader holds the target against bob until it lifts.
    let web_before = applied_lines(&s.gateway, "web", 10, "alice").len();
    browser.call(json!({"cmd": "drag", "target": "web", "to": 0.5, "hold": true}));
    applied(&s.gateway, "web", 10, "alice", web_before);
    osc_send(s.bob.osc_port, "/1/fader1", "f", "0.9");
    s.bob.process.wait_for(&[
        "control event rejected",
        "REJECT_REASON_HELD",
        "held by alice",
    ]);
    browser.call(json!({"cmd": "waitValue", "target": "web", "value": 10.0}));
    browser.call(json!({"cmd": "up"}));
    let web_before = applied_lines(&s.gateway, "web", 18, "bob").len();
    std::thread::sleep(Duration::from_millis(600)); // past the 300 ms touch grace
    osc_send(s.bob.osc_port, "/1/fader1", "f", "0.9");
    applied(&s.gateway, "web", 18, "bob", web_before);
    browser.call(json!({"cmd": "waitValue", "target": "web", "value": 18.0}));

    // Bob's touch holds it against the page: the page shows why its move was refused, then
    // returns to the truth.
    osc_send(s.bob.osc_port, "/1/fader1/z", "f", "1");
    osc_send(s.bob.osc_port, "/1/fader1", "f", "0.9");
    browser.call(json!({"cmd": "drag", "target": "web", "to": 0.25}));
    s.alice.process.wait_for(&[
        "control event rejected",
        "REJECT_REASON_HELD",
        "held by bob",
    ]);
    browser.call(json!({"cmd": "waitText", "selector": ".card[data-target=web] .info", "contains": "held by bob"}));
    browser.call(json!({"cmd": "waitValue", "target": "web", "value": 18.0}));
    osc_send(s.bob.osc_port, "/1/fader1/z", "f", "0");

    // Two fingers on two faders at once both land (deliberately after bob's release is past the
    // 300 ms touch grace).
    std::thread::sleep(Duration::from_millis(600));
    browser.call(json!({"cmd": "frames"}));
    let web_before = applied_lines(&s.gateway, "web", 10, "alice").len();
    let api_before = applied_lines(&s.gateway, "api", 5, "alice").len();
    browser.call(json!({"cmd": "touchTwo", "targets": ["web", "api"], "to": 0.5}));
    applied(&s.gateway, "web", 10, "alice", web_before);
    applied(&s.gateway, "api", 5, "alice", api_before);
    let frames = browser.call(json!({"cmd": "frames"}));
    for target in ["web", "api"] {
        let (moves, framed) = moves_of(&frames, target);
        assert!(framed && !moves.is_empty(), "{target}: {frames}");
    }
    browser.call(json!({"cmd": "waitValue", "target": "api", "value": 5.0}));

    let shot = std::env::var("KUBEKNOBS_WEB_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| s._dir.path().join("web-surface.png"));
    browser.call(json!({"cmd": "screenshot", "path": shot}));
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "a screenshot of the page: {} bytes", size);

    // A page that goes away with a finger down lets go: bob's move lands after the grace.
    let web_before = applied_lines(&s.gateway, "web", 5, "alice").len();
    browser.call(json!({"cmd": "drag", "target": "web", "to": 0.25, "hold": true}));
    applied(&s.gateway, "web", 5, "alice", web_before);
    browser.call(json!({"cmd": "reload"}));
    browser.call(json!({"cmd": "up"}));
    s.alice
        .process
        .wait_for_nth(&["web control surface closed"], 1);
    std::thread::sleep(Duration::from_millis(600)); // deliberately past the 300 ms touch grace
    let web_before = applied_lines(&s.gateway, "web", 18, "bob").len();
    osc_send(s.bob.osc_port, "/1/fader1", "f", "0.9");
    applied(&s.gateway, "web", 18, "bob", web_before);

    // The gateway goes away: every control keeps its last state, marked stale.
    s.gateway.process.kill();
    browser.call(
        json!({"cmd": "waitText", "selector": ".card[data-target=web] .label", "contains": "(stale)"}),
    );
    browser.call(json!({"cmd": "waitText", "selector": "#status", "contains": "(stale)"}));
}

#[test]
fn a_wrong_pin_is_refused_and_the_right_one_opens_the_page() {
    let Some(mut browser) = Browser::start() else {
        return;
    };
    let s = stage("pin = \"4711\"\n");
    browser.call(json!({"cmd": "open", "url": s.url}));
    browser.call(json!({"cmd": "pin", "pin": "1234"}));
    browser.call(json!({"cmd": "waitText", "selector": "#pin-error", "contains": "wrong PIN"}));
    s.alice.process.wait_for(&["wrong PIN", "refused"]);
    let controls = browser.call(json!({"cmd": "text", "selector": "#controls"}));
    assert_eq!(controls, "", "nothing shown before the right PIN");
    browser.call(json!({"cmd": "pin", "pin": "4711"}));
    browser.call(
        json!({"cmd": "waitText", "selector": ".card[data-target=web] .label", "contains": "web "}),
    );
    let web_before = applied_lines(&s.gateway, "web", 10, "alice").len();
    browser.call(json!({"cmd": "drag", "target": "web", "to": 0.5}));
    applied(&s.gateway, "web", 10, "alice", web_before);
}

/// A raw WebSocket upgrade request for `/ws` with `origin`; the status code of the answer.
fn upgrade_status(addr: std::net::SocketAddr, origin: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the web port");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        stream,
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .expect("send");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).expect("status line");
    String::from_utf8_lossy(&head[9..12])
        .parse()
        .expect("status code")
}

#[test]
fn the_page_loads_nothing_from_elsewhere_and_other_origins_cannot_open_its_socket() {
    let s = stage("");
    let addr = s.alice.web.expect("web address");
    for path in ["/", "/app.js", "/app.css"] {
        let (status, body) = kubeknobs_tests::harness::http_get(addr, path);
        assert_eq!(status, 200, "{path}");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} refers to another host: no CDN, no web fonts"
        );
    }
    assert_eq!(upgrade_status(addr, "http://evil.example"), 403);
    assert_eq!(upgrade_status(addr, &format!("http://{addr}")), 101);
}
