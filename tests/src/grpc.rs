//! An in-process gateway on 127.0.0.1 with TLS, and a plain tonic client that speaks the
//! `kubeknobs.v1` session to it: for contract tests that need no bridge.
//!
//! The config always has operators `alice` (`alice-token`, group `ops`), `bob` (`bob-token`) and
//! `carol` (`carol-token`); tests add targets, policy and limits as TOML.

use std::path::Path;
use std::time::Duration;

use kubeknobs_gateway::config::{Config, TlsIdentity};
use kubeknobs_gateway::tls::CertBundle;
use kubeknobs_proto::v1::{
    self, ClientMessage, ControlEvent, Hello, ServerMessage, client_message,
    knobs_client::KnobsClient, server_message::Msg,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// How long a test waits for a message a working gateway sends at once.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A gateway serving in this process until dropped.
pub struct Gateway {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    ca: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The `[[operators]]` every test gateway has.
pub fn operators_toml() -> String {
    let hash = kubeknobs_gateway::auth::hash_token;
    format!(
        r#"
[[operators]]
name = "alice"
token_sha256 = "{}"
groups = ["ops"]
[[operators]]
name = "bob"
token_sha256 = "{}"
[[operators]]
name = "carol"
token_sha256 = "{}"
"#,
        hash("alice-token"),
        hash("bob-token"),
        hash("carol-token"),
    )
}

impl Gateway {
    /// Starts a sandbox gateway with the standard operators plus `rest` (targets, policy, ...).
    pub async fn start(rest: &str) -> Gateway {
        let text = format!(
            "[cluster]\nbackend = \"sandbox\"\n{}\n{rest}",
            operators_toml()
        );
        // The placeholder TLS is replaced by fresh certificates in `start_config`.
        let config = Config::parse_with_tls(
            &text,
            Path::new("test-gateway.toml"),
            TlsIdentity::default(),
        )
        .expect("config");
        Gateway::start_config(config).await
    }

    /// Starts a gateway for `config`, with fresh TLS certificates for `localhost`.
    pub async fn start_config(mut config: Config) -> Gateway {
        let certs = CertBundle::generate(&["localhost".to_owned()]).expect("certs");
        config.tls = Some(TlsIdentity {
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

    /// A TLS channel to the gateway.
    pub async fn channel(&self) -> Channel {
        self.try_channel(None).await.expect("connect")
    }

    /// A TLS channel to the gateway, presenting `client` as client certificate if given.
    pub async fn try_channel(
        &self,
        client: Option<tonic::transport::Identity>,
    ) -> Result<Channel, tonic::transport::Error> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .domain_name("localhost");
        if let Some(identity) = client {
            tls = tls.identity(identity);
        }
        let endpoint =
            Channel::from_shared(format!("https://localhost:{}", self.addr.port())).expect("uri");
        endpoint.tls_config(tls).expect("tls").connect().await
    }

    /// Opens a session as `token`; returns the sender for client messages and the server stream.
    pub async fn open(
        &self,
        token: &str,
    ) -> Result<(mpsc::Sender<ClientMessage>, Streaming<ServerMessage>), tonic::Status> {
        let (tx, rx) = mpsc::channel(1024);
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

    /// Opens a session as `token` and returns it with its `Welcome`.
    pub async fn welcome(
        &self,
        token: &str,
    ) -> (
        mpsc::Sender<ClientMessage>,
        Streaming<ServerMessage>,
        v1::Welcome,
    ) {
        let (tx, mut rx) = self.open(token).await.expect("session");
        let Msg::Welcome(welcome) = next(&mut rx).await else {
            panic!("Welcome first")
        };
        (tx, rx, welcome)
    }
}

/// The `Hello` every test session opens with.
pub fn hello() -> ClientMessage {
    ClientMessage {
        msg: Some(client_message::Msg::Hello(Hello {
            bridge_id: "test".into(),
            protocol_version: v1::PROTOCOL_VERSION,
        })),
    }
}

/// A control event.
pub fn control(seq: u64, target: &str, value: f64) -> ClientMessage {
    ClientMessage {
        msg: Some(client_message::Msg::Control(ControlEvent {
            seq,
            target: target.into(),
            value,
        })),
    }
}

/// The next server message, within [`DEADLINE`].
pub async fn next(stream: &mut Streaming<ServerMessage>) -> Msg {
    let message = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("a message in time");
    message
        .expect("stream ok")
        .expect("stream open")
        .msg
        .expect("non-empty")
}

/// The outcome of event `seq`, skipping everything else.
pub async fn outcome(stream: &mut Streaming<ServerMessage>, seq: u64) -> v1::Outcome {
    loop {
        if let Msg::Outcome(o) = next(stream).await
            && o.seq == seq
        {
            return o;
        }
    }
}

/// The first target state matching `pred`, skipping everything else.
pub async fn state_until(
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
