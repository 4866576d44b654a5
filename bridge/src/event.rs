//! What the parts of the bridge tell each other, and nothing else: the control surfaces (OSC,
//! MIDI, the web page) and the gateway session know these types and the channels `pipeline`
//! hands them, not each other.
//!
//! - [`Event`]: the gateway session's state (a `Welcome`, state updates, presence, refusals, its
//!   end) and the surfaces' notices (a new OSC client), on their way to feedback; the web page
//!   sees each of them on the way.
//! - [`Settings`]: what feedback plays to whom, sent as [`Event::Configure`] at start and on
//!   every config reload.
//! - [`Level`]: one target's live state, from feedback to the MIDI side.
//! - [`Peer`]: an OSC client, by where its feedback goes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use kubeknobs_proto::v1::{Outcome, Target, TargetState};
use tokio::sync::mpsc;

use crate::mapping::{Bounds, Mapping, Mappings};

/// What feedback plays to whom: set at start and by every config reload (none until then).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// OSC mappings: the addresses that get each target's value and label.
    pub mappings: Arc<Mappings>,
    /// Every mapping, OSC and MIDI, checked against each session's catalog.
    pub mapped: Vec<Mapping>,
    /// UDP port on each client that gets feedback (`osc.feedback_port`).
    pub port: u16,
    /// `osc.presence_label`.
    pub presence_label: Option<String>,
    /// The MIDI side's levels, if it runs.
    pub midi: Option<mpsc::Sender<Level>>,
}

/// What feedback reacts to.
#[derive(Debug, Clone)]
pub enum Event {
    /// New settings (start, or a config reload): every known state is played again with them.
    Configure(Settings),
    /// A session started: every target the operator sees, with bounds and state (`Welcome`).
    Welcome(Vec<Target>),
    /// Live state of some targets changed (`StateUpdate`).
    States(Vec<TargetState>),
    /// A client sent its first packet (or its first after being forgotten).
    NewClient(Peer),
    /// The gateway session ended (the reason): every known state is now stale.
    Disconnected(String),
    /// The connected operators changed, as text (`Presence`).
    Presence(String),
    /// The gateway rejected a move (the web page shows why); OSC feedback ignores it.
    Rejected(Outcome),
}

/// A target's live state, from feedback: what MIDI feedback and pickup need.
#[derive(Debug, Clone)]
pub struct Level {
    /// The catalog target.
    pub target: String,
    /// Its desired value.
    pub desired: f64,
    /// Its bounds from the gateway.
    pub bounds: Bounds,
}

/// Who sent OSC, and so where its feedback goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// A UDP sender: feedback goes to its IP at `osc.feedback_port`.
    Udp(IpAddr),
    /// A TCP connection: feedback goes back on it.
    Tcp(SocketAddr),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Udp(ip) => write!(f, "{ip}"),
            Peer::Tcp(addr) => write!(f, "tcp {addr}"),
        }
    }
}
