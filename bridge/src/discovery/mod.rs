//! Zero-configuration discovery: the OSC service advertised over mDNS/DNS-SD as `_osc._udp`, so
//! that a phone app browsing for OSC services lists the bridge with its address and port.
//!
//! Contract: the service is advertised only where the OSC socket listens ([`scope`]): on its one
//! address when it is bound to a specific one, on every non-loopback interface when it is bound to
//! `0.0.0.0` (IPv4) or `::` (IPv4 and IPv6), and nowhere when it is bound to loopback, which a
//! phone cannot reach.

mod scope;

pub use scope::{Interfaces, Scope, scope};

/// The DNS-SD service type of OSC over UDP, the one OSC apps browse for.
pub const SERVICE_TYPE: &str = "_osc._udp.local.";
