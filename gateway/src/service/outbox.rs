//! What one session sends, as the stream its gRPC response reads.
//!
//! Three sources, read in this order each time the connection asks for more: the session's own
//! messages (`Welcome`, `Outcome`s, the truth after a refusal, the closing status) from its
//! channel; the presence list when it changed (at most one per [`PRESENCE_INTERVAL`] per
//! session: the first at once, later ones when the interval is up, latest wins); the state
//! frame when a new one came (what changed since the last frame this session was sent, among
//! the targets it may see). Frames and lists are encoded once for every session
//! ([`Outbound::Encoded`]); the connection reads them directly, so a change wakes each
//! connection once and no task in between. Whatever is ready at once goes out as one write. A
//! connection that does not read skips frames and lists and gets the latest when it reads again.
//!
//! Presence is paced per session (not only by the roster) so that the lists of a connect storm,
//! each naming every session, go out spread over the second each session joined in, not all at
//! one moment.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use kubeknobs_proto::v1::ServerMessage;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::WatchStream;
use tonic::Status;

use super::wire::Outbound;
use crate::presence::PRESENCE_INTERVAL;
use crate::state::frames::{Frame, Visible};

/// One session's outbound stream.
pub struct Outbox {
    own: mpsc::Receiver<Result<ServerMessage, Status>>,
    presence: WatchStream<Bytes>,
    /// A list waiting for this session's presence interval to end, and the end.
    presence_waiting: Option<(Bytes, Pin<Box<Sleep>>)>,
    /// When this session may be sent its next list.
    presence_next: Instant,
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
            presence_waiting: None,
            presence_next: Instant::now(),
            frames: WatchStream::from_changes(frames),
            visible,
            seen,
        }
    }
}

impl Outbox {
    /// The presence list to send now, if one is due: the latest, at most one per interval.
    fn poll_presence(&mut self, cx: &mut Context<'_>) -> Option<Bytes> {
        while let Poll::Ready(Some(list)) = Pin::new(&mut self.presence).poll_next(cx) {
            match &mut self.presence_waiting {
                Some((waiting, _)) => *waiting = list,
                None if Instant::now() >= self.presence_next => {
                    self.presence_next = Instant::now() + PRESENCE_INTERVAL;
                    return Some(list);
                }
                None => {
                    let wait = Box::pin(tokio::time::sleep_until(self.presence_next));
                    self.presence_waiting = Some((list, wait));
                }
            }
        }
        let (_, wait) = self.presence_waiting.as_mut()?;
        if wait.as_mut().poll(cx).is_pending() {
            return None;
        }
        self.presence_next = Instant::now() + PRESENCE_INTERVAL;
        self.presence_waiting.take().map(|(list, _)| list)
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
        if let Some(list) = this.poll_presence(cx) {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;
    use crate::catalog::Catalog;
    use crate::state::StateHub;
    use crate::state::frames::Frames;

    fn list(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_is_sent_the_first_list_at_once_then_at_most_one_a_second_the_latest() {
        let (_own_tx, own) = mpsc::channel(1);
        let (presence_tx, mut presence) = watch::channel(list(0));
        presence.mark_changed();
        let frames = Frames::new(&StateHub::new(&Catalog::default()));
        let mut outbox = Outbox::new(own, presence, frames.subscribe(), 0, Visible::All);
        let mut next =
            async || match tokio::time::timeout(Duration::from_secs(5), outbox.next()).await {
                Ok(Some(Ok(Outbound::Encoded(list)))) => (list, Instant::now()),
                other => panic!("expected a list, got {other:?}"),
            };
        let start = Instant::now();
        assert_eq!(next().await, (list(0), start), "the first at once");
        // Ten changes over half a second: one list, the latest, a second after the first.
        for n in 1..=10 {
            presence_tx.send_replace(list(n));
            tokio::time::advance(Duration::from_millis(50)).await;
        }
        let (latest, at) = next().await;
        assert_eq!(latest, list(10));
        assert_eq!(at, start + PRESENCE_INTERVAL);
        // A change after a quiet interval goes at once.
        tokio::time::advance(2 * PRESENCE_INTERVAL).await;
        presence_tx.send_replace(list(11));
        let sent = Instant::now();
        assert_eq!(next().await, (list(11), sent));
    }
}
