//! The bridge's configuration: a TOML file parsed into raw structs, then validated into the
//! checked [`Config`] the rest of the bridge uses.
//!
//! Contract: [`Config::load`] / [`Config::parse`] either return a config that is ready to run
//! (URL checked, token and CA already read from their files) or an [`Error`] that names the file,
//! the line and the field, e.g. `bridge.toml:12: osc.mappings[1].range: lower bound must be below
//! upper bound`. Relative `ca` and `token_file` paths are relative to the config file's directory.
//! The demo builds a [`Config`] in code from a [`Local`] and its own [`GatewayConfig`].

mod discovery;
mod gateway;
mod midi;
mod raw;
#[cfg(test)]
mod tests;
mod validate;
mod web;

pub use gateway::DEFAULT_RESEND_WITHIN;
pub use web::{MAX_PIN_CHARS, WebConfig};
// The sections whose checked form is made of their module's own types (MIDI bindings, DNS
// names): those modules own them, and know nothing of this one.
pub use crate::discovery::{DiscoveryConfig, MAX_NAME_BYTES};
pub use crate::midi::{DEFAULT_RESCAN, MidiConfig, SerialConfig};

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::mapping::Mappings;

/// Default `osc.listen`: every interface, TouchOSC's default outgoing port.
pub const DEFAULT_OSC_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8000));
/// Default `osc.feedback_port`: TouchOSC's default incoming port.
pub const DEFAULT_FEEDBACK_PORT: u16 = 9000;
/// Default `osc.client_timeout_secs`.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file itself could not be read.
    #[error("{}: cannot read config file", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A field is missing, mistyped, unknown, or has a value that cannot be used.
    #[error("{}", Invalid::render(path, *line, field, message))]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the offending value, when known.
        line: Option<usize>,
        /// Dotted path of the field, e.g. `osc.mappings[1].range` (empty for TOML syntax errors).
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

struct Invalid;

impl Invalid {
    fn render(path: &Path, line: Option<usize>, field: &str, message: &str) -> String {
        let mut out = path.display().to_string();
        if let Some(line) = line {
            out.push_str(&format!(":{line}"));
        }
        if !field.is_empty() {
            out.push_str(&format!(": {field}"));
        }
        out.push_str(&format!(": {message}"));
        out
    }
}

/// A checked bridge configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Stable, human-readable id of this bridge, sent in `Hello`.
    pub bridge_id: String,
    /// Where the gateway is and how to authenticate to it.
    pub gateway: GatewayConfig,
    /// The OSC side.
    pub osc: OscConfig,
    /// The MIDI side (empty when the file has no `[midi]` table).
    pub midi: MidiConfig,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (`[ops] listen`); `None`: not served.
    pub ops_listen: Option<SocketAddr>,
    /// mDNS/DNS-SD advertising of the OSC service (`[discovery]`).
    pub discovery: DiscoveryConfig,
    /// The browser control surface (`[web]`; off unless `web.listen` is set).
    pub web: WebConfig,
}

/// How to reach the gateway.
#[derive(Clone, PartialEq)]
pub struct GatewayConfig {
    /// `https://…`, or `http://…` to a loopback host only.
    pub url: String,
    /// PEM CA certificate(s) to trust; `Some` exactly when `url` is `https://`.
    pub ca_pem: Option<Vec<u8>>,
    /// The bearer token (already trimmed).
    pub token: String,
    /// TLS server name to verify instead of the URL's host.
    pub domain: Option<String>,
    /// Moves made while disconnected are sent on reconnect if at most this old
    /// (`gateway.resend_within_ms`; zero: dropped).
    pub resend_within: Duration,
}

impl GatewayConfig {
    /// A gateway at `url` trusting `ca_pem`, with `token`, its URL's host as TLS name and the
    /// default `resend_within` (the demo's and tests' gateway).
    pub fn new(url: String, ca_pem: Option<Vec<u8>>, token: String) -> GatewayConfig {
        GatewayConfig {
            url,
            ca_pem,
            token,
            domain: None,
            resend_within: DEFAULT_RESEND_WITHIN,
        }
    }
}

impl fmt::Debug for GatewayConfig {
    /// Never prints the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("url", &self.url)
            .field(
                "ca_pem",
                &self.ca_pem.as_ref().map(|c| format!("{} bytes", c.len())),
            )
            .field("token", &"<redacted>")
            .field("domain", &self.domain)
            .field("resend_within", &self.resend_within)
            .finish()
    }
}

