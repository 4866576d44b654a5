//! Where the OSC service is advertised: a pure decision from `discovery.mdns` and the address
//! the OSC socket is bound to, so that it is never advertised where the socket does not listen.

use std::fmt;
use std::net::IpAddr;

/// Whether, and where, the OSC service is advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Not at all: `discovery.mdns = false`.
    Off,
    /// Not at all: the socket is bound to this loopback address, out of a phone's reach.
    Loopback(IpAddr),
    /// On these interfaces.
    On(Interfaces),
}

/// The interfaces the service is advertised on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interfaces {
    /// The interface that holds this address, with this address only.
    Address(IpAddr),
    /// Every non-loopback IPv4 interface (the socket is bound to `0.0.0.0`).
    AllV4,
    /// Every non-loopback interface, IPv4 and IPv6 (`::`, dual-stack).
    All,
}

/// Where to advertise an OSC socket bound to `listen`, if `mdns` is on.
pub fn scope(mdns: bool, listen: IpAddr) -> Scope {
    // `::ffff:a.b.c.d` is an IPv4 address in IPv6 clothes.
    match listen.to_canonical() {
        _ if !mdns => Scope::Off,
        ip if ip.is_loopback() => Scope::Loopback(ip),
        IpAddr::V4(ip) if ip.is_unspecified() => Scope::On(Interfaces::AllV4),
        IpAddr::V6(ip) if ip.is_unspecified() => Scope::On(Interfaces::All),
        ip => Scope::On(Interfaces::Address(ip)),
    }
}

impl fmt::Display for Interfaces {
    /// Where, as the end of a sentence: "on 10.0.0.5 only".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interfaces::Address(ip) => write!(f, "on {ip} only"),
            Interfaces::AllV4 => f.write_str("on every non-loopback IPv4 interface"),
            Interfaces::All => f.write_str("on every non-loopback interface"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn loopback_is_never_advertised() {
        for text in ["127.0.0.1", "127.3.2.1", "::1"] {
            assert_eq!(scope(true, ip(text)), Scope::Loopback(ip(text)));
        }
        assert_eq!(
            scope(true, ip("::ffff:127.0.0.1")),
            Scope::Loopback(ip("127.0.0.1"))
        );
    }

    #[test]
    fn unspecified_means_every_interface_of_its_family() {
        assert_eq!(scope(true, ip("0.0.0.0")), Scope::On(Interfaces::AllV4));
        assert_eq!(scope(true, ip("::")), Scope::On(Interfaces::All));
        assert_eq!(
            scope(true, ip("::ffff:0.0.0.0")),
            Scope::On(Interfaces::AllV4)
        );
    }

    #[test]
    fn a_specific_address_is_advertised_alone() {
        for (listen, advertised) in [
            ("10.77.0.1", "10.77.0.1"),
            ("fd00::5", "fd00::5"),
            ("::ffff:192.168.1.20", "192.168.1.20"),
        ] {
            let only = Scope::On(Interfaces::Address(ip(advertised)));
            assert_eq!(scope(true, ip(listen)), only, "{listen}");
        }
    }

    #[test]
    fn off_wins_over_everything() {
        for text in ["0.0.0.0", "::", "10.0.0.5", "127.0.0.1"] {
            assert_eq!(scope(false, ip(text)), Scope::Off);
        }
    }

    #[test]
    fn says_where() {
        let address = Interfaces::Address(ip("10.0.0.5"));
        assert_eq!(address.to_string(), "on 10.0.0.5 only");
        assert_eq!(
            Interfaces::All.to_string(),
            "on every non-loopback interface"
        );
    }
}
