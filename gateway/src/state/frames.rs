//! The state sent to sessions, framed once for all of them.
//!
//! One task (the framer, [`Frames::run`]) follows the [`StateHub`] at the gateway's frame rate
//! (`server.state_updates_per_second`, paced by [`Pace`]: a lone change at once, a burst at most
//! once a frame, its end at the next frame). Each [`Frame`] holds every target's state, the
//! frame each last changed in, and each state encoded once as a `StateUpdate` entry; it also
//! holds the whole `ServerMessage` a session that was sent the frame before and sees every
//! target is sent now, encoded once. Every session reads the same frames (a
//! `tokio::sync::watch`: a session that lags skips frames and is sent what changed since the
//! last one it was sent, latest state wins), so a change costs one diff and one encoding however
//! many sessions there are, and a session's share is choosing bytes and writing them.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kubeknobs_proto::v1::{StateUpdate, TargetState};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Snapshot, StateHub};
use crate::pace::Pace;

/// The field number of `state` in `ServerMessage` (proto/kubeknobs/v1/session.proto; the tests
/// check it against prost's own encoding).
const SERVER_MESSAGE_STATE: u32 = 3;

/// Every target's state as of one frame.
#[derive(Debug)]
pub struct Frame {
    /// Frames are numbered from 0 (the state the gateway started with).
    pub number: u64,
    /// Every target by name.
    targets: BTreeMap<String, Arc<Framed>>,
    /// The targets that changed in this frame.
    changed: Vec<Arc<Framed>>,
    /// `ServerMessage { state: StateUpdate { states: changed } }`, encoded.
    update: Bytes,
}

/// One target's state in a frame.
#[derive(Debug)]
pub struct Framed {
    /// The state.
    pub state: TargetState,
    /// The frame it last changed in.
    since: u64,
    /// The state as one entry of `StateUpdate.states` (key, length, message).
    entry: Bytes,
}

/// Which targets a session may see.
#[derive(Debug, Clone, PartialEq)]
pub enum Visible {
    /// Every target.
    All,
    /// Only these, by name.
    Only(HashSet<String>),
}

impl Visible {
    fn sees(&self, target: &str) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(names) => names.contains(target),
        }
    }
}

impl Frame {
    /// The first frame: `snapshot` as it is.
    fn first(snapshot: &Snapshot) -> Frame {
        let targets: BTreeMap<String, Arc<Framed>> = snapshot
            .iter()
            .map(|(name, state)| (name.clone(), Arc::new(Framed::new(state, 0))))
            .collect();
        let changed: Vec<Arc<Framed>> = targets.values().cloned().collect();
        let update = state_message(changed.iter().map(|f| &f.entry));
        Frame {
            number: 0,
            targets,
            changed,
            update,
        }
    }

    /// The frame after this one, for `snapshot`; `None` when no target's state differs.
    fn next(&self, snapshot: &Snapshot) -> Option<Frame> {
        let number = self.number + 1;
        let mut targets = self.targets.clone();
        let mut changed = Vec::new();
        for (name, state) in snapshot.iter() {
            if self.targets.get(name).is_some_and(|f| &f.state == state) {
                continue;
            }
            let framed = Arc::new(Framed::new(state, number));
            targets.insert(name.clone(), framed.clone());
            changed.push(framed);
        }
        if changed.is_empty() {
            return None;
        }
        let update = state_message(changed.iter().map(|f| &f.entry));
        Some(Frame {
            number,
            targets,
            changed,
            update,
        })
    }

    /// A target's state as of this frame.
    pub fn state(&self, target: &str) -> Option<&TargetState> {
        self.targets.get(target).map(|f| &f.state)
    }

