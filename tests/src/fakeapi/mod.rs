//! A fake Kubernetes API server that speaks real HTTP to the real kube client.
//!
//! It serves apps/v1 Deployments and StatefulSets, batch/v1 CronJobs, v1 Nodes
//! (cluster-scoped) and autoscaling/v2 HorizontalPodAutoscalers from memory, each with labels
//! and annotations: GET and merge PATCH of objects, list and watch of collections,
//! and GET/PATCH/PUT of the workloads' `scale` subresource, with resourceVersions,
//! managedFields, `dryRun=All`, field selectors and Kubernetes `Status` errors, on
//! `http://127.0.0.1:PORT`, and answers TokenReviews for tokens registered with `add_token`
//! (honouring `spec.audiences` as the real one does: see the `tokenreview` module).
//! Tests drive it from the side (`add`, `add_cronjob`, `add_node`, `add_token`,
//! `scale_externally`, `suspend_externally`, `cordon_externally`, `set_ready`, `add_hpa`,
//! `set_hpa_status`, `label`, `annotate`, `clear_labels`, `remove`, `inject`, `stop`/`restart`)
//! and read back what happened (`replicas`, `paused`, `suspended`, `unschedulable`,
//! `hpa_bounds`, `requests`, `write_count`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube::Error> {
//! use k8s_openapi::api::apps::v1::Deployment;
//! use kubeknobs_tests::fakeapi::{FakeApiServer, Kind};
//! let fake = FakeApiServer::start().await;
//! fake.add(Kind::Deployment, "default", "web", 2);
//! let api = kube::Api::<Deployment>::namespaced(fake.client(), "default");
//! assert_eq!(api.get_scale("web").await?.spec.and_then(|s| s.replicas), Some(2));
//! # Ok(()) }
//! ```
//!
//! Real API server behaviours it models, because the gateway depends on them (each has a test in
//! `tests/tests/fakeapi.rs`): resourceVersions that change on every write and order watch events;
//! merge patches of `spec.replicas` through the `scale` subresource; `dryRun=All` that answers but
//! persists nothing; managedFields with server-side field ownership (a writer becomes a field's
//! only owner) and, as on a real v1.28 server, no `time` on entries written through the `scale`
//! subresource; watches with bookmarks, timeouts and `410 Gone` for expired versions; Kubernetes
//! `Status` errors; HPAs (autoscaling/v2) with `scaleTargetRef`, `minReplicas`/`maxReplicas`
//! validated as the real server validates them (`minReplicas` ≥ 1, `maxReplicas` ≥
//! `minReplicas`, else 422 Invalid), merge patches of those bounds, and `status.currentReplicas`/
//! `desiredReplicas` only as a test sets them; labels and annotations (Argo CD's and Flux's
//! tracking metadata) that show in every GET, list and watch event, a change of them being a
//! MODIFIED event. Not modelled: admission webhooks, controllers (pods never become ready
//! unless a test says so with `set_ready`; no HPA scales anything: a test plays the HPA
//! controller with `scale_externally` and `set_hpa_status`), server-side apply merge semantics beyond ownership,
//! RBAC (every request is allowed), and any resource not listed above.
//!
//! Note that kube's default client retries 429, 503 and 504 answers itself (up to 15 times,
//! exponential backoff from 5 ms); use [`FakeApiServer::config`] with `default_retry = false` to
//! see those codes as errors.

mod autoscaling;
mod client;
mod core_batch;
mod fault;
mod fields;
mod kind;
mod lease;
mod object;
mod patch;
mod query;
mod record;
mod routes;
mod spec;
mod status;
mod store;
mod toggles;
mod tokenreview;
mod watch;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use fault::Fault;
pub use kind::Kind;
pub use record::Request;
pub use tokenreview::API_AUDIENCE;

use fault::Faults;
use store::Store;

