//! Who is connected: every open session registers here, and every session is sent the list of
//! operators (with their bridges) whenever it changes, so a phone can show who else is driving.
//!
//! A session holds a [`Member`] for its lifetime; dropping it (however the session ends) removes
//! it from the list. The list is published on a `tokio::sync::watch` channel: a slow session
//! skips intermediate lists but always ends up with the latest.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kubeknobs_proto::v1::{Presence, PresentOperator};
use tokio::sync::watch;

/// A session's id, unique for the gateway's lifetime.
pub type SessionId = u64;

/// The connected operators.
#[derive(Debug)]
pub struct Roster {
    sessions: Mutex<BTreeMap<SessionId, (Arc<str>, String)>>,
    next: AtomicU64,
    tx: watch::Sender<Arc<Presence>>,
}

impl Default for Roster {
    fn default() -> Roster {
        Roster {
            sessions: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(1),
            tx: watch::Sender::new(Arc::new(Presence::default())),
        }
    }
}

impl Roster {
    /// Registers a session of `operator` from `bridge` until the returned member is dropped.
    pub fn join(self: &Arc<Self>, operator: Arc<str>, bridge: String) -> Member {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, (operator, bridge));
        self.publish();
        Member {
            id,
            roster: self.clone(),
        }
    }

    /// A receiver of the list, marked changed so the first `changed()` returns at once.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Presence>> {
        let mut rx = self.tx.subscribe();
        rx.mark_changed();
        rx
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
        self.tx.send_replace(Arc::new(Presence { operators }));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SessionId, (Arc<str>, String)>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
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
        self.roster.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_listed_by_operator_and_leave_when_dropped() {
        let roster = Arc::new(Roster::default());
        let rx = roster.subscribe();
        let a1 = roster.join("alice".into(), "pi-1".into());
        let _a2 = roster.join("alice".into(), "phone".into());
        let b = roster.join("bob".into(), "laptop".into());
        let names = |p: &Presence| -> Vec<(String, Vec<String>)> {
            p.operators
                .iter()
                .map(|o| (o.name.clone(), o.bridges.clone()))
                .collect()
        };
        assert_eq!(
            names(&rx.borrow()),
            [
                (
                    "alice".to_owned(),
                    vec!["pi-1".to_owned(), "phone".to_owned()]
                ),
                ("bob".to_owned(), vec!["laptop".to_owned()])
            ]
        );
        drop(b);
        drop(a1);
        assert_eq!(
            names(&rx.borrow()),
            [("alice".to_owned(), vec!["phone".to_owned()])]
        );
    }
}
