//! The gRPC listener: a listen backlog that holds a connect storm, and connections with Nagle's
//! algorithm off.
//!
//! `tokio::net::TcpListener::bind` listens with a backlog of 128 (the standard library's). When
//! every bridge reconnects at once (a gateway restart), connections the kernel completed beyond
//! that while the accept loop was busy are dropped, and their clients retry the handshake only
//! after TCP's 1 s retransmission timeout: a storm of 1,000 sessions took over a second for its
//! last few percent. [`bind`] listens with [`BACKLOG`] instead (the kernel caps it at
//! `net.core.somaxconn`, 4096 by default since Linux 5.4).
//!
//! tonic's `Server::tcp_nodelay` only applies to listeners tonic binds itself, not to an
//! incoming stream handed to `serve_with_incoming_shutdown`. Without it a small reply (an
//! `Outcome` after a `StateUpdate`) waits for the bridge's delayed ACK, ~40 ms on Linux.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Connections the kernel may complete and queue before the gateway accepts them.
pub const BACKLOG: u32 = 4096;

/// Listens on `addr` with a backlog of [`BACKLOG`] (and `SO_REUSEADDR`, as `TcpListener::bind`
/// sets it on Unix).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Turns Nagle's algorithm off on an accepted connection (a failure is logged and the
/// connection served anyway). The admission loop calls it on every connection it accepts.
pub fn no_delay(stream: &TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::warn!(cause = %err, "cannot set TCP_NODELAY on a connection");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let (served, _) = listener.accept().await.expect("accepted");
        assert!(
            !served.nodelay().expect("read TCP_NODELAY"),
            "on by default"
        );
        no_delay(&served);
        assert!(served.nodelay().expect("read TCP_NODELAY"));
    }

    /// 300 clients connect at once while nothing is accepted (the accept loop busy): every
    /// handshake completes at once. With `TcpListener::bind`'s backlog of 128, the rest wait for
    /// a SYN retransmission (1 s and more) and this fails.
    #[tokio::test]
    async fn a_connect_storm_waits_in_the_backlog_not_for_retransmissions() {
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connects = (0..300).map(|_| TcpStream::connect(addr));
        let all = tokio::time::timeout(
            Duration::from_millis(500),
            futures::future::join_all(connects),
        )
        .await
        .expect("every connect completes without a retransmission");
        assert!(all.iter().all(Result::is_ok), "a connect failed");
        drop(listener);
    }
}
