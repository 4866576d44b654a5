//! The registry of OSC clients: who gets feedback, and how.
//!
//! - A **UDP** client is an IP with the time it last sent something; feedback goes to that IP at
//!   `osc.feedback_port` while it has been seen within the timeout.
//! - A **TCP** client is one open connection, registered with the queue of its writer while it is
//!   connected; it gets feedback on that connection once it has sent a packet (so its framing is
//!   known), and for as long as it stays connected.
//!
//! At most [`MAX_UDP_CLIENTS`] UDP clients are remembered: a new one beyond that takes the place
//! of the one silent the longest, so a flood from many (spoofed) addresses cannot grow the
//! registry, nor turn each state change into a datagram to each of them.
//!
//! A client that appears (for the first time, or again after it was forgotten) is reported as
//! new, so it can be sent the whole state. Time is passed in, so the rules are tested without
//! sleeping.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::event::Peer;

/// Most UDP clients remembered at once.
pub const MAX_UDP_CLIENTS: usize = 64;

/// Why a TCP client's packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// Its queue is full: it reads too slowly. It has been dropped (the connection closes).
    TooSlow,
    /// It is not connected (any more).
    Gone,
}

/// A connected TCP client.
#[derive(Debug)]
struct Stream {
    /// Packets for its writer.
    tx: mpsc::Sender<Vec<u8>>,
    /// It has sent a packet, so it gets feedback.
    spoke: bool,
    /// Dropped with the entry: tells the connection it was dropped, even mid-write.
    _dropped: oneshot::Sender<()>,
}

/// Known OSC clients.
#[derive(Debug)]
pub struct Clients {
    timeout: Duration,
    seen: HashMap<IpAddr, Instant>,
    streams: HashMap<SocketAddr, Stream>,
    /// What each client's control at an address shows: the last feedback packet sent there.
    /// A move from the client at that address forgets it (the control shows the hand's value),
    /// so feedback is sent when what a control shows differs from the truth, and only then.
    shown: HashMap<(Peer, String), Vec<u8>>,
}

impl Clients {
    /// A registry that forgets UDP clients silent for longer than `timeout`.
    pub fn new(timeout: Duration) -> Clients {
        Clients {
            timeout,
            seen: HashMap::new(),
            streams: HashMap::new(),
            shown: HashMap::new(),
        }
    }

