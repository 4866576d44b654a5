//! Who may get as far as authenticating: the gateway's listener, with every resource an
//! unauthenticated client can take bounded.
//!
//! Contract. A connection is *pending* from `accept` until a call on it authenticates (see
//! [`Admission::authenticated`], called by the auth interceptor). Pending connections are
//! bounded in total ([`Limits::max_pending`]) and per peer IP address
//! ([`Limits::max_pending_per_peer`]); one over either bound is closed at once. A pending
//! connection that has not authenticated within [`Limits::auth_timeout`] (TLS handshake
//! included) is closed, as is one whose calls failed authentication
//! [`Limits::max_auth_failures`] times: a guesser must reconnect (and handshake) every few
//! tries, within its peer's bound. TLS handshakes run here, concurrently, in at most
//! `max_pending` tasks. Nothing here logs per event: the first event of each kind from a peer
//! in a [`REPORT_EVERY`] window is logged (with its cause), the rest are counted and reported
//! as one summary line per window.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How often shed connections and refusals are reported.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Most peers named in one summary line; the rest are counted.
const PEERS_NAMED: usize = 5;

/// The bounds on unauthenticated clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most pending connections at once, from everyone.
    pub max_pending: usize,
    /// Most pending connections at once from one IP address.
    pub max_pending_per_peer: usize,
    /// How long a connection may take to authenticate, TLS handshake included.
    pub auth_timeout: Duration,
    /// Failed authentications a pending connection may make before it is closed.
    pub max_auth_failures: u32,
    /// Most concurrent HTTP/2 streams (calls) on one connection.
    pub max_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pending: 256,
            max_pending_per_peer: 16,
            auth_timeout: Duration::from_secs(10),
            max_auth_failures: 5,
            max_streams: 32,
        }
    }
}

/// What happened to a client that did not get in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// Closed at accept: its address had `max_pending_per_peer` pending connections.
    ShedPerPeer,
    /// Closed at accept: `max_pending` connections were pending.
    ShedTotal,
    /// Its TLS handshake failed (or timed out).
    HandshakeFailed,
    /// Did not authenticate within `auth_timeout`.
    TimedOut,
    /// A call was refused for bad credentials.
    Refused,
    /// Closed after `max_auth_failures` refused calls.
    TooManyFailures,
}

impl Event {
    fn describe(self) -> &'static str {
        match self {
            Event::ShedPerPeer => "connections closed at once: too many pending from the peer",
            Event::ShedTotal => "connections closed at once: too many pending in total",
            Event::HandshakeFailed => "TLS handshakes failed",
            Event::TimedOut => "connections closed: not authenticated in time",
            Event::Refused => "calls refused: bad credentials",
            Event::TooManyFailures => "connections closed: too many failed authentications",
        }
    }
}

/// The shared table of pending connections and the counts for the next report.
#[derive(Clone, Debug)]
pub struct Admission {
    limits: Limits,
    table: Arc<Mutex<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    pending: HashMap<SocketAddr, Arc<Pending>>,
    per_peer: HashMap<IpAddr, usize>,
    /// Events since the last report, per kind and peer.
    counts: HashMap<(Event, IpAddr), u64>,
}

/// One pending connection's state, shared by its I/O and the table.
#[derive(Debug, Default)]
struct Pending {
    authenticated: AtomicBool,
    failures: AtomicU32,
}

impl Admission {
    /// An empty table with `limits`.
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            table: Arc::default(),
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection from `peer`, or says why not.
    fn admit(&self, peer: SocketAddr) -> Result<Arc<Pending>, Event> {
        let mut table = self.table();
        if table.pending.len() >= self.limits.max_pending {
            return Err(Event::ShedTotal);
        }
        let from_peer = table.per_peer.entry(peer.ip()).or_default();
        if *from_peer >= self.limits.max_pending_per_peer {
            return Err(Event::ShedPerPeer);
        }
        *from_peer += 1;
        let pending = Arc::new(Pending::default());
        table.pending.insert(peer, pending.clone());
        Ok(pending)
    }

    /// Frees `peer`'s pending slot (authenticated, or closed).
    fn release(&self, peer: SocketAddr) {
        let mut table = self.table();
        if table.pending.remove(&peer).is_some()
            && let Some(n) = table.per_peer.get_mut(&peer.ip())
        {
            *n -= 1;
            if *n == 0 {
                table.per_peer.remove(&peer.ip());
            }
        }
    }

