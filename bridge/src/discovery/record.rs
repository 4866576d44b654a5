//! The DNS-SD records of the OSC service: instance name, host name, port, addresses, and the TXT
//! record a browsing app can read (`txtvers`, `bridge_id`, and for UDP `feedback_port`). One
//! service per transport: `_osc._udp`, and `_osc._tcp` when OSC over TCP is on.

use std::net::IpAddr;

use mdns_sd::{IfKind, ServiceInfo};

use super::scope::Interfaces;
use super::{DiscoveryConfig, SERVICE_TYPE, TCP_SERVICE_TYPE};

/// Version of the TXT record's layout (`txtvers`, RFC 6763 §6.7).
const TXT_VERSION: &str = "1";
/// Host label used when the machine's own name cannot be read or has no usable character.
const FALLBACK_HOST: &str = "kubeknobs-bridge";

/// What the bridge tells a browsing app beyond address and port.
pub(super) struct Txt<'a> {
    /// The bridge's id, as sent to the gateway.
    pub bridge_id: &'a str,
    /// The port on the phone that receives feedback (`osc.feedback_port`; UDP only).
    pub feedback_port: u16,
}

/// The transport an OSC service is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// Datagrams (`osc.listen`).
    Udp,
    /// A connection (`osc.tcp_listen`); feedback comes back on it.
    Tcp,
}

/// Everything in the service records but the TXT record, which a config reload may change.
pub(super) struct Record {
    pub config: DiscoveryConfig,
    pub host: String,
    pub interfaces: Interfaces,
    /// The advertised sockets: UDP first, then TCP if it is advertised.
    pub ports: Vec<(Transport, u16)>,
}

impl Record {
    /// A service record per advertised socket, with `txt`.
    pub fn services(&self, txt: &Txt<'_>) -> mdns_sd::Result<Vec<ServiceInfo>> {
        self.ports
            .iter()
            .map(|&(transport, port)| {
                service(
                    &self.config,
                    &self.host,
                    self.interfaces,
                    (transport, port),
                    txt,
                )
            })
            .collect()
    }
}

/// The service record of the OSC socket on `port` of `transport`, as `config` names it, for
/// `interfaces`: with the one address, or with the addresses of the chosen interfaces, kept
/// current by the daemon.
pub(super) fn service(
    config: &DiscoveryConfig,
    host: &str,
    interfaces: Interfaces,
    (transport, port): (Transport, u16),
    txt: &Txt<'_>,
) -> mdns_sd::Result<ServiceInfo> {
    let mut properties = vec![
        ("txtvers", TXT_VERSION.to_owned()),
        ("bridge_id", txt.bridge_id.to_owned()),
    ];
    let service_type = match transport {
        Transport::Udp => {
            properties.push(("feedback_port", txt.feedback_port.to_string()));
            SERVICE_TYPE
        }
        Transport::Tcp => TCP_SERVICE_TYPE,
    };
    let address: Vec<IpAddr> = match interfaces {
        Interfaces::Address(ip) => vec![ip],
        Interfaces::AllV4 | Interfaces::All => Vec::new(),
    };
    let mut info = ServiceInfo::new(
        service_type,
        &config.name,
        host,
        &address[..],
        port,
        &properties[..],
    )?;
    Ok(match interfaces {
        Interfaces::Address(ip) => {
            info.set_interfaces(vec![IfKind::Addr(ip)]);
            info
        }
        Interfaces::AllV4 | Interfaces::All => info.enable_addr_auto(),
    })
}

/// [`host_name`] of this machine.
pub(super) fn machine_host_name() -> String {
    let hostname = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    host_name(&hostname)
}

/// `label.local.` from a host name: its first label, each character that is not an ASCII letter,
/// digit or `-` replaced by `-`.
fn host_name(hostname: &str) -> String {
    let label: String = hostname
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let label = label.trim_matches('-');
    let label = if label.is_empty() {
        FALLBACK_HOST
    } else {
        label
    };
    format!("{label}.local.")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXT: Txt<'static> = Txt {
        bridge_id: "pi-stage-left",
        feedback_port: 9000,
    };

    const UDP: (Transport, u16) = (Transport::Udp, 8000);

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn host_names_are_one_clean_label() {
        assert_eq!(host_name("pi"), "pi.local.");
        assert_eq!(host_name("stage-pi.example.lan"), "stage-pi.local.");
        assert_eq!(host_name("Bühne_1"), "B-hne-1.local.");
        assert_eq!(host_name(""), "kubeknobs-bridge.local.");
        assert_eq!(host_name("__"), "kubeknobs-bridge.local.");
    }

    #[test]
    fn the_service_carries_name_port_address_and_txt() {
        let config = DiscoveryConfig::new("pi-stage-left");
        let only = Interfaces::Address(ip("10.77.0.1"));
        let service = service(&config, "pi.local.", only, UDP, &TXT).expect("valid service");
        assert_eq!(service.get_fullname(), "pi-stage-left._osc._udp.local.");
        assert_eq!(service.get_port(), 8000);
        assert_eq!(service.get_hostname(), "pi.local.");
        assert_eq!(service.get_addresses().len(), 1);
        assert!(service.get_addresses().contains(&ip("10.77.0.1")));
        assert!(!service.is_addr_auto());
        assert_eq!(
            service.get_property_val_str("bridge_id"),
            Some("pi-stage-left")
        );
        assert_eq!(service.get_property_val_str("feedback_port"), Some("9000"));
        assert_eq!(service.get_property_val_str("txtvers"), Some("1"));
    }

    #[test]
    fn the_tcp_service_has_its_own_type_and_port_and_no_feedback_port() {
        let config = DiscoveryConfig::new("pi-stage-left");
        let only = Interfaces::Address(ip("10.77.0.1"));
        let tcp = (Transport::Tcp, 8001);
        let service = service(&config, "pi.local.", only, tcp, &TXT).expect("valid service");
        assert_eq!(service.get_fullname(), "pi-stage-left._osc._tcp.local.");
        assert_eq!(service.get_port(), 8001);
        assert_eq!(service.get_property_val_str("feedback_port"), None);
        assert_eq!(
            service.get_property_val_str("bridge_id"),
            Some("pi-stage-left")
        );
    }

    #[test]
    fn every_interface_means_addresses_found_by_the_daemon() {
        let config = DiscoveryConfig::new("pi");
        for every in [Interfaces::AllV4, Interfaces::All] {
            let service = service(&config, "pi.local.", every, UDP, &TXT).expect("valid");
            assert!(service.is_addr_auto() && service.get_addresses().is_empty());
        }
    }

    #[test]
    fn an_oversized_txt_entry_is_an_error_not_a_panic() {
        let config = DiscoveryConfig::new("pi");
        let long_id = "x".repeat(300);
        let txt = Txt {
            bridge_id: &long_id,
            feedback_port: 9000,
        };
        assert!(service(&config, "pi.local.", Interfaces::All, UDP, &txt).is_err());
    }
}
