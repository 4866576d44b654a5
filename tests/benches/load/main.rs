//! The gateway under load: N sessions × a rate of control events over a set of targets (distinct
//! or shared), plus listeners, against the real `kubeknobs-gateway` binary with the sandbox
//! backend on 127.0.0.1, each session its own gRPC+TLS connection as a bridge's is.
//!
//! It reports outcome latency (p50/p90/p99/max), events/s, the gateway's CPU-ms per 1,000
//! events and RSS per session (from `/proc/<gateway pid>`), `StateUpdate`s per session per
//! second, fan-out latency (a change of the probe target → every session's update) and connect
//! time (all sessions connect at once: a connect storm). It fails if an event goes unanswered,
//! if a session falls, or if the state the gateway ends with is not the last value sent to each
//! target. Everything is bounded: at most 2,000 senders and 2,000 listeners, 120 s of events,
//! 100 probes, and every wait has a deadline.
//!
//! ```sh
//! cargo build --release -p kubeknobs-gateway
//! KUBEKNOBS_LOAD_SESSIONS=100 KUBEKNOBS_LOAD_RATE=10 KUBEKNOBS_LOAD_TARGETS=5 \
//!   cargo bench -p kubeknobs-tests --bench load
//! ```
//!
//! `cargo test -p kubeknobs-tests --bench load` runs it against the debug build (CI's smoke run).
//! The variables are in `plan.rs`; docs/performance.md has the measured table.

mod client;
mod plan;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kubeknobs_tests::footprint::Sample;
use kubeknobs_tests::harness::{Process, address_after, binary, gen_certs, token_hash};
use tokio::sync::Barrier;
use tokio::time::Instant;

use client::{Link, Open, PROBE, Probe, Reader, Tally, control};
use plan::{MAX_REPLICAS, Plan};

/// Sessions per operator (the gateway allows at most 1,000).
const PER_OPERATOR: usize = 250;
/// How long the answers to every event, and the final state, may take after the events stop.
const DRAIN: Duration = Duration::from_secs(30);
/// How long one probe change may take to reach every session.
const PROBE_DEADLINE: Duration = Duration::from_secs(10);

fn main() {
    let plan = Plan::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    gen_certs(dir.path());
    std::fs::write(dir.path().join("gateway.toml"), gateway_config(&plan)).expect("config");
    // The gateway next to this executable (release for `cargo bench`), or the one named.
    let program = std::env::var_os("KUBEKNOBS_LOAD_GATEWAY")
        .map_or_else(|| binary("kubeknobs-gateway"), std::path::PathBuf::from);
    let mut command = std::process::Command::new(program);
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path().join("gateway.toml"))
        .env("RUST_LOG", &plan.log);
    let gateway = Process::spawn("gateway", command);
    let addr = address_after(
        &gateway.wait_for(&["gRPC listening on"]),
        "gRPC listening on",
    );
    let ca = std::fs::read_to_string(dir.path().join("certs/ca.pem")).expect("ca.pem");
    let link = Link {
        port: addr.port(),
        ca,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime.block_on(run(&plan, link, gateway.pid()));
    gateway.terminate();
    gateway.wait_exit();
    report.print(&plan);
    if let Err(problem) = report.verdict() {
        eprintln!("FAILED: {problem}");
        std::process::exit(1);
    }
}

fn gateway_config(plan: &Plan) -> String {
    let mut text = format!(
        "[server]\ntls_cert = \"certs/server.pem\"\ntls_key = \"certs/server.key\"\n\
         state_updates_per_second = {}\n\
         max_pending_connections = 100000\nmax_pending_per_peer = 100000\n\n[cluster]\nbackend = \"sandbox\"\n\n\
         [limits]\nevents_per_second = 100000\nsessions_per_operator = 1000\nwrites_per_second = 1000\n",
        plan.frame_rate
    );
    for k in 0..plan.connections().div_ceil(PER_OPERATOR) {
        text += &format!(
            "\n[[operators]]\nname = \"load{k}\"\ntoken_sha256 = \"{}\"\n",
            token_hash(&token(k))
        );
    }
    let targets = (0..plan.targets).map(|t| format!("t{t}"));
    for name in targets.chain([PROBE.to_owned()]) {
        let max = if name == PROBE { 101 } else { MAX_REPLICAS };
        text += &format!(
            "\n[targets.{name}]\nkind = \"deployment-replicas\"\nnamespace = \"load\"\nname = \"{name}\"\n\
             max = {max}\ninitial = 0\nmax_writes_per_second = 100\n"
        );
    }
    text
}

