//! OSC over TCP (`osc.tcp_listen`), for apps that send OSC on a connection instead of in
//! datagrams: TouchOSC's and Open Stage Control's TCP mode (SLIP), liblo's `osc.tcp://`
//! (length-prefixed). The framing is told from each client's first byte (see [`framing`]).
//!
//! Contract: a connection's packets reach the running pipeline's receiver exactly as UDP
//! datagrams do (same mappings, touch, arm, logs and metrics), and its feedback comes back on the
//! connection, in its framing, from its first packet for as long as it stays connected.
//! Connections outlive a config reload, as the UDP socket does. Everything is bounded: at most
//! [`MAX_CONNECTIONS`] at once; a packet over [`MAX_PACKET`] bytes or broken framing closes that
//! connection; and a client that does not read its feedback (its queue full, or a write blocked
//! for [`WRITE_TIMEOUT`]) is disconnected.
//!
//! Idle connections cannot hold the slots: one that has not sent a whole packet within
//! [`FIRST_PACKET_TIMEOUT`] of connecting (idle or half-open) is closed. A client that has
//! spoken may stay quiet as long as it likes (a phone showing feedback between gestures), but
//! when every slot is taken a new connection takes the slot of the one silent the longest: one
//! that never spoke, else one silent for at least [`GIVE_WAY_AFTER`]. If there is none, the new
//! connection is closed at once. Connections, disconnections (by reason) and refusals are logged
//! once per peer and window, then summarised.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tracing::{info, warn};

use super::framing::{self, Deframer, Framing};
use super::{Error, Result, SharedClients, lock};

/// Most TCP clients connected at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Largest packet a TCP client may send, in bytes.
pub const MAX_PACKET: usize = 64 * 1024;
/// Longest a write of feedback to a TCP client may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new connection has to send its first whole packet.
pub const FIRST_PACKET_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client must have been silent before a new connection may take its slot.
pub const GIVE_WAY_AFTER: Duration = Duration::from_secs(60);
/// Packets queued for one client's writer, and packets from all clients waiting for the receiver.
pub const QUEUE: usize = 256;

/// A packet from a TCP client, for the pipeline's receiver.
#[derive(Debug)]
pub struct Inbound {
    /// The client's address.
    pub from: SocketAddr,
    /// One OSC packet, unframed.
    pub packet: Vec<u8>,
}

/// Binds `osc.tcp_listen`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::BindTcp { addr, source })
}

/// Accepts connections and runs them until dropped, which closes them all. Their packets go to
/// `inbound`; each registers in `clients` for feedback while connected.
pub async fn serve(listener: TcpListener, inbound: mpsc::Sender<Inbound>, clients: SharedClients) {
    let mut connections = JoinSet::new();
    let mut slots: HashMap<tokio::task::Id, Slot> = HashMap::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) => {
                    if slots.len() >= MAX_CONNECTIONS && !give_way(&mut slots, Instant::now()) {
                        if super::first("OSC TCP connection refused", from.ip()) {
                            warn!(client = %from, "OSC over TCP: {MAX_CONNECTIONS} clients are connected and none is idle; closing the new connection");
                        }
                        drop(stream);
                        continue;
                    }
                    if super::first("OSC TCP client connected", from.ip()) {
                        info!(client = %from, "OSC TCP client connected");
                    }
                    let _ = stream.set_nodelay(true);
                    let spoke = Arc::new(Mutex::new(None));
                    let task = connection(stream, from, inbound.clone(), clients.clone(), spoke.clone());
                    let abort = connections.spawn(task);
                    slots.insert(abort.id(), Slot { abort, spoke });
                }
                Err(e) => {
                    // E.g. out of file descriptors: keep going without spinning.
                    warn!(error = %e, "accepting an OSC TCP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(done) = connections.join_next_with_id() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                slots.remove(&id);
            }
        }
    }
}

/// A running connection: how to close it, and when it last sent a packet (`None`: never).
struct Slot {
    abort: AbortHandle,
    spoke: Arc<Mutex<Option<Instant>>>,
}