    /// A call on the connection from `peer` authenticated: it is no longer pending.
    pub fn authenticated(&self, peer: Option<SocketAddr>) {
        let Some(peer) = peer else { return };
        let pending = self.table().pending.get(&peer).cloned();
        if let Some(pending) = pending {
            pending.authenticated.store(true, Ordering::Release);
            self.release(peer);
        }
    }

    /// A call on the connection from `peer` was refused for bad credentials (`reason`): the
    /// first from a peer in a window is logged, the rest counted; the connection is closed
    /// after [`Limits::max_auth_failures`].
    pub fn refused(&self, peer: Option<SocketAddr>, reason: &str) {
        let Some(peer) = peer else {
            tracing::warn!(reason, "session refused");
            return;
        };
        if self.count(Event::Refused, peer.ip()) {
            tracing::warn!(%peer, reason, "session refused (more from this peer are counted and reported every {REPORT_EVERY:?})");
        }
        if let Some(pending) = self.table().pending.get(&peer) {
            pending.failures.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Counts `event` from `ip`; true when it is the first of its kind from `ip` this window.
    fn count(&self, event: Event, ip: IpAddr) -> bool {
        let mut table = self.table();
        let n = table.counts.entry((event, ip)).or_default();
        *n += 1;
        *n == 1
    }

    /// Logs what was counted since the last report (one line per kind), and starts a new window.
    pub fn report(&self) {
        let counts = std::mem::take(&mut self.table().counts);
        let mut by_event: HashMap<Event, Vec<(IpAddr, u64)>> = HashMap::new();
        for ((event, ip), n) in counts {
            by_event.entry(event).or_default().push((ip, n));
        }
        let mut events: Vec<_> = by_event.into_iter().collect();
        events.sort_by_key(|(event, _)| *event);
        for (event, mut peers) in events {
            peers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let total: u64 = peers.iter().map(|(_, n)| n).sum();
            let mut named: Vec<String> = peers
                .iter()
                .take(PEERS_NAMED)
                .map(|(ip, n)| format!("{ip}: {n}"))
                .collect();
            if peers.len() > PEERS_NAMED {
                named.push(format!("{} other peers", peers.len() - PEERS_NAMED));
            }
            tracing::warn!(
                total,
                peers = peers.len(),
                "in the last {REPORT_EVERY:?}: {total} {} ({})",
                event.describe(),
                named.join(", ")
            );
        }
    }

    /// Accepts connections on `listener` for as long as the returned stream is read, handing
    /// on those admitted once `tls` (if any) has shaken hands.
    pub fn incoming<IO: Send + 'static>(
        &self,
        listener: TcpListener,
        handshake: impl Fn(Guarded) -> HandshakeFuture<IO> + Send + 'static,
    ) -> ReceiverStream<Result<IO, io::Error>> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(self.clone().accept_loop(listener, handshake, tx));
        ReceiverStream::new(rx)
    }

    async fn accept_loop<IO: Send + 'static>(
        self,
        listener: TcpListener,
        handshake: impl Fn(Guarded) -> HandshakeFuture<IO>,
        tx: mpsc::Sender<Result<IO, io::Error>>,
    ) {
        let mut handshakes: JoinSet<(SocketAddr, io::Result<IO>)> = JoinSet::new();
        let mut report = tokio::time::interval(REPORT_EVERY);
        report.tick().await;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => match self.admit(peer) {
                        Ok(pending) => {
                            crate::listener::no_delay(&stream);
                            let io = Guarded::new(stream, peer, pending, self.clone());
                            let shaking = handshake(io);
                            handshakes.spawn(async move { (peer, shaking.await) });
                        }
                        Err(event) => {
                            if self.count(event, peer.ip()) {
                                tracing::warn!(%peer, "connection closed at once: {}", event.describe());
                            }
                        }
                    },
                    Err(e) => {
                        // Out of file descriptors, most likely: keep going without spinning.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(done) = handshakes.join_next() => match done {
                    Ok((_, Ok(io))) => {
                        if tx.send(Ok(io)).await.is_err() {
                            return;
                        }
                    }
                    Ok((peer, Err(e))) => {
                        let event = if e.kind() == io::ErrorKind::TimedOut { Event::TimedOut } else { Event::HandshakeFailed };
                        if self.count(event, peer.ip()) {
                            tracing::warn!(%peer, error = %e, "TLS handshake failed (more from this peer are counted and reported every {REPORT_EVERY:?})");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "a TLS handshake task failed"),
                },
                _ = report.tick() => self.report(),
                () = tx.closed() => return,
            }
        }
    }
}