fn token(operator: usize) -> String {
    format!("load-token-{operator}")
}

/// Everything one run measured.
struct Report {
    connect: Vec<Duration>,
    storm: Duration,
    /// The gateway's and the generator's CPU during the storm.
    storm_cpu: (Duration, Duration),
    /// From the storm's start until presence named every session.
    settled: Duration,
    rss_before_kib: u64,
    rss_connected_kib: u64,
    tallies: Vec<Tally>,
    listener_updates: Vec<u64>,
    events_for: Duration,
    gateway_cpu: Duration,
    /// The gateway's CPU from the start of events until the last probe arrived everywhere.
    probing_cpu: Duration,
    own_cpu: Duration,
    fanout: Vec<Duration>,
    fanout_last: Vec<Duration>,
    probes_missed: usize,
    finals: Result<usize, String>,
}

async fn run(plan: &Plan, link: Link, pid: u32) -> Report {
    let rss_before_kib = Sample::of(pid).rss_kib;
    // The connect storm: every session at once.
    let storm_cpu = (Sample::of(pid).cpu, Sample::of(std::process::id()).cpu);
    let storm_start = Instant::now();
    // Each its own task, as bridges are their own processes: the TLS handshakes of one
    // `join_all` would all run on one thread of the generator.
    let opens = (0..plan.connections()).map(|i| {
        let link = link.clone();
        tokio::spawn(async move {
            link.open(&token(i / PER_OPERATOR), &format!("load-{i}"))
                .await
                .unwrap_or_else(|e| panic!("session {i}: {e}"))
        })
    });
    let mut opened: Vec<Open> = join_all(opens)
        .await
        .into_iter()
        .map(|o| o.expect("a session's connect"))
        .collect();
    let storm = storm_start.elapsed();
    let storm_cpu = (
        Sample::of(pid).cpu - storm_cpu.0,
        Sample::of(std::process::id()).cpu - storm_cpu.1,
    );
    let connect = opened.iter().map(|o| o.took).collect();
    // The storm is over when the presence lists have caught up with it: the checker is told
    // every session. Events and probes start after that (and half a second more).
    let checker = opened.pop().expect("checker");
    let mut checking = Reader::new(checker.rx, &checker.welcome, None, Instant::now());
    let settle_by = Instant::now() + DRAIN;
    while checking.present < plan.connections() {
        match tokio::time::timeout_at(settle_by, checking.read()).await {
            Ok(read) => read.unwrap_or_else(|e| panic!("checker: {e}")),
            Err(_) => panic!("presence never listed all {} sessions", plan.connections()),
        }
    }
    let settled = storm_start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected_kib = Sample::of(pid).rss_kib;

    let probe = Arc::new(Probe::default());
    let prober = opened.pop().expect("prober");
    let listeners = opened.split_off(plan.sessions);
    let senders = opened;
    // Senders and listeners: the probe's audience.
    let audience = plan.sessions + plan.listeners;
    let barrier = Arc::new(Barrier::new(plan.sessions + 1));
    let stop_listening = tokio_util::sync::CancellationToken::new();

    let gateway_before = Sample::of(pid);
    let own_before = Sample::of(std::process::id());
    let start = Instant::now() + Duration::from_millis(100);
    let stop = start + plan.duration;
    let sender_tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, open)| {
            let plan = plan.clone();
            let (probe, barrier) = (probe.clone(), barrier.clone());
            let end = stop_listening.clone();
            tokio::spawn(send(plan, i, open, probe, barrier, (start, stop), end))
        })
        .collect();
    let listener_tasks: Vec<_> = listeners
        .into_iter()
        .map(|open| {
            let mut reader = Reader::new(open.rx, &open.welcome, Some(probe.clone()), stop);
            let stop = stop_listening.clone();
            tokio::spawn(async move {
                let _keep = open.tx;
                loop {
                    tokio::select! {
                        read = reader.read() => read.unwrap_or_else(|e| panic!("listener: {e}")),
                        () = stop.cancelled() => return reader.tally.updates,
                    }
                }
            })
        })
        .collect();
    let checking = tokio::spawn(watch_finals(checker.tx, checking, stop_listening.clone()));
    let probing = tokio::spawn(run_probes(
        prober,
        plan.clone(),
        probe.clone(),
        audience,
        start,
    ));

    // The senders stop, and all their events are answered, before the last values go out.
    let bound = plan.duration + DRAIN + Duration::from_secs(10);
    if tokio::time::timeout(bound, barrier.wait()).await.is_err() {
        panic!("the senders did not finish within {bound:?} (one failed: see above)");
    }
    let events_for = start.elapsed();
    let gateway_after = Sample::of(pid);
    let own_after = Sample::of(std::process::id());
    let probes_missed = probing.await.expect("prober");
    let probing_cpu = Sample::of(pid).cpu - gateway_before.cpu;
    let finals: std::collections::HashMap<String, f64> = (0..plan.targets.min(plan.sessions))
        .map(|t| (format!("t{t}"), final_value(t)))
        .collect();
    let finals = checking.await.expect("checker")(finals).await;
    stop_listening.cancel();
    let mut tallies = Vec::new();
    for task in sender_tasks {
        tallies.push(task.await.expect("sender"));
    }
    let listener_updates = join_all(listener_tasks)
        .await
        .into_iter()
        .map(|r| r.expect("listener"))
        .collect();
    let (fanout, fanout_last) = probe.delays();
    Report {
        connect,
        storm,
        storm_cpu,
        settled,
        rss_before_kib,
        rss_connected_kib,
        tallies,
        listener_updates,
        events_for,
        gateway_cpu: gateway_after.cpu - gateway_before.cpu,
        probing_cpu,
        own_cpu: own_after.cpu - own_before.cpu,
        fanout,
        fanout_last,
        probes_missed,
        finals,
    }
}

