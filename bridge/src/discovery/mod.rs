//! Zero-configuration discovery: the OSC service advertised over mDNS/DNS-SD as `_osc._udp`, so
//! that a phone app browsing for OSC services lists the bridge with its address and port.
//!
//! Contract: the service is advertised only where the OSC socket listens ([`scope`]): on its one
//! address when it is bound to a specific one, on every non-loopback interface when it is bound to
//! `0.0.0.0` (IPv4) or `::` (IPv4 and IPv6), and nowhere when it is bound to loopback, which a
//! phone cannot reach (one info line says so). The TXT record carries `txtvers`, `bridge_id` and
//! `feedback_port`. Advertising is best effort: a failure is a warning and OSC carries on.
//! [`Advertisement::stop`] withdraws the service with goodbye packets within [`STOP_WITHIN`].
//!
//! The responder is `mdns-sd`'s daemon, which runs on its own thread; this module only configures
//! it, logs what it reports, and stops it.

mod record;
mod scope;

pub use scope::{Interfaces, Scope, scope};

use std::net::SocketAddr;
use std::time::Duration;

use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon, ServiceInfo, UnregisterStatus};
use tracing::{debug, info, warn};

use crate::config::DiscoveryConfig;

/// The DNS-SD service type of OSC over UDP, the one OSC apps browse for.
pub const SERVICE_TYPE: &str = "_osc._udp.local.";
/// How long each step of stopping (unregister, daemon exit) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(1);
/// mdns-sd repeats each goodbye 120 ms after the first; the daemon must live until then.
const GOODBYE_REPEAT: Duration = Duration::from_millis(200);
/// Upper bound on [`Advertisement::stop`].
pub const STOP_WITHIN: Duration = STEP_TIMEOUT
    .saturating_add(GOODBYE_REPEAT)
    .saturating_add(STEP_TIMEOUT);

/// Advertises the OSC socket bound to `local` as `config` says, or logs why it is not advertised.
/// `None` when it is not (off, loopback, or a failure, which is logged as a warning).
pub fn start(
    config: &DiscoveryConfig,
    bridge_id: &str,
    local: SocketAddr,
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
    let record = record::Record {
        config: config.clone(),
        host: record::machine_host_name(),
        interfaces,
        port: local.port(),
    };
    let registered = record
        .service(&txt)
        .and_then(|service| Advertisement::register(service, record));
    match registered {
        Ok(ad) => {
            info!(
                port = local.port(),
                "mDNS: advertising {} {interfaces}, port {}",
                ad.fullname,
                local.port()
            );
            Some(ad)
        }
        Err(e) => {
            warn!(error = %e, "mDNS: cannot advertise the OSC service; OSC works without it");
            None
        }
    }
}

/// Logs the advertisement's events, or never resolves if there is none.
pub async fn watch(advertisement: Option<&Advertisement>) {
    match advertisement {
        Some(ad) => ad.watch().await,
        None => std::future::pending().await,
    }
}

/// The service, registered with a running mDNS responder.
pub struct Advertisement {
    daemon: ServiceDaemon,
    fullname: String,
    events: mdns_sd::Receiver<DaemonEvent>,
    record: record::Record,
}

impl Advertisement {
    /// Starts a responder limited to the record's interfaces and registers `service` with it.
    fn register(service: ServiceInfo, record: record::Record) -> mdns_sd::Result<Advertisement> {
        let interfaces = record.interfaces;
        let daemon = ServiceDaemon::new()?;
        let fullname = service.get_fullname().to_owned();
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
            daemon.register(service)?;
            Ok(events)
        };
        match setup() {
            Ok(events) => Ok(Advertisement {
                daemon,
                fullname,
                events,
                record,
            }),
            Err(e) => {
                let _ = daemon.shutdown();
                Err(e)
            }
        }
    }

    /// Announces the service again with a new TXT record, after a config reload changed the
    /// bridge id or the feedback port, so browsing apps stop showing the old ones. A failure is a
    /// warning, and browsers keep the old record.
    pub fn update_txt(&self, bridge_id: &str, feedback_port: u16) {
        let txt = record::Txt {
            bridge_id,
            feedback_port,
        };
        match self
            .record
            .service(&txt)
            .and_then(|s| self.daemon.register(s))
        {
            Ok(()) => info!(
                "mDNS: announced {} again with bridge_id {bridge_id}, feedback_port {feedback_port}",
                self.fullname
            ),
            Err(e) => warn!(error = %e, "mDNS: cannot update the TXT record of {}", self.fullname),
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

    /// Withdraws the service (goodbye packets, so browsers drop it at once) and stops the
    /// responder, within [`STOP_WITHIN`] whatever happens.
    pub async fn stop(self) {
        // The daemon's exit says goodbye too, but once; unregistering first repeats it, in case
        // the first is lost.
        self.withdraw().await;
        if let Ok(status) = self.daemon.shutdown() {
            let _ = tokio::time::timeout(STEP_TIMEOUT, status.recv_async()).await;
        }
    }

    async fn withdraw(&self) {
        let status = match self.daemon.unregister(&self.fullname) {
            Ok(status) => status,
            Err(e) => {
                warn!(error = %e, "mDNS: cannot withdraw {}", self.fullname);
                return;
            }
        };
        match tokio::time::timeout(STEP_TIMEOUT, status.recv_async()).await {
            Ok(Ok(UnregisterStatus::OK)) => {
                tokio::time::sleep(GOODBYE_REPEAT).await;
                info!("mDNS: withdrew {}", self.fullname);
            }
            Ok(Ok(other)) => warn!("mDNS: withdrawing {}: {other:?}", self.fullname),
            Ok(Err(_)) => warn!("mDNS: the responder stopped before withdrawing the service"),
            Err(_) => warn!("mDNS: withdrawing {} timed out", self.fullname),
        }
    }
}