/// A connection's handshake, as [`Admission::incoming`] runs it.
pub type HandshakeFuture<IO> = Pin<Box<dyn Future<Output = io::Result<IO>> + Send>>;

/// No handshake: plaintext (`--insecure`).
pub fn plaintext(io: Guarded) -> HandshakeFuture<Guarded> {
    Box::pin(std::future::ready(Ok(io)))
}

/// A TLS handshake with `acceptor`'s config.
pub fn tls(acceptor: TlsAcceptor) -> impl Fn(Guarded) -> HandshakeFuture<TlsStream<Guarded>> {
    move |io| {
        let accept = acceptor.accept(io);
        Box::pin(accept)
    }
}

/// A TCP connection that is closed when it stays pending too long or fails authentication too
/// often, and frees its pending slot when it goes.
pub struct Guarded {
    stream: TcpStream,
    peer: SocketAddr,
    pending: Arc<Pending>,
    deadline: Pin<Box<Sleep>>,
    admission: Admission,
    /// Why it was closed, once it was (the event is counted once).
    closed: Option<io::ErrorKind>,
}

impl Guarded {
    fn new(
        stream: TcpStream,
        peer: SocketAddr,
        pending: Arc<Pending>,
        admission: Admission,
    ) -> Guarded {
        let deadline = Box::pin(tokio::time::sleep(admission.limits.auth_timeout));
        Guarded {
            stream,
            peer,
            pending,
            deadline,
            admission,
            closed: None,
        }
    }

    /// An error once this connection must close, else `Ok`.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(kind) = self.closed {
            return Err(kind.into());
        }
        if self.pending.authenticated.load(Ordering::Acquire) {
            return Ok(());
        }
        let (event, kind) = if self.pending.failures.load(Ordering::Acquire)
            >= self.admission.limits.max_auth_failures
        {
            (Event::TooManyFailures, io::ErrorKind::PermissionDenied)
        } else if self.deadline.as_mut().poll(cx).is_ready() {
            (Event::TimedOut, io::ErrorKind::TimedOut)
        } else {
            return Ok(());
        };
        self.closed = Some(kind);
        if self.admission.count(event, self.peer.ip()) && event == Event::TooManyFailures {
            tracing::warn!(peer = %self.peer, "connection closed: {}", event.describe());
        }
        Err(io::Error::new(kind, event.describe()))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if !self.pending.authenticated.load(Ordering::Acquire) {
            self.admission.release(self.peer);
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    #[test]
    fn pending_connections_are_bounded_per_peer_and_in_total() {
        let admission = Admission::new(Limits {
            max_pending: 3,
            max_pending_per_peer: 2,
            ..Limits::default()
        });
        assert!(admission.admit(addr([10, 0, 0, 1], 1)).is_ok());
        assert!(admission.admit(addr([10, 0, 0, 1], 2)).is_ok());
        assert_eq!(
            admission.admit(addr([10, 0, 0, 1], 3)).unwrap_err(),
            Event::ShedPerPeer
        );
        assert!(admission.admit(addr([10, 0, 0, 2], 1)).is_ok());
        assert_eq!(
            admission.admit(addr([10, 0, 0, 3], 1)).unwrap_err(),
            Event::ShedTotal
        );
        // Authenticating frees the slot; so does closing.
        admission.authenticated(Some(addr([10, 0, 0, 1], 1)));
        admission.release(addr([10, 0, 0, 2], 1));
        assert!(admission.admit(addr([10, 0, 0, 1], 3)).is_ok());
        assert!(admission.admit(addr([10, 0, 0, 3], 1)).is_ok());
        assert_eq!(
            admission.admit(addr([10, 0, 0, 4], 1)).unwrap_err(),
            Event::ShedTotal
        );
        assert!(admission.table().per_peer.len() <= 2);
    }

    #[test]
    fn only_the_first_event_of_a_kind_from_a_peer_is_logged_per_window() {
        let admission = Admission::new(Limits::default());
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(admission.count(Event::Refused, ip));
        assert!(!admission.count(Event::Refused, ip));
        assert!(admission.count(Event::TimedOut, ip));
        admission.report();
        assert!(admission.table().counts.is_empty());
        assert!(admission.count(Event::Refused, ip), "a new window");
    }
}
