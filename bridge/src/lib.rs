//! `kubeknobs-bridge`: turns OSC controls (TouchOSC, Open Stage Control, …) into control events
//! on a gRPC session with a kubeknobs gateway, and plays the cluster's live state back to them.
//!
//! The pieces, each in its own module:
//! - [`config`] — the TOML file, parsed then validated;
//! - [`mapping`] — pure scaling between control values and target values;
//! - [`osc`] — the UDP socket, decoding, and the registry of OSC clients;
//! - [`feedback`] — gateway state → OSC messages to every client;
//! - [`uplink`] — the gRPC session with reconnects;
//! - `demo` (feature `demo`) — the whole pipeline on one machine with an embedded gateway;
//! - [`telemetry`] — logging.
//!
//! [`run`] binds and runs until `shutdown` resolves; [`run_with_socket`] takes an already bound
//! socket (tests bind `127.0.0.1:0`).

pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod feedback;
pub mod mapping;
pub mod osc;
pub mod telemetry;
pub mod uplink;

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::info;

pub use config::Config;

/// Why the bridge could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gateway endpoint, TLS settings or token cannot be used.
    #[error(transparent)]
    Uplink(#[from] uplink::Error),
    /// The OSC socket could not be set up.
    #[error(transparent)]
    Osc(#[from] osc::Error),
}

impl Error {
    /// True when the error comes from the config (a CA that does not parse, a URL tonic refuses),
    /// not from the machine: the CLI reports these like config errors, with exit code 2.
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Uplink(_))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Capacity of the channel into feedback, which only encodes and sends datagrams, so it keeps up.
const FEEDBACK_QUEUE: usize = 256;

/// Checks what [`Config::load`] cannot: that tonic accepts the gateway URL, the CA and the token.
pub fn check(config: &Config) -> Result<()> {
    uplink_for(config).map(drop)
}

/// Runs the bridge: checks the uplink settings, binds `osc.listen`, and runs until `shutdown`.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let uplink = uplink_for(&config)?;
    let socket = osc::bind(config.osc.listen).await?;
    serve(config, uplink, socket, shutdown, None).await
}

/// Like [`run`], with an OSC socket the caller has bound (`config.osc.listen` is not used).
pub async fn run_with_socket(
    config: Config,
    socket: UdpSocket,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let uplink = uplink_for(&config)?;
    serve(config, uplink, socket, shutdown, None).await
}

/// The uplink `config` describes; fails if tonic refuses its URL, CA or token.
fn uplink_for(config: &Config) -> Result<uplink::Uplink> {
    let mappings = Arc::new(config.osc.mappings.clone());
    Ok(uplink::Uplink::new(
        &config.bridge_id,
        &config.gateway,
        mappings,
    )?)
}

/// Wires OSC, feedback and the uplink together and runs them until `shutdown`. Each part owns no
/// state that outlives it, so shutdown just stops them: the gateway sees the session end.
pub(crate) async fn serve(
    config: Config,
    uplink: uplink::Uplink,
    socket: UdpSocket,
    shutdown: impl Future<Output = ()> + Send + 'static,
    observer: Option<feedback::Observer>,
) -> Result<()> {
    let local = socket.local_addr().map_err(osc::Error::LocalAddr)?;
    info!("OSC listening on {local}");
    info!(
        port = config.osc.feedback_port,
        "OSC feedback goes to port {} of each client", config.osc.feedback_port
    );
    let socket = Arc::new(socket);
    let mappings = Arc::new(config.osc.mappings);
    let clients = Arc::new(Mutex::new(osc::Clients::new(config.osc.client_timeout)));
    let (publisher, link) = uplink::pair();
    let (feedback_tx, feedback_rx) = mpsc::channel(FEEDBACK_QUEUE);

    let receiver = osc::Receiver {
        socket: socket.clone(),
        mappings: mappings.clone(),
        clients: clients.clone(),
        link,
        feedback: feedback_tx.clone(),
        arm_address: config.osc.arm_address.clone(),
    };
    let feedback = feedback::Feedback::new(
        socket,
        mappings,
        config.osc.feedback_port,
        clients,
        observer,
    )
    .with_presence_label(config.osc.presence_label.clone());

    tokio::select! {
        () = shutdown => info!("shutting down"),
        () = receiver.run() => {}
        () = feedback.run(feedback_rx) => {}
        () = uplink.run(publisher, feedback_tx) => {}
    }
    Ok(())
}