/// Closes the connection silent the longest, if one may give way (see the module docs); true
/// if a slot was freed.
fn give_way(slots: &mut HashMap<tokio::task::Id, Slot>, now: Instant) -> bool {
    let last = |slot: &Slot| *slot.spoke.lock().unwrap_or_else(PoisonError::into_inner);
    let idlest = slots
        .iter()
        .map(|(id, slot)| (*id, last(slot)))
        .filter(|(_, spoke)| {
            spoke.is_none_or(|t| now.saturating_duration_since(t) >= GIVE_WAY_AFTER)
        })
        .min_by_key(|(_, spoke)| *spoke);
    let Some((id, _)) = idlest else {
        return false;
    };
    if let Some(slot) = slots.remove(&id) {
        slot.abort.abort();
    }
    true
}

/// Forgets a TCP client in the registry when its connection ends, however it ends (an abort
/// included).
struct Registered {
    clients: SharedClients,
    from: SocketAddr,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.clients).disconnect(self.from);
    }
}

/// One client, registered for feedback while connected.
async fn connection(
    stream: TcpStream,
    from: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    clients: SharedClients,
    spoke: Arc<Mutex<Option<Instant>>>,
) {
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let mut dropped = lock(&clients).connect(from, tx);
    let _registered = Registered {
        clients: clients.clone(),
        from,
    };
    let end = tokio::select! {
        // Dropped by the registry (it cannot keep up): at once, even while a write is blocked.
        _ = &mut dropped => Err("it did not read its feedback fast enough".to_owned()),
        end = exchange(stream, from, &inbound, &mut rx, &spoke) => end,
    };
    // Once per peer, reason and window: a client can connect and go as often as it likes.
    let why: &str = match &end {
        Ok(why) => why,
        Err(why) => why,
    };
    if !super::first(&format!("OSC TCP client disconnected: {why}"), from.ip()) {
        return;
    }
    match end {
        Ok(why) => info!(client = %from, "OSC TCP client disconnected: {why}"),
        Err(why) => warn!(client = %from, "OSC TCP client disconnected: {why}"),
    }
}

/// Reads packets and writes feedback until the connection ends; says why it ended, as an error
/// when the client broke a rule.
async fn exchange(
    stream: TcpStream,
    from: SocketAddr,
    inbound: &mpsc::Sender<Inbound>,
    feedback: &mut mpsc::Receiver<Vec<u8>>,
    spoke: &Mutex<Option<Instant>>,
) -> Result<&'static str, String> {
    let (mut read, mut write) = stream.into_split();
    let mut deframer = Deframer::new(MAX_PACKET);
    let mut buf = vec![0u8; 4096];
    let first_packet = tokio::time::sleep(FIRST_PACKET_TIMEOUT);
    tokio::pin!(first_packet);
    let mut silent = true;
    loop {
        tokio::select! {
            () = &mut first_packet, if silent => {
                return Err(format!("no packet within {FIRST_PACKET_TIMEOUT:?} of connecting"));
            }
            n = read.read(&mut buf) => {
                let n = match n {
                    Ok(0) => return Ok(CLOSED),
                    Ok(n) => n,
                    Err(e) if is_hang_up(&e) => return Ok(CLOSED),
                    Err(e) => return Err(format!("reading failed: {e}")),
                };
                deframer.push(&buf[..n]);
                while let Some(packet) = deframer.next_packet().map_err(|e| e.to_string())? {
                    silent = false;
                    *spoke.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                    if inbound.send(Inbound { from, packet }).await.is_err() {
                        return Ok("the bridge is stopping");
                    }
                }
            }
            packet = feedback.recv() => {
                let Some(packet) = packet else {
                    return Err("dropped from the registry".into());
                };
                let framing = deframer.framing().unwrap_or(Framing::Slip);
                let bytes = framing::frame(framing, &packet);
                match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) if is_hang_up(&e) => return Ok(CLOSED),
                    Ok(Err(e)) => return Err(format!("writing failed: {e}")),
                    Err(_) => return Err(format!("a write was blocked for {WRITE_TIMEOUT:?}")),
                }
            }
        }
    }
}

