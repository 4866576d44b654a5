//! Leader election on a Lease, with real gateway processes against the fake API server: only
//! the holder serves sessions (and so writes), a standby is not ready and refuses sessions, and
//! it takes over when the holder shuts down (at once: the Lease is released), dies (once the
//! Lease has gone unrenewed for its duration), or a holder that cannot renew stops.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use kubeknobs_tests::fakeapi::{FakeApiServer, Kind};
use kubeknobs_tests::harness::{
    Bridge, DEADLINE, Gateway, address_after, free_udp_port, gen_certs, osc_send, wait_for_http,
    wait_for_http_saying,
};
use kubeknobs_tests::pipeline::{TOKEN, bridge_config, gateway_config};

const NAMESPACE: &str = "kubeknobs";
const LEASE: &str = "kubeknobs-gateway";

/// A gateway of the election on `api`, with its ops port.
struct Candidate {
    gateway: Gateway,
    ops: SocketAddr,
}

/// Starts a gateway in `dir` (with its own copy of `certs`) for target `web` on `api`, in the
/// election for a 2 s Lease.
fn candidate(dir: &Path, certs: &Path, kubeconfig: &Path) -> Candidate {
    std::fs::create_dir_all(dir.join("certs")).expect("mkdir certs");
    for file in ["ca.pem", "server.pem", "server.key"] {
        std::fs::copy(certs.join(file), dir.join("certs").join(file)).expect("copy certs");
    }
    let cluster = format!(
        "backend = \"kube\"\nkubeconfig = {:?}\n\n[cluster.leader_election]\nnamespace = \"{NAMESPACE}\"\nlease = \"{LEASE}\"\nduration_secs = 2\n",
        kubeconfig.display().to_string()
    );
    let config = gateway_config(&cluster, "default", "web")
        .replace("[server]\n", "[server]\nops_listen = \"127.0.0.1:0\"\n");
    let gateway = Gateway::start(dir, &config);
    let line = gateway.process.wait_for(&["ops listening on"]);
    let ops = address_after(&line, "ops listening on");
    Candidate { gateway, ops }
}

/// Two candidates on a fresh fake API server with Deployment `default/web` at 2 replicas; the
/// first leads once the second starts.
async fn election() -> (FakeApiServer, tempfile::TempDir, Candidate, Candidate) {
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "default", "web", 2);
    let kubeconfig_api = api.clone();
    let (dir, first, second) = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("tempdir");
        gen_certs(dir.path());
        let kubeconfig = kubeconfig_api.kubeconfig(dir.path());
        let certs = dir.path().join("certs");
        let first = candidate(&dir.path().join("first"), &certs, &kubeconfig);
        first.gateway.process.wait_for(&["leading"]);
        let second = candidate(&dir.path().join("second"), &certs, &kubeconfig);
        second.gateway.process.wait_for(&["standby", "held by"]);
        (dir, first, second)
    })
    .await
    .expect("candidates");
    (api, dir, first, second)
}

/// A bridge in `dir` connected (or trying to connect) to `gateway`.
fn bridge(dir: &Path, gateway: &Gateway) -> Bridge {
    Bridge::start(dir, &bridge_config(dir, gateway, free_udp_port(), TOKEN))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_serves_and_a_standby_takes_over_when_it_shuts_down() {
    let (api, dir, first, second) = election().await;
    let holder = api
        .lease_holder(NAMESPACE, LEASE)
        .expect("the lease exists");
    assert!(
        holder.ends_with(&format!("-{}", first.gateway.process.pid())),
        "held by the first gateway: {holder}"
    );
    let dir_path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        // A standby first says it is reading the lease, then who holds it.
        let held_by = format!("standby: the lease {NAMESPACE}/{LEASE} is held by {holder}");
        wait_for_http_saying(second.ops, "/readyz", 503, &held_by);
        wait_for_http(first.ops, "/readyz", 200);

        // A bridge at the standby is refused; one at the leader drives the target.
        let refused = bridge(&dir_path.join("second"), &second.gateway);
        refused
            .process
            .wait_for(&["gateway session ended", "standby"]);
        let driving = bridge(&dir_path.join("first"), &first.gateway);
        driving
            .process
            .wait_for(&["connected to gateway", "operator=alice"]);
        osc_send(driving.osc_port, "/1/fader1", "f", "0.5");
        first.gateway.process.wait_for(&["applied", "value=10"]);

        // The leader shuts down and releases the lease: the standby takes over at once.
        first.gateway.process.terminate();
        assert_eq!(first.gateway.process.wait_exit(), Some(0));
        first.gateway.process.wait_for(&["lease released"]);
        second.gateway.process.wait_for(&["leading"]);
        wait_for_http(second.ops, "/readyz", 200);
        refused
            .process
            .wait_for(&["connected to gateway", "operator=alice"]);
        osc_send(refused.osc_port, "/1/fader1", "f", "0.25");
        second.gateway.process.wait_for(&["applied", "value=5"]);
        assert_eq!(
            second
                .gateway
                .process
                .output()
                .iter()
                .filter(|l| l.contains("applied target_name=web"))
                .count(),
            1,
            "the standby wrote nothing before it led"
        );
    })
    .await
    .expect("failover");
    assert_eq!(api.replicas(Kind::Deployment, "default", "web"), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_waits_out_the_lease_of_a_holder_that_died() {
    let (_api, _dir, first, second) = election().await;
    tokio::task::spawn_blocking(move || {
        first.gateway.process.kill();
        let killed = Instant::now();
        second.gateway.process.wait_for(&["leading"]);
        let waited = killed.elapsed();
        // The standby saw the lease renewed at most `duration / 3` before the kill, and must
        // see it unchanged for the whole 2 s duration.
        assert!(
            waited >= Duration::from_millis(1200),
            "took over after {waited:?}, before the lease could have expired"
        );
        assert!(waited < DEADLINE);
        wait_for_http(second.ops, "/readyz", 200);
    })
    .await
    .expect("takeover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_cannot_renew_stops_before_its_lease_runs_out() {
    let (api, _dir, first, second) = election().await;
    // Only the API server goes away; both gateways stay up until the holder gives up.
    api.stop().await;
    tokio::task::spawn_blocking(move || {
        let code = first.gateway.process.wait_exit();
        assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
        first
            .gateway
            .process
            .wait_for(&["lost the leader-election lease"]);
        assert!(
            !second.gateway.process.printed("leading"),
            "the standby cannot have taken over without the API server"
        );
    })
    .await
    .expect("stopped");
}
