//! End-to-end: the real gateway and bridge binaries as processes on 127.0.0.1 with TLS, driven by
//! liblo's `oscsend` (a TouchOSC stand-in) and watched with `oscdump` (the phone's screen).

use kubeknobs_tests::fakeapi::{FakeApiServer, Kind};
use kubeknobs_tests::harness::osc_send;
use kubeknobs_tests::pipeline::{connected, pipeline};

const SANDBOX: &str = "backend = \"sandbox\"";
const WEB: (&str, &str) = ("default", "web");

#[test]
fn a_touchosc_fader_scales_the_sandbox_and_the_real_state_comes_back() {
    let p = connected(SANDBOX, WEB);
    osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.5");
    p.gateway
        .process
        .wait_for(&["applied", "value=10", "operator=alice"]);
    // The phone's fader moves to the cluster's value, and the label follows pods becoming ready.
    p.phone.wait_for("/1/fader1", "f 0.500000");
    p.phone.wait_for("/1/label1", "\"web 10/10\"");
}

#[test]
fn a_wrong_token_is_refused_with_a_clear_error_and_changes_nothing() {
    let p = pipeline(SANDBOX, WEB, "not-the-token");
    p.bridge.process.wait_for(&["invalid bearer token"]);
    p.gateway
        .process
        .wait_for(&["session refused", "invalid bearer token"]);
    osc_send(p.bridge.osc_port, "/1/fader1", "f", "1.0");
    p.bridge.process.wait_for(&["not connected", "/1/fader1"]);
    assert!(
        !p.gateway.process.printed("applied"),
        "nothing may be applied for a refused operator"
    );
    assert!(
        !p.bridge.process.output().concat().contains("not-the-token"),
        "the secret is never logged"
    );
}

#[test]
fn an_unknown_osc_address_is_logged_and_nothing_is_sent() {
    let p = connected(SANDBOX, WEB);
    osc_send(p.bridge.osc_port, "/2/fader9", "f", "0.7");
    p.bridge
        .process
        .wait_for(&["unknown OSC address", "/2/fader9"]);
    // A known address afterwards still works, and it is the only change the gateway saw (log
    // lines, not the JSON audit line of the same change).
    osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.25");
    p.gateway.process.wait_for(&["applied", "value=5"]);
    let applied: Vec<_> = p
        .gateway
        .process
        .output()
        .into_iter()
        .filter(|l| l.contains("applied") && !l.starts_with('{'))
        .collect();
    assert_eq!(
        applied.len(),
        1,
        "only the mapped move reached the gateway: {applied:?}"
    );
}

#[test]
fn a_malformed_packet_is_ignored_and_the_bridge_stays_up() {
    let p = connected(SANDBOX, WEB);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .send_to(
            b"\x00\x01garbage that is not OSC",
            ("127.0.0.1", p.bridge.osc_port),
        )
        .expect("send");
    p.bridge.process.wait_for(&["malformed OSC"]);
    assert!(p.bridge.process.is_running(), "the bridge survives garbage");
    osc_send(p.bridge.osc_port, "/1/fader1", "f", "1.0");
    p.gateway.process.wait_for(&["applied", "value=20"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kube_backend_scales_through_the_api_server_and_kubectl_changes_come_back() {
    let api = FakeApiServer::start().await;
    api.add(Kind::Deployment, "default", "web", 2);
    let kube_dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(kube_dir.path());
    let cluster = format!(
        "backend = \"kube\"\nkubeconfig = {:?}",
        kubeconfig.display().to_string()
    );
    let p = tokio::task::spawn_blocking(move || connected(&cluster, WEB))
        .await
        .expect("pipeline");

    let api_check = api.clone();
    let p = tokio::task::spawn_blocking(move || {
        osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.5");
        p.gateway.process.wait_for(&["applied", "value=10"]);
        assert_eq!(
            api_check.replicas(Kind::Deployment, "default", "web"),
            Some(10)
        );
        p
    })
    .await
    .expect("fader move");

    // Someone runs `kubectl scale --replicas=7`: every phone shows it.
    api.scale_externally(Kind::Deployment, "default", "web", 7, "kubectl");
    api.set_ready(Kind::Deployment, "default", "web", 7);
    tokio::task::spawn_blocking(move || {
        p.phone.wait_for("/1/fader1", "f 0.350000");
        p.phone.wait_for("/1/label1", "\"web 7/7\"");
    })
    .await
    .expect("feedback");
    let patches = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 1, "one fader move is one write");
}
