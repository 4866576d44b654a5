//! OSC in: datagrams on the UDP socket (`osc.listen`), and packets from TCP connections
//! (`osc.tcp_listen`, see [`stream`]), the device I/O at the rim of the bridge.
//!
//! One tokio `UdpSocket` receives into a buffer as large as a UDP datagram can be
//! ([`MAX_DATAGRAM`]: rosc's `decoder::MTU` is only 1,536 bytes, and a bigger datagram received
//! into it is silently cut short); each packet, from either
//! transport, is decoded and its bundles flattened. A mapped address becomes a move handed to the
//! uplink; an unknown address is logged at info; `<mapped address>/z` (TouchOSC's touch/release)
//! becomes a touch; `osc.arm_address` arms; a malformed packet is logged with its sender and
//! skipped. Nothing a client sends can stop the loop, nor fill the log: what clients can repeat
//! at will (malformed packets, unknown addresses, unusable values, new clients) is logged for
//! the first of each kind per sender in a [`LOG_SUMMARY_EVERY`] window, then counted into one
//! summary line, and the addresses they chose are clipped. Every sender is recorded in the [`Clients`]
//! registry, and a new one is announced to feedback so its controls jump to the cluster's state
//! at once. The same UDP socket sends feedback to UDP clients (see `feedback`), so there is one
//! OSC port to open; TCP clients get theirs on their connection.

mod clients;
pub mod framing;
pub mod stream;

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rosc::{OscMessage, OscPacket};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub use clients::{Clients, Unsent};

use crate::event::{Event, Peer};
use crate::link::Link;
use crate::mapping::{self, Mappings};
use kubeknobs_runtime::summary::{self, LogSummary};
use kubeknobs_runtime::telemetry::clip;

