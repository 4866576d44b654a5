//! The bridge's OSC intake next to a python-osc relay, measured the same way.
//!
//! A sender on this machine offers OSC fader moves (`/1/fader1 f <v>`, one per datagram) over
//! UDP at a fixed rate for a few seconds to each subject in turn:
//!
//! - the release bridge (or `KUBEKNOBS_BRIDGE_BINARY`, e.g. the lean Pi build), connected to a
//!   sandbox gateway over gRPC+TLS on loopback, mapping each move to a `ControlEvent`;
//! - a python-osc relay (`BlockingOSCUDPServer` with a default handler that forwards each message
//!   with `SimpleUDPClient`) to a UDP sink, the smallest useful Python program doing the same
//!   intake and one send per move.
//!
//! Per subject and rate it prints what was handled per second (the bridge: datagrams it parsed
//! and moves it sent up, from its `/metrics`; the relay: datagrams that reached the sink), what
//! was lost (offered but not handled; the kernel's count of datagrams dropped at a full socket
//! buffer, from `/proc/net/udp`, beside it), CPU-ms per 1,000 datagrams offered and RSS, from
//! `/proc/<pid>`. The sender and the subject share the machine.
//!
//! ```sh
//! cargo build --release --workspace --bins && cargo bench -p kubeknobs-tests --bench osc_relay
//! ```
//!
//! `KUBEKNOBS_BENCH_RATES` (datagrams per second, comma-separated, each 100..=200000; default
//! `10000,30000,50000`) and `KUBEKNOBS_BENCH_SECS` (1..=60, default 5) set the offered load.

use std::net::UdpSocket;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kubeknobs_tests::footprint::Sample;
use kubeknobs_tests::harness::{Process, http_get, python_with};
use kubeknobs_tests::pipeline::connected;

const SANDBOX: &str = "backend = \"sandbox\"";
const WEB: (&str, &str) = ("default", "web");
/// Sends are paced in slices this long.
const SLICE: Duration = Duration::from_millis(1);

/// The relay: every message that arrives is sent on to the sink as it came.
const RELAY: &str = r#"
import sys
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

sink = SimpleUDPClient("127.0.0.1", int(sys.argv[1]))

def forward(address, *args):
    sink.send_message(address, list(args))

dispatcher = Dispatcher()
dispatcher.set_default_handler(forward)
server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
print("relay listening on", server.server_address[1], flush=True)
server.serve_forever()
"#;

/// One measured run.
struct Row {
    subject: &'static str,
    offered: u64,
    secs: f64,
    handled: u64,
    forwarded: u64,
    kernel_drops: u64,
    cpu: Duration,
    rss_kib: u64,
}

fn main() {
    let (rates, secs) = plan();
    let mut rows = Vec::new();

    let p = connected(SANDBOX, WEB);
    let bridge = p.bridge.process.pid();
    let ops = p.bridge.ops.expect("the pipeline's bridge has an ops port");
    for &rate in &rates {
        let before = (
            Sample::of(bridge),
            bridge_counts(ops),
            drops(p.bridge.osc_port),
        );
        let (offered, took) = offer(p.bridge.osc_port, rate, secs);
        // What is still queued is handled within a moment.
        std::thread::sleep(Duration::from_millis(500));
        let after = (
            Sample::of(bridge),
            bridge_counts(ops),
            drops(p.bridge.osc_port),
        );
        rows.push(Row {
            subject: "kubeknobs-bridge",
            offered,
            secs: took.as_secs_f64(),
            handled: after.1.0 - before.1.0,
            forwarded: after.1.1 - before.1.1,
            kernel_drops: after.2 - before.2,
            cpu: after.0.cpu - before.0.cpu,
            rss_kib: after.0.rss_kib,
        });
    }
    drop(p);

    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind the sink");
    let sink_port = sink.local_addr().expect("sink address").port();
    let received = Arc::new(AtomicU64::new(0));
    let counting = received.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while sink.recv(&mut buf).is_ok() {
            counting.fetch_add(1, Ordering::Relaxed);
        }
    });
    let python = python_with("pythonosc.osc_server", "python-osc");
    let mut command = Command::new(python);
    command.args(["-c", RELAY, &sink_port.to_string()]);
    let relay = Process::spawn("relay", command);
    let line = relay.wait_for(&["relay listening on"]);
    let port: u16 = line
        .rsplit(' ')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("the relay's port");
    for &rate in &rates {
        let before = (
            Sample::of(relay.pid()),
            received.load(Ordering::Relaxed),
            drops(port),
        );
        let (offered, took) = offer(port, rate, secs);
        std::thread::sleep(Duration::from_millis(500));
        let after = (
            Sample::of(relay.pid()),
            received.load(Ordering::Relaxed),
            drops(port),
        );
        let relayed = after.1 - before.1;
        rows.push(Row {
            subject: "python-osc relay",
            offered,
            secs: took.as_secs_f64(),
            handled: relayed,
            forwarded: relayed,
            kernel_drops: after.2 - before.2,
            cpu: after.0.cpu - before.0.cpu,
            rss_kib: after.0.rss_kib,
        });
    }
    relay.terminate();
    print_table(&rows);
}

