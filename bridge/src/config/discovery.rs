//! `[discovery]` rules: whether the OSC service is advertised over mDNS/DNS-SD, and the instance
//! name phone apps list it under. Where it is advertised follows from `osc.listen` (see
//! [`crate::discovery::scope`]), so there is nothing to configure for that.

use std::net::SocketAddr;

use super::Result;
use super::raw::RawDiscovery;
use super::validate::Source;
use crate::discovery::{self, DiscoveryConfig, MAX_NAME_BYTES, Scope};

impl DiscoveryConfig {
    /// One summary line for `kubeknobs-bridge check`, given where OSC listens.
    pub(super) fn summary(&self, listen: SocketAddr) -> String {
        let line = match discovery::scope(self.mdns, listen.ip()) {
            Scope::Off => "off (discovery.mdns = false)".to_owned(),
            Scope::Loopback(ip) => format!("not advertised: osc.listen {ip} is loopback"),
            Scope::On(interfaces) => format!(
                "mDNS {} as \"{}\" {interfaces}",
                discovery::SERVICE_TYPE,
                self.name
            ),
        };
        format!("discovery   {line}\n")
    }
}

/// Validates `[discovery]`; `bridge_id` is the already checked id the name defaults to.
pub(super) fn discovery(
    src: &Source<'_>,
    raw: &RawDiscovery,
    bridge_id: &str,
) -> Result<DiscoveryConfig> {
    let mut config = DiscoveryConfig::new(bridge_id);
    if let Some(mdns) = raw.mdns {
        config.mdns = mdns;
    }
    if let Some(name) = &raw.name {
        let text = name.get_ref().trim();
        let problem = if text.is_empty() {
            Some("must not be empty (omit it to use the bridge_id)".to_owned())
        } else if text.len() > MAX_NAME_BYTES {
            Some(format!(
                "must be at most {MAX_NAME_BYTES} bytes (a DNS label), got {}",
                text.len()
            ))
        } else if text.chars().any(char::is_control) {
            Some("must not contain control characters".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(src.at(name, "discovery.name", problem));
        }
        config.name = text.to_owned();
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Local;

    fn parse(text: &str) -> Result<Local> {
        Local::parse(text, Path::new("bridge.toml"))
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("should be refused").to_string()
    }

    #[test]
    fn defaults_to_advertising_under_the_bridge_id() {
        let local = parse("bridge_id = \"pi-stage-left\"\n").expect("valid");
        assert_eq!(local.discovery, DiscoveryConfig::new("pi-stage-left"));
        assert!(local.discovery.mdns);
        assert_eq!(local.discovery.name, "pi-stage-left");
    }

    #[test]
    fn reads_mdns_and_name() {
        let text = "bridge_id = \"pi\"\n[discovery]\nmdns = false\nname = \" Stage left \"\n";
        let local = parse(text).expect("valid");
        assert!(!local.discovery.mdns);
        assert_eq!(local.discovery.name, "Stage left");
        let text = "[discovery]\nname = \"Bühne.links (2)\"\n";
        assert_eq!(
            parse(text).expect("valid").discovery.name,
            "Bühne.links (2)"
        );
    }

    #[test]
    fn refuses_bad_values_with_file_line_and_field() {
        assert_eq!(
            error("bridge_id = \"pi\"\n[discovery]\nname = \"  \"\n"),
            "bridge.toml:3: discovery.name: must not be empty (omit it to use the bridge_id)"
        );
        let long = "x".repeat(64);
        assert_eq!(
            error(&format!("[discovery]\nname = \"{long}\"\n")),
            "bridge.toml:2: discovery.name: must be at most 63 bytes (a DNS label), got 64"
        );
        assert_eq!(
            error("[discovery]\nname = \"a\\tb\"\n"),
            "bridge.toml:2: discovery.name: must not contain control characters"
        );
        let msg = error("[discovery]\nmdns = \"yes\"\n");
        assert!(
            msg.starts_with("bridge.toml:2: discovery.mdns: invalid type"),
            "{msg}"
        );
        let msg = error("[discovery]\nmdsn = true\n");
        assert!(
            msg.starts_with("bridge.toml:2: discovery.mdsn: unknown field"),
            "{msg}"
        );
    }

    #[test]
    fn summary_says_where_it_is_advertised() {
        let config = DiscoveryConfig::new("pi");
        let line = |listen: &str| config.summary(listen.parse().expect("addr"));
        assert_eq!(
            line("10.0.0.5:8000"),
            "discovery   mDNS _osc._udp.local. as \"pi\" on 10.0.0.5 only\n"
        );
        assert_eq!(
            line("0.0.0.0:8000"),
            "discovery   mDNS _osc._udp.local. as \"pi\" on every non-loopback IPv4 interface\n"
        );
        assert_eq!(
            line("127.0.0.1:8000"),
            "discovery   not advertised: osc.listen 127.0.0.1 is loopback\n"
        );
        let off = DiscoveryConfig {
            mdns: false,
            ..config.clone()
        };
        assert_eq!(
            off.summary("0.0.0.0:8000".parse().expect("addr")),
            "discovery   off (discovery.mdns = false)\n"
        );
    }
}