/// Why a connection the client ended ended.
const CLOSED: &str = "closed by the client";

/// The client went away (a sender like `oscsend` closes right after its packet, possibly while
/// its feedback is being written): a normal end, not an error.
fn is_hang_up(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::event::Peer;
    use crate::osc::{Clients, Unsent};

    /// A connection served by [`connection`], with the client's end, the registry and the
    /// packets it hands on.
    async fn connected() -> (
        TcpStream,
        SocketAddr,
        SharedClients,
        mpsc::Receiver<Inbound>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .expect("connect");
        let (stream, from) = listener.accept().await.expect("accept");
        let clients: SharedClients = Arc::new(Mutex::new(Clients::new(Duration::from_secs(60))));
        let (inbound, packets) = mpsc::channel(QUEUE);
        let spoke = Arc::new(Mutex::new(None));
        let task = tokio::spawn(connection(stream, from, inbound, clients.clone(), spoke));
        (client, from, clients, packets, task)
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_its_feedback_is_disconnected() {
        let (mut client, from, clients, mut packets, task) = connected().await;
        client
            .write_all(&framing::frame(
                Framing::Slip,
                b"/1/fader1\0\0\0,f\0\0\0\0\0\0",
            ))
            .await
            .expect("write");
        let first = packets.recv().await.expect("the packet is handed on");
        assert_eq!(first.from, from);
        assert!(lock(&clients).touch(Peer::Tcp(from), Instant::now()));

        // The client never reads: the socket buffers fill, the writer blocks, the queue fills.
        let packet = vec![b'/'; 60_000];
        let mut queued = 0;
        let slow = loop {
            match lock(&clients).queue(from, packet.clone()) {
                Ok(()) => queued += 1,
                Err(unsent) => break unsent,
            }
            assert!(
                queued < 10_000,
                "a client that never reads is never dropped"
            );
            tokio::task::yield_now().await;
        };
        assert_eq!(slow, Unsent::TooSlow);
        assert!(
            queued >= QUEUE,
            "only a full queue drops a client ({queued} queued)"
        );
        assert!(lock(&clients).active(Instant::now()).is_empty());

        // Its connection ends at once (not after a blocked write's timeout), and reading what
        // was sent ends in end-of-file.
        tokio::time::timeout(WRITE_TIMEOUT / 2, task)
            .await
            .expect("the connection task ends")
            .expect("it does not panic");
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut rest))
            .await
            .expect("the bridge closed the connection")
            .expect("read");
        assert!(
            !rest.is_empty(),
            "what was written before is still delivered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_sends_a_packet_is_closed() {
        let (mut client, _from, clients, _packets, task) = connected().await;
        // Half a packet, then nothing: still silent.
        client.write_all(b"\xc0/1/fa").await.expect("write");
        tokio::time::timeout(FIRST_PACKET_TIMEOUT * 2, task)
            .await
            .expect("closed after FIRST_PACKET_TIMEOUT")
            .expect("no panic");
        assert!(lock(&clients).active(Instant::now()).is_empty());
    }

    #[tokio::test]
    async fn a_new_connection_takes_the_slot_of_one_that_never_spoke_or_went_quiet() {
        let now = Instant::now();
        let mut slots = HashMap::new();
        let mut tasks = JoinSet::new();
        let mut add = |spoke: Option<Instant>| {
            let abort = tasks.spawn(std::future::pending::<()>());
            let id = abort.id();
            let spoke = Arc::new(Mutex::new(spoke));
            slots.insert(id, Slot { abort, spoke });
            id
        };
        let talking = add(Some(now));
        let quiet = add(Some(now - GIVE_WAY_AFTER));
        let mute = add(None);
        assert!(give_way(&mut slots, now));
        assert!(
            !slots.contains_key(&mute),
            "the one that never spoke goes first"
        );
        assert!(give_way(&mut slots, now));
        assert!(!slots.contains_key(&quiet));
        assert!(
            !give_way(&mut slots, now),
            "a client that spoke lately stays"
        );
        assert!(slots.contains_key(&talking));
    }
}
