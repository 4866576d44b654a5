//! OSC over TCP (`osc.tcp_listen`), for apps that send OSC on a connection instead of in
//! datagrams: TouchOSC's and Open Stage Control's TCP mode (SLIP), liblo's `osc.tcp://`
//! (length-prefixed). The framing is told from each client's first byte (see [`framing`]).
//!
//! Contract: a connection's packets reach the running pipeline's receiver exactly as UDP
//! datagrams do (same mappings, touch, arm, logs and metrics), and its feedback comes back on the
//! connection, in its framing, from its first packet for as long as it stays connected.
//! Connections outlive a config reload, as the UDP socket does. Everything is bounded: at most
//! [`MAX_CONNECTIONS`] at once (more are closed at once, with a warning); a packet over
//! [`MAX_PACKET`] bytes or broken framing closes that connection; and a client that does not read
//! its feedback (its queue full, or a write blocked for [`WRITE_TIMEOUT`]) is disconnected.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::framing::{self, Deframer, Framing};
use super::{Error, Result, SharedClients, lock};

/// Most TCP clients connected at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Largest packet a TCP client may send, in bytes.
pub const MAX_PACKET: usize = 64 * 1024;
/// Longest a write of feedback to a TCP client may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
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
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) if connections.len() >= MAX_CONNECTIONS => {
                    warn!(client = %from, "OSC over TCP: {MAX_CONNECTIONS} clients are connected already; closing the new connection");
                    drop(stream);
                }
                Ok((stream, from)) => {
                    info!(client = %from, "OSC TCP client connected");
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, from, inbound.clone(), clients.clone()));
                }
                Err(e) => {
                    // E.g. out of file descriptors: keep going without spinning.
                    warn!(error = %e, "accepting an OSC TCP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

/// One client, registered for feedback while connected.
async fn connection(
    stream: TcpStream,
    from: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    clients: SharedClients,
) {
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let mut dropped = lock(&clients).connect(from, tx);
    let end = tokio::select! {
        // Dropped by the registry (it cannot keep up): at once, even while a write is blocked.
        _ = &mut dropped => Err("it did not read its feedback fast enough".to_owned()),
        end = exchange(stream, from, &inbound, &mut rx) => end,
    };
    lock(&clients).disconnect(from);
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
) -> Result<&'static str, String> {
    let (mut read, mut write) = stream.into_split();
    let mut deframer = Deframer::new(MAX_PACKET);
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            n = read.read(&mut buf) => {
                let n = match n {
                    Ok(0) => return Ok(CLOSED),
                    Ok(n) => n,
                    Err(e) if is_hang_up(&e) => return Ok(CLOSED),
                    Err(e) => return Err(format!("reading failed: {e}")),
                };
                deframer.push(&buf[..n]);
                while let Some(packet) = deframer.next_packet().map_err(|e| e.to_string())? {
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
    use crate::osc::{Clients, Peer, Unsent};

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
        let task = tokio::spawn(connection(stream, from, inbound, clients.clone()));
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
}
