//! `kubeknobs-bridge demo`: the whole pipeline on one machine, in one command.
//!
//! Contract: starts the real gateway (library `kubeknobs-gateway`) on `127.0.0.1:<free port>` with
//! TLS from a CA and server certificate made in memory for this run, one operator `demo` whose
//! random token only this process knows, and the sandbox cluster unless `--kubeconfig` is given;
//! then runs the bridge against it over real gRPC. It prints what to type into a phone and one
//! line per target state change. Both stop cleanly when `shutdown` resolves; if either stops on
//! its own (e.g. the cluster is unreachable), the other is stopped too and the error returned.
//! The configs default to `examples/demo/{gateway,bridge}.toml`, built into the binary.

mod print;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use kubeknobs_gateway::auth::{Operators, hash_token};
use kubeknobs_gateway::config::{BackendConfig, Given, TlsIdentity};
use kubeknobs_gateway::tls::CertBundle;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::config::{Config, GatewayConfig, Local};

const GATEWAY_TOML: &str = include_str!("../../../examples/demo/gateway.toml");
const BRIDGE_TOML: &str = include_str!("../../../examples/demo/bridge.toml");
const GATEWAY_ORIGIN: &str = "examples/demo/gateway.toml (built in)";
const BRIDGE_ORIGIN: &str = "examples/demo/bridge.toml (built in)";

/// The operator name the demo's token belongs to.
pub const OPERATOR: &str = "demo";