    /// Changes the timeout (a config reload); the clients seen so far are kept.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Registers TCP client `addr`, whose writer reads `tx`, until [`Clients::disconnect`]. The
    /// returned receiver resolves (with an error) when the registry drops the client: it was too
    /// slow, or it disconnected.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    ) -> oneshot::Receiver<()> {
        let (dropped, on_drop) = oneshot::channel();
        let stream = Stream {
            tx,
            spoke: false,
            _dropped: dropped,
        };
        self.streams.insert(addr, stream);
        on_drop
    }

    /// Forgets TCP client `addr`.
    pub fn disconnect(&mut self, addr: SocketAddr) {
        self.streams.remove(&addr);
        self.shown.retain(|(peer, _), _| *peer != Peer::Tcp(addr));
    }

    /// `peer` moved its control at `address`: it no longer shows what feedback sent there.
    pub fn moved(&mut self, peer: Peer, address: &str) {
        self.shown.remove(&(peer, address.to_owned()));
    }

    /// Records that `packet` is sent to `peer`'s control at `address`; false when that control
    /// shows exactly this already (nothing to send).
    pub fn show(&mut self, peer: Peer, address: &str, packet: &[u8]) -> bool {
        match self.shown.get_mut(&(peer, address.to_owned())) {
            Some(shown) if shown == packet => false,
            Some(shown) => {
                packet.clone_into(shown);
                true
            }
            None => {
                self.shown
                    .insert((peer, address.to_owned()), packet.to_vec());
                true
            }
        }
    }

    /// Forgets what every control shows, so the next feedback is sent in full (new mappings).
    pub fn forget_shown(&mut self) {
        self.shown.clear();
    }

    /// Records a packet from `peer` at `now`. Returns true when the client is new: a UDP client
    /// never seen or silent for longer than the timeout, or a TCP client's first packet.
    pub fn touch(&mut self, peer: Peer, now: Instant) -> bool {
        let new = match peer {
            Peer::Udp(ip) => {
                if self.seen.len() >= MAX_UDP_CLIENTS && !self.seen.contains_key(&ip) {
                    let oldest = self
                        .seen
                        .iter()
                        .min_by_key(|(_, last)| **last)
                        .map(|(ip, _)| *ip);
                    if let Some(oldest) = oldest {
                        self.seen.remove(&oldest);
                        self.shown.retain(|(p, _), _| *p != Peer::Udp(oldest));
                    }
                }
                match self.seen.insert(ip, now) {
                    None => true,
                    Some(last) => now.saturating_duration_since(last) > self.timeout,
                }
            }
            Peer::Tcp(addr) => self
                .streams
                .get_mut(&addr)
                .is_some_and(|s| !std::mem::replace(&mut s.spoke, true)),
        };
        if new {
            // A client (back) from silence may show anything: it gets the whole state.
            self.shown.retain(|(p, _), _| *p != peer);
        }
        new
    }

    /// The clients that get feedback at `now`; forgets UDP clients silent for too long.
    pub fn active(&mut self, now: Instant) -> Vec<Peer> {
        let timeout = self.timeout;
        self.seen
            .retain(|_, last| now.saturating_duration_since(*last) <= timeout);
        let (seen, streams) = (&self.seen, &self.streams);
        self.shown.retain(|(peer, _), _| match peer {
            Peer::Udp(ip) => seen.contains_key(ip),
            Peer::Tcp(addr) => streams.contains_key(addr),
        });
        let udp = self.seen.keys().map(|&ip| Peer::Udp(ip));
        let tcp = self
            .streams
            .iter()
            .filter(|(_, s)| s.spoke)
            .map(|(&addr, _)| Peer::Tcp(addr));
        let mut peers: Vec<Peer> = udp.chain(tcp).collect();
        peers.sort();
        peers
    }

    /// Queues `packet` for TCP client `addr`. A client whose queue is full is dropped, which
    /// closes its connection: it reconnects and is sent the whole state, rather than being left
    /// showing a value that is no longer true.
    pub fn queue(&mut self, addr: SocketAddr, packet: Vec<u8>) -> Result<(), Unsent> {
        let stream = self.streams.get(&addr).ok_or(Unsent::Gone)?;
        match stream.tx.try_send(packet) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.streams.remove(&addr);
                Err(Unsent::TooSlow)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.streams.remove(&addr);
                Err(Unsent::Gone)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_is_owed_only_where_a_control_shows_something_else() {
        let mut clients = Clients::new(Duration::from_secs(60));
        let phone = Peer::Udp("127.0.0.1".parse().unwrap());
        assert!(clients.touch(phone, Instant::now()));
        assert!(clients.show(phone, "/1/fader1", b"7"));
        assert!(!clients.show(phone, "/1/fader1", b"7"), "shown already");
        assert!(clients.show(phone, "/1/fader1", b"8"), "a new value");
        clients.moved(phone, "/1/fader1");
        assert!(
            clients.show(phone, "/1/fader1", b"8"),
            "the hand moved it away"
        );
        clients.forget_shown();
        assert!(
            clients.show(phone, "/1/fader1", b"8"),
            "a reload replays everything"
        );
    }

    #[test]
    fn remembers_and_forgets_udp_clients() {
        let t0 = Instant::now();
        let phone: IpAddr = [192, 168, 1, 20].into();
        let tablet: IpAddr = [192, 168, 1, 21].into();
        let mut clients = Clients::new(Duration::from_secs(300));
        assert!(clients.touch(Peer::Udp(phone), t0));
        assert!(!clients.touch(Peer::Udp(phone), t0 + Duration::from_secs(10)));
        assert!(clients.touch(Peer::Udp(tablet), t0 + Duration::from_secs(100)));
        assert_eq!(
            clients.active(t0 + Duration::from_secs(200)),
            vec![Peer::Udp(phone), Peer::Udp(tablet)]
        );
        // The phone was last seen at t0+10 s: forgotten at t0+311 s, the tablet still there.
        assert_eq!(
            clients.active(t0 + Duration::from_secs(311)),
            vec![Peer::Udp(tablet)]
        );
        // A forgotten client that talks again is new again.
        assert!(clients.touch(Peer::Udp(phone), t0 + Duration::from_secs(312)));
        // Silent longer than the timeout but not yet pruned: also new again.
        assert!(clients.touch(Peer::Udp(tablet), t0 + Duration::from_secs(401)));
    }

    #[test]
    fn udp_clients_are_bounded_and_the_longest_silent_gives_way() {
        let t0 = Instant::now();
        let mut clients = Clients::new(Duration::from_secs(300));
        let phone: IpAddr = [192, 168, 1, 20].into();
        assert!(clients.touch(Peer::Udp(phone), t0 + Duration::from_secs(5)));
        for i in 0..10_000u32 {
            let spoofed = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            clients.touch(Peer::Udp(spoofed), t0);
        }
        let active = clients.active(t0 + Duration::from_secs(6));
        assert_eq!(active.len(), MAX_UDP_CLIENTS);
        assert!(active.contains(&Peer::Udp(phone)), "the phone spoke last");
    }

    #[test]
    fn a_tcp_client_gets_feedback_from_its_first_packet_until_it_disconnects() {
        let t0 = Instant::now();
        let addr: SocketAddr = "192.168.1.20:50123".parse().unwrap();
        let mut clients = Clients::new(Duration::from_secs(1));
        assert!(!clients.touch(Peer::Tcp(addr), t0), "not connected");
        let (tx, mut rx) = mpsc::channel(2);
        let _dropped = clients.connect(addr, tx);
        assert!(clients.active(t0).is_empty(), "silent so far");
        assert!(clients.touch(Peer::Tcp(addr), t0));
        assert!(!clients.touch(Peer::Tcp(addr), t0));
        let an_hour = t0 + Duration::from_secs(3600);
        assert_eq!(clients.active(an_hour), vec![Peer::Tcp(addr)], "no timeout");
        assert_eq!(clients.queue(addr, vec![1]), Ok(()));
        assert_eq!(rx.try_recv(), Ok(vec![1]));
        clients.disconnect(addr);
        assert!(clients.active(an_hour).is_empty());
        assert_eq!(clients.queue(addr, vec![2]), Err(Unsent::Gone));
    }

    #[test]
    fn a_tcp_client_that_reads_too_slowly_is_dropped() {
        let addr: SocketAddr = "127.0.0.1:50124".parse().unwrap();
        let mut clients = Clients::new(Duration::from_secs(1));
        let (tx, mut rx) = mpsc::channel(2);
        let mut dropped = clients.connect(addr, tx);
        clients.touch(Peer::Tcp(addr), Instant::now());
        assert_eq!(dropped.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        assert_eq!(clients.queue(addr, vec![1]), Ok(()));
        assert_eq!(clients.queue(addr, vec![2]), Ok(()));
        assert_eq!(clients.queue(addr, vec![3]), Err(Unsent::TooSlow));
        assert!(clients.active(Instant::now()).is_empty());
        // Its writer gets what was queued, then the end of the queue: the connection closes.
        assert_eq!(rx.try_recv(), Ok(vec![1]));
        assert_eq!(rx.try_recv(), Ok(vec![2]));
        assert!(rx.try_recv().is_err());
        assert!(rx.is_closed());
        assert_eq!(
            dropped.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        );
    }
}