/// The OSC side of the bridge.
#[derive(Debug, Clone)]
pub struct OscConfig {
    /// UDP address to receive OSC on.
    pub listen: SocketAddr,
    /// TCP address to accept OSC connections on (`osc.tcp_listen`); `None`: no OSC over TCP.
    pub tcp_listen: Option<SocketAddr>,
    /// UDP port on each client that receives feedback.
    pub feedback_port: u16,
    /// A client that has sent nothing for this long gets no more feedback.
    pub client_timeout: Duration,
    /// OSC address that gets the connected operators as text (`osc.presence_label`).
    pub presence_label: Option<String>,
    /// OSC address of the arm control (`osc.arm_address`).
    pub arm_address: Option<String>,
    /// Control → target mappings, unique by address.
    pub mappings: Mappings,
}

/// The parts of a config file that do not depend on the gateway: what the demo reads from a
/// bridge config before it supplies its own embedded gateway.
#[derive(Debug, Clone)]
pub struct Local {
    /// See [`Config::bridge_id`].
    pub bridge_id: String,
    /// See [`Config::osc`].
    pub osc: OscConfig,
    /// See [`Config::midi`].
    pub midi: MidiConfig,
    /// See [`Config::ops_listen`].
    pub ops_listen: Option<SocketAddr>,
    /// See [`Config::discovery`].
    pub discovery: DiscoveryConfig,
    /// See [`Config::web`].
    pub web: WebConfig,
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        Config::parse(&read(path)?, path)
    }

    /// Validates `text`, which was read from `origin` (used for messages and relative paths).
    /// Reads the token and CA files. A `[gateway]` table is required.
    pub fn parse(text: &str, origin: &Path) -> Result<Config> {
        validate::config(text, origin)
    }

    /// Combines the local side with a gateway (used by the demo).
    pub fn new(local: Local, gateway: GatewayConfig) -> Config {
        Config {
            bridge_id: local.bridge_id,
            gateway,
            osc: local.osc,
            midi: local.midi,
            ops_listen: local.ops_listen,
            discovery: local.discovery,
            web: local.web,
        }
    }

    /// A human summary for `kubeknobs-bridge check`.
    pub fn summary(&self) -> String {
        let g = &self.gateway;
        let tls = match (&g.ca_pem, &g.domain) {
            (None, _) => "plaintext (loopback only)".to_owned(),
            (Some(_), None) => "TLS, configured CA".to_owned(),
            (Some(_), Some(d)) => format!("TLS, configured CA, server name {d}"),
        };
        let resend = match g.resend_within.as_millis() {
            0 => "moves made while disconnected are dropped".to_owned(),
            ms => format!("moves made while disconnected are resent if at most {ms} ms old"),
        };
        let mut out = format!(
            "bridge_id   {}\ngateway     {} ({tls}), token of {} characters; {resend}\n{}",
            self.bridge_id,
            g.url,
            g.token.len(),
            self.osc.summary()
        );
        out.push_str(&self.midi.summary());
        if let Some(ops) = self.ops_listen {
            out.push_str(&format!("ops         /metrics /healthz /readyz on {ops}\n"));
        }
        out.push_str(&self.discovery.summary(self.osc.listen));
        out.push_str(&self.web.summary());
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

impl Local {
    /// Reads the config file at `path`, ignoring any `[gateway]` table.
    pub fn load(path: &Path) -> Result<Local> {
        Local::parse(&read(path)?, path)
    }

    /// Validates everything but `[gateway]` in `text`, which was read from `origin`.
    pub fn parse(text: &str, origin: &Path) -> Result<Local> {
        validate::local(text, origin)
    }
}

impl OscConfig {
    fn summary(&self) -> String {
        let mut out = format!(
            "osc         listen {}, feedback to port {}, clients forgotten after {} s\n",
            self.listen,
            self.feedback_port,
            self.client_timeout.as_secs()
        );
        if let Some(tcp) = self.tcp_listen {
            out.push_str(&format!(
                "osc tcp     listen {tcp} (SLIP or length-prefixed), feedback on the connection\n"
            ));
        }
        if let Some(arm) = &self.arm_address {
            out.push_str(&format!("osc arm     {arm} (1 arms, 0 disarms)\n"));
        }
        if let Some(label) = &self.presence_label {
            out.push_str(&format!("osc presence {label}\n"));
        }
        out.push_str(&format!("mappings    {}\n", self.mappings.len()));
        for m in self.mappings.iter() {
            out.push_str(&format!(
                "  {} -> {} [{}, {}]",
                m.address,
                m.target,
                m.range.lo(),
                m.range.hi()
            ));
            if let Some(label) = &m.label {
                out.push_str(&format!(", label {label}"));
            }
            out.push('\n');
        }
        out
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}
