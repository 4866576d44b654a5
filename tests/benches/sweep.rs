//! kubeknobs next to per-event apply, for the same fader moves: API writes, and the time from the
//! last move until the cluster holds the final value.
//!
//! The cluster is the fake API server (`tests/src/fakeapi`, which counts scale writes), with
//! every write of the scale subresource answered after `KUBEKNOBS_BENCH_API_MS` (default 10 ms;
//! a real API server takes milliseconds for a PATCH, more under load). The moves come from
//! python-osc over UDP, spread evenly over the scenario's time, ending on 1.0 (20 replicas).
//!
//! - **kubeknobs**: the release bridge and gateway (kube backend), default `[limits]` and a
//!   target of 0..=20 at the default 2 writes a second.
//! - **per-event apply**: a python-osc server whose handler PATCHes the scale subresource once
//!   per message, as a script that maps OSC straight to the API would (synchronously, one
//!   request at a time, over plain HTTP to the fake: no TLS, no client library, the cheapest
//!   per-event client there is).
//!
//! ```sh
//! cargo build --release --workspace --bins && cargo bench -p kubeknobs-tests --bench sweep
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kubeknobs_tests::fakeapi::{FakeApiServer, Fault, Kind};
use kubeknobs_tests::harness::{Bridge, Gateway, Process, gen_certs, python_with, token_hash};

const TOKEN: &str = "sweep-secret-token";
/// The replicas the moves end on (fader at 1.0).
const FINAL: i32 = 20;
/// How long convergence may take before the run fails.
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);

/// Moves of one scenario: `count` moves spread over `seconds`.
struct Scenario {
    name: &'static str,
    count: usize,
    seconds: f64,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "flick: 128 moves in 0.1 s",
        count: 128,
        seconds: 0.1,
    },
    Scenario {
        name: "sweep: 100 moves in 2 s",
        count: 100,
        seconds: 2.0,
    },
    Scenario {
        name: "slow sweep: 50 moves in 5 s",
        count: 50,
        seconds: 5.0,
    },
];

/// The per-event applier: one PATCH of the scale subresource per OSC message, in order.
const PER_EVENT: &str = r#"
import json, sys, urllib.request
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

url = sys.argv[1] + "/apis/apps/v1/namespaces/default/deployments/t0/scale"

def apply(address, value):
    body = json.dumps({"spec": {"replicas": round(value * 20)}}).encode()
    request = urllib.request.Request(url, data=body, method="PATCH",
        headers={"Content-Type": "application/merge-patch+json"})
    urllib.request.urlopen(request).read()

dispatcher = Dispatcher()
dispatcher.map("/1/fader1", apply)
server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
print("per-event apply listening on", server.server_address[1], flush=True)
server.serve_forever()
"#;

/// What one run measured.
struct Row {
    scenario: &'static str,
    subject: &'static str,
    moves: usize,
    writes: usize,
    converged: Duration,
}

#[tokio::main]
async fn main() {
    let api_latency = api_latency();
    let mut rows = Vec::new();
    for scenario in &SCENARIOS {
        for subject in ["kubeknobs", "per-event apply"] {
            let api = FakeApiServer::start().await;
            api.add(Kind::Deployment, "default", "t0", 0);
            let dir = tempfile::tempdir().expect("tempdir");
            let kubeconfig = api.kubeconfig(dir.path());
            let url = api.url();
            let path = dir.path().to_owned();
            // The programs under test, started off the runtime (their harness waits block).
            let running = tokio::task::spawn_blocking(move || match subject {
                "kubeknobs" => Subject::kubeknobs(&path, &kubeconfig),
                _ => Subject::per_event(&url),
            })
            .await
            .expect("start");
            // Only the moves' writes wait: the gateway's reads and watch are not slowed.
            api.inject(
                "PATCH",
                "/deployments/t0/scale",
                Fault::Delay(api_latency),
                1_000_000,
            );
            let before = api.write_count();
            let port = running.port();
            let (count, seconds) = (scenario.count, scenario.seconds);
            let sent = tokio::task::spawn_blocking(move || python_osc(port, count, seconds))
                .await
                .expect("python-osc");
            let converged = converge(&api, sent).await;
            // Writes still in flight after convergence are counted too.
            tokio::time::sleep(Duration::from_secs(1) + api_latency).await;
            assert_eq!(
                api.replicas(Kind::Deployment, "default", "t0"),
                Some(FINAL),
                "{subject} moved away from the final value after reaching it"
            );
            rows.push(Row {
                scenario: scenario.name,
                subject,
                moves: scenario.count,
                writes: api.write_count() - before,
                converged,
            });
            drop(running);
            api.stop().await;
        }
    }
    print(&rows, api_latency);
}

/// The API server's answer time for each write, from `KUBEKNOBS_BENCH_API_MS`.
fn api_latency() -> Duration {
    Duration::from_millis(kubeknobs_tests::knob::from_env(
        "KUBEKNOBS_BENCH_API_MS",
        0..=1000,
        10,
    ))
}

