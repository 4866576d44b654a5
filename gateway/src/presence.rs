//! Who is connected: every open session registers here, and every session is sent the list of
//! operators (with their bridges) whenever it changes, so a phone can show who else is driving.
//!
//! A session holds a [`Member`] for its lifetime; dropping it (however the session ends) removes
//! it from the list. The list is built and encoded once for every session by one task
//! ([`Roster::run`]), at most once per [`BUILD_INTERVAL`] (paced like state frames, [`Pace`]: a
//! lone join at once, the end of a burst at the next interval), and published on a
//! `tokio::sync::watch` channel: a slow session skips intermediate lists but always ends up
//! with the latest. Each session is sent at most one list per [`PRESENCE_INTERVAL`] (its
//! outbox paces it). So a connect storm of N sessions builds a bounded number of lists a
//! second, not one per connect, and sends each session a handful: O(N) lists, not O(N²).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kubeknobs_proto::v1::{Presence, PresentOperator, ServerMessage, server_message::Msg};
use prost::Message;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::pace::{Pace, sleep_until_some};

/// At most one presence list a second to each session: it is read by people.
pub const PRESENCE_INTERVAL: Duration = Duration::from_secs(1);
/// At most one list built every this long: soon enough that a session joining at the end of a
/// storm is sent a list that names (nearly) everyone.
pub const BUILD_INTERVAL: Duration = Duration::from_millis(50);

/// A session's id, unique for the gateway's lifetime.
pub type SessionId = u64;

/// The connected operators.
#[derive(Debug)]
pub struct Roster {
    sessions: Mutex<BTreeMap<SessionId, (Arc<str>, String)>>,
    next: AtomicU64,
    /// Woken on every join and leave.
    changed: Notify,
    /// `ServerMessage { presence }`, encoded.
    tx: watch::Sender<Bytes>,
}

impl Default for Roster {
    fn default() -> Roster {
        Roster {
            sessions: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(1),
            changed: Notify::new(),
            tx: watch::Sender::new(encode(Presence::default())),
        }
    }
}

impl Roster {
    /// Registers a session of `operator` from `bridge` until the returned member is dropped.
    pub fn join(self: &Arc<Self>, operator: Arc<str>, bridge: String) -> Member {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, (operator, bridge));
        self.changed.notify_one();
        Member {
            id,
            roster: self.clone(),
        }
    }

    /// A receiver of the encoded list, marked changed so the first `changed()` returns at once.
    pub fn subscribe(&self) -> watch::Receiver<Bytes> {
        let mut rx = self.tx.subscribe();
        rx.mark_changed();
        rx
    }

    /// Publishes the list after joins and leaves, at most once per [`BUILD_INTERVAL`], until
    /// `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut pace = Pace::new(BUILD_INTERVAL);
        loop {
            let due = pace.due();
            tokio::select! {
                () = self.changed.notified(), if due.is_none() => {
                    if pace.changed() {
                        self.publish();
                    }
                }
                () = sleep_until_some(due), if due.is_some() => {
                    pace.sent();
                    self.publish();
                }
                () = stop.cancelled() => return,
            }
        }
    }

    fn publish(&self) {
        let mut by_operator: BTreeMap<Arc<str>, Vec<String>> = BTreeMap::new();
        for (operator, bridge) in self.lock().values() {
            by_operator
                .entry(operator.clone())
                .or_default()
                .push(bridge.clone());
        }
        let operators = by_operator
            .into_iter()
            .map(|(name, bridges)| PresentOperator {
                name: name.to_string(),
                bridges,
            })
            .collect();
        self.tx.send_replace(encode(Presence { operators }));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SessionId, (Arc<str>, String)>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn encode(presence: Presence) -> Bytes {
    ServerMessage {
        msg: Some(Msg::Presence(presence)),
    }
    .encode_to_vec()
    .into()
}

/// One session's place in the [`Roster`]; leaves it when dropped.
#[derive(Debug)]
pub struct Member {
    /// The session's id.
    pub id: SessionId,
    roster: Arc<Roster>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.roster.lock().remove(&self.id);
        self.roster.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Names = Vec<(String, Vec<String>)>;

    fn names(encoded: &Bytes) -> Names {
        match ServerMessage::decode(encoded.clone()).expect("decodes").msg {
            Some(Msg::Presence(p)) => p
                .operators
                .into_iter()
                .map(|o| (o.name, o.bridges))
                .collect(),
            other => panic!("not a presence list: {other:?}"),
        }
    }

    /// Waits for lists until one satisfies `done`; returns it and how many lists came.
    async fn until(
        rx: &mut watch::Receiver<Bytes>,
        done: impl Fn(&Names) -> bool,
    ) -> (Names, usize) {
        let mut lists = 0;
        loop {
            tokio::time::timeout(Duration::from_secs(5), rx.changed())
                .await
                .expect("a list within 5 s")
                .expect("roster open");
            lists += 1;
            let now = names(&rx.borrow_and_update());
            if done(&now) {
                return (now, lists);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_are_listed_by_operator_and_leave_when_dropped() {
        let roster = Arc::new(Roster::default());
        let stop = CancellationToken::new();
        tokio::spawn(roster.clone().run(stop.clone()));
        let mut rx = roster.subscribe();
        let a1 = roster.join("alice".into(), "pi-1".into());
        let _a2 = roster.join("alice".into(), "phone".into());
        let b = roster.join("bob".into(), "laptop".into());
        let (listed, _) = until(&mut rx, |n| n.len() == 2).await;
        assert_eq!(
            listed,
            [
                ("alice".into(), vec!["pi-1".into(), "phone".into()]),
                ("bob".into(), vec!["laptop".into()])
            ]
        );
        drop(b);
        drop(a1);
        let (listed, _) = until(&mut rx, |n| n.len() == 1).await;
        assert_eq!(listed, [("alice".into(), vec!["phone".into()])]);
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_connect_storm_is_a_few_lists_not_one_per_join() {
        let roster = Arc::new(Roster::default());
        let stop = CancellationToken::new();
        tokio::spawn(roster.clone().run(stop.clone()));
        let mut rx = roster.subscribe();
        rx.borrow_and_update();
        let (tx, mut joined) = tokio::sync::mpsc::unbounded_channel();
        let storm = {
            let roster = roster.clone();
            tokio::spawn(async move {
                // 1,000 sessions over one second.
                for i in 0..1000 {
                    let _ = tx.send(roster.join("load".into(), format!("b{i}")));
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let (listed, lists) =
            until(&mut rx, |n| n.first().is_some_and(|(_, b)| b.len() == 1000)).await;
        storm.await.expect("storm");
        assert_eq!(listed.len(), 1);
        // One list per build interval at most (the first at once), not one per join.
        let most = (1000 / BUILD_INTERVAL.as_millis()) as usize + 2;
        assert!(
            lists <= most,
            "{lists} lists built for a storm of 1,000 joins in one second"
        );
        joined.close();
        stop.cancel();
    }
}
