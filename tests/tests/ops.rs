//! The gateway's operations port on the real binary: `/healthz`, `/readyz` following the
//! cluster's reachability, `/metrics`, and plaintext gRPC health for kubelet probes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use kubeknobs_tests::fakeapi::{FakeApiServer, Kind};
use kubeknobs_tests::harness::{DEADLINE, Gateway, address_after, gen_certs};
use kubeknobs_tests::pipeline::gateway_config;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A plain HTTP/1.1 GET; returns the status code and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the ops port");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn wait_for_status(addr: SocketAddr, path: &str, want: u16) -> String {
    let start = Instant::now();
    loop {
        let (status, body) = get(addr, path);
        if status == want {
            return body;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{path} stayed {status} ({body}), wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

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

    let (status, metrics) = tokio::task::spawn_blocking(move || get(ops, "/metrics"))
        .await
        .expect("metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("kubeknobs_gateway_sessions 0"),
        "{metrics}"
    );
    drop(gateway);
}