/// The last value the first session of target `t` sends it.
fn final_value(t: usize) -> f64 {
    ((t * 7 + 3) % (MAX_REPLICAS as usize + 1)) as f64
}

/// One sender: events at the plan's rate from `start` until `stop`, then every answer, then
/// (the first session of each target) the target's final value; it reads (and sees probes)
/// until `end`.
async fn send(
    plan: Plan,
    i: usize,
    open: Open,
    probe: Arc<Probe>,
    barrier: Arc<Barrier>,
    (start, stop): (Instant, Instant),
    end: tokio_util::sync::CancellationToken,
) -> Tally {
    let target = plan.target_of(i);
    let mut reader = Reader::new(open.rx, &open.welcome, Some(probe), stop);
    let period = Duration::from_secs_f64(1.0 / plan.rate);
    // Sessions start spread over one period, as independent bridges would.
    let offset = period.mul_f64(i as f64 / plan.sessions.max(1) as f64);
    let mut tick = tokio::time::interval_at(start + offset, period);
    let mut seq = 0u64;
    let failed = |e: String| -> ! { panic!("sender {i}: {e}") };
    loop {
        tokio::select! {
            at = tick.tick() => {
                if at >= stop { break }
                seq += 1;
                let value = ((seq + i as u64) % (MAX_REPLICAS as u64 + 1)) as f64;
                reader.sent(seq);
                if open.tx.send(control(seq, &target, value)).await.is_err() {
                    failed("the session's sender closed".into());
                }
            }
            read = reader.read() => read.unwrap_or_else(|e| failed(e)),
        }
    }
    let deadline = Instant::now() + DRAIN;
    while reader.unanswered() > 0 {
        match tokio::time::timeout_at(deadline, reader.read()).await {
            Ok(read) => read.unwrap_or_else(|e| failed(e)),
            Err(_) => failed(format!("{} events unanswered", reader.unanswered())),
        }
    }
    let everyone = barrier.wait();
    tokio::pin!(everyone);
    loop {
        tokio::select! {
            _ = &mut everyone => break,
            read = reader.read() => read.unwrap_or_else(|e| failed(e)),
        }
    }
    let first_of_target = i < plan.targets;
    if first_of_target {
        seq += 1;
        let t = i % plan.targets;
        reader.sent(seq);
        let _ = open.tx.send(control(seq, &target, final_value(t))).await;
        while reader.unanswered() > 0 {
            match tokio::time::timeout_at(deadline, reader.read()).await {
                Ok(read) => read.unwrap_or_else(|e| failed(e)),
                Err(_) => failed("the final value went unanswered".into()),
            }
        }
        reader.tally.sent -= 1;
        reader.tally.latencies.pop();
    }
    loop {
        tokio::select! {
            () = end.cancelled() => return reader.tally,
            read = reader.read() => read.unwrap_or_else(|e| failed(e)),
        }
    }
}

