//! Zero-configuration discovery: the OSC service advertised over mDNS/DNS-SD as `_osc._udp`, so
//! that a phone app browsing for OSC services lists the bridge with its address and port.
//!
//! Contract: the service is advertised only where the OSC socket listens ([`scope`]): on its one
//! address when it is bound to a specific one, on every non-loopback interface when it is bound to
//! `0.0.0.0` (IPv4) or `::` (IPv4 and IPv6), and nowhere when it is bound to loopback, which a
//! phone cannot reach (one info line says so). The TXT record carries `txtvers`, `bridge_id` and
//! `feedback_port`. With OSC over TCP on (`osc.tcp_listen`) on the same address, `_osc._tcp` is
//! advertised beside it under the same name (its TXT without `feedback_port`: feedback comes back
//! on the connection); on another address it is not, and one info line says why. Advertising is
//! best effort: a failure is a warning and OSC carries on.
//! [`Advertisement::stop`] withdraws the service with goodbye packets within [`STOP_WITHIN`].
//!
//! The responder is `mdns-sd`'s daemon, which runs on its own thread; this module only configures
//! it, logs what it reports, and stops it.

mod config;
mod record;
mod scope;

pub use config::{DiscoveryConfig, MAX_NAME_BYTES};
pub use scope::{Interfaces, Scope, scope};

use std::net::SocketAddr;
use std::time::Duration;

use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon, ServiceInfo, UnregisterStatus};
use record::Transport;
use tracing::{debug, info, warn};

/// The DNS-SD service type of OSC over UDP, the one OSC apps browse for.
pub const SERVICE_TYPE: &str = "_osc._udp.local.";
/// The DNS-SD service type of OSC over TCP.
pub const TCP_SERVICE_TYPE: &str = "_osc._tcp.local.";
/// How long each step of stopping (unregister, daemon exit) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(1);
/// mdns-sd repeats each goodbye 120 ms after the first; the daemon must live until then.
const GOODBYE_REPEAT: Duration = Duration::from_millis(200);
/// Upper bound on [`Advertisement::stop`].
pub const STOP_WITHIN: Duration = STEP_TIMEOUT
    .saturating_add(GOODBYE_REPEAT)
    .saturating_add(STEP_TIMEOUT);

/// Advertises the OSC socket bound to `local` (and the OSC TCP listener bound to `tcp`, if any)
/// as `config` says, or logs why it is not advertised. `None` when nothing is (off, loopback, or
/// a failure, which is logged as a warning).
pub fn start(
    config: &DiscoveryConfig,
    bridge_id: &str,
    (local, tcp): (SocketAddr, Option<SocketAddr>),
    feedback_port: u16,
) -> Option<Advertisement> {
    let interfaces = match scope(config.mdns, local.ip()) {
        Scope::On(interfaces) => interfaces,
        Scope::Off => {
            info!("mDNS: OSC service not advertised (discovery.mdns = false)");
            return None;
        }
        Scope::Loopback(ip) => {
            info!(
                "mDNS: OSC service not advertised: OSC listens on loopback {ip}, which a phone \
                 cannot reach (set osc.listen to 0.0.0.0 or this machine's LAN address to be found)"
            );
            return None;
        }
    };
    let txt = record::Txt {
        bridge_id,
        feedback_port,
    };
    let ports = sockets(interfaces, local, tcp);
    if let Some(tcp) = tcp.filter(|_| ports.len() == 1) {
        info!(
            "mDNS: OSC over TCP not advertised: osc.tcp_listen {tcp} is not on the address of \
             osc.listen {local} (put both on one address to advertise both)"
        );
    }
    let record = record::Record {
        config: config.clone(),
        host: record::machine_host_name(),
        interfaces,
        ports,
    };
    let registered = record
        .services(&txt)
        .and_then(|services| Advertisement::register(services, record));
    match registered {
        Ok(ad) => {
            for (name, (_, port)) in ad.fullnames.iter().zip(&ad.record.ports) {
                info!(port, "mDNS: advertising {name} {interfaces}, port {port}");
            }
            Some(ad)
        }
        Err(e) => {
            warn!(error = %e, "mDNS: cannot advertise the OSC service; OSC works without it");
            None
        }
    }
}

/// The sockets advertised on `interfaces`, where the UDP socket `local` is: it, and the TCP
/// listener `tcp` if it is on the same address (the responder answers on those interfaces only).
fn sockets(
    interfaces: Interfaces,
    local: SocketAddr,
    tcp: Option<SocketAddr>,
) -> Vec<(Transport, u16)> {
    let mut ports = vec![(Transport::Udp, local.port())];
    if let Some(tcp) = tcp.filter(|tcp| scope(true, tcp.ip()) == Scope::On(interfaces)) {
        ports.push((Transport::Tcp, tcp.port()));
    }
    ports
}

/// Logs the advertisement's events, or never resolves if there is none.
pub async fn watch(advertisement: Option<&Advertisement>) {
    match advertisement {
        Some(ad) => ad.watch().await,
        None => std::future::pending().await,
    }
}

/// The services, registered with a running mDNS responder.
pub struct Advertisement {
    daemon: ServiceDaemon,
    fullnames: Vec<String>,
    events: mdns_sd::Receiver<DaemonEvent>,
    record: record::Record,
}

