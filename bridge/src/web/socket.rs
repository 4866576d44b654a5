//! One page's WebSocket: the PIN first (when `web.pin` is set), then the whole state, then every
//! change one way and the page's moves, touches and arm presses the other, until it closes.
//!
//! Wire format, JSON text frames. From the page: `{"type":"pin","pin":"4711"}`,
//! `{"type":"move","target":"web","value":0.5}` (0..1 of the target's bounds),
//! `{"type":"touch","target":"web","on":true}`, `{"type":"arm","on":true}`. To the page:
//! `hello` (bridge id, whether a PIN is needed), `refused` (why), `snapshot` (every target with
//! bounds and state, presence, staleness), then `states`, `presence`, `stale` and `rejected` as
//! they happen. A page that has not been heard from (its pongs included) for [`SILENT_FOR`] is
//! dropped, and whatever it touched or armed is released with it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, timeout};
use tracing::{debug, info, warn};

use super::Shared;
use super::hub;

/// How long a page may take to send its PIN.
const PIN_WITHIN: Duration = Duration::from_secs(60);
/// How often the bridge pings a page.
const PING_EVERY: Duration = Duration::from_secs(10);
/// A page silent this long (a phone that went to sleep mid-touch) is dropped and released.
pub const SILENT_FOR: Duration = Duration::from_secs(30);
/// How long one frame to a page may take to send.
const SEND_WITHIN: Duration = Duration::from_secs(10);

/// What a page sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum FromPage {
    Pin { pin: String },
    Move { target: String, value: f64 },
    Touch { target: String, on: bool },
    Arm { on: bool },
}

/// What one page holds, released when it goes.
#[derive(Default)]
struct Held {
    touches: HashSet<String>,
    armed: bool,
}

/// Runs one page's socket to its end.
pub(super) async fn run(mut ws: WebSocket, shared: Shared, peer: SocketAddr) {
    let hello = json!({
        "type": "hello",
        "bridge_id": shared.hub.bridge_id(),
        "pin": shared.gate.required(),
    });
    if send(&mut ws, hello.to_string()).await.is_err() {
        return;
    }
    if shared.gate.required() && !pin(&mut ws, &shared, peer).await {
        return;
    }
    info!(%peer, "web control surface opened");
    let mut held = Held::default();
    serve(&mut ws, &shared, &mut held).await;
    release(&shared, &mut held).await;
    info!(%peer, "web control surface closed");
}

/// Waits for the PIN; true when it is right. A wrong one is answered `refused` and closes.
async fn pin(ws: &mut WebSocket, shared: &Shared, peer: SocketAddr) -> bool {
    let guess = match timeout(PIN_WITHIN, ws.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str(text.as_str()) {
            Ok(FromPage::Pin { pin }) => pin,
            _ => String::new(),
        },
        _ => return false,
    };
    if shared.gate.check(&guess).await {
        return true;
    }
    warn!(%peer, "wrong PIN for the web control surface; refused");
    let refused = json!({"type": "refused", "reason": "wrong PIN"});
    let _ = send(ws, refused.to_string()).await;
    let _ = timeout(SEND_WITHIN, ws.send(Message::Close(None))).await;
    false
}

/// The state, then changes and the page's controls, until the page closes or goes silent.
async fn serve(ws: &mut WebSocket, shared: &Shared, held: &mut Held) {
    let (snapshot, mut changes) = shared.hub.subscribe();
    if send(ws, snapshot).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            received = ws.recv() => {
                heard = Instant::now();
                match received {
                    Some(Ok(Message::Text(text))) => control(text.as_str(), shared, held).await,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                }
            }
            change = changes.recv() => {
                let text = match change {
                    Ok(text) => text.to_string(),
                    // Fell behind: the whole state again is the truth and is short.
                    Err(RecvError::Lagged(_)) => shared.hub.snapshot(),
                    Err(RecvError::Closed) => return,
                };
                if send(ws, text).await.is_err() {
                    return;
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_FOR {
                    debug!("web page silent for {SILENT_FOR:?}; dropping it");
                    return;
                }
                if timeout(SEND_WITHIN, ws.send(Message::Ping(Default::default()))).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Acts on one frame from the page: exactly what an OSC control would do through the same link.
async fn control(text: &str, shared: &Shared, held: &mut Held) {
    let message: FromPage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => return debug!(error = %e, "unusable message from a web page; ignored"),
    };
    let Some(link) = shared.hub.link() else {
        return debug!("no gateway session yet; web control ignored");
    };
    match message {
        FromPage::Pin { .. } => {}
        FromPage::Move { target, value } => {
            if !value.is_finite() {
                return debug!(target_name = %target, "non-finite value from a web page; ignored");
            }
            link.send_move(&hub::mapping(&target), value).await;
        }
        FromPage::Touch { target, on } => {
            // Only catalog targets are counted: the page cannot grow the bridge's tables.
            if !shared.hub.knows(&target) || held.touches.contains(&target) == on {
                return;
            }
            if on {
                held.touches.insert(target.clone());
            } else {
                held.touches.remove(&target);
            }
            if shared.hub.count_touch(&target, on) {
                link.send_touch(&hub::mapping(&target), on).await;
            }
        }
        FromPage::Arm { on } => {
            if held.armed == on {
                return;
            }
            held.armed = on;
            if shared.hub.count_arm(on) {
                link.send_arm(on).await;
            }
        }
    }
}

/// Releases what a closed page still held, as if its fingers had lifted.
async fn release(shared: &Shared, held: &mut Held) {
    let Some(link) = shared.hub.link() else {
        return;
    };
    for target in held.touches.drain() {
        if shared.hub.count_touch(&target, false) {
            link.send_touch(&hub::mapping(&target), false).await;
        }
    }
    if std::mem::take(&mut held.armed) && shared.hub.count_arm(false) {
        link.send_arm(false).await;
    }
}

async fn send(ws: &mut WebSocket, text: String) -> Result<(), ()> {
    match timeout(SEND_WITHIN, ws.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