/// What can stop the OSC side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OSC socket could not be bound (address in use, no such interface, …).
    #[error("cannot listen for OSC on {addr}")]
    Bind {
        /// The address from `osc.listen`.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The OSC TCP listener could not be bound.
    #[error("cannot listen for OSC over TCP on {addr}")]
    BindTcp {
        /// The address from `osc.tcp_listen`.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The bound socket cannot tell its own address.
    #[error("cannot read the OSC socket's address")]
    LocalAddr(#[source] std::io::Error),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The largest UDP payload (65,535 bytes less the IPv4 and UDP headers), rounded up: no datagram
/// is ever cut short.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// How often repeated log events from OSC clients are summarised.
pub const LOG_SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// Repeated log events from OSC clients, by kind and sender.
static NOTED: LazyLock<Mutex<LogSummary>> =
    LazyLock::new(|| Mutex::new(LogSummary::new(LOG_SUMMARY_EVERY)));

/// Counts an event of `kind` from `from`; true when it is the first of its kind from that
/// sender in this window, so the caller logs it in full. Logs the previous window's summary.
fn first(kind: &str, from: std::net::IpAddr) -> bool {
    let (ended, first) = {
        let mut noted = NOTED.lock().unwrap_or_else(PoisonError::into_inner);
        let ended = noted.take_if_over();
        (ended, noted.note(&format!("{kind} from {from}")))
    };
    if let Some(counted) = ended {
        warn!(
            "in the last {LOG_SUMMARY_EVERY:?}, also: {}",
            summary::describe(&counted)
        );
    }
    first
}

/// The registry shared by the receive loop (which records senders) and feedback (which reads it).
pub type SharedClients = Arc<Mutex<Clients>>;

/// Locks the registry; a panic elsewhere while holding it leaves plain data, so poison is ignored.
pub fn lock(clients: &SharedClients) -> MutexGuard<'_, Clients> {
    clients.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Binds the OSC socket.
pub async fn bind(addr: SocketAddr) -> Result<UdpSocket> {
    UdpSocket::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// Packets from every TCP connection, for whichever pipeline is running (one at a time).
pub type SharedInbound = Arc<tokio::sync::Mutex<mpsc::Receiver<stream::Inbound>>>;

/// Deepest nesting of bundles accepted. rosc decodes bundles recursively, and a 64 KiB datagram
/// can nest about 3,000 of them, enough to overflow a task's stack; no app nests more than a few.
pub const MAX_BUNDLE_DEPTH: usize = 16;

/// Decodes one OSC packet (a UDP datagram, or one unframed from a TCP stream) into its messages,
/// bundles flattened in order. Bundles nested deeper than [`MAX_BUNDLE_DEPTH`] are refused
/// before rosc sees them.
pub fn decode(datagram: &[u8]) -> Result<Vec<OscMessage>, rosc::OscError> {
    if bundle_depth(datagram) > MAX_BUNDLE_DEPTH {
        return Err(rosc::OscError::BadBundle(format!(
            "bundles nested more than {MAX_BUNDLE_DEPTH} deep"
        )));
    }
    let (_rest, packet) = rosc::decoder::decode_udp(datagram)?;
    let mut messages = Vec::new();
    // An explicit stack rather than recursion: nesting depth is up to the sender.
    let mut stack = vec![packet];
    while let Some(packet) = stack.pop() {
        match packet {
            OscPacket::Message(m) => messages.push(m),
            OscPacket::Bundle(b) => stack.extend(b.content.into_iter().rev()),
        }
    }
    Ok(messages)
}

/// How deeply bundles nest in `packet`, found without recursion; stops counting past
/// [`MAX_BUNDLE_DEPTH`]. Malformed sizes end the walk: the decoder refuses them itself.
fn bundle_depth(packet: &[u8]) -> usize {
    const BUNDLE: &[u8] = b"#bundle\0";
    /// The tag and time tag before a bundle's first element.
    const HEADER: usize = 16;
    if !packet.starts_with(BUNDLE) {
        return 0;
    }
    // (next element's offset, end) of each bundle being walked, outermost first.
    let mut open = vec![(HEADER, packet.len())];
    let mut deepest = 1;
    while let Some(&(at, end)) = open.last() {
        let Some(size) = packet.get(at..at + 4).filter(|_| at + 4 <= end) else {
            open.pop();
            continue;
        };
        let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
        let start = at + 4;
        let stop = start.saturating_add(size).min(end);
        if let Some(top) = open.last_mut() {
            // Always forward: at least past the size.
            top.0 = stop;
        }
        if packet[start..stop].starts_with(BUNDLE) {
            open.push((start + HEADER, stop));
            deepest = deepest.max(open.len());
            if deepest > MAX_BUNDLE_DEPTH {
                break;
            }
        }
    }
    deepest
}

/// The receive loop and what it needs.
pub(crate) struct Receiver {
    /// The bound OSC socket (shared with feedback, which sends on it).
    pub socket: Arc<UdpSocket>,
    /// Packets from TCP clients.
    pub streams: SharedInbound,
    /// Address → mapping.
    pub mappings: Arc<Mappings>,
    /// Senders and when they were last seen.
    pub clients: SharedClients,
    /// The live gateway session, if any.
    pub link: Link,
    /// Tells feedback about new clients.
    pub feedback: mpsc::Sender<Event>,
    /// Counts packets and moves that go nowhere.
    pub metrics: crate::ops::Metrics,
    /// The arm control's address (`osc.arm_address`): held (1) arms destructive targets.
    pub arm_address: Option<String>,
}

impl Receiver {
    /// Receives until the task is dropped. Never returns an error for anything a client sends.
    pub async fn run(self) {
        // Held while this pipeline runs; a reload's next pipeline takes it after this one drops.
        let mut streams = self.streams.clone().lock_owned().await;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => self.packet(&buf[..len], from, Peer::Udp(from.ip())).await,
                    Err(e) => {
                        // E.g. an ICMP port-unreachable surfacing on some platforms. Keep going,
                        // but do not spin if the error repeats.
                        warn!(error = %e, "receiving OSC failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(inbound) = streams.recv() => {
                    let from = inbound.from;
                    self.packet(&inbound.packet, from, Peer::Tcp(from)).await;
                }
            }
        }
    }

    async fn packet(&self, bytes: &[u8], from: SocketAddr, peer: Peer) {
        let messages = match decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                if first("malformed OSC packet", from.ip()) {
                    warn!(%from, error = %e, "malformed OSC packet (more from this sender are counted)");
                }
                self.metrics.packet("malformed");
                return;
            }
        };
        self.metrics.packet("ok");
        let is_new = lock(&self.clients).touch(peer, Instant::now());
        if is_new {
            if first("new OSC client", from.ip()) {
                info!(client = %peer, "new OSC client");
            }
            if self.feedback.send(Event::NewClient(peer)).await.is_err() {
                debug!("feedback has stopped; new client not announced");
            }
        }
        for message in messages {
            self.message(message, from, peer).await;
        }
    }

    async fn message(&self, message: OscMessage, from: SocketAddr, peer: Peer) {
        if self.arm_address.as_deref() == Some(message.addr.as_str()) {
            match message.args.first().and_then(touch_state) {
                Some(armed) => self.link.send_arm(armed).await,
                None if first("unusable arm value", from.ip()) => {
                    warn!(address = %clip(&message.addr), %from, "unusable arm value; nothing sent")
                }
                None => {}
            }
            return;
        }
        if let Some(mapping) = touch_of(&self.mappings, &message.addr) {
            // TouchOSC sends `<address>/z 1` on touch and `0` on release.
            match message.args.first().and_then(touch_state) {
                Some(touched) => self.link.send_touch(mapping, touched).await,
                None if first("unusable touch value", from.ip()) => {
                    warn!(address = %clip(&message.addr), %from, "unusable touch value; nothing sent")
                }
                None => {}
            }
            return;
        }
        let Some(mapping) = self.mappings.by_address(&message.addr) else {
            if first("unknown OSC address", from.ip()) {
                info!(address = %clip(&message.addr), %from, "unknown OSC address (more from this sender are counted)");
            }
            self.metrics.moved("unknown_address");
            return;
        };
        match mapping::arg_value(&message.args, &mapping.range) {
            Ok(value) => {
                debug!(address = %mapping.address, value, %from, "OSC move");
                lock(&self.clients).moved(peer, &mapping.address);
                self.link.send_move(mapping, value).await;
            }
            Err(e) => {
                if first("unusable OSC value", from.ip()) {
                    warn!(
                        address = %mapping.address, %from, error = %e,
                        "unusable OSC value; nothing sent"
                    );
                }
                self.metrics.moved("invalid");
            }
        }
    }
}

/// The mapping whose touch address (`<address>/z`) `addr` is, unless `addr` is itself mapped.
fn touch_of<'m>(mappings: &'m Mappings, addr: &str) -> Option<&'m mapping::Mapping> {
    if mappings.by_address(addr).is_some() {
        return None;
    }
    mappings.by_address(addr.strip_suffix("/z")?)
}