    /// The encoded `ServerMessage` telling a session that was last sent frame `seen` what
    /// changed since among the targets it may see; `None` when nothing did.
    pub fn update_since(&self, seen: u64, visible: &Visible) -> Option<Bytes> {
        let caught_up = seen + 1 == self.number;
        if caught_up && *visible == Visible::All {
            return (!self.changed.is_empty()).then(|| self.update.clone());
        }
        let entries: Vec<&Bytes> = if caught_up {
            self.changed
                .iter()
                .filter(|f| visible.sees(&f.state.target))
                .map(|f| &f.entry)
                .collect()
        } else {
            // A session that skipped frames: every target changed since the last it was sent.
            self.targets
                .values()
                .filter(|f| f.since > seen && visible.sees(&f.state.target))
                .map(|f| &f.entry)
                .collect()
        };
        (!entries.is_empty()).then(|| state_message(entries.into_iter()))
    }
}

impl Framed {
    fn new(state: &TargetState, since: u64) -> Framed {
        let entry = StateUpdate {
            states: vec![state.clone()],
        }
        .encode_to_vec();
        Framed {
            state: state.clone(),
            since,
            entry: entry.into(),
        }
    }
}

/// `ServerMessage { state: StateUpdate { states } }` from encoded `states` entries: the same
/// bytes prost writes for the message (a repeated field is its entries one after another).
fn state_message<'a>(entries: impl Iterator<Item = &'a Bytes> + Clone) -> Bytes {
    let len: usize = entries.clone().map(Bytes::len).sum();
    let mut buf = BytesMut::with_capacity(1 + encoded_len_varint(len as u64) + len);
    encode_key(SERVER_MESSAGE_STATE, WireType::LengthDelimited, &mut buf);
    encode_varint(len as u64, &mut buf);
    for entry in entries {
        buf.put_slice(entry);
    }
    buf.freeze()
}

/// The frames every session reads.
#[derive(Debug)]
pub struct Frames {
    tx: watch::Sender<Arc<Frame>>,
}

impl Frames {
    /// Frames of `hub`, starting with its state now.
    pub fn new(hub: &StateHub) -> Frames {
        Frames {
            tx: watch::Sender::new(Arc::new(Frame::first(&hub.snapshot()))),
        }
    }

    /// A receiver of frames, the current one marked as seen.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Frame>> {
        self.tx.subscribe()
    }

    /// Frames the hub's changes at `per_second()` frames a second until `stop`.
    pub async fn run(
        self: Arc<Self>,
        hub: Arc<StateHub>,
        per_second: impl Fn() -> u32 + Send,
        stop: CancellationToken,
    ) {
        let mut states = hub.subscribe();
        // What changed between the first frame and subscribing.
        self.publish(&mut states);
        let mut pace = Pace::per_second(per_second());
        loop {
            let due = pace.due();
            tokio::select! {
                changed = states.changed(), if due.is_none() => {
                    if changed.is_err() {
                        return;
                    }
                    pace.set_per_second(per_second());
                    if pace.changed() {
                        self.publish(&mut states);
                    }
                }
                () = crate::pace::sleep_until_some(due), if due.is_some() => {
                    pace.sent();
                    self.publish(&mut states);
                }
                () = stop.cancelled() => return,
            }
        }
    }

    /// Publishes the hub's state now as the next frame, if any target changed.
    fn publish(&self, states: &mut watch::Receiver<Snapshot>) {
        let snapshot = states.borrow_and_update().clone();
        let next = self.tx.borrow().next(&snapshot);
        if let Some(frame) = next {
            self.tx.send_replace(Arc::new(frame));
        }
    }
}

#[cfg(test)]
mod tests {
    use kubeknobs_proto::v1::{ServerMessage, server_message::Msg};

    use super::*;

    fn snapshot(values: &[(&str, f64)]) -> Snapshot {
        Arc::new(
            values
                .iter()
                .map(|(name, desired)| {
                    let state = TargetState {
                        target: (*name).to_owned(),
                        desired: Some(*desired),
                        changed_by: "alice".to_owned(),
                        ..TargetState::default()
                    };
                    ((*name).to_owned(), state)
                })
                .collect(),
        )
    }

