//! The web control surface (`[web]`): a touch page any phone, tablet or laptop browser opens,
//! served by the bridge itself, with no app to install.
//!
//! Contract: off unless `web.listen` is set. `GET /` serves a page (plain HTML, CSS and JavaScript
//! embedded in the binary: no CDN, no fonts, no build step) that opens a WebSocket at `/ws` and
//! draws one control per target the gateway's `Welcome` listed. A page acts exactly as an OSC
//! control does, through the same [`crate::link::Link`] (`send_move`, `send_touch`,
//! `send_arm`), with the bridge's operator identity; its state comes from the same events that
//! feed OSC feedback (see [`Hub`]). With `web.pin` set, a page must send the PIN first (see
//! [`pin`]). Bounded: at most [`MAX_PAGES`] pages at once (more get 503), frames of at most
//! [`MAX_FRAME`] bytes, and a WebSocket whose `Origin` is not the page's own host is refused
//! (another web site a phone visits cannot drive the bridge through it).

mod hub;
pub mod pin;
mod socket;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

pub use hub::{Hub, kind_name};

use crate::config::WebConfig;

/// Most pages open at once.
pub const MAX_PAGES: usize = 64;
/// Largest frame a page may send, in bytes (a move is about 60).
pub const MAX_FRAME: usize = 4096;

const INDEX_HTML: &str = include_str!("static/index.html");
const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

/// What can stop the web side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `web.listen` could not be bound.
    #[error("cannot listen on {0} (web.listen)")]
    Bind(SocketAddr, #[source] std::io::Error),
}

/// What every request handler shares.
#[derive(Clone)]
struct Shared {
    hub: Hub,
    gate: Arc<pin::Gate>,
    pages: Arc<Semaphore>,
}

/// A bound web side, ready to serve.
pub struct Web {
    listener: TcpListener,
    shared: Shared,
    /// Where it listens.
    pub local: SocketAddr,
}

/// Binds `web.listen` if set, for a bridge called `bridge_id`.
pub async fn bind(config: &WebConfig, bridge_id: &str) -> Result<Option<Web>, Error> {
    let Some(addr) = config.listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Bind(addr, e))?;
    let local = listener.local_addr().map_err(|e| Error::Bind(addr, e))?;
    let pin = if config.pin.is_some() {
        "with a PIN"
    } else {
        "without a PIN: anyone who reaches this port acts as this bridge's operator"
    };
    info!("web control surface listening on {local} ({pin})");
    Ok(Some(Web {
        listener,
        shared: Shared {
            hub: Hub::new(bridge_id),
            gate: Arc::new(pin::Gate::new(config.pin.as_deref())),
            pages: Arc::new(Semaphore::new(MAX_PAGES)),
        },
        local,
    }))
}

impl Web {
    /// The hub the pipeline feeds.
    pub fn hub(&self) -> Hub {
        self.shared.hub.clone()
    }

    /// Serves until dropped (if the server fails, that is logged and the future stays pending).
    pub fn serve(self) -> impl Future<Output = ()> {
        let app = Router::new()
            .route(
                "/",
                get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
            )
            .route(
                "/app.js",
                get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
            )
            .route(
                "/app.css",
                get(|| async { page(APP_CSS, "text/css; charset=utf-8") }),
            )
            .route("/ws", get(upgrade))
            .with_state(self.shared);
        let listener = self.listener;
        async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
                tracing::error!(error = %e, "web control surface failed");
            }
            // Like the ops port: a failed page server is logged, and OSC and MIDI go on.
            std::future::pending::<()>().await
        }
    }
}

/// One of the embedded files, never cached stale, and allowed to load only from this bridge.
fn page(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; connect-src 'self'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn upgrade(
    upgrade: WebSocketUpgrade,
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !same_origin(&headers) {
        warn!(%peer, "web socket from another origin refused");
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
    }
    let Ok(permit) = shared.pages.clone().try_acquire_owned() else {
        warn!(%peer, "too many web pages open ({MAX_PAGES}); refused");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many pages open\n").into_response();
    };
    upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |ws| async move {
            socket::run(ws, shared, peer).await;
            drop(permit);
        })
}

/// True when the request's `Origin` names the host it was sent to (a browser always sends
/// `Origin` on a WebSocket; a client without one is not a browser, and has no page to be
/// tricked by).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(|h| h.to_str()),
    ) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("origin"));
        }
        h
    }

    #[test]
    fn only_the_pages_own_origin_may_open_the_socket() {
        assert!(same_origin(&headers(
            Some("http://10.0.0.5:8080"),
            "10.0.0.5:8080"
        )));
        assert!(same_origin(&headers(None, "10.0.0.5:8080")));
        assert!(!same_origin(&headers(
            Some("http://evil.example"),
            "10.0.0.5:8080"
        )));
        assert!(!same_origin(&headers(Some("null"), "10.0.0.5:8080")));
        assert!(!same_origin(&headers(
            Some("http://10.0.0.5:8081"),
            "10.0.0.5:8080"
        )));
    }
}