impl Advertisement {
    /// Starts a responder limited to the record's interfaces and registers `services` with it.
    fn register(
        services: Vec<ServiceInfo>,
        record: record::Record,
    ) -> mdns_sd::Result<Advertisement> {
        let interfaces = record.interfaces;
        let daemon = ServiceDaemon::new()?;
        let fullnames = services
            .iter()
            .map(|s| s.get_fullname().to_owned())
            .collect();
        let setup = || -> mdns_sd::Result<mdns_sd::Receiver<DaemonEvent>> {
            // Subscribed first, so that errors from opening the sockets are seen too.
            let events = daemon.monitor()?;
            // The daemon answers on loopback too unless told otherwise.
            match interfaces {
                Interfaces::Address(ip) => {
                    daemon.disable_interface(IfKind::All)?;
                    daemon.enable_interface(IfKind::Addr(ip))?;
                }
                Interfaces::AllV4 => {
                    daemon.disable_interface(vec![IfKind::IPv6, IfKind::LoopbackV4])?;
                }
                Interfaces::All => {
                    daemon.disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])?;
                }
            }
            for service in services {
                daemon.register(service)?;
            }
            Ok(events)
        };
        match setup() {
            Ok(events) => Ok(Advertisement {
                daemon,
                fullnames,
                events,
                record,
            }),
            Err(e) => {
                let _ = daemon.shutdown();
                Err(e)
            }
        }
    }

    /// Announces the services again with a new TXT record, after a config reload changed the
    /// bridge id or the feedback port, so browsing apps stop showing the old ones. A failure is a
    /// warning, and browsers keep the old record.
    pub fn update_txt(&self, bridge_id: &str, feedback_port: u16) {
        let txt = record::Txt {
            bridge_id,
            feedback_port,
        };
        let announced = self.record.services(&txt).and_then(|services| {
            services
                .into_iter()
                .try_for_each(|service| self.daemon.register(service))
        });
        let names = self.fullnames.join(" and ");
        match announced {
            Ok(()) => info!(
                "mDNS: announced {names} again with bridge_id {bridge_id}, feedback_port {feedback_port}"
            ),
            Err(e) => warn!(error = %e, "mDNS: cannot update the TXT record of {names}"),
        }
    }

    /// Logs what the responder reports (errors as warnings) until it stops; then never resolves,
    /// so it can sit in the bridge's `select!` next to the parts that run until shutdown.
    pub async fn watch(&self) {
        while let Ok(event) = self.events.recv_async().await {
            match event {
                DaemonEvent::Error(e) => warn!(error = %e, "mDNS responder: {e}"),
                DaemonEvent::Announce(name, addrs) => info!("mDNS: announced {name} from {addrs}"),
                DaemonEvent::NameChange(change) => info!(
                    "mDNS: {} is taken on this network, advertising as {}",
                    change.original, change.new_name
                ),
                other => debug!("mDNS: {other:?}"),
            }
        }
        std::future::pending().await
    }

    /// Withdraws the services (goodbye packets, so browsers drop them at once) and stops the
    /// responder, within [`STOP_WITHIN`] whatever happens.
    pub async fn stop(self) {
        // The daemon's exit says goodbye too, but once; unregistering first repeats it, in case
        // the first is lost. Both services' goodbyes go out together.
        let withdrawals = self.fullnames.iter().map(|name| self.withdraw(name));
        futures::future::join_all(withdrawals).await;
        if let Ok(status) = self.daemon.shutdown() {
            let _ = tokio::time::timeout(STEP_TIMEOUT, status.recv_async()).await;
        }
    }

    async fn withdraw(&self, fullname: &str) {
        let status = match self.daemon.unregister(fullname) {
            Ok(status) => status,
            Err(e) => {
                warn!(error = %e, "mDNS: cannot withdraw {fullname}");
                return;
            }
        };
        match tokio::time::timeout(STEP_TIMEOUT, status.recv_async()).await {
            Ok(Ok(UnregisterStatus::OK)) => {
                tokio::time::sleep(GOODBYE_REPEAT).await;
                info!("mDNS: withdrew {fullname}");
            }
            Ok(Ok(other)) => warn!("mDNS: withdrawing {fullname}: {other:?}"),
            Ok(Err(_)) => warn!("mDNS: the responder stopped before withdrawing {fullname}"),
            Err(_) => warn!("mDNS: withdrawing {fullname} timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("socket address")
    }

    #[test]
    fn tcp_is_advertised_only_on_the_address_of_udp() {
        let udp = (Transport::Udp, 8000);
        let on = |ip: &str| Interfaces::Address(ip.parse().unwrap());
        let lan = on("10.0.0.5");
        assert_eq!(sockets(lan, addr("10.0.0.5:8000"), None), [udp]);
        assert_eq!(
            sockets(lan, addr("10.0.0.5:8000"), Some(addr("10.0.0.5:8001"))),
            [udp, (Transport::Tcp, 8001)]
        );
        for elsewhere in ["10.0.0.6:8000", "0.0.0.0:8000", "127.0.0.1:8000"] {
            let tcp = Some(addr(elsewhere));
            assert_eq!(
                sockets(lan, addr("10.0.0.5:8000"), tcp),
                [udp],
                "{elsewhere}"
            );
        }
        let every = sockets(
            Interfaces::AllV4,
            addr("0.0.0.0:8000"),
            Some(addr("0.0.0.0:8000")),
        );
        assert_eq!(every, [udp, (Transport::Tcp, 8000)]);
        let v6 = sockets(
            Interfaces::AllV4,
            addr("0.0.0.0:8000"),
            Some(addr("[::]:8000")),
        );
        assert_eq!(v6, [udp], "a different scope");
    }
}
