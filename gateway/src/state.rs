//! The live state of every target, as observed in the cluster, fanned out to every session.
//!
//! Backends report what they *observe* (from a watch, never from what was sent); the hub turns
//! that into `TargetState`s and publishes a fresh snapshot on a `tokio::sync::watch` channel.
//! Sessions diff snapshots to send only what changed; a slow session skips intermediate
//! snapshots but always ends up with the latest (latest state wins, like latest value wins).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use kubeknobs_proto::v1::TargetState;
use tokio::sync::watch;

use crate::catalog::Catalog;

/// The field manager kubeknobs writes with; a change by any other manager came from outside.
pub const FIELD_MANAGER: &str = "kubeknobs";

/// Every target's state by catalog name.
pub type Snapshot = Arc<BTreeMap<String, TargetState>>;

/// One observation of a target in the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// `spec.replicas`.
    pub desired: i32,
    /// `status.replicas`, if reported.
    pub current: Option<i32>,
    /// `status.readyReplicas`, if reported.
    pub ready: Option<i32>,
    /// The field manager that changed the object last, if known.
    pub manager: Option<String>,
}

/// Publishes target states to sessions.
#[derive(Debug)]
pub struct StateHub {
    tx: watch::Sender<Snapshot>,
    /// Targets the cluster has not answered for yet (or cannot be reached for), and why;
    /// the gateway is ready when this is empty.
    unready: Mutex<BTreeMap<String, String>>,
    ready_tx: watch::Sender<Readiness>,
    /// The last value kubeknobs wrote per target, and for whom: to name the operator when the
    /// change shows up in the watch under our field manager.
    writes: Mutex<HashMap<String, (i32, Arc<str>)>>,
}

impl StateHub {
    /// A hub with every catalogued target in an unknown state.
    pub fn new(catalog: &Catalog) -> StateHub {
        let initial = catalog
            .iter()
            .map(|t| {
                let state = TargetState {
                    target: t.name.clone(),
                    error: "not observed yet".to_owned(),
                    ..Default::default()
                };
                (t.name.clone(), state)
            })
            .collect();
        let unready: BTreeMap<String, String> = catalog
            .iter()
            .map(|t| (t.name.clone(), "not observed yet".to_owned()))
            .collect();
        StateHub {
            tx: watch::Sender::new(Arc::new(initial)),
            ready_tx: watch::Sender::new(summarize(&unready)),
            unready: Mutex::new(unready),
            writes: Mutex::new(HashMap::new()),
        }
    }

    /// Notes that `operator` is writing `value` to `target`, before the write is sent.
    pub fn record_write(&self, target: &str, value: i32, operator: Arc<str>) {
        self.lock_writes()
            .insert(target.to_owned(), (value, operator));
    }

    /// Publishes an observation of `target`.
    pub fn observe(&self, target: &str, seen: Observed) {
        let changed_by = self.changed_by(target, &seen);
        self.update(target, |state| {
            state.desired = Some(f64::from(seen.desired));
            state.current = seen.current.map(f64::from);
            state.ready = seen.ready.map(f64::from);
            state.changed_by = changed_by;
            state.error.clear();
        });
        self.set_ready(target, None);
    }

    /// Marks `target` as unusable (missing or deleted in the cluster), keeping its last known
    /// values. The cluster did answer, so this does not make the gateway unready.
    pub fn set_error(&self, target: &str, error: String) {
        self.update(target, |state| state.error = error);
        self.set_ready(target, None);
    }

    /// Marks `target` as unreadable because the cluster cannot be reached: the gateway is not
    /// ready until it is observed again.
    pub fn set_unreachable(&self, target: &str, error: String) {
        self.set_ready(target, Some(error.clone()));
        self.update(target, |state| state.error = error);
    }

    /// `Ok` when every target's state is known; `Err` names those still waiting.
    pub fn readiness(&self) -> watch::Receiver<Readiness> {
        self.ready_tx.subscribe()
    }

    fn set_ready(&self, target: &str, problem: Option<String>) {
        let mut unready = self.unready.lock().unwrap_or_else(|p| p.into_inner());
        match problem {
            Some(why) => unready.insert(target.to_owned(), why),
            None => unready.remove(target),
        };
        let summary = summarize(&unready);
        self.ready_tx.send_if_modified(|old| {
            let changed = *old != summary;
            *old = summary;
            changed
        });
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.tx.borrow().clone()
    }