/// A touch argument: non-zero numbers and `true` are a touch, zero and `false` a release.
fn touch_state(arg: &rosc::OscType) -> Option<bool> {
    use rosc::OscType;
    match arg {
        OscType::Float(v) => v.is_finite().then_some(*v != 0.0),
        OscType::Double(v) => v.is_finite().then_some(*v != 0.0),
        OscType::Int(v) => Some(*v != 0),
        OscType::Long(v) => Some(*v != 0),
        OscType::Bool(b) => Some(*b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use rosc::{OscBundle, OscTime, OscType};

    use super::*;

    fn msg(addr: &str, v: f32) -> OscPacket {
        OscPacket::Message(OscMessage {
            addr: addr.into(),
            args: vec![OscType::Float(v)],
        })
    }

    #[test]
    fn flattens_nested_bundles_in_order() {
        let time = OscTime {
            seconds: 0,
            fractional: 1,
        };
        let inner = OscPacket::Bundle(OscBundle {
            timetag: time,
            content: vec![msg("/b", 2.0)],
        });
        let outer = OscPacket::Bundle(OscBundle {
            timetag: time,
            content: vec![msg("/a", 1.0), inner, msg("/c", 3.0)],
        });
        let bytes = rosc::encoder::encode(&outer).expect("encode");
        let addrs: Vec<String> = decode(&bytes)
            .expect("decode")
            .into_iter()
            .map(|m| m.addr)
            .collect();
        assert_eq!(addrs, ["/a", "/b", "/c"]);
    }

    #[test]
    fn touch_values_are_numbers_or_booleans() {
        assert_eq!(touch_state(&OscType::Float(1.0)), Some(true));
        assert_eq!(touch_state(&OscType::Int(0)), Some(false));
        assert_eq!(touch_state(&OscType::Bool(true)), Some(true));
        assert_eq!(touch_state(&OscType::Float(f32::NAN)), None);
        assert_eq!(touch_state(&OscType::String("1".into())), None);
    }

    #[test]
    fn deeply_nested_bundles_are_refused_not_a_stack_overflow() {
        let time = [0, 0, 0, 0, 0, 0, 0, 1];
        let nest = |inner: Vec<u8>| {
            let mut bundle = b"#bundle\0".to_vec();
            bundle.extend(time);
            bundle.extend(u32::try_from(inner.len()).unwrap().to_be_bytes());
            bundle.extend(inner);
            bundle
        };
        let mut packet = rosc::encoder::encode(&msg("/a", 1.0)).expect("encode");
        for _ in 0..MAX_BUNDLE_DEPTH {
            packet = nest(packet);
        }
        assert_eq!(decode(&packet).expect("16 deep is fine").len(), 1);
        while packet.len() + 20 <= MAX_DATAGRAM {
            packet = nest(packet);
        }
        // A tokio worker's stack is 2 MiB; rosc alone overflowed it here (the process aborted).
        let decoded = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || decode(&packet).map(|m| m.len()))
            .expect("thread")
            .join()
            .expect("no panic");
        assert!(decoded.is_err(), "{decoded:?}");
    }

    #[test]
    fn refuses_garbage() {
        assert!(decode(b"not osc at all").is_err());
        assert!(decode(&[]).is_err());
    }
}
