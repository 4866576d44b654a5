//! Runs a gateway: connects the backend, starts watchers and per-target writers, and serves the
//! `Knobs` service plus the standard gRPC health service on one listener until shutdown.
//!
//! Shutdown is designed: when `shutdown` resolves, sessions are told UNAVAILABLE and closed,
//! pending latest values are still written, and the server drains within [`DRAIN_GRACE`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kubeknobs_proto::v1::knobs_server::KnobsServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::audit::Audit;
use crate::auth::{Authenticator, TokenReviewer};
use crate::backend::{self, Backend};
use crate::coalesce::{Coalescer, WriterShared};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::observe;
use crate::ratelimit::{OperatorLimits, WriteBudget};
use crate::service::{KnobsService, Shared};
use crate::state::StateHub;
use crate::touch::Holds;

/// How long shutdown waits for writers and sessions before giving up on them.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither TLS files nor `--insecure` were given.
    #[error(
        "TLS is required: set server.tls_cert and server.tls_key, or pass --insecure on a loopback address"
    )]
    NoTls,
    /// `--insecure` on an address other machines can reach.
    #[error(
        "--insecure is refused on {0}: plaintext gRPC is only allowed on a loopback address (127.0.0.1, ::1)"
    )]
    InsecureNotLoopback(std::net::SocketAddr),
    /// TokenReview needs a cluster to ask.
    #[error("auth.token_review needs a real cluster (cluster.backend = \"kube\")")]
    TokenReviewNeedsCluster,
    /// Client certificates need TLS.
    #[error("auth.client_ca needs TLS: client certificates cannot be checked with --insecure")]
    ClientAuthNeedsTls,
    /// The catalog is empty.
    #[error("the catalog has no targets: add at least one [targets.NAME] table")]
    EmptyCatalog,
    /// No operator could ever connect.
    #[error(
        "no operators are configured: add at least one [[operators]] entry or auth.tokens_file"
    )]
    NoOperators,
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
    /// The gRPC server failed (bad TLS material, accept errors).
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves the gateway described by `config` on `listener` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addr = listener.local_addr().map_err(Error::Listener)?;
    check_security(&config, addr)?;
    let backend =
        Arc::new(Backend::connect(&config.backend, &config.catalog, config.impersonate).await?);
    let cluster = backend.cluster_name();
    if backend.is_sandbox() {
        tracing::warn!("cluster is the built-in SANDBOX (in memory): nothing real is changed");
    }

    let stop = CancellationToken::new();
    let metrics = Metrics::new();
    let hub = Arc::new(StateHub::new(&config.catalog));
    let mut tasks = backend.spawn_watchers(&config.catalog, hub.clone(), stop.clone());
    let mut coalescers = HashMap::new();
    let budget = Arc::new(WriteBudget::new(config.limits.writes_per_second));
    let audit = Arc::new(Audit::open(config.audit_file.as_deref())?);
    for target in config.catalog.iter() {
        let shared = WriterShared {
            budget: Some(budget.clone()),
            audit: Some(audit.clone()),
            metrics: metrics.clone(),
        };
        let (coalescer, task) = Coalescer::spawn_with(
            target.clone(),
            backend.clone(),
            hub.clone(),
            stop.clone(),
            shared,
        );
        coalescers.insert(target.name.clone(), coalescer);
        tasks.push(task);
    }
    let readiness = hub.readiness();
    let shared = Arc::new(Shared {
        catalog: config.catalog.clone(),
        policy: config.policy.clone(),
        limits: OperatorLimits::new(config.limits.clone()),
        roster: Arc::default(),
        holds: Holds::new(config.limits.touch_grace),
        cooldowns: Default::default(),
        audit,
        reviewer: match (config.token_review, backend.as_ref()) {
            (false, _) => None,
            (true, Backend::Kube(kube)) => Some(TokenReviewer::new(kube.client())),
            (true, Backend::Sandbox(_)) => return Err(Error::TokenReviewNeedsCluster),
        },
        session: config.session.clone(),
        hub,
        coalescers,
        cluster: cluster.clone(),
        sandbox: backend.is_sandbox(),
        shutdown: stop.clone(),
        metrics: metrics.clone(),
    });

    let (health, health_service) = tonic_health::server::health_reporter();
    // Ends by itself when the hub (the readiness sender) is dropped.
    tokio::spawn(observe::report_health::<KnobsServer<KnobsService>>(
        health,
        readiness.clone(),
    ));
    if let Some(ops_addr) = config.ops_listen {
        let ops = TcpListener::bind(ops_addr)
            .await
            .map_err(|e| Error::OpsListener(ops_addr, e))?;
        let ops_addr = ops.local_addr().map_err(Error::Listener)?;
        tracing::info!(%ops_addr, "ops listening on {ops_addr} (/metrics, /healthz, /readyz, gRPC health)");
        let (metrics, health_service, stopped) = (
            metrics.clone(),
            health_service.clone(),
            stop.clone().cancelled_owned(),
        );
        tokio::spawn(async move {
            if let Err(err) = observe::serve(ops, metrics, readiness, health_service, stopped).await
            {
                tracing::error!(cause = %err, "ops server failed");
            }
        });
    }
    let operators = Arc::new(
        Authenticator::load(config.operators.clone(), config.tokens_file.clone())
            .map_err(Error::Tokens)?
            .with_token_review(config.token_review),
    );
    tasks.push(tokio::spawn(operators.clone().watch(stop.clone())));
    let knobs = InterceptedService::new(
        KnobsServer::new(KnobsService::new(shared))
            .max_decoding_message_size(config.session.max_message_bytes),
        operators.interceptor(),
    );

    let mut server = Server::builder();
    if let Some(tls) = &config.tls {
        let mut tls_config =
            ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        if let Some(client) = &config.client_auth {
            tls_config = tls_config
                .client_ca_root(Certificate::from_pem(&client.ca_pem))
                .client_auth_optional(!client.required);
        }
        server = server.tls_config(tls_config)?;
    }
    let scheme = if config.tls.is_some() {
        "TLS"
    } else {
        "PLAINTEXT (--insecure)"
    };
    tracing::info!(%addr, %cluster, targets = config.catalog.len(), operators = config.operators.len(), "gRPC listening on {addr} ({scheme})");

    let stopping = stop.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: closing sessions, writing pending values");
        stopping.cancel();
    };
    let served = server
        .add_service(health_service)
        .add_service(knobs)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal);
    let result = served.await;
    stop.cancel();
    let drained =
        tokio::time::timeout(DRAIN_GRACE, futures::future::join_all(tasks.iter_mut())).await;
    if drained.is_err() {
        tracing::warn!("some writers did not finish within {DRAIN_GRACE:?}");
    }
    result.map_err(Error::from)
}

fn check_security(config: &Config, addr: std::net::SocketAddr) -> Result<(), Error> {
    match (&config.tls, config.insecure) {
        (_, true) if !addr.ip().is_loopback() => return Err(Error::InsecureNotLoopback(addr)),
        (None, false) => return Err(Error::NoTls),
        (None, true) if config.client_auth.is_some() => return Err(Error::ClientAuthNeedsTls),
        _ => {}
    }
    if config.catalog.is_empty() {
        return Err(Error::EmptyCatalog);
    }
    if config.operators.is_empty() && config.tokens_file.is_none() && config.client_auth.is_none() {
        return Err(Error::NoOperators);
    }
    Ok(())
}
