//! `kubeknobs-bridge`: turns OSC controls (TouchOSC, Open Stage Control, …) into control events
//! on a gRPC session with a kubeknobs gateway, and plays the cluster's live state back to them.
//!
//! The pieces, each in its own module, from the edges in:
//! - [`config`] — the TOML file, parsed then validated;
//! - [`osc`] — the UDP socket and TCP connections, decoding, and the registry of OSC clients;
//! - [`midi`] — MIDI ports (midir, hot-plug), serial MIDI, the byte parser, MIDI mappings and
//!   MIDI feedback;
//! - [`web`] — the touch control surface served to browsers (`[web]`), and its WebSocket;
//! - [`event`] — what the parts tell each other (gateway state, feedback settings, MIDI levels);
//! - [`link`] — the handle every surface sends moves through, into the live gateway session;
//! - [`mapping`] — pure scaling between control values and target values;
//! - [`feedback`] — gateway state → OSC messages to every client, and levels to the MIDI side;
//! - [`uplink`] — the gRPC session with reconnects;
//! - `pipeline` — the one place that wires them: the running halves (gateway session and
//!   feedback; OSC and MIDI inputs) that a config reload replaces;
//! - [`discovery`] — the OSC service advertised over mDNS/DNS-SD (`_osc._udp`);
//! - [`layout`] — ready-made layouts for OSC apps (`kubeknobs-bridge layout`);
//! - [`learn`] — `kubeknobs-bridge learn`, which prints mappings for the controls moved;
//! - `demo` (feature `demo`) — the whole pipeline on one machine with an embedded gateway.
//!
//! The surfaces (OSC, MIDI, web) use [`event`], [`link`], [`mapping`], the [`ops`] metrics and
//! their own config section, never each other or the gateway session; `config` uses the types of
//! the sections it checks, and no module it uses knows it (`tests/tests/layering.rs` fails on any
//! import loop).
//!
//! Logging, signals and the reload trigger come from `kubeknobs-runtime`, shared with the gateway.
//!
//! [`run`] runs it until `shutdown` resolves, with [`Options`] for what the caller sets up itself
//! (an OSC socket or ops port already bound, a config file to reload, an observer of states).

pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod discovery;
pub mod event;
pub mod feedback;
pub mod layout;
pub mod learn;
pub mod link;
pub mod mapping;
pub mod midi;
pub mod ops;
pub mod osc;
mod pipeline;
pub mod reload;
pub mod uplink;
pub mod web;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{info, warn};

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
    /// The web control surface (`web.listen`) could not be bound.
    #[error(transparent)]
    Web(#[from] web::Error),
    /// The ops port (`ops.listen`) could not be bound.
    #[error("cannot listen on {0} (ops.listen)")]
    Ops(std::net::SocketAddr, #[source] std::io::Error),
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

/// Checks what [`Config::load`] cannot: that tonic accepts the gateway URL, the CA and the token.
pub fn check(config: &Config) -> Result<()> {
    uplink_for(config).map(drop)
}

/// What a caller sets up for [`run`] beyond the config; [`Options::default`] is a bridge that
/// binds `osc.listen` itself and never reloads.
#[derive(Debug, Default)]
pub struct Options {
    /// An OSC socket the caller has bound (tests bind `127.0.0.1:0`); `config.osc.listen` is then
    /// not used.
    pub socket: Option<UdpSocket>,
    /// The config file, watched from before `config` was read from it: reloads on SIGHUP and
    /// whenever the file changes (see [`reload`]).
    pub file: Option<reload::FileWatch>,
    /// Gets a copy of every target state feedback receives (the demo prints them).
    pub observer: Option<feedback::Observer>,
    /// An ops port the caller has bound (tests bind `127.0.0.1:0` to read `/metrics`);
    /// `ops.listen` is then not used.
    pub ops: Option<tokio::net::TcpListener>,
}

/// Runs the bridge until `shutdown`: checks the uplink settings, binds `osc.listen` and
/// `ops.listen` (unless `options` brings them bound) and the web page, then runs the pipeline
/// (OSC, MIDI, feedback, uplink) for `config`.
pub async fn run(
    config: Config,
    mut options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let uplink = uplink_for(&config)?;
    let socket = match options.socket.take() {
        Some(socket) => socket,
        None => osc::bind(config.osc.listen).await?,
    };
    serve(config, uplink, socket, options, shutdown).await
}

/// The uplink `config` describes; fails if tonic refuses its URL, CA or token.
pub(crate) fn uplink_for(config: &Config) -> Result<uplink::Uplink> {
    Ok(uplink::Uplink::new(&config.bridge_id, &config.gateway)?)
}

/// Binds the ops port if configured (or takes the one `bound`); the returned future serves it
/// (or never resolves if off).
async fn start_ops(
    listen: Option<std::net::SocketAddr>,
    bound: Option<tokio::net::TcpListener>,
    metrics: ops::Metrics,
) -> Result<impl Future<Output = ()>> {
    let listener = match (bound, listen) {
        (Some(listener), _) => Some(listener),
        (None, Some(addr)) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Ops(addr, e))?,
        ),
        (None, None) => None,
    };
    if let Some(bound) = listener.as_ref().and_then(|l| l.local_addr().ok()) {
        info!("ops listening on {bound} (/metrics, /healthz, /readyz)");
    }
    Ok(async move {
        match listener {
            Some(listener) => {
                if let Err(e) = ops::serve(listener, metrics, std::future::pending()).await {
                    tracing::error!(error = %e, "ops server failed");
                }
                std::future::pending::<()>().await
            }
            None => std::future::pending().await,
        }
    })
}

