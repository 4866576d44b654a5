//! What one session sends, as the stream its gRPC response reads.
//!
//! Three sources, read in this order each time the connection asks for more: the session's own
//! messages (`Welcome`, `Outcome`s, the truth after a refusal, the closing status) from its
//! channel; the presence list when it changed; the state frame when a new one came (what
//! changed since the last frame this session was sent, among the targets it may see). Frames
//! and lists are encoded once for every session ([`Outbound::Encoded`]); the connection reads
//! them directly, so a change wakes each connection once and no task in between. Whatever is
//! ready at once goes out as one write. A connection that does not read skips frames and lists
//! and gets the latest when it reads again.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use kubeknobs_proto::v1::ServerMessage;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::WatchStream;
use tonic::Status;

use super::wire::Outbound;
use crate::state::frames::{Frame, Visible};

/// One session's outbound stream.
pub struct Outbox {
    own: mpsc::Receiver<Result<ServerMessage, Status>>,
    presence: WatchStream<Bytes>,
    frames: WatchStream<Arc<Frame>>,
    visible: Visible,
    /// The last frame this session was sent (or its `Welcome` showed).
    seen: u64,
}

impl Outbox {
    /// Sends `own` messages, presence lists from `presence` (the current one first) and state
    /// from the frames after `frames`' current one, which is `seen`.
    pub fn new(
        own: mpsc::Receiver<Result<ServerMessage, Status>>,
        presence: watch::Receiver<Bytes>,
        frames: watch::Receiver<Arc<Frame>>,
        seen: u64,
        visible: Visible,
    ) -> Outbox {
        Outbox {
            own,
            presence: WatchStream::from_changes(presence),
            frames: WatchStream::from_changes(frames),
            visible,
            seen,
        }
    }
}

impl Stream for Outbox {
    type Item = Result<Outbound, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.own.poll_recv(cx) {
            Poll::Ready(Some(item)) => return Poll::Ready(Some(item.map(Outbound::Message))),
            // The session is over (its closing status, if any, came first).
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if let Poll::Ready(Some(list)) = Pin::new(&mut this.presence).poll_next(cx) {
            return Poll::Ready(Some(Ok(Outbound::Encoded(list))));
        }
        while let Poll::Ready(Some(frame)) = Pin::new(&mut this.frames).poll_next(cx) {
            let update = frame.update_since(this.seen, &this.visible);
            this.seen = frame.number;
            if let Some(update) = update {
                return Poll::Ready(Some(Ok(Outbound::Encoded(update))));
            }
        }
        Poll::Pending
    }
}