/// The program the moves go to.
enum Subject {
    Kubeknobs {
        gateway: Box<Gateway>,
        bridge: Box<Bridge>,
    },
    PerEvent {
        process: Process,
        port: u16,
    },
}

impl Subject {
    /// A gateway on the fake cluster and a bridge mapping `/1/fader1` (0..1) to `t0` (0..=20).
    fn kubeknobs(dir: &Path, kubeconfig: &Path) -> Subject {
        gen_certs(dir);
        let gateway = format!(
            "[server]\ntls_cert = \"certs/server.pem\"\ntls_key = \"certs/server.key\"\n\
             [cluster]\nbackend = \"kube\"\nkubeconfig = {:?}\n\
             [[operators]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\n\
             [targets.t0]\nkind = \"deployment-replicas\"\nname = \"t0\"\nmax = {FINAL}\n",
            kubeconfig.display().to_string(),
            token_hash(TOKEN)
        );
        let gateway = Gateway::start(dir, &gateway);
        std::fs::write(dir.join("token.txt"), TOKEN).expect("token");
        let mut bridge = String::new();
        write!(
            bridge,
            "bridge_id = \"sweep\"\n[gateway]\nurl = \"https://localhost:{}\"\nca = \"certs/ca.pem\"\n\
             token_file = \"token.txt\"\n[osc]\nlisten = \"127.0.0.1:0\"\n\
             [[osc.mappings]]\naddress = \"/1/fader1\"\ntarget = \"t0\"\nrange = [0.0, 1.0]\n",
            gateway.addr.port()
        )
        .expect("format");
        let bridge = Bridge::start(dir, &bridge);
        bridge.process.wait_for(&["connected", "alice"]);
        Subject::Kubeknobs {
            gateway: Box::new(gateway),
            bridge: Box::new(bridge),
        }
    }

    /// The per-event applier against the API server at `url`.
    fn per_event(url: &str) -> Subject {
        let python = python_with("pythonosc.osc_server", "python-osc");
        let mut command = Command::new(python);
        command.args(["-c", PER_EVENT, url]);
        let process = Process::spawn("per-event", command);
        let line = process.wait_for(&["per-event apply listening on"]);
        let port = line
            .rsplit(' ')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .expect("the applier's port");
        Subject::PerEvent { process, port }
    }

    /// Where the moves go.
    fn port(&self) -> u16 {
        match self {
            Subject::Kubeknobs { bridge, .. } => bridge.osc_port,
            Subject::PerEvent { port, .. } => *port,
        }
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        match self {
            Subject::Kubeknobs { gateway, bridge } => {
                bridge.process.terminate();
                gateway.process.terminate();
            }
            Subject::PerEvent { process, .. } => process.terminate(),
        }
    }
}

/// python-osc sends `count` moves of `/1/fader1` from near 0 up to 1.0 to `port`, spread over
/// `seconds`; returns when the last was sent (the sender says so on stdout right after it).
fn python_osc(port: u16, count: usize, seconds: f64) -> Instant {
    let python = python_with("pythonosc.udp_client", "python-osc");
    let script = r#"
import sys, time
from pythonosc.udp_client import SimpleUDPClient
port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
client = SimpleUDPClient("127.0.0.1", port)
gap = seconds / count
start = time.monotonic()
for i in range(1, count + 1):
    while time.monotonic() < start + (i - 1) * gap:
        pass
    client.send_message("/1/fader1", i / count)
print("last move sent", flush=True)
"#;
    let mut sender = Command::new(python)
        .args([
            "-c",
            script,
            &port.to_string(),
            &count.to_string(),
            &seconds.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run python-osc");
    let mut line = String::new();
    let stdout = sender.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read");
    let sent = Instant::now();
    assert_eq!(line.trim(), "last move sent", "python-osc failed");
    assert!(sender.wait().expect("python-osc").success());
    sent
}

/// The time from `sent` until `t0` has the final replicas.
async fn converge(api: &FakeApiServer, sent: Instant) -> Duration {
    loop {
        if api.replicas(Kind::Deployment, "default", "t0") == Some(FINAL) {
            return sent.elapsed();
        }
        assert!(
            sent.elapsed() < CONVERGE_WITHIN,
            "t0 never reached {FINAL} replicas"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn print(rows: &[Row], api_latency: Duration) {
    println!(
        "each scale write answered after {} ms; moves end on {FINAL} replicas",
        api_latency.as_millis()
    );
    println!(
        "{:<30} {:<16} {:>6} {:>11} {:>22}",
        "scenario", "subject", "moves", "API writes", "last move -> final (ms)"
    );
    for r in rows {
        println!(
            "{:<30} {:<16} {:>6} {:>11} {:>22.0}",
            r.scenario,
            r.subject,
            r.moves,
            r.writes,
            r.converged.as_secs_f64() * 1000.0
        );
    }
}
