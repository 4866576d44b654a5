//! The gRPC listener's connections: with Nagle's algorithm off.
//!
//! tonic's `Server::tcp_nodelay` only applies to listeners tonic binds itself, not to an
//! incoming stream handed to `serve_with_incoming_shutdown`. Without it a small reply (an
//! `Outcome` after a `StateUpdate`) waits for the bridge's delayed ACK, ~40 ms on Linux.

use tokio::net::TcpStream;

/// Turns Nagle's algorithm off on an accepted connection (a failure is logged and the
/// connection served anyway). The admission loop calls it on every connection it accepts.
pub fn no_delay(stream: &TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::warn!(cause = %err, "cannot set TCP_NODELAY on a connection");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
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
}
