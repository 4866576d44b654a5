//! Soak: the release gateway and bridge under a steady mixed load for a long time, reporting each
//! process's resident memory, open file descriptors and CPU use at intervals, to show they stay
//! flat. Not a test: it asserts nothing and takes as long as it is told.
//!
//! ```sh
//! cargo build --release --workspace --bins && cargo bench -p kubeknobs-tests --bench soak
//! ```
//!
//! `KUBEKNOBS_SOAK_SECS` sets the duration (default 600, ten minutes; a documented run is an
//! hour: 3600) and `KUBEKNOBS_SOAK_REPORT_SECS` the interval between rows (default 30). The load,
//! all on 127.0.0.1 with a real gRPC/TLS session between the two:
//! - a phone moving a mapped fader over UDP, 50 moves a second (the gateway coalesces and writes);
//! - junk over UDP: 200 datagrams a second, unknown addresses and garbage in turn;
//! - an OSC/TCP client connecting, sending one move and closing, twice a second;
//! - an unauthenticated client opening a raw TCP connection to the gateway and closing it at
//!   once, 10 a second.
//!
//! Results go in docs/soak.md.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kubeknobs_tests::footprint::Sample;
use kubeknobs_tests::pipeline::connected;

const SANDBOX: &str = "backend = \"sandbox\"";

/// An OSC message with one float argument, as bytes.
fn osc_float(address: &str, value: f32) -> Vec<u8> {
    let mut bytes = Vec::new();
    for text in [address, ",f"] {
        bytes.extend_from_slice(text.as_bytes());
        bytes.resize((bytes.len() / 4 + 1) * 4, 0);
    }
    bytes.extend_from_slice(&value.to_be_bytes());
    bytes
}

fn seconds(var: &str, default: u64) -> Duration {
    let secs = std::env::var(var)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{var}={v} is not a number of seconds"))
        })
        .unwrap_or(default);
    Duration::from_secs(secs.max(1))
}

/// Runs `each` every `period` until `stop`, counting the rounds.
fn every(
    period: Duration,
    stop: &Arc<AtomicBool>,
    count: &Arc<AtomicU64>,
    mut each: impl FnMut(u64) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let (stop, count) = (stop.clone(), count.clone());
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            each(n);
            n += 1;
            count.fetch_add(1, Ordering::Relaxed);
            let next = start + period * u32::try_from(n).unwrap_or(u32::MAX);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    })
}

/// Open file descriptors of process `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn main() {
    let duration = seconds("KUBEKNOBS_SOAK_SECS", 600);
    let report = seconds("KUBEKNOBS_SOAK_REPORT_SECS", 30);
    let p = connected(SANDBOX, ("default", "web"));
    let bridge_udp = SocketAddr::from(([127, 0, 0, 1], p.bridge.osc_port));
    let bridge_tcp = p
        .bridge
        .osc_tcp
        .expect("the pipeline's bridge has OSC over TCP");
    let gateway = p.gateway.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Vec<Arc<AtomicU64>> = (0..4).map(|_| Arc::default()).collect();

    let phone = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let junk = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let load = vec![
        every(Duration::from_millis(20), &stop, &counts[0], move |n| {
            let value = (n % 100) as f32 / 100.0;
            let _ = phone.send_to(&osc_float("/1/fader1", value), bridge_udp);
        }),
        every(Duration::from_millis(5), &stop, &counts[1], move |n| {
            let packet = if n % 2 == 0 {
                osc_float(&format!("/junk/{}", n % 1000), 1.0)
            } else {
                b"\x00\x01 not OSC".to_vec()
            };
            let _ = junk.send_to(&packet, bridge_udp);
        }),
        every(Duration::from_millis(500), &stop, &counts[2], move |n| {
            if let Ok(mut s) = TcpStream::connect(bridge_tcp) {
                let packet = osc_float("/1/fader1", (n % 10) as f32 / 10.0);
                let mut framed = u32::try_from(packet.len()).unwrap().to_be_bytes().to_vec();
                framed.extend(packet);
                let _ = s.write_all(&framed);
            }
        }),
        every(Duration::from_millis(100), &stop, &counts[3], move |_| {
            drop(TcpStream::connect(gateway));
        }),
    ];

    let procs = [
        ("gateway", p.gateway.process.pid()),
        ("bridge", p.bridge.process.pid()),
    ];
    println!(
        "soak: {} s, a row every {} s; load: 50 moves/s UDP, 200 junk datagrams/s, 2 OSC/TCP connections/s, 10 unauthenticated gateway connections/s",
        duration.as_secs(),
        report.as_secs()
    );
    println!(
        "{:>6}  {:>8} {:>9} {:>5} {:>6}  {:>8} {:>9} {:>5} {:>6}",
        "t (s)", "gateway", "RSS KiB", "fds", "CPU %", "bridge", "RSS KiB", "fds", "CPU %"
    );
    let start = Instant::now();
    let mut last: Vec<Sample> = procs.iter().map(|(_, pid)| Sample::of(*pid)).collect();
    let mut first_row: Option<Vec<(u64, usize)>> = None;
    let mut rows = Vec::new();
    while start.elapsed() < duration {
        std::thread::sleep(
            report
                .min(duration.saturating_sub(start.elapsed()))
                .max(Duration::from_millis(100)),
        );
        let now: Vec<Sample> = procs.iter().map(|(_, pid)| Sample::of(*pid)).collect();
        let row: Vec<(u64, usize, f64)> = procs
            .iter()
            .zip(now.iter().zip(&last))
            .map(|((_, pid), (now, before))| {
                let cpu = (now.cpu - before.cpu).as_secs_f64() / (now.at - before.at).as_secs_f64()
                    * 100.0;
                (now.rss_kib, fds(*pid), cpu)
            })
            .collect();
        println!(
            "{:>6}  {:>8} {:>9} {:>5} {:>6.1}  {:>8} {:>9} {:>5} {:>6.1}",
            start.elapsed().as_secs(),
            "",
            row[0].0,
            row[0].1,
            row[0].2,
            "",
            row[1].0,
            row[1].1,
            row[1].2
        );
        first_row.get_or_insert_with(|| row.iter().map(|r| (r.0, r.1)).collect());
        rows.push(row);
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    for thread in load {
        let _ = thread.join();
    }
    let sent: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    println!(
        "sent: {} moves, {} junk datagrams, {} OSC/TCP connections, {} raw gateway connections",
        sent[0], sent[1], sent[2], sent[3]
    );
    if let (Some(first), Some(end)) = (first_row, rows.last()) {
        for (i, (name, _)) in procs.iter().enumerate() {
            let peak = rows.iter().map(|r| r[i].0).max().unwrap_or(0);
            println!(
                "{name}: RSS {} → {} KiB (peak {peak}), fds {} → {}",
                first[i].0, end[i].0, first[i].1, end[i].1
            );
        }
    }
    assert!(p.gateway.process.is_running() && p.bridge.process.is_running());
}
