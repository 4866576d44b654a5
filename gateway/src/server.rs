//! Runs a gateway: connects the backend, starts watchers and per-target writers, and serves the
//! `Knobs` service plus the standard gRPC health service on one listener until shutdown.
//!
//! Shutdown is designed: when `shutdown` resolves, sessions are told UNAVAILABLE and closed,
//! pending latest values are still written, and the server drains within [`DRAIN_GRACE`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic_health::pb::health_server::{Health, HealthServer};

use crate::admission::{self, Admission};
use crate::audit::Audit;
use crate::auth::{Authenticator, TokenReviewer};
use crate::backend::{self, Backend};
use crate::coalesce::{Coalescer, Writer, WriterShared};
use crate::config::Config;
use crate::leader::{self, Role};
use crate::metrics::Metrics;
use crate::observe;
use crate::ratelimit::{OperatorLimits, WriteBudget};
use crate::reload::{self, Reloader, Tokens};
use crate::service::{Control, Entry, Feeds, KnobsServer, KnobsService, Report, View};
use crate::state::StateHub;
use crate::state::frames::Frames;
use crate::touch::Holds;

/// How long shutdown waits for writers and sessions before giving up on them.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ops port could not be bound.
    #[error("cannot listen on {0} (server.ops_listen): {1}")]
    OpsListener(std::net::SocketAddr, #[source] std::io::Error),
    /// The listener's address could not be read.
    #[error("listener: {0}")]
    Listener(#[source] std::io::Error),
    /// The cluster could not be reached.
    #[error(transparent)]
    Backend(#[from] backend::Error),
    /// The tokens file could not be used.
    #[error("auth.tokens_file: {0}")]
    Tokens(#[source] crate::config::Error),
    /// The audit file could not be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit::Error),
    /// This gateway held the Lease and could not keep it.
    #[error("lost the leader-election lease: {0}")]
    LostLease(String),
    /// The TLS files cannot be served.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves the gateway described by `config` on `listener` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_with(config, listener, shutdown, None).await
}

/// Like [`serve`]; with a `source`, the config is reloaded on SIGHUP and when its file changes
/// (see [`crate::reload`]).
pub async fn serve_with(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    source: Option<reload::Source>,
) -> Result<(), Error> {
    // Everything about the config was checked when it was loaded (`Config::load`); what can
    // still fail here is the world: the cluster, the ops port, the audit file.
    let addr = listener.local_addr().map_err(Error::Listener)?;
    let backend =
        Arc::new(Backend::connect(&config.backend, &config.catalog, config.impersonated()).await?);
    let cluster = backend.cluster_name();
    if backend.is_sandbox() {
        tracing::warn!("cluster is the built-in SANDBOX (in memory): nothing real is changed");
    }

    let stop = CancellationToken::new();
    let Core {
        entry,
        control,
        feeds,
        report,
        budget,
        mut tasks,
        readiness,
        role,
    } = start_core(&config, &backend, &stop)?;

    let (health, health_service) = tonic_health::server::health_reporter();
    // Ends by itself when the hub (the readiness sender) is dropped.
    tokio::spawn(observe::report_health::<KnobsServer>(
        health,
        readiness.clone(),
    ));
    if let Some(ops_addr) = config.ops_listen {
        let metrics = report.metrics.clone();
        start_ops(ops_addr, metrics, readiness, health_service.clone(), &stop).await?;
    }
    let operators = Arc::new(
        Authenticator::new(config.operators.clone()).with_token_review(config.token_review),
    );
    let tokens = Tokens::load(
        operators.clone(),
        config.operators.clone(),
        config.tokens_file.clone(),
    );
    let tokens = Arc::new(tokens.map_err(Error::Tokens)?);
    tasks.push(tokio::spawn(tokens.clone().watch(stop.clone())));
    if let Some(reload::Source { file, load }) = source {
        let reloader = Reloader::new(load, config.clone(), control.clone(), tokens, budget);
        tasks.push(tokio::spawn(reloader.run(file, stop.clone())));
    }
    let admission = Admission::new(config.admission.clone());
    let knobs = InterceptedService::new(
        KnobsServer::new(
            KnobsService::new(entry, control, feeds, report),
            config.session.max_message_bytes,
        ),
        operators.interceptor(admission.clone()),
    );

    // TLS is built here, not by tonic: the listener bounds and times handshakes (see admission).
    let acceptor = match &config.tls {
        Some(tls) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            tls,
            config.client_auth.as_ref(),
        )?)),
        None => None,
    };
    let scheme = if config.tls.is_some() {
        "TLS"
    } else {
        "PLAINTEXT (--insecure)"
    };
    tracing::info!(%addr, %cluster, targets = config.catalog.len(), operators = config.operators.len(), "gRPC listening on {addr} ({scheme})");

    let stopping = stop.clone();
    let mut lost = role.clone();
    let signal = async move {
        tokio::select! {
            () = shutdown => tracing::info!("shutting down: closing sessions, writing pending values"),
            Ok(_) = lost.wait_for(|r| matches!(r, Role::Lost(_))) => {}
        }
        stopping.cancel();
    };
    let router = Server::builder()
        .max_concurrent_streams(Some(admission.limits().max_streams))
        .add_service(health_service)
        .add_service(knobs);
    let served = async {
        match acceptor {
            Some(acceptor) => {
                let incoming = admission.incoming(listener, admission::tls(acceptor));
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
            None => {
                let incoming = admission.incoming(listener, admission::plaintext);
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
        }
    };
    let result = served.await;
    stop.cancel();
    let drained =
        tokio::time::timeout(DRAIN_GRACE, futures::future::join_all(tasks.iter_mut())).await;
    if drained.is_err() {
        tracing::warn!("some writers did not finish within {DRAIN_GRACE:?}");
    }
    if let Role::Lost(why) = &*role.borrow() {
        return Err(Error::LostLease(why.clone()));
    }
    result.map_err(Error::from)
}

/// What serves sessions, by role (see `service`), with the tasks behind it.
struct Core {
    entry: Arc<Entry>,
    control: Arc<Control>,
    feeds: Arc<Feeds>,
    report: Report,
    budget: Arc<WriteBudget>,
    /// Watchers, writers and the election: drained at shutdown.
    tasks: Vec<JoinHandle<()>>,
    readiness: watch::Receiver<observe::Readiness>,
    role: watch::Receiver<Role>,
}

/// Starts the watchers, the writers and the election, and builds each part sessions share.
fn start_core(
    config: &Config,
    backend: &Arc<Backend>,
    stop: &CancellationToken,
) -> Result<Core, Error> {
    let stop = stop.clone();
    let cluster = backend.cluster_name();
    let metrics = Metrics::new();
    let hub = Arc::new(StateHub::new(&config.catalog));
    let mut tasks = backend.spawn_watchers(&config.catalog, hub.clone(), stop.clone());
    let audit = Arc::new(Audit::open(config.audit_file.as_deref())?);
    let budget = Arc::new(WriteBudget::new(config.limits.writes_per_second));
    let shared_writers = WriterShared {
        budget: Some(budget.clone()),
        audit: Some(audit.clone()),
        metrics: metrics.clone(),
    };
    let (role, election) = elect(config, backend, &stop);
    tasks.extend(election);
    let fenced = Arc::new(leader::Fenced::new(backend.clone(), role.clone()));
    let (coalescers, writers) = spawn_writers(config, &fenced, &hub, &stop, shared_writers);
    tasks.extend(writers);
    let readiness = observe::gate(
        hub.readiness(),
        role.clone(),
        config.leader_election.clone(),
    );
    let view = View {
        catalog: config.catalog.clone(),
        policy: config.policy.clone(),
        session: config.session.clone(),
    };
    let entry = Arc::new(Entry {
        role: role.clone(),
        lease: config.leader_election.clone(),
        reviewer: match (config.token_review, backend.as_ref()) {
            (false, _) => None,
            (true, Backend::Kube(kube)) => Some(TokenReviewer::new(
                kube.client(),
                config.token_review_audiences.clone(),
            )),
            // Config validation refuses TokenReview without a real cluster; without a reviewer,
            // unknown tokens are refused.
            (true, Backend::Sandbox(_)) => None,
        },
    });
    let view = tokio::sync::watch::Sender::new(Arc::new(view));
    // State frames and presence lists: built and encoded once for every session.
    let frames = Arc::new(Frames::new(&hub));
    let views = view.subscribe();
    let per_second = move || views.borrow().session.updates_per_second;
    tasks.push(tokio::spawn(frames.clone().run(
        hub.clone(),
        per_second,
        stop.clone(),
    )));
    let roster: Arc<crate::presence::Roster> = Arc::default();
    tasks.push(tokio::spawn(roster.clone().run(stop.clone())));
    let control = Arc::new(Control {
        view,
        limits: OperatorLimits::new(config.limits.clone()),
        holds: Holds::new(config.limits.touch_grace),
        cooldowns: Default::default(),
        coalescers,
    });
    let feeds = Arc::new(Feeds {
        hub,
        frames,
        roster,
        cluster,
        sandbox: backend.is_sandbox(),
        shutdown: stop.clone(),
    });
    Ok(Core {
        entry,
        control,
        feeds,
        report: Report { audit, metrics },
        budget,
        tasks,
        readiness,
        role,
    })
}

/// Joins the election of `[cluster.leader_election]`; without it this gateway always leads.
fn elect(
    config: &Config,
    backend: &Backend,
    stop: &CancellationToken,
) -> (watch::Receiver<Role>, Option<JoinHandle<()>>) {
    match (&config.leader_election, backend) {
        (Some(settings), Backend::Kube(kube)) => {
            let identity = leader::identity();
            tracing::info!(%identity, lease = %settings.name, namespace = %settings.namespace, "joining the leader election");
            let (role, task) =
                leader::start(kube.client(), settings.clone(), identity, stop.clone());
            (role, Some(task))
        }
        _ => (watch::channel(Role::Leader).1, None),
    }
}

/// One latest-value-wins writer per catalogued target, sharing the gateway-wide parts.
fn spawn_writers<W: Writer>(
    config: &Config,
    writer: &Arc<W>,
    hub: &Arc<StateHub>,
    stop: &CancellationToken,
    shared: WriterShared,
) -> (HashMap<String, Coalescer>, Vec<JoinHandle<()>>) {
    let mut coalescers = HashMap::new();
    let mut tasks = Vec::new();
    for target in config.catalog.iter() {
        let (coalescer, task) = Coalescer::spawn_with(
            target.clone(),
            writer.clone(),
            hub.clone(),
            stop.clone(),
            shared.clone(),
        );
        coalescers.insert(target.name.clone(), coalescer);
        tasks.push(task);
    }
    (coalescers, tasks)
}

/// Binds the ops port and serves it until `stop`.
async fn start_ops<H: Health>(
    addr: std::net::SocketAddr,
    metrics: Metrics,
    readiness: tokio::sync::watch::Receiver<observe::Readiness>,
    health: HealthServer<H>,
    stop: &CancellationToken,
) -> Result<(), Error> {
    let ops = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::OpsListener(addr, e))?;
    let bound = ops.local_addr().map_err(Error::Listener)?;
    tracing::info!(%bound, "ops listening on {bound} (/metrics, /healthz, /readyz, gRPC health)");
    let stopped = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(err) = observe::serve(ops, metrics, readiness, health, stopped).await {
            tracing::error!(cause = %err, "ops server failed");
        }
    });
    Ok(())
}