    /// A receiver that wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.tx.subscribe()
    }

    fn changed_by(&self, target: &str, seen: &Observed) -> String {
        match seen.manager.as_deref() {
            Some(FIELD_MANAGER) | None => match self.lock_writes().get(target) {
                Some((value, operator)) if *value == seen.desired => operator.to_string(),
                _ => seen.manager.clone().unwrap_or_default(),
            },
            Some(other) => other.to_owned(),
        }
    }

    fn update(&self, target: &str, change: impl FnOnce(&mut TargetState)) {
        self.tx.send_if_modified(|snapshot| {
            let Some(old) = snapshot.get(target) else {
                return false;
            };
            let mut new = old.clone();
            change(&mut new);
            if &new == old {
                return false;
            }
            Arc::make_mut(snapshot).insert(target.to_owned(), new);
            true
        });
    }

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i32, Arc<str>)>> {
        self.writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether the gateway can serve: `Err` says which targets it is waiting for.
pub type Readiness = Result<(), String>;

fn summarize(unready: &BTreeMap<String, String>) -> Readiness {
    if unready.is_empty() {
        return Ok(());
    }
    let waiting: Vec<String> = unready
        .iter()
        .map(|(t, why)| format!("{t}: {why}"))
        .collect();
    Err(waiting.join("; "))
}

/// The states in `new` that differ from `old`.
pub fn changes(old: &Snapshot, new: &Snapshot) -> Vec<TargetState> {
    new.iter()
        .filter(|(name, state)| old.get(*name) != Some(*state))
        .map(|(_, state)| state.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{TargetKind, TargetSpec};

    fn hub() -> StateHub {
        let mut catalog = Catalog::default();
        for name in ["web", "db"] {
            catalog.insert(TargetSpec::for_test(
                name,
                TargetKind::DeploymentReplicas,
                "default",
                20,
            ));
        }
        StateHub::new(&catalog)
    }

    fn seen(desired: i32, manager: &str) -> Observed {
        Observed {
            desired,
            current: Some(desired),
            ready: Some(0),
            manager: Some(manager.into()),
        }
    }

    #[test]
    fn our_writes_are_credited_to_the_operator_and_others_to_their_manager() {
        let hub = hub();
        hub.record_write("web", 5, "alice".into());
        hub.observe("web", seen(5, FIELD_MANAGER));
        assert_eq!(hub.snapshot()["web"].changed_by, "alice");
        hub.observe("web", seen(7, "kubectl"));
        assert_eq!(hub.snapshot()["web"].changed_by, "kubectl");
        assert_eq!(hub.snapshot()["web"].desired, Some(7.0));
    }

    #[test]
    fn only_changed_targets_are_reported() {
        let hub = hub();
        let before = hub.snapshot();
        let mut rx = hub.subscribe();
        hub.observe("db", seen(3, "kubectl"));
        assert!(rx.has_changed().expect("open"));
        let diff = changes(&before, &rx.borrow_and_update());
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].target, "db");
        assert!(diff[0].error.is_empty());
        hub.observe("db", seen(3, "kubectl"));
        assert!(
            !rx.has_changed().expect("open"),
            "an identical observation is not news"
        );
    }

    #[test]
    fn ready_once_every_target_is_known_and_not_while_one_is_unreachable() {
        let hub = hub();
        let ready = hub.readiness();
        assert!(
            ready
                .borrow()
                .as_ref()
                .unwrap_err()
                .contains("not observed yet")
        );
        hub.observe("web", seen(1, "kubectl"));
        assert!(
            ready.borrow().as_ref().unwrap_err().starts_with("db:"),
            "still waiting for db"
        );
        hub.set_error("db", "deployment default/db not found".into());
        assert_eq!(*ready.borrow(), Ok(()), "a missing object is an answer");
        hub.set_unreachable("web", "cannot watch: connection refused".into());
        assert!(
            ready
                .borrow()
                .as_ref()
                .unwrap_err()
                .contains("connection refused")
        );
        hub.observe("web", seen(1, "kubectl"));
        assert_eq!(*ready.borrow(), Ok(()));
    }

    #[test]
    fn errors_keep_last_known_values() {
        let hub = hub();
        hub.observe("web", seen(4, "kubectl"));
        hub.set_error("web", "deployment default/web not found".into());
        let web = &hub.snapshot()["web"];
        assert_eq!(web.desired, Some(4.0));
        assert!(web.error.contains("not found"));
    }
}
