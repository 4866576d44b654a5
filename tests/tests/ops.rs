//! The gateway's operations port on the real binary: `/healthz`, `/readyz` following the
//! cluster's reachability, `/metrics`, and plaintext gRPC health for kubelet probes.

use std::net::SocketAddr;

use kubeknobs_tests::fakeapi::{FakeApiServer, Kind};
use kubeknobs_tests::harness::{
    Bridge, Gateway, address_after, free_udp_port, gen_certs, http_get as get, osc_send,
    wait_for_http as wait_for_status,
};
use kubeknobs_tests::pipeline::{TOKEN, bridge_config, gateway_config};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

async fn grpc_health(addr: SocketAddr) -> i32 {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("h2c connect");
    let mut client = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: "kubeknobs.v1.Knobs".into(),
    };
    client
        .check(request)
        .await
        .expect("health answers")
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_cluster_and_metrics_are_served() {
    // The API server is down when the gateway starts: alive, but not ready.
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "default", "web", 2);
    api.stop().await;
    let dir = tempfile::tempdir().expect("tempdir");
    gen_certs(dir.path());
    let kubeconfig = api.kubeconfig(dir.path());
    let cluster = format!(
        "backend = \"kube\"\nkubeconfig = {:?}",
        kubeconfig.display().to_string()
    );
    let config = gateway_config(&cluster, "default", "web")
        .replace("[server]\n", "[server]\nops_listen = \"127.0.0.1:0\"\n");
    let path = dir.path().to_owned();
    let (gateway, ops) = tokio::task::spawn_blocking(move || {
        let gateway = Gateway::start(&path, &config);
        let line = gateway.process.wait_for(&["ops listening on"]);
        (gateway, address_after(&line, "ops listening on"))
    })
    .await
    .expect("gateway");

    let not_ready = tokio::task::spawn_blocking(move || {
        assert_eq!(get(ops, "/healthz").0, 200, "alive while not ready");
        wait_for_status(ops, "/readyz", 503)
    });
    let not_ready = not_ready.await.expect("not ready");
    assert!(not_ready.contains("web: cannot watch"), "{not_ready}");
    assert_eq!(grpc_health(ops).await, ServingStatus::NotServing as i32);

    // The API server comes back: the watch syncs and the gateway becomes ready.
    api.restart().await;
    let ready = tokio::task::spawn_blocking(move || wait_for_status(ops, "/readyz", 200))
        .await
        .expect("ready");
    assert_eq!(ready, "ready\n");
    assert_eq!(grpc_health(ops).await, ServingStatus::Serving as i32);

    // One operator moves one fader: the metrics count the session, the event, its outcome and the write.
    let metrics = tokio::task::spawn_blocking(move || {
        let bridge_toml = bridge_config(dir.path(), &gateway, free_udp_port(), TOKEN);
        let bridge = Bridge::start(dir.path(), &bridge_toml);
        bridge.process.wait_for(&["connected", "alice"]);
        osc_send(bridge.osc_port, "/1/fader1", "f", "0.5");
        gateway.process.wait_for(&["applied", "value=10"]);
        let (status, metrics) = get(ops, "/metrics");
        assert_eq!(status, 200);
        metrics
    })
    .await
    .expect("metrics");
    for line in [
        "kubeknobs_gateway_sessions 1",
        "kubeknobs_gateway_control_events_total 1",
        "kubeknobs_gateway_outcomes_total{outcome=\"APPLIED\",reason=\"UNSPECIFIED\"} 1",
        "kubeknobs_gateway_writes_total{target=\"web\",result=\"ok\"} 1",
        "kubeknobs_gateway_event_to_write_seconds_count 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    assert_eq!(api.replicas(Kind::Deployment, "default", "web"), Some(10));
}

#[test]
fn the_bridge_ops_port_follows_its_gateway_session_and_counts_moves() {
    let p = kubeknobs_tests::pipeline::connected("backend = \"sandbox\"", ("default", "web"));
    let ops = p.bridge.ops.expect("the pipeline's bridge has an ops port");
    assert_eq!(get(ops, "/healthz").0, 200);
    assert_eq!(wait_for_status(ops, "/readyz", 200), "ready\n");

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .send_to(b"\x00garbage", ("127.0.0.1", p.bridge.osc_port))
        .expect("send");
    osc_send(p.bridge.osc_port, "/2/unknown", "f", "0.5");
    osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.5");
    p.gateway.process.wait_for(&["applied", "value=10"]);
    let (_, metrics) = get(ops, "/metrics");
    for line in [
        "kubeknobs_bridge_osc_packets_total{result=\"malformed\"} 1",
        "kubeknobs_bridge_osc_packets_total{result=\"ok\"} 2",
        "kubeknobs_bridge_moves_total{result=\"unknown_address\"} 1",
        "kubeknobs_bridge_moves_total{result=\"sent\"} 1",
        "kubeknobs_bridge_gateway_connected 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }

    p.gateway.process.terminate();
    assert!(wait_for_status(ops, "/readyz", 503).contains("no gateway session"));
}
