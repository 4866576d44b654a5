//! `[discovery]` once validated (by `crate::config`): whether the OSC service is advertised, and
//! under which instance name.

/// Longest DNS-SD instance name in bytes: one DNS label (RFC 6763 §4.1.1).
pub const MAX_NAME_BYTES: usize = 63;

/// Zero-configuration discovery of the bridge's OSC service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Advertise `_osc._udp` over mDNS (`discovery.mdns`, default true).
    pub mdns: bool,
    /// The instance name browsing apps show (`discovery.name`, default: the `bridge_id`).
    pub name: String,
}

impl DiscoveryConfig {
    /// The defaults for a bridge called `bridge_id`: advertised, under the id cut to one label.
    pub fn new(bridge_id: &str) -> DiscoveryConfig {
        DiscoveryConfig {
            mdns: true,
            name: default_name(bridge_id),
        }
    }
}

/// `bridge_id` without control characters, cut to [`MAX_NAME_BYTES`] on a character boundary.
fn default_name(bridge_id: &str) -> String {
    let mut name = String::new();
    for c in bridge_id.chars().filter(|c| !c.is_control()) {
        if name.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        name.push(c);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_fits_one_label() {
        assert_eq!(default_name("pi"), "pi");
        assert_eq!(default_name("a\u{7}b"), "ab");
        let long = "é".repeat(40); // 80 bytes: cut to 31 characters, 62 bytes.
        assert_eq!(default_name(&long), "é".repeat(31));
        assert_eq!(
            DiscoveryConfig::new(&"y".repeat(70)).name.len(),
            MAX_NAME_BYTES
        );
    }
}
