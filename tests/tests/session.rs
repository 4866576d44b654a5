//! The `kubeknobs.v1` session over real gRPC/TLS on loopback, spoken by a plain tonic client:
//! authentication, Hello/Welcome, every rejection reason that can happen before the cluster,
//! outcomes, and state pushed to every session.

use std::path::Path;
use std::time::Duration;

use kubeknobs_gateway::config::Config;
use kubeknobs_gateway::tls::CertBundle;
use kubeknobs_proto::v1::{
    self, ClientMessage, ControlEvent, Hello, OutcomeKind, RejectReason, ServerMessage,
    client_message, knobs_client::KnobsClient, server_message::Msg,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::{Code, Streaming};

const DEADLINE: Duration = Duration::from_secs(10);

struct Gateway {
    addr: std::net::SocketAddr,
    ca: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn gateway() -> Gateway {
    let certs = CertBundle::generate(&["localhost".to_owned()]).expect("certs");
    let text = format!(
        r#"
[cluster]
backend = "sandbox"
[[operators]]
name = "alice"
token_sha256 = "{alice}"
[[operators]]
name = "bob"
token_sha256 = "{bob}"
[targets.web]
kind = "deployment-replicas"
name = "web"
min = 1
max = 20
max_writes_per_second = 10
initial = 2
"#,
        alice = kubeknobs_gateway::auth::hash_token("alice-token"),
        bob = kubeknobs_gateway::auth::hash_token("bob-token"),
    );
    let mut config = Config::parse(&text, Path::new("session-test.toml")).expect("config");
    config.tls = Some(kubeknobs_gateway::config::TlsIdentity {
        cert_pem: certs.cert_pem.into_bytes(),
        key_pem: certs.key_pem.into_bytes(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(kubeknobs_gateway::server::serve(
        config,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    Gateway {
        addr,
        ca: certs.ca_pem,
        _stop: stop,
    }
}

impl Gateway {
    async fn channel(&self) -> Channel {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .domain_name("localhost");
        let endpoint =
            Channel::from_shared(format!("https://localhost:{}", self.addr.port())).expect("uri");
        endpoint
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect")
    }

    /// Opens a session as `token`; returns the sender for client messages and the server stream.
    async fn open(
        &self,
        token: &str,
    ) -> Result<(mpsc::Sender<ClientMessage>, Streaming<ServerMessage>), tonic::Status> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(hello()).await.expect("queue hello");
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
        let response = KnobsClient::new(self.channel().await)
            .session(request)
            .await?;
        Ok((tx, response.into_inner()))
    }
}

fn hello() -> ClientMessage {
    ClientMessage {
        msg: Some(client_message::Msg::Hello(Hello {
            bridge_id: "test".into(),
            protocol_version: v1::PROTOCOL_VERSION,
        })),
    }
}

fn control(seq: u64, target: &str, value: f64) -> ClientMessage {
    ClientMessage {
        msg: Some(client_message::Msg::Control(ControlEvent {
            seq,
            target: target.into(),
            value,
        })),
    }
}

async fn next(stream: &mut Streaming<ServerMessage>) -> Msg {
    let message = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("a message in time");
    message
        .expect("stream ok")
        .expect("stream open")
        .msg
        .expect("non-empty")
}

async fn outcome(stream: &mut Streaming<ServerMessage>, seq: u64) -> v1::Outcome {
    loop {
        if let Msg::Outcome(o) = next(stream).await
            && o.seq == seq
        {
            return o;
        }
    }
}

async fn state_until(
    stream: &mut Streaming<ServerMessage>,
    pred: impl Fn(&v1::TargetState) -> bool,
) -> v1::TargetState {
    loop {
        if let Msg::State(update) = next(stream).await
            && let Some(s) = update.states.into_iter().find(|s| pred(s))
        {
            return s;
        }
    }
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
