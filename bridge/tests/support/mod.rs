//! A scripted fake gateway: a real tonic server speaking kubeknobs.v1 on 127.0.0.1, which hands
//! each session to the test to drive.

// Each test crate uses a different part of the MIDI helpers.
#[allow(dead_code)]
pub mod midi;

use kubeknobs_proto::v1::knobs_server::{Knobs, KnobsServer};
use kubeknobs_proto::v1::{
    Bounds, ClientMessage, Hello, PROTOCOL_VERSION, ServerMessage, Target, TargetState, Welcome,
    client_message, server_message,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// The only token the fake accepts.
pub const TOKEN: &str = "test-token";

/// A bridge config talking plaintext to the fake gateway at `gateway`: OSC on `osc_listen` with
/// `/1/fader1` → `web` (and `label`, if any), feedback to `feedback_port`, and `midi`.
pub fn bridge_config(
    gateway: std::net::SocketAddr,
    osc_listen: std::net::SocketAddr,
    feedback_port: u16,
    label: Option<&str>,
    midi: kubeknobs_bridge::config::MidiConfig,
) -> kubeknobs_bridge::Config {
    use kubeknobs_bridge::config::{DiscoveryConfig, GatewayConfig, Local, OscConfig, WebConfig};
    use kubeknobs_bridge::mapping::{Mapping, Mappings, Range};
    let fader = Mapping {
        address: "/1/fader1".into(),
        target: "web".into(),
        range: Range::default(),
        label: label.map(Into::into),
    };
    let osc = OscConfig {
        listen: osc_listen,
        tcp_listen: None,
        feedback_port,
        client_timeout: std::time::Duration::from_secs(300),
        presence_label: None,
        arm_address: None,
        mappings: Mappings::new(vec![fader]),
    };
    let gateway = GatewayConfig::new(format!("http://{gateway}"), None, TOKEN.into());
    let local = Local {
        bridge_id: "test-bridge".into(),
        osc,
        midi,
        ops_listen: None,
        discovery: DiscoveryConfig::new("test-bridge"),
        web: WebConfig::default(),
    };
    kubeknobs_bridge::Config::new(local, gateway)
}

/// One session as the fake gateway saw it, handed to the test to script.
pub struct Session {
    pub hello: Hello,
    pub to_bridge: mpsc::Sender<Result<ServerMessage, Status>>,
    pub from_bridge: Streaming<ClientMessage>,
}

/// Checks the token, reads `Hello`, answers `Welcome` with targets `web`, `api` and `db` (0..20,
/// desired 3, ready 3), and hands the session to the test.
struct FakeGateway {
    sessions: mpsc::UnboundedSender<Session>,
}

#[tonic::async_trait]
impl Knobs for FakeGateway {
    type SessionStream = ReceiverStream<Result<ServerMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<ClientMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {TOKEN}")) {
            return Err(Status::unauthenticated("unknown token"));
        }
        let mut from_bridge = request.into_inner();
        let hello = match from_bridge.message().await? {
            Some(ClientMessage {
                msg: Some(client_message::Msg::Hello(h)),
            }) => h,
            _ => return Err(Status::invalid_argument("Hello must come first")),
        };
        let (to_bridge, rx) = mpsc::channel(16);
        let welcome = Welcome {
            operator: "tester".into(),
            cluster: "sandbox".into(),
            sandbox: true,
            // `web` is what most tests drive; `api` and `db` are for several faders at once.
            targets: ["web", "api", "db"]
                .into_iter()
                .map(|name| Target {
                    name: name.into(),
                    bounds: Some(Bounds {
                        min: 0.0,
                        max: 20.0,
                        step: 1.0,
                        max_writes_per_second: 4.0,
                    }),
                    state: Some(TargetState {
                        target: name.into(),
                        ..state(3.0, 3.0)
                    }),
                    ..Default::default()
                })
                .collect(),
            protocol_version: PROTOCOL_VERSION,
        };
        let _ = to_bridge
            .send(Ok(server(server_message::Msg::Welcome(welcome))))
            .await;
        let _ = self.sessions.send(Session {
            hello,
            to_bridge,
            from_bridge,
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

pub fn server(msg: server_message::Msg) -> ServerMessage {
    ServerMessage { msg: Some(msg) }
}

pub fn state(desired: f64, ready: f64) -> TargetState {
    TargetState {
        target: "web".into(),
        desired: Some(desired),
        ready: Some(ready),
        changed_by: "tester".into(),
        ..Default::default()
    }
}

/// Serves the fake gateway on `listener` until the returned sender is dropped.
pub fn start_gateway(
    listener: TcpListener,
) -> (mpsc::UnboundedReceiver<Session>, oneshot::Sender<()>) {
    let (sessions, rx) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let service = KnobsServer::new(FakeGateway { sessions });
    tokio::spawn(async move {
        let incoming = TcpListenerStream::new(listener);
        let shutdown = async {
            let _ = stopped.await;
        };
        let served = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        if let Err(e) = served {
            eprintln!("fake gateway failed: {e}");
        }
    });
    (rx, stop)
}