/// What can stop the demo.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bridge config (built in or `--config`) is unusable.
    #[error(transparent)]
    BridgeConfig(#[from] crate::config::Error),
    /// The gateway config (built in or `--gateway-config`) is unusable.
    #[error(transparent)]
    GatewayConfig(kubeknobs_gateway::config::Error),
    /// The in-memory certificates could not be made.
    #[error("cannot make demo certificates")]
    Certs(#[source] kubeknobs_gateway::tls::Error),
    /// The gateway's loopback port could not be bound.
    #[error("cannot bind the gateway on 127.0.0.1")]
    Bind(#[source] std::io::Error),
    /// The embedded gateway stopped with an error.
    #[error("the embedded gateway failed")]
    Gateway(#[source] kubeknobs_gateway::server::Error),
    /// The bridge stopped with an error.
    #[error(transparent)]
    Bridge(#[from] crate::Error),
}

impl Error {
    /// True for config errors, which the CLI reports with exit code 2.
    pub fn is_config(&self) -> bool {
        match self {
            Error::BridgeConfig(_) | Error::GatewayConfig(_) => true,
            Error::Bridge(e) => e.is_config(),
            _ => false,
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Command-line choices for the demo; `None` keeps what the config says.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A bridge config instead of the built-in one (its `[gateway]` table is ignored).
    pub config: Option<PathBuf>,
    /// A gateway config instead of the built-in one (its TLS files and operators are replaced).
    pub gateway_config: Option<PathBuf>,
    /// Drive the cluster of this kubeconfig instead of the config's backend.
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (with `kubeconfig`).
    pub context: Option<String>,
    /// Overrides `osc.listen`.
    pub osc_listen: Option<SocketAddr>,
    /// Overrides `osc.feedback_port`.
    pub feedback_port: Option<u16>,
    /// Overrides `web.listen` (the demo serves the web control surface on [`WEB_LISTEN`] unless
    /// its bridge config says otherwise).
    pub web_listen: Option<SocketAddr>,
}

/// Where the demo serves the web control surface when the bridge config does not say.
pub const WEB_LISTEN: SocketAddr =
    SocketAddr::V4(std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080));

/// Runs gateway and bridge until `shutdown`.
pub async fn run(
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut local = match &options.config {
        Some(path) => Local::load(path)?,
        None => Local::parse(BRIDGE_TOML, Path::new(BRIDGE_ORIGIN))?,
    };
    if let Some(listen) = options.osc_listen {
        local.osc.listen = listen;
    }
    if let Some(port) = options.feedback_port {
        local.osc.feedback_port = port;
    }
    // A phone opens the demo in its browser: on unless the config says where.
    local.web.listen = options.web_listen.or(local.web.listen).or(Some(WEB_LISTEN));
    // Fresh credentials for this run only: nothing on disk, nothing reusable.
    let token = random_token();
    let names = ["localhost".to_owned(), Ipv4Addr::LOCALHOST.to_string()];
    let certs = CertBundle::generate(&names).map_err(Error::Certs)?;
    let tls = TlsIdentity {
        cert_pem: certs.cert_pem.into_bytes(),
        key_pem: certs.key_pem.into_bytes(),
    };
    let operators = Operators::single(OPERATOR, &hash_token(&token));
    let mut gateway = gateway_config(&options, tls, operators)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(Error::Bind)?;
    gateway.listen = listener.local_addr().map_err(Error::Bind)?;

    let upstream = GatewayConfig::new(
        format!("https://{}", gateway.listen),
        Some(certs.ca_pem.into_bytes()),
        token,
    );
    let config = Config::new(local, upstream);
    crate::check(&config)?;
    let socket = crate::osc::bind(config.osc.listen)
        .await
        .map_err(crate::Error::from)?;
    print::banner(&config, &gateway, socket.local_addr().ok());

    let (stop_tx, stop_rx) = watch::channel(false);
    let (observer, states) = mpsc::channel(64);
    let gateway_run = async {
        let result =
            kubeknobs_gateway::server::serve(gateway, listener, stopped(stop_rx.clone())).await;
        let _ = stop_tx.send(true);
        result.map_err(Error::Gateway)
    };
    let bridge_run = async {
        let options = crate::Options {
            socket: Some(socket),
            observer: Some(observer),
            ..Default::default()
        };
        let result = crate::run(config, options, stopped(stop_rx.clone())).await;
        let _ = stop_tx.send(true);
        result.map_err(Error::Bridge)
    };
    let signal = async {
        let mut other_stopped = stop_rx.clone();
        tokio::select! {
            () = shutdown => {}
            _ = other_stopped.wait_for(|stop| *stop) => {}
        }
        let _ = stop_tx.send(true);
    };
    let (gateway_result, bridge_result, (), ()) =
        tokio::join!(gateway_run, bridge_run, signal, print::live(states));
    gateway_result.and(bridge_result)
}

/// Resolves once the demo is stopping.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The gateway config with the demo's choice of backend. The config's own TLS files are not read:
/// the demo serves `tls`, made in memory, instead.
fn gateway_config(
    options: &Options,
    tls: TlsIdentity,
    operators: Operators,
) -> Result<kubeknobs_gateway::config::Config> {
    let (text, origin) = match &options.gateway_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| {
                Error::GatewayConfig(kubeknobs_gateway::config::Error::Read {
                    path: path.clone(),
                    source,
                })
            })?;
            (text, path.clone())
        }
        None => (GATEWAY_TOML.to_owned(), PathBuf::from(GATEWAY_ORIGIN)),
    };
    let given = Given {
        tls: Some(tls),
        operators: Some(operators),
    };
    let mut config = kubeknobs_gateway::config::Config::parse_given(&text, &origin, given)
        .map_err(Error::GatewayConfig)?;
    if let Some(kubeconfig) = &options.kubeconfig {
        config.backend = BackendConfig::Kube {
            kubeconfig: Some(kubeconfig.clone()),
            context: options.context.clone(),
        };
    }
    Ok(config)
}

/// 32 random bytes as hex.
fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_configs_parse() {
        let local =
            Local::parse(BRIDGE_TOML, Path::new(BRIDGE_ORIGIN)).expect("built-in bridge config");
        assert!(local.osc.mappings.by_address("/1/fader1").is_some());
        let tls = TlsIdentity {
            cert_pem: Vec::new(),
            key_pem: Vec::new(),
        };
        let gateway = gateway_config(&Options::default(), tls, Operators::single("t", "0"))
            .expect("built-in gateway config");
        assert_eq!(gateway.backend, BackendConfig::Sandbox);
    }

    /// The demo brings its own operator, so a catalog of one's own needs none.
    #[test]
    fn a_gateway_config_without_operators_runs_the_demo() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gateway.toml");
        let text = "[targets.api]\nkind = \"deployment-replicas\"\nnamespace = \"default\"\n\
                    name = \"api\"\nmin = 0\nmax = 5\n";
        std::fs::write(&path, text).expect("write config");
        let options = Options {
            gateway_config: Some(path),
            ..Options::default()
        };
        let tls = TlsIdentity::default();
        let gateway = gateway_config(&options, tls, Operators::single(OPERATOR, "0"))
            .expect("a config without [[operators]]");
        assert_eq!(gateway.operators.len(), 1);
        assert!(gateway.catalog.get("api").is_some());
    }

    #[test]
    fn tokens_are_fresh() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
