//! `[web]` rules: where the browser control surface listens (`web.listen`, off when absent) and
//! the optional PIN a browser must give before it may touch anything (`web.pin`).

use std::fmt;
use std::net::SocketAddr;

use super::Result;
use super::raw::RawWeb;
use super::validate::Source;

/// Longest accepted `web.pin`, in characters: a PIN is typed on a phone.
pub const MAX_PIN_CHARS: usize = 64;

/// The browser control surface (see [`crate::web`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebConfig {
    /// Where the page and its WebSocket are served (`web.listen`); `None`: not served.
    pub listen: Option<SocketAddr>,
    /// The PIN a browser must send first (`web.pin`); `None`: anyone who reaches the port may act.
    pub pin: Option<String>,
}

impl fmt::Debug for WebConfig {
    /// Never prints the PIN.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("listen", &self.listen)
            .field("pin", &self.pin.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl WebConfig {
    /// One summary line for `kubeknobs-bridge check`.
    pub(super) fn summary(&self) -> String {
        match (self.listen, &self.pin) {
            (None, _) => "web         off (no [web] listen)\n".to_owned(),
            (Some(addr), None) => format!("web         http://{addr}/ without a PIN\n"),
            (Some(addr), Some(_)) => format!("web         http://{addr}/ with a PIN\n"),
        }
    }
}

/// Validates `[web]`.
pub(super) fn web(src: &Source<'_>, raw: &RawWeb) -> Result<WebConfig> {
    let listen = match &raw.listen {
        Some(l) => Some(
            l.get_ref()
                .trim()
                .parse::<SocketAddr>()
                .map_err(|_| src.at(l, "web.listen", "not a socket address like 0.0.0.0:8080"))?,
        ),
        None => None,
    };
    let pin = match &raw.pin {
        Some(p) if p.get_ref().trim().is_empty() => {
            return Err(src.at(p, "web.pin", "must not be empty (omit it for no PIN)"));
        }
        Some(p) if p.get_ref().trim().chars().count() > MAX_PIN_CHARS => {
            return Err(src.at(
                p,
                "web.pin",
                format!("must be at most {MAX_PIN_CHARS} characters"),
            ));
        }
        Some(p) => Some(p.get_ref().trim().to_owned()),
        None => None,
    };
    if pin.is_some() && listen.is_none() {
        let p = raw.pin.as_ref().expect("pin is set");
        return Err(src.at(
            p,
            "web.pin",
            "is set but web.listen is not: nothing serves the page",
        ));
    }
    Ok(WebConfig { listen, pin })
}