/// The offered rates and each run's length, from the environment.
fn plan() -> (Vec<u64>, Duration) {
    let rates = match std::env::var("KUBEKNOBS_BENCH_RATES") {
        Ok(text) => text
            .split(',')
            .map(|r| {
                r.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|r| (100..=200_000).contains(r))
                    .unwrap_or_else(|| {
                        panic!("KUBEKNOBS_BENCH_RATES={text:?}: want rates of 100 to 200000")
                    })
            })
            .collect(),
        Err(_) => vec![10_000, 30_000, 50_000],
    };
    let secs = kubeknobs_tests::knob::from_env("KUBEKNOBS_BENCH_SECS", 1..=60, 5);
    (rates, Duration::from_secs(secs))
}

/// Sends `/1/fader1 f <v>` datagrams to `port` at `rate` a second for `secs`; returns how many
/// were sent and how long it took.
fn offer(port: u16, rate: u64, secs: Duration) -> (u64, Duration) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    socket.connect(("127.0.0.1", port)).expect("connect");
    let datagrams: Vec<Vec<u8>> = (0..=100)
        .map(|i| fader(f32::from(i as u8) / 100.0))
        .collect();
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < secs {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            // A full socket buffer on our side would be the sender's loss, not the subject's.
            if socket.send(&datagrams[(sent % 101) as usize]).is_ok() {
                sent += 1;
            }
        }
        std::thread::sleep(SLICE);
    }
    (sent, start.elapsed())
}

/// One OSC message `/1/fader1 ,f value`.
fn fader(value: f32) -> Vec<u8> {
    let mut datagram = b"/1/fader1\0\0\0,f\0\0".to_vec();
    datagram.extend_from_slice(&value.to_be_bytes());
    datagram
}

/// The bridge's datagrams parsed (`osc_packets{result="ok"}`) and moves sent up
/// (`moves{result="sent"}`), from its `/metrics`.
fn bridge_counts(ops: std::net::SocketAddr) -> (u64, u64) {
    let (status, body) = http_get(ops, "/metrics");
    assert_eq!(status, 200, "{body}");
    let count = |metric: &str| -> u64 {
        body.lines()
            .find(|l| l.starts_with(metric))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    (
        count("kubeknobs_bridge_osc_packets_total{result=\"ok\"}"),
        count("kubeknobs_bridge_moves_total{result=\"sent\"}"),
    )
}

/// The kernel's count of datagrams dropped at the UDP socket bound to 127.0.0.1:`port`.
fn drops(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/udp").expect("read /proc/net/udp");
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&local.as_str()))
        .and_then(|f| f.last()?.parse().ok())
        .unwrap_or(0)
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<18} {:>9} {:>9} {:>11} {:>8} {:>9} {:>9} {:>8} {:>7}",
        "subject",
        "offered/s",
        "handled/s",
        "forwarded/s",
        "lost %",
        "drops",
        "CPU-ms/1k",
        "CPU %",
        "RSS MiB"
    );
    for r in rows {
        let lost = r.offered.saturating_sub(r.handled) as f64 * 100.0 / r.offered.max(1) as f64;
        println!(
            "{:<18} {:>9.0} {:>9.0} {:>11.0} {:>8.2} {:>9} {:>9.1} {:>8.1} {:>7.1}",
            r.subject,
            r.offered as f64 / r.secs,
            r.handled as f64 / r.secs,
            r.forwarded as f64 / r.secs,
            lost,
            r.kernel_drops,
            r.cpu.as_secs_f64() * 1e6 / r.offered.max(1) as f64,
            r.cpu.as_secs_f64() * 100.0 / r.secs,
            r.rss_kib as f64 / 1024.0,
        );
    }
    println!(
        "handled: the bridge's datagrams parsed, the relay's datagrams that reached the sink; \
         forwarded: the bridge's moves sent to the gateway; drops: the kernel's count at the \
         subject's socket; CPU per 1,000 datagrams offered, % of one core over the run."
    );
}