    fn decoded(bytes: &Bytes) -> Vec<(String, f64)> {
        match ServerMessage::decode(bytes.clone()).expect("decodes").msg {
            Some(Msg::State(update)) => update
                .states
                .into_iter()
                .map(|s| (s.target, s.desired.expect("desired")))
                .collect(),
            other => panic!("not a StateUpdate: {other:?}"),
        }
    }

    #[test]
    fn the_shared_encoding_is_the_messages_own() {
        let first = Frame::first(&snapshot(&[("db", 1.0), ("web", 2.0)]));
        let frame = first
            .next(&snapshot(&[("db", 1.0), ("web", 5.0)]))
            .expect("web changed");
        let states = vec![frame.targets["web"].state.clone()];
        let prost = ServerMessage {
            msg: Some(Msg::State(StateUpdate { states })),
        }
        .encode_to_vec();
        assert_eq!(
            frame.update_since(0, &Visible::All).expect("an update"),
            prost
        );
    }

    #[test]
    fn a_session_is_sent_what_changed_since_its_last_frame_that_it_may_see() {
        let f0 = Frame::first(&snapshot(&[("a", 0.0), ("b", 0.0), ("c", 0.0)]));
        let f1 = f0.next(&snapshot(&[("a", 1.0), ("b", 0.0), ("c", 0.0)]));
        let f1 = f1.expect("a changed");
        let f2 = f1.next(&snapshot(&[("a", 1.0), ("b", 2.0), ("c", 2.0)]));
        let f2 = f2.expect("b and c changed");
        assert!(
            f2.next(&snapshot(&[("a", 1.0), ("b", 2.0), ("c", 2.0)]))
                .is_none()
        );
        let all = Visible::All;
        assert_eq!(
            decoded(&f2.update_since(1, &all).expect("caught up")),
            [("b".to_owned(), 2.0), ("c".to_owned(), 2.0)]
        );
        assert_eq!(
            decoded(&f2.update_since(0, &all).expect("skipped a frame")),
            [("a".into(), 1.0), ("b".into(), 2.0), ("c".into(), 2.0)]
        );
        let only_a_c = Visible::Only(["a".to_owned(), "c".to_owned()].into());
        assert_eq!(
            decoded(&f2.update_since(1, &only_a_c).expect("c")),
            [("c".to_owned(), 2.0)]
        );
        let only_a = Visible::Only(["a".to_owned()].into());
        assert_eq!(f2.update_since(1, &only_a), None, "nothing it may see");
        assert_eq!(f2.update_since(2, &all), None, "already sent");
    }

    #[tokio::test(start_paused = true)]
    async fn the_framer_sends_a_lone_change_at_once_and_a_burst_at_the_frame_rate() {
        use crate::catalog::{Catalog, TargetKind, TargetSpec};
        use crate::state::Observed;
        let mut catalog = Catalog::default();
        catalog.insert(TargetSpec::for_test(
            "web",
            TargetKind::DeploymentReplicas,
            "default",
            20,
        ));
        let hub = Arc::new(StateHub::new(&catalog));
        let frames = Arc::new(Frames::new(&hub));
        let mut rx = frames.subscribe();
        let stop = CancellationToken::new();
        tokio::spawn(frames.clone().run(hub.clone(), || 10, stop.clone()));
        tokio::task::yield_now().await;
        let seen = |desired| Observed {
            desired,
            ..Observed::default()
        };
        hub.observe("web", seen(1));
        rx.changed().await.expect("framer runs");
        let first = rx.borrow_and_update().clone();
        assert_eq!(first.state("web").and_then(|s| s.desired), Some(1.0));
        let at = tokio::time::Instant::now();
        for desired in 2..=9 {
            hub.observe("web", seen(desired));
            tokio::time::advance(std::time::Duration::from_millis(5)).await;
        }
        rx.changed().await.expect("framer runs");
        let end = rx.borrow_and_update().clone();
        assert_eq!(end.number, first.number + 1, "the burst is one frame");
        assert_eq!(end.state("web").and_then(|s| s.desired), Some(9.0));
        assert!(at.elapsed() >= std::time::Duration::from_millis(100));
        stop.cancel();
    }
}