/// How long `stop` waits for in-flight answers before abandoning them.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// State shared by every serving epoch and every handle.
pub(crate) struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<Request>>,
    writes: AtomicUsize,
    /// Tokens TokenReview knows, by token.
    tokens: Mutex<std::collections::HashMap<String, tokenreview::KnownToken>>,
    /// coordination.k8s.io Leases.
    leases: Mutex<lease::Leases>,
}

/// What handlers get: the shared state and the current serving epoch's stop signal.
#[derive(Clone)]
pub(crate) struct AppState {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

/// Locks `m`; a panic elsewhere while holding it does not make the state unusable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake API server. Cloning gives another handle to the same server; it stops
/// serving when the last handle is dropped.
#[derive(Clone)]
pub struct FakeApiServer {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    shared: Arc<Shared>,
    serving: Mutex<Option<Serving>>,
}

/// One serving epoch, between `start`/`restart` and `stop`.
struct Serving {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(serving) = lock(&self.serving).take() {
            serving.shutdown.cancel();
        }
    }
}

impl std::fmt::Debug for FakeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApiServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl FakeApiServer {
    /// Binds `127.0.0.1:0` and starts serving an empty cluster.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the fake API server");
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener");
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(Vec::new()),
            writes: AtomicUsize::new(0),
            tokens: Mutex::new(std::collections::HashMap::new()),
            leases: Mutex::new(lease::Leases::new()),
        });
        let server = FakeApiServer {
            inner: Arc::new(Inner {
                addr,
                shared,
                serving: Mutex::new(None),
            }),
        };
        server.serve(listener);
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// `spec.paused` of a Deployment, if it exists.
    pub fn paused(&self, ns: &str, name: &str) -> Option<bool> {
        lock(&self.inner.shared.store)
            .get(&key(Kind::Deployment, ns, name))
            .map(|w| w.paused)
    }

    /// The restartedAt annotation of a Deployment's pod template, if set.
    pub fn restarted_at(&self, ns: &str, name: &str) -> Option<String> {
        lock(&self.inner.shared.store)
            .get(&key(Kind::Deployment, ns, name))
            .and_then(|w| w.restarted_at.clone())
    }

    /// Makes TokenReview authenticate `token` as `username` in `groups`, for the API server's
    /// own audience ([`API_AUDIENCE`]), as `kubectl create token NAME` mints it.
    pub fn add_token(&self, token: &str, username: &str, groups: &[&str]) {
        self.add_token_for(token, username, groups, &[API_AUDIENCE]);
    }

    /// Makes TokenReview authenticate `token` as `username` in `groups`, but only for reviews
    /// that ask for one of `audiences` (`kubectl create token NAME --audience A`).
    pub fn add_token_for(&self, token: &str, username: &str, groups: &[&str], audiences: &[&str]) {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        let known = tokenreview::KnownToken {
            username: username.to_owned(),
            groups: owned(groups),
            audiences: owned(audiences),
        };
        lock(&self.inner.shared.tokens).insert(token.to_owned(), known);
    }

    /// Creates a workload with `replicas` in spec and status (all ready); ADDED on watches.
    /// Adding an existing one resets its replicas (MODIFIED).
    pub fn add(&self, kind: Kind, ns: &str, name: &str, replicas: i32) {
        lock(&self.inner.shared.store).add(key(kind, ns, name), replicas);
    }

    /// Deletes a workload; DELETED on watches. Returns whether it existed.
    pub fn remove(&self, kind: Kind, ns: &str, name: &str) -> bool {
        lock(&self.inner.shared.store).remove(&key(kind, ns, name))
    }

    /// The workload's `spec.replicas`, if it exists.
    pub fn replicas(&self, kind: Kind, ns: &str, name: &str) -> Option<i32> {
        lock(&self.inner.shared.store)
            .get(&key(kind, ns, name))
            .map(|w| w.spec_replicas)
    }

    /// The workload's `(status.replicas, status.readyReplicas)`, if it exists.
    pub fn status(&self, kind: Kind, ns: &str, name: &str) -> Option<(i32, i32)> {
        lock(&self.inner.shared.store)
            .get(&key(kind, ns, name))
            .map(|w| (w.status_replicas, w.ready_replicas))
    }

    /// Scales as `kubectl scale` would: through the scale subresource, as field manager
    /// `manager` (operation Update). A MODIFIED event follows unless nothing changed. Not
    /// counted in [`write_count`](Self::write_count).
    ///
    /// # Panics
    /// If the workload does not exist or `replicas` is negative (a bug in the test).
    pub fn scale_externally(&self, kind: Kind, ns: &str, name: &str, replicas: i32, manager: &str) {
        let writer = fields::Writer {
            manager,
            operation: "Update",
            subresource: Some("scale"),
        };
        let result = lock(&self.inner.shared.store).scale(
            &key(kind, ns, name),
            replicas,
            &writer,
            None,
            false,
        );
        if let Err(err) = result {
            panic!(
                "scale_externally({kind:?} {ns}/{name}, {replicas}): {}",
                err.message
            );
        }
    }

    /// Sets `status.readyReplicas` to `ready` (and `status.replicas` to the spec), as the
    /// workload controller would; MODIFIED on watches.
    ///
    /// # Panics
    /// If the workload does not exist.
    pub fn set_ready(&self, kind: Kind, ns: &str, name: &str, ready: i32) {
        let found = lock(&self.inner.shared.store).set_ready(&key(kind, ns, name), ready);
        assert!(found, "set_ready: no {kind:?} {ns}/{name}");
    }

    /// Forgets the change history: watches resuming from an older resourceVersion get a 410
    /// Expired ERROR event, which makes kube's watcher re-list.
    pub fn compact(&self) {
        lock(&self.inner.shared.store).compact();
    }

    /// The next `times` requests with `method` (`"*"` for any) whose path ends with
    /// `path_suffix` get `fault`. See [`Fault`].
    pub fn inject(&self, method: &str, path_suffix: &str, fault: Fault, times: usize) {
        lock(&self.inner.shared.faults).push(method, path_suffix, fault, times);
    }

    /// Every request received so far, in arrival order (including faulted ones).
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.inner.shared.requests).clone()
    }

    /// Successful, non-dry-run writes (PATCH or PUT) of a scale subresource over HTTP,
    /// including no-op ones.
    pub fn write_count(&self) -> usize {
        self.inner.shared.writes.load(Ordering::SeqCst)
    }

    /// Stops serving: the listener is closed (connections are refused), watch streams and
    /// delayed answers end, open connections close. State is kept. Idempotent.
    pub async fn stop(&self) {
        let Some(serving) = lock(&self.inner.serving).take() else {
            return;
        };
        serving.shutdown.cancel();
        let mut task = serving.task;
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            task.abort();
        }
    }

    /// Serves again on the same port with the same state. No-op if already serving.
    ///
    /// # Panics
    /// If the port cannot be bound again within a few seconds (something else took it).
    pub async fn restart(&self) {
        if lock(&self.inner.serving).is_some() {
            return;
        }
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(self.inner.addr).await {
                Ok(listener) => break listener,
                // The port may linger for a moment after `stop`; anything longer is a real clash.
                Err(_) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("rebind {} for the fake API server: {e}", self.inner.addr),
            }
        };
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let shutdown = CancellationToken::new();
        let app = AppState {
            shared: self.inner.shared.clone(),
            shutdown: shutdown.clone(),
        };
        let router = routes::router(app);
        let signal = shutdown.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            // axum retries failed accepts itself; this returns once shut down.
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(signal)
                .await;
        });
        *lock(&self.inner.serving) = Some(Serving { shutdown, task });
    }
}

fn key(kind: Kind, ns: &str, name: &str) -> store::Key {
    (kind, ns.to_owned(), name.to_owned())
}