/// The prober: changes the probe target `plan.probes` times during the run and waits each time
/// for every session to show it. Returns how many (probe, session) arrivals never came.
async fn run_probes(
    open: Open,
    plan: Plan,
    probe: Arc<Probe>,
    audience: usize,
    start: Instant,
) -> usize {
    let mut reader = Reader::new(open.rx, &open.welcome, None, start);
    let spacing = (plan.duration / plan.probes.max(1) as u32).max(Duration::from_millis(300));
    let mut missed = 0;
    for n in 0..plan.probes {
        let at = start + spacing * n as u32 + spacing / 2;
        // Keep reading (outcomes, states) until it is time.
        while Instant::now() < at {
            let _ = tokio::time::timeout_at(at, reader.read()).await;
        }
        let value = n as i64 + 1;
        probe.sending(value);
        let _ = open
            .tx
            .send(control(n as u64 + 1, PROBE, value as f64))
            .await;
        let deadline = Instant::now() + PROBE_DEADLINE;
        let waiting = probe.wait(value, audience, deadline);
        tokio::pin!(waiting);
        let arrived = loop {
            tokio::select! {
                arrived = &mut waiting => break arrived,
                _ = reader.read() => {}
            }
        };
        missed += audience - arrived.min(audience);
    }
    missed
}

type FinalCheck = Box<
    dyn FnOnce(
            std::collections::HashMap<String, f64>,
        ) -> futures::future::BoxFuture<'static, Result<usize, String>>
        + Send,
>;

/// The checker: a session that follows every target from the start; at the end it waits until
/// what it was told matches the last value sent to each target.
async fn watch_finals(
    keep: tokio::sync::mpsc::Sender<kubeknobs_proto::v1::ClientMessage>,
    mut reader: Reader,
    stop: tokio_util::sync::CancellationToken,
) -> FinalCheck {
    // Read in the background until the finals are known, so the session never lags.
    let (tx, mut rx) = tokio::sync::watch::channel(std::collections::HashMap::new());
    let reading = tokio::spawn(async move {
        let _keep = keep;
        loop {
            tx.send_replace(reader.desired.clone());
            tokio::select! {
                read = reader.read() => read?,
                () = stop.cancelled() => return Ok::<(), String>(()),
            }
        }
    });
    Box::new(move |finals| {
        Box::pin(async move {
            let deadline = Instant::now() + DRAIN;
            let matches = |seen: &std::collections::HashMap<String, f64>| {
                finals.iter().all(|(t, v)| seen.get(t) == Some(v))
            };
            let waited = tokio::time::timeout_at(deadline, rx.wait_for(matches))
                .await
                .map(|seen| seen.map(drop));
            match waited {
                Ok(Ok(())) => Ok(finals.len()),
                Ok(Err(_)) => Err(format!(
                    "the checker's session ended: {:?}",
                    reading.await.map_err(|e| e.to_string())
                )),
                Err(_) => {
                    let seen = rx.borrow().clone();
                    let wrong: Vec<String> = finals
                        .iter()
                        .filter(|(t, v)| seen.get(*t) != Some(v))
                        .map(|(t, v)| format!("{t}: sent {v}, gateway says {:?}", seen.get(t)))
                        .collect();
                    Err(format!("final state differs: {}", wrong.join("; ")))
                }
            }
        })
    })
}

mod report;
