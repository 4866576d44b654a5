//! Real speeds through the real programs, with a third-party OSC sender (python-osc) and the
//! fake API server as the cluster: a fader flick of 128 moves in ~0.1 s, three faders thrown
//! together, and 20,000 moves over 8 faders all end on the exact final values with the default
//! `[limits]`; the logs stay bounded; feedback is sent once per change; a bridge stopped with
//! SIGTERM reads as a clean close at the gateway.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kubeknobs_tests::fakeapi::{FakeApiServer, Kind};
use kubeknobs_tests::harness::{
    Bridge, Gateway, OscDump, gen_certs, python_with, require_tool, token_hash,
};

const TOKEN: &str = "flick-secret-token";

/// A fake cluster with `n` Deployments `t0..` at 0 replicas, a gateway on it with default limits
/// (targets 0..=20 at the default write rate), oscdump as the phone, and a bridge mapping
/// `/1/fader{i+1}` (0..1) to `t{i}` with a label at `/1/label{i+1}`.
struct Rig {
    api: FakeApiServer,
    _dir: tempfile::TempDir,
    gateway: Gateway,
    bridge: Bridge,
    phone: OscDump,
}

async fn rig(n: usize) -> Rig {
    let api = FakeApiServer::start().await;
    for i in 0..n {
        api.add(Kind::Deployment, "default", &format!("t{i}"), 0);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path());
    let (gateway, bridge, phone) = tokio::task::spawn_blocking({
        let path = dir.path().to_owned();
        move || start(&path, &kubeconfig, n)
    })
    .await
    .expect("start");
    Rig {
        api,
        _dir: dir,
        gateway,
        bridge,
        phone,
    }
}

fn start(dir: &Path, kubeconfig: &Path, n: usize) -> (Gateway, Bridge, OscDump) {
    require_tool("oscdump");
    gen_certs(dir);
    let mut gateway = format!(
        "[server]\ntls_cert = \"certs/server.pem\"\ntls_key = \"certs/server.key\"\n\
         [cluster]\nbackend = \"kube\"\nkubeconfig = {:?}\n\
         [[operators]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\n",
        kubeconfig.display().to_string(),
        token_hash(TOKEN)
    );
    for i in 0..n {
        write!(
            gateway,
            "[targets.t{i}]\nkind = \"deployment-replicas\"\nname = \"t{i}\"\nmax = 20\n"
        )
        .expect("format");
    }
    let gateway = Gateway::start(dir, &gateway);
    let phone = OscDump::start();
    std::fs::write(dir.join("token.txt"), TOKEN).expect("token");
    let mut bridge = format!(
        "bridge_id = \"flick\"\n[gateway]\nurl = \"https://localhost:{}\"\nca = \"certs/ca.pem\"\n\
         token_file = \"token.txt\"\n[osc]\nlisten = \"127.0.0.1:0\"\nfeedback_port = {}\n",
        gateway.addr.port(),
        phone.port
    );
    for i in 0..n {
        let k = i + 1;
        write!(
            bridge,
            "[[osc.mappings]]\naddress = \"/1/fader{k}\"\ntarget = \"t{i}\"\nrange = [0.0, 1.0]\nlabel = \"/1/label{k}\"\n"
        )
        .expect("format");
    }
    let bridge = Bridge::start(dir, &bridge);
    bridge.process.wait_for(&["connected", "alice"]);
    (gateway, bridge, phone)
}