/// [`run`] once the uplink is checked and the OSC socket bound: binds the ops port, then runs the
/// pipeline (OSC, MIDI, feedback, uplink) for `config`. With a watched `options.file`, a valid
/// new config (SIGHUP, or its file changed) replaces the inputs, and the gateway session too if
/// its settings changed (see [`pipeline`]), while the OSC socket and connections, the ops port
/// and the known OSC clients stay; an unusable one is logged and changes nothing (see
/// [`reload`]). OSC is advertised over mDNS for as long as the sockets are bound (a reload that
/// changes the bridge id or feedback port re-announces the TXT records); the advertisement is
/// withdrawn at shutdown (within [`discovery::STOP_WITHIN`]).
async fn serve(
    config: Config,
    uplink: uplink::Uplink,
    socket: UdpSocket,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let Options {
        file,
        observer,
        ops,
        socket: _,
    } = options;
    let local = socket.local_addr().map_err(osc::Error::LocalAddr)?;
    // The ops port is announced before OSC, so "OSC listening" means both are up.
    let metrics = ops::Metrics::new();
    let ops_server = start_ops(config.ops_listen, ops, metrics.clone()).await?;
    let web = web::bind(&config.web, &config.bridge_id).await?;
    let web_hub = web.as_ref().map(web::Web::hub);
    let web_server = async move {
        match web {
            Some(web) => web.serve().await,
            None => std::future::pending().await,
        }
    };
    let tcp = match config.osc.tcp_listen {
        Some(addr) => Some(osc::stream::bind(addr).await?),
        None => None,
    };
    let tcp_local = match &tcp {
        Some(listener) => Some(listener.local_addr().map_err(osc::Error::LocalAddr)?),
        None => None,
    };
    if let Some(addr) = tcp_local {
        info!("OSC over TCP listening on {addr}");
    }
    info!("OSC listening on {local}");
    let advertisement = discovery::start(
        &config.discovery,
        &config.bridge_id,
        (local, tcp_local),
        config.osc.feedback_port,
    );
    let (inbound, streams) = mpsc::channel(osc::stream::QUEUE);
    let parts = pipeline::Parts {
        socket: Arc::new(socket),
        streams: Arc::new(tokio::sync::Mutex::new(streams)),
        clients: Arc::new(Mutex::new(osc::Clients::new(config.osc.client_timeout))),
        metrics,
        observer,
        web: web_hub,
    };
    let tcp_server = serve_tcp(tcp, inbound, parts.clients.clone());
    let path = file
        .as_ref()
        .map(|f| f.path().to_owned())
        .unwrap_or_default();
    let mut triggers = file.map(reload::Triggers::new);
    let (mut session, running) = parts.session(&config, uplink);
    let mut running = Box::pin(running);
    // Boxed as `dyn` so a reload can stop the old inputs (and free their MIDI ports) before it
    // starts the new ones.
    let mut inputs: Pin<Box<dyn Future<Output = ()> + Send>> =
        Box::pin(parts.inputs(config.clone(), &session).await);
    let mut config = config;
    tokio::pin!(shutdown, ops_server, tcp_server, web_server);
    // In a block: the watch borrows the advertisement, which `stop` below consumes.
    {
        let advertising = discovery::watch(advertisement.as_ref());
        tokio::pin!(advertising);
        let signalled = loop {
            tokio::select! {
                () = &mut shutdown => break true,
                () = &mut ops_server => break false,
                () = &mut web_server => break false,
                () = &mut tcp_server => break false,
                () = &mut advertising => break false,
                () = &mut running => break false,
                () = &mut inputs => break false,
                cause = reload::next(&mut triggers) => match reload::load(&config, &path) {
                    Ok((new, uplink)) => {
                        // The old inputs (MIDI threads, receiver) stop here, before the new ones
                        // open their ports; the old session (the gateway sees it end) stops
                        // when it is replaced.
                        drop(std::mem::replace(&mut inputs, Box::pin(std::future::pending())));
                        if reload::same_session(&config, &new) {
                            info!(%cause, "config reloaded; the gateway session stays");
                        } else {
                            info!(%cause, "config reloaded; reconnecting to the gateway with it");
                            let (new_session, run) = parts.session(&new, uplink);
                            running.set(run);
                            session = new_session;
                        }
                        inputs = Box::pin(parts.inputs(new.clone(), &session).await);
                        let txt = |c: &Config| (c.bridge_id.clone(), c.osc.feedback_port);
                        if let Some(ad) = advertisement.as_ref().filter(|_| txt(&new) != txt(&config)) {
                            ad.update_txt(&new.bridge_id, new.osc.feedback_port);
                        }
                        config = new;
                    }
                    Err(reason) => warn!(
                        %cause, %reason, "config not reloaded; the running config stays in force"
                    ),
                }
            }
        };
        if signalled {
            info!("shutting down");
            drop(std::mem::replace(
                &mut inputs,
                Box::pin(std::future::pending()),
            ));
            // A clean close, so the gateway does not log a broken stream.
            session.stop();
            let _ = tokio::time::timeout(pipeline::CLOSE_WITHIN, &mut running).await;
        }
    }
    drop((inputs, running));
    if let Some(advertisement) = advertisement {
        advertisement.stop().await;
    }
    Ok(())
}

/// OSC over TCP on `listener`, if `osc.tcp_listen` is set; never resolves.
async fn serve_tcp(
    listener: Option<tokio::net::TcpListener>,
    inbound: mpsc::Sender<osc::stream::Inbound>,
    clients: osc::SharedClients,
) {
    match listener {
        Some(listener) => osc::stream::serve(listener, inbound, clients).await,
        // `inbound` is kept open, so the receiver's side of it simply never yields.
        None => std::future::pending::<()>().await,
    }
}
