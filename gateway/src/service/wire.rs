//! The `kubeknobs.v1.Knobs` gRPC service on the wire, with a codec that can send bytes encoded
//! once for many sessions.
//!
//! tonic's generated `KnobsServer` encodes every message of every stream with prost, so a state
//! change sent to 1,000 sessions would be encoded 1,000 times. This is the same service (the
//! same path, `kubeknobs.v1.Knobs/Session`, and the same messages on the wire) with a codec whose
//! outbound item is either a message, encoded for this session alone (`Welcome`, `Outcome`), or
//! [`Outbound::Encoded`]: a `ServerMessage` already encoded, written as it is (state frames and
//! presence lists, see [`crate::state::frames`] and [`crate::presence`]). Inbound messages are
//! decoded by prost as before.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes};
use kubeknobs_proto::v1::{ClientMessage, ServerMessage, knobs_server::SERVICE_NAME};
use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstDecoder;

use super::KnobsService;
use super::outbox::Outbox;

/// The one method's path.
const SESSION_PATH: &str = "/kubeknobs.v1.Knobs/Session";

/// One message a session sends.
#[derive(Debug)]
pub enum Outbound {
    /// A message for this session alone, encoded as it is sent.
    Message(ServerMessage),
    /// A `ServerMessage` encoded once for every session it goes to.
    Encoded(Bytes),
}

/// Decodes `ClientMessage`s with prost; encodes [`Outbound`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionCodec;

impl Codec for SessionCodec {
    type Encode = Outbound;
    type Decode = ClientMessage;
    type Encoder = OutboundEncoder;
    type Decoder = ProstDecoder<ClientMessage>;

    fn encoder(&mut self) -> OutboundEncoder {
        OutboundEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// Writes an [`Outbound`] into a gRPC frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboundEncoder;

impl Encoder for OutboundEncoder {
    type Item = Outbound;
    type Error = Status;

    fn encode(&mut self, item: Outbound, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Outbound::Message(message) => message
                .encode(buf)
                .map_err(|e| Status::internal(format!("encoding a message: {e}"))),
            Outbound::Encoded(bytes) => {
                buf.put_slice(&bytes);
                Ok(())
            }
        }
    }
}

/// The `Knobs` service as a tower service, for `tonic::transport::Server::add_service`.
#[derive(Clone)]
pub struct KnobsServer {
    service: KnobsService,
    max_decoding_message_size: usize,
}

impl KnobsServer {
    /// Serves `service`, refusing client messages over `max_decoding_message_size` bytes.
    pub fn new(service: KnobsService, max_decoding_message_size: usize) -> KnobsServer {
        KnobsServer {
            service,
            max_decoding_message_size,
        }
    }
}

impl NamedService for KnobsServer {
    const NAME: &'static str = SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for KnobsServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != SESSION_PATH {
            let status = Status::unimplemented(format!("no method {}", request.uri().path()));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let method = SessionMethod(self.service.clone());
        let max = self.max_decoding_message_size;
        Box::pin(async move {
            let mut grpc = Grpc::new(SessionCodec).apply_max_message_size_config(Some(max), None);
            Ok(grpc.streaming(method, request).await)
        })
    }
}

/// The `Session` method.
struct SessionMethod(KnobsService);

impl StreamingService<ClientMessage> for SessionMethod {
    type Response = Outbound;
    type ResponseStream = Outbox;
    type Future = BoxFuture<Response<Outbox>, Status>;

    fn call(&mut self, request: Request<Streaming<ClientMessage>>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.session(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_the_protos() {
        assert_eq!(SESSION_PATH, format!("/{SERVICE_NAME}/Session"));
    }
}
