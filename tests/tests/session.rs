//! The `kubeknobs.v1` session over real gRPC/TLS on loopback, spoken by a plain tonic client:
//! authentication, Hello/Welcome, every rejection reason that can happen before the cluster,
//! outcomes, and state pushed to every session.

use kubeknobs_proto::v1::{
    OutcomeKind, RejectReason, knobs_client::KnobsClient, server_message::Msg,
};
use kubeknobs_tests::grpc::{Gateway, control, hello, next, outcome, state_until};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

const WEB: &str = r#"
[targets.web]
kind = "deployment-replicas"
name = "web"
min = 1
max = 20
max_writes_per_second = 10
initial = 2
"#;

async fn gateway() -> Gateway {
    Gateway::start(WEB).await
}

#[tokio::test]
async fn welcome_names_the_operator_the_sandbox_and_the_catalog() {
    let gw = gateway().await;
    let (_tx, mut rx) = gw.open("alice-token").await.expect("session");
    let Msg::Welcome(welcome) = next(&mut rx).await else {
        panic!("Welcome first")
    };
    assert_eq!(welcome.operator, "alice");
    assert!(welcome.sandbox);
    assert_eq!(welcome.cluster, "sandbox");
    let web = &welcome.targets[0];
    assert_eq!(web.name, "web");
    let bounds = web.bounds.expect("bounds");
    assert_eq!((bounds.min, bounds.max, bounds.step), (1.0, 20.0, 1.0));
    assert_eq!(web.state.as_ref().and_then(|s| s.desired), Some(2.0));
}

#[tokio::test]
async fn wrong_or_missing_tokens_are_unauthenticated() {
    let gw = gateway().await;
    let err = gw.open("wrong").await.expect_err("refused");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("invalid bearer token"),
        "{}",
        err.message()
    );

    let (tx, rx) = mpsc::channel(1);
    tx.send(hello()).await.expect("queue");
    let err = KnobsClient::new(gw.channel().await)
        .session(ReceiverStream::new(rx))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("missing bearer token"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_session_must_start_with_hello() {
    let gw = gateway().await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(control(1, "web", 3.0)).await.expect("queue");
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request.metadata_mut().insert(
        "authorization",
        "Bearer alice-token".parse().expect("ascii"),
    );
    let err = KnobsClient::new(gw.channel().await)
        .session(request)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("must be Hello"), "{}", err.message());
}

#[tokio::test]
async fn bad_events_are_rejected_with_their_reason_and_change_nothing() {
    let gw = gateway().await;
    let (tx, mut rx) = gw.open("alice-token").await.expect("session");
    next(&mut rx).await;
    let cases = [
        (
            1,
            "nope",
            3.0,
            RejectReason::UnknownTarget,
            "no target named \"nope\"",
        ),
        (2, "web", 25.0, RejectReason::OutOfRange, "above max 20"),
        (3, "web", 0.0, RejectReason::OutOfRange, "below min 1"),
        (
            4,
            "web",
            f64::NAN,
            RejectReason::InvalidValue,
            "not a number",
        ),
        (
            5,
            "web",
            f64::INFINITY,
            RejectReason::InvalidValue,
            "not a number",
        ),
    ];
    for (seq, target, value, reason, text) in cases {
        tx.send(control(seq, target, value)).await.expect("send");
        let o = outcome(&mut rx, seq).await;
        assert_eq!(
            (o.kind, o.reason),
            (OutcomeKind::Rejected as i32, reason as i32),
            "{o:?}"
        );
        assert!(o.message.contains(text), "{}", o.message);
    }
    // Nothing changed: a new session still sees the initial 2 replicas.
    let (_probe, mut probe_rx) = gw.open("bob-token").await.expect("probe");
    let Msg::Welcome(welcome) = next(&mut probe_rx).await else {
        panic!("Welcome first")
    };
    assert_eq!(
        welcome.targets[0].state.as_ref().and_then(|s| s.desired),
        Some(2.0)
    );
    // A good event after all that is applied.
    tx.send(control(6, "web", 7.4)).await.expect("send");
    let o = outcome(&mut rx, 6).await;
    assert_eq!((o.kind, o.value), (OutcomeKind::Applied as i32, 7.0));
}

#[tokio::test]
async fn every_session_sees_every_change_with_who_made_it() {
    let gw = gateway().await;
    let (alice, mut alice_rx) = gw.open("alice-token").await.expect("alice");
    let (_bob, mut bob_rx) = gw.open("bob-token").await.expect("bob");
    next(&mut alice_rx).await;
    next(&mut bob_rx).await;
    alice.send(control(1, "web", 9.0)).await.expect("send");
    let seen = state_until(&mut bob_rx, |s| s.desired == Some(9.0)).await;
    assert_eq!(seen.changed_by, "alice");
    let ready = state_until(&mut bob_rx, |s| s.ready == Some(9.0)).await;
    assert_eq!(
        ready.desired,
        Some(9.0),
        "pods converge on the desired value"
    );
}

#[tokio::test]
async fn the_standard_health_service_reports_the_knobs_service_serving() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let gw = gateway().await;
    let mut health = HealthClient::new(gw.channel().await);
    let request = HealthCheckRequest {
        service: "kubeknobs.v1.Knobs".into(),
    };
    let status = health
        .check(request)
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound);
}
