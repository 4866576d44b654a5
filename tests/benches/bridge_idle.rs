//! What the bridge costs when nobody touches a knob. Runs the release bridge against a sandbox
//! gateway over gRPC+TLS on loopback and reads its CPU time, memory, threads and storage writes
//! from `/proc/<bridge pid>` around three phases: idle while connected, a fader sweep from a
//! "phone" (liblo's `oscsend` over real UDP), and idle with the gateway gone (reconnect backoff
//! running). Prints one row per phase.
//!
//! ```sh
//! cargo build --release --workspace --bins && cargo bench -p kubeknobs-tests --bench bridge_idle
//! ```
//!
//! `KUBEKNOBS_BENCH_IDLE_SECS` sets each idle phase's length (1 to 600 seconds, default 30).
//! `KUBEKNOBS_BRIDGE_BINARY` runs another bridge build, e.g. the lean one a Pi runs:
//!
//! ```sh
//! cargo build --profile lean -p kubeknobs-bridge --no-default-features
//! KUBEKNOBS_BRIDGE_BINARY=target/lean/kubeknobs-bridge cargo bench -p kubeknobs-tests --bench bridge_idle
//! ```

use std::time::Duration;

use kubeknobs_tests::footprint::{Sample, calibrate_write_bytes};
use kubeknobs_tests::harness::osc_send;
use kubeknobs_tests::pipeline::{Pipeline, connected};

const SANDBOX: &str = "backend = \"sandbox\"";
const WEB: (&str, &str) = ("default", "web");
/// Fader moves in the sweep, from 0 to 1 (0 to 20 replicas).
const SWEEP_MOVES: u32 = 100;
/// Time between moves: 50 a second, a finger dragging a fader on a phone.
const MOVE_INTERVAL: Duration = Duration::from_millis(20);
/// Time for the bridge to finish starting up before anything is measured.
const SETTLE: Duration = Duration::from_secs(3);

/// A measured phase: the bridge's counters before and after.
struct Row {
    phase: String,
    before: Sample,
    after: Sample,
}

fn main() {
    let idle = idle_duration();
    let p = connected(SANDBOX, WEB);
    let pid = p.bridge.process.pid();
    std::thread::sleep(SETTLE);

    let mut rows = vec![measure(pid, "idle, connected", || std::thread::sleep(idle))];
    let sweep = format!("sweep, {SWEEP_MOVES} moves");
    rows.push(measure(pid, &sweep, || fader_sweep(&p)));

    p.gateway.process.terminate();
    p.gateway.process.wait_exit();
    p.bridge.process.wait_for(&["gateway session ended"]);
    rows.push(measure(pid, "idle, gateway gone", || {
        std::thread::sleep(idle)
    }));

    print_table(&rows);
    match calibrate_write_bytes(p.dir.path()) {
        Some(bytes) if bytes > 0 => {
            println!("disk: /proc/<pid>/io write_bytes counted {bytes} B for a 64 KiB file write")
        }
        other => println!(
            "disk: NOT MEASURABLE here, write_bytes counted {other:?} for a 64 KiB file write"
        ),
    }
}

/// Each idle phase's length, from `KUBEKNOBS_BENCH_IDLE_SECS`.
fn idle_duration() -> Duration {
    Duration::from_secs(kubeknobs_tests::knob::from_env(
        "KUBEKNOBS_BENCH_IDLE_SECS",
        1..=600,
        30,
    ))
}

/// Runs `run` between two readings of process `pid`, as the row for `phase`.
fn measure(pid: u32, phase: &str, run: impl FnOnce()) -> Row {
    let before = Sample::of(pid);
    run();
    Row {
        phase: phase.to_owned(),
        before,
        after: Sample::of(pid),
    }
}

/// Moves the fader up to 1 in [`SWEEP_MOVES`] steps and waits until the phone shows the cluster at 20 replicas.
fn fader_sweep(p: &Pipeline) {
    for step in 1..=SWEEP_MOVES {
        let value = f64::from(step) / f64::from(SWEEP_MOVES);
        osc_send(p.bridge.osc_port, "/1/fader1", "f", &value.to_string());
        std::thread::sleep(MOVE_INTERVAL);
    }
    p.phone.wait_for("/1/fader1", "f 1.000000");
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<22} {:>6} {:>7} {:>8} {:>8} {:>10} {:>8} {:>9} {:>7} {:>10}",
        "phase",
        "secs",
        "CPU %",
        "CPU ms/s",
        "ns CPU %",
        "wakeups/s",
        "RSS MiB",
        "peak MiB",
        "threads",
        "disk bytes"
    );
    for Row {
        phase,
        before,
        after,
    } in rows
    {
        let secs = (after.at - before.at).as_secs_f64();
        let [percent, ms_per_s] = cpu_columns(after.cpu - before.cpu, secs);
        let on_cpu = after.on_cpu.saturating_sub(before.on_cpu);
        let wakeups = after.switches.saturating_sub(before.switches) as f64 / secs;
        println!(
            "{phase:<22} {secs:>6.1} {percent:>7} {ms_per_s:>8} {:>8.4} {wakeups:>10.1} {:>8.1} {:>9.1} {:>7} {:>10}",
            on_cpu.as_secs_f64() * 100.0 / secs,
            mib(after.rss_kib),
            mib(after.peak_rss_kib),
            after.threads,
            after.write_bytes - before.write_bytes,
        );
    }
    println!(
        "CPU is utime+stime of all the bridge's threads ({} ms resolution); ns CPU is the time on a \
         CPU of its live threads (schedstat, nanoseconds), wakeups their context switches; RSS is \
         at the end of a phase, peak since the bridge started.",
        1000 / rustix::param::clock_ticks_per_second()
    );
}

/// CPU % of one core and CPU milliseconds per second over a phase of `secs` seconds. Less than
/// one clock tick in a whole phase shows as no time at all, so then the tick is the bound (`<`).
fn cpu_columns(cpu: Duration, secs: f64) -> [String; 2] {
    let tick = Duration::from_secs(1) / rustix::param::clock_ticks_per_second() as u32;
    let (bound, cpu) = if cpu.is_zero() {
        ("<", tick)
    } else {
        ("", cpu)
    };
    let ms_per_s = cpu.as_secs_f64() * 1000.0 / secs;
    // 1000 ms/s is 100 % of one core; rounded up, so that a bound stays one.
    [ms_per_s / 10.0, ms_per_s].map(|x| format!("{bound}{:.3}", (x * 1000.0).ceil() / 1000.0))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
