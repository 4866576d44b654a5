//! The gRPC listener's connections, as the server gets them: with Nagle's algorithm off.
//!
//! tonic's `Server::tcp_nodelay` only applies to listeners tonic binds itself, not to an
//! incoming stream handed to `serve_with_incoming_shutdown`. Without it a small reply (an
//! `Outcome` after a `StateUpdate`) waits for the bridge's delayed ACK, ~40 ms on Linux.

use futures::{Stream, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;

/// Every connection `listener` accepts, with `TCP_NODELAY` set (a failure to set it is logged
/// and the connection served anyway).
pub fn no_delay(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            if let Err(err) = stream.set_nodelay(true) {
                tracing::warn!(cause = %err, "cannot set TCP_NODELAY on a connection");
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut incoming = Box::pin(no_delay(listener));
        for _ in 0..2 {
            let client = TcpStream::connect(addr).await.expect("connect");
            let served = incoming
                .next()
                .await
                .expect("a connection")
                .expect("accepted");
            assert!(served.nodelay().expect("read TCP_NODELAY"));
            drop(client);
        }
    }
}