/// python-osc sends every `(address, value)` of `moves` to the bridge over UDP, spread evenly
/// over `seconds`.
fn python_osc(port: u16, moves: &[(String, f32)], seconds: f64) {
    let python = python_with("pythonosc.udp_client", "python-osc");
    let script = r#"
import sys, time, json
from pythonosc.udp_client import SimpleUDPClient
port, seconds, moves = int(sys.argv[1]), float(sys.argv[2]), json.load(sys.stdin)
client = SimpleUDPClient("127.0.0.1", port)
gap = seconds / max(len(moves), 1)
start = time.monotonic()
for i, (address, value) in enumerate(moves):
    while time.monotonic() < start + i * gap:
        pass
    client.send_message(address, float(value))
print("sent", len(moves), "in", round(time.monotonic() - start, 3), "s", flush=True)
"#;
    let mut child = Command::new(python)
        .args(["-c", script, &port.to_string(), &seconds.to_string()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run python-osc");
    let json = serde_json::to_string(moves).expect("json");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(json.as_bytes())
        .expect("write moves");
    assert!(child.wait().expect("python").success(), "python-osc failed");
}

/// Waits until every `t{i}` has `finals[i]` replicas in the cluster, then holds for a second and
/// checks they stay there (nothing later overwrites a final value).
async fn settles_on(api: &FakeApiServer, finals: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let now = || -> Vec<Option<i32>> {
        (0..finals.len())
            .map(|i| api.replicas(Kind::Deployment, "default", &format!("t{i}")))
            .collect()
    };
    let want: Vec<Option<i32>> = finals.iter().copied().map(Some).collect();
    while now() != want {
        assert!(
            Instant::now() < deadline,
            "ended on {:?}, not {want:?}",
            now()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(now(), want, "a final value was overwritten");
}

fn warn_lines(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| l.contains("WARN") || l.contains("\"level\":\"WARN\""))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flick_of_128_moves_in_a_tenth_of_a_second_ends_on_the_exact_final_value() {
    let rig = rig(1).await;
    let moves: Vec<(String, f32)> = (0..128)
        .map(|i| ("/1/fader1".to_owned(), i as f32 / 127.0))
        .collect();
    let port = rig.bridge.osc_port;
    tokio::task::spawn_blocking(move || python_osc(port, &moves, 0.1))
        .await
        .expect("flick");
    settles_on(&rig.api, &[20]).await;
    let writes = rig.api.write_count();
    assert!(writes <= 6, "a flick is a few writes, not {writes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_faders_thrown_together_end_on_their_own_final_values() {
    let rig = rig(3).await;
    let finals = [20, 0, 13];
    // ~900 interleaved moves in 0.4 s, each fader sweeping up and down before its final value.
    let mut moves = Vec::new();
    for step in 0..300 {
        for (i, last) in finals.iter().enumerate() {
            let value = if step == 299 {
                *last as f32 / 20.0
            } else {
                ((step * (i + 3)) % 21) as f32 / 20.0
            };
            moves.push((format!("/1/fader{}", i + 1), value));
        }
    }
    let port = rig.bridge.osc_port;
    tokio::task::spawn_blocking(move || python_osc(port, &moves, 0.4))
        .await
        .expect("throw");
    settles_on(&rig.api, &finals).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_moves_over_eight_faders_land_and_the_logs_stay_bounded() {
    let rig = rig(8).await;
    let finals = [3, 17, 0, 20, 9, 11, 1, 6];
    let mut moves = Vec::new();
    for step in 0..2500 {
        for (i, last) in finals.iter().enumerate() {
            let value = if step == 2499 {
                *last as f32 / 20.0
            } else {
                ((step + i * 7) % 21) as f32 / 20.0
            };
            moves.push((format!("/1/fader{}", i + 1), value));
        }
    }
    let port = rig.bridge.osc_port;
    tokio::task::spawn_blocking(move || python_osc(port, &moves, 5.0))
        .await
        .expect("flood");
    settles_on(&rig.api, &finals).await;
    // 20,000 moves over ~5 s: at most a few lines per second from either program, not one per
    // event (17,744 WARN lines in 20 s before).
    let gateway = rig.gateway.process.output();
    let bridge = rig.bridge.process.output();
    assert!(
        warn_lines(&gateway) <= 20,
        "gateway warned {} times:\n{}",
        warn_lines(&gateway),
        gateway.join("\n")
    );
    assert!(
        warn_lines(&bridge) <= 20,
        "bridge warned {} times",
        warn_lines(&bridge)
    );
    assert!(gateway.len() < 400, "gateway wrote {} lines", gateway.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_reaches_the_phone_once_and_a_refused_move_comes_back_as_the_truth() {
    let rig = rig(1).await;
    let fader = |phone: &OscDump| {
        phone
            .messages()
            .iter()
            .filter(|m| m.contains(" /1/fader1 "))
            .count()
    };
    // The phone's first packet makes it a feedback client: a move to where the target is
    // already (0) writes nothing and is answered with the state.
    let port = rig.bridge.osc_port;
    tokio::task::spawn_blocking(move || {
        python_osc(port, &[("/1/fader1".to_owned(), 0.0)], 0.0);
    })
    .await
    .expect("first move");
    rig.phone.wait_for("/1/fader1", "f 0.000000");
    assert_eq!(rig.api.write_count(), 0, "0 is where t0 is already");
    // kubectl scales to 7, and its pods become ready one by one: the fader moves once, only the
    // label follows the ready count.
    rig.api
        .scale_externally(Kind::Deployment, "default", "t0", 7, "kubectl");
    rig.phone.wait_for("/1/fader1", "f 0.350000");
    for ready in 1..=7 {
        rig.api.set_ready(Kind::Deployment, "default", "t0", ready);
    }
    rig.phone.wait_for("/1/label1", "\"t0 7/7\"");
    // Deliberately give extra feedback 300 ms to show up: the counts below must not grow.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fader(&rig.phone), 2, "{:#?}", rig.phone.messages());
    assert!(
        rig.phone
            .messages()
            .iter()
            .filter(|m| m.contains(" /1/label1 "))
            .count()
            <= 9,
        "one label per change: {:#?}",
        rig.phone.messages()
    );

    // A move to the value the target already has changes nothing in the cluster: the phone's
    // fader, left at 0.5 by the hand, is sent back to 0.35.
    let before = fader(&rig.phone);
    tokio::task::spawn_blocking(move || {
        python_osc(port, &[("/1/fader1".to_owned(), 0.5)], 0.0);
    })
    .await
    .expect("move");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rig.api.replicas(Kind::Deployment, "default", "t0") != Some(10) {
        assert!(Instant::now() < deadline, "the move to 10 did not land");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.phone.wait_for("/1/fader1", "f 0.500000");
    let writes = rig.api.write_count();
    tokio::task::spawn_blocking(move || {
        python_osc(port, &[("/1/fader1".to_owned(), 0.52)], 0.0);
    })
    .await
    .expect("move");
    // 0.52 maps to 10 replicas, which the target has: no write, the truth comes back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fader(&rig.phone) < before + 2 {
        assert!(Instant::now() < deadline, "{:#?}", rig.phone.messages());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rig.api.write_count(), writes, "a no-op is not written");
    let last = rig.phone.messages();
    let last = last.iter().rev().find(|m| m.contains(" /1/fader1 "));
    assert!(last.is_some_and(|m| m.contains("f 0.500000")), "{last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_stopped_with_sigterm_closes_its_session_cleanly() {
    let rig = rig(1).await;
    let port = rig.bridge.osc_port;
    tokio::task::spawn_blocking(move || {
        python_osc(port, &[("/1/fader1".to_owned(), 0.25)], 0.0);
    })
    .await
    .expect("move");
    rig.gateway.process.wait_for(&["applied", "value=5"]);
    rig.bridge.process.terminate();
    rig.gateway
        .process
        .wait_for(&["session closed", "bridge closed the session"]);
    let lines = rig.gateway.process.output();
    assert!(
        !lines.iter().any(|l| l.contains("bad client message")),
        "{}",
        lines.join("\n")
    );
}
