//! The opening of a session: the first message must be a `Hello` in a protocol we speak,
//! within `server.hello_timeout_ms`.

use std::time::Duration;

use kubeknobs_proto::v1::{self, ClientMessage, client_message};
use tonic::Streaming;

use super::Error;

/// Waits for the first message, which must be a `Hello` with a protocol we speak.
pub(super) async fn await_hello(
    inbound: &mut Streaming<ClientMessage>,
    within: Duration,
) -> Result<v1::Hello, Error> {
    let first = tokio::time::timeout(within, inbound.message())
        .await
        .map_err(|_| Error::NoHello(within))?
        .map_err(Error::Stream)?;
    match first.and_then(|m| m.msg) {
        Some(client_message::Msg::Hello(hello))
            if hello.protocol_version == v1::PROTOCOL_VERSION =>
        {
            Ok(hello)
        }
        Some(client_message::Msg::Hello(hello)) => Err(Error::Protocol(hello.protocol_version)),
        _ => Err(Error::NotHello),
    }
}
