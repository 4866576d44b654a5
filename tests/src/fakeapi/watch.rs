//! Watch streams: `GET <collection>?watch=true`, answered as a chunked stream of
//! newline-delimited `{"type":..,"object":..}` events.
//!
//! Start point, as on a real API server: `resourceVersion` absent, empty or `"0"` (or
//! `sendInitialEvents=true`) sends synthetic ADDED events for the current objects first; a
//! numeric one replays every change after it; one older than the kept history gets a single
//! ERROR event with a 410 Expired `Status` (so kube's watcher re-lists). With
//! `sendInitialEvents=true` the initial events end with a BOOKMARK annotated
//! `k8s.io/initial-events-end`. With `allowWatchBookmarks=true` a BOOKMARK carrying the latest
//! resourceVersion is sent just before the stream closes at `timeoutSeconds`. The stream also
//! ends when the server stops, the client goes away, or the watch falls too far behind.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::kind::Kind;
use super::object;
use super::query::{FieldSelector, Params};
use super::status::ApiError;
use super::store::{Change, EventType, WatchStart, Workload};
use super::{AppState, lock};

/// What one watch stream sends.
struct Scope {
    kind: Kind,
    namespace: Option<String>,
    selector: FieldSelector,
}

impl Scope {
    fn matches(&self, w: &Workload) -> bool {
        w.kind == self.kind
            && self.namespace.as_ref().is_none_or(|ns| &w.namespace == ns)
            && self.selector.matches(w)
    }
}

type Sender = mpsc::Sender<Result<Bytes, Infallible>>;

/// Answers a watch request on the `kind` collection (in `namespace`, or cluster-wide).
pub(crate) fn watch(
    app: AppState,
    kind: Kind,
    namespace: Option<String>,
    params: &Params,
) -> Result<Response, ApiError> {
    let scope = Scope {
        kind,
        namespace,
        selector: params.field_selector()?,
    };
    let timeout = params.number("timeoutSeconds")?.filter(|s| *s > 0);
    let bookmarks = params.flag("allowWatchBookmarks");
    let initial_events = params.flag("sendInitialEvents");
    let start = match params.get("resourceVersion") {
        _ if initial_events => WatchStart::Current,
        None | Some("" | "0") => WatchStart::Current,
        Some(rv) => WatchStart::After(rv.parse().map_err(|_| {
            ApiError::bad_request(format!("resourceVersion: Invalid value: {rv:?}"))
        })?),
    };
    let subscription = lock(&app.shared.store).subscribe(&start);
    let (tx, rx) = mpsc::channel(64);
    // A timeout too large to represent is no timeout.
    let deadline = timeout.and_then(|s| Instant::now().checked_add(Duration::from_secs(s)));
    tokio::spawn(async move {
        let sub = match subscription {
            Ok(sub) => sub,
            Err(oldest) => {
                let status =
                    ApiError::new(410, format!("too old resource version: {oldest}")).to_status();
                let _ = send(&app, &tx, &json!({ "type": "ERROR", "object": status })).await;
                return;
            }
        };
        for change in sub.replay.iter().filter(|c| scope.matches(&c.object)) {
            if send(&app, &tx, &event(change)).await.is_err() {
                return;
            }
        }
        if initial_events && bookmarks {
            let mark = object::bookmark(scope.kind, sub.resource_version, true);
            if send(&app, &tx, &json!({ "type": "BOOKMARK", "object": mark }))
                .await
                .is_err()
            {
                return;
            }
        }
        let last = follow(&app, &scope, sub.live, sub.resource_version, deadline, &tx).await;
        if let Some(resource_version) = last.filter(|_| bookmarks) {
            let mark = object::bookmark(scope.kind, resource_version, false);
            let _ = send(&app, &tx, &json!({ "type": "BOOKMARK", "object": mark })).await;
        }
    });
    let body = Body::from_stream(ReceiverStream::new(rx));
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

/// Sends live changes until the deadline (→ `Some(last resourceVersion seen)`, for a closing
/// bookmark) or until the server stops, the client leaves or the feed lags (→ `None`).
async fn follow(
    app: &AppState,
    scope: &Scope,
    mut live: broadcast::Receiver<std::sync::Arc<Change>>,
    mut last: u64,
    deadline: Option<Instant>,
    tx: &Sender,
) -> Option<u64> {
    let expiry = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return None,
            () = tx.closed() => return None,
            () = &mut expiry => return Some(last),
            change = live.recv() => {
                // Lagged or closed: end the stream; the client re-watches from its last version.
                let change = change.ok()?;
                if change.resource_version <= last {
                    continue;
                }
                last = change.resource_version;
                if scope.matches(&change.object) && send(app, tx, &event(&change)).await.is_err() {
                    return None;
                }
            }
        }
    }
}

fn event(change: &Change) -> Value {
    let kind = match change.event {
        EventType::Added => "ADDED",
        EventType::Modified => "MODIFIED",
        EventType::Deleted => "DELETED",
    };
    json!({ "type": kind, "object": object::object(&change.object) })
}

/// Sends one event line; fails when the client is gone or the server stops.
async fn send(app: &AppState, tx: &Sender, value: &Value) -> Result<(), ()> {
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    tokio::select! {
        sent = tx.send(Ok(Bytes::from(line))) => sent.map_err(|_| ()),
        () = app.shutdown.cancelled() => Err(()),
    }
}
