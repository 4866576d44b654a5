//! The live state of every target, as observed in the cluster, fanned out to every session.
//!
//! Backends report what they *observe* (from a watch, never from what was sent); the hub turns
//! that into `TargetState`s and publishes a fresh snapshot on a `tokio::sync::watch` channel.
//! Sessions diff snapshots to send only what changed; a slow session skips intermediate
//! snapshots but always ends up with the latest (latest state wins, like latest value wins).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use kubeknobs_proto::v1::TargetState;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::catalog::Catalog;
use crate::ownership::{Autoscaler, HpaSeen, Owners};

pub mod frames;

/// The field manager kubeknobs writes with; a change by any other manager came from outside.
pub const FIELD_MANAGER: &str = "kubeknobs";

/// Every target's state by catalog name.
pub type Snapshot = Arc<BTreeMap<String, TargetState>>;

/// One observation of a target in the cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// `spec.replicas`.
    pub desired: i32,
    /// `status.replicas`, if reported.
    pub current: Option<i32>,
    /// `status.readyReplicas`, if reported.
    pub ready: Option<i32>,
    /// The field manager that owns the observed value (`f:spec.f:replicas` and the like), if
    /// known.
    pub manager: Option<String>,
    /// The GitOps tool that manages the object, described, if any
    /// ([`crate::ownership::gitops_of`]).
    pub gitops: Option<String>,
    /// For HPA-bound targets: the HPA's bounds and replicas.
    pub hpa: Option<HpaSeen>,
}

/// Publishes target states to sessions.
#[derive(Debug)]
pub struct StateHub {
    tx: watch::Sender<Snapshot>,
    /// Targets the cluster has not answered for yet (or cannot be reached for), and why;
    /// the gateway is ready when this is empty.
    unready: Mutex<BTreeMap<String, String>>,
    ready_tx: watch::Sender<Readiness>,
    /// What kubeknobs wrote per target, and for whom: to name the operator when the change
    /// shows up in the watch under our field manager, and to know the value is not settled yet.
    writes: Mutex<HashMap<String, Writes>>,
    /// Who else manages each target, and an HPA target's bounds, as last observed.
    known: Mutex<HashMap<String, Known>>,
}

/// What the hub knows of a target beyond its `TargetState`.
#[derive(Debug, Default, Clone)]
struct Known {
    owners: Owners,
    /// For HPA-bound targets: the HPA's `(minReplicas, maxReplicas)`.
    hpa_bounds: Option<(i32, i32)>,
}

/// How many recent writes per target are remembered for naming who changed it.
const RECENT_WRITES: usize = 8;
/// How long a successful write may go unseen by the watch before the hub stops waiting for it
/// (a watch that relisted may never show that exact value).
const UNOBSERVED_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// kubeknobs' recent writes of one target.
#[derive(Debug, Default)]
struct Writes {
    /// Values sent (newest last), the operator each was for, and whether the watch has shown
    /// that value since it was sent (its event may come before the write's answer).
    recent: VecDeque<(i32, Arc<str>, bool)>,
    /// A value the cluster accepted that the watch has not shown yet, and since when.
    unobserved: Option<(i32, Instant)>,
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
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Notes that `operator` is writing `value` to `target`, before the write is sent (its
    /// watch event may come before the answer).
    pub fn record_write(&self, target: &str, value: i32, operator: Arc<str>) {
        let mut writes = self.lock_writes();
        let recent = &mut writes.entry(target.to_owned()).or_default().recent;
        if recent.len() == RECENT_WRITES {
            recent.pop_front();
        }
        recent.push_back((value, operator, false));
    }

    /// Notes that the cluster accepted `value` for `target` (not a dry run): until the watch
    /// shows it, the target's value is not settled.
    pub fn wrote(&self, target: &str, value: i32) {
        let mut writes = self.lock_writes();
        let w = writes.entry(target.to_owned()).or_default();
        let seen = w.recent.iter().rev().find(|(v, ..)| *v == value);
        if !seen.is_some_and(|(.., seen)| *seen) {
            w.unobserved = Some((value, Instant::now()));
        }
    }

    /// The target's value as far as the gateway knows it for sure: the observed `desired`, when
    /// the watch has shown every write kubeknobs made and the target has no error. `None` when
    /// unsure, so a caller that skips "no-op" writes on it never skips a needed one.
    pub fn settled(&self, target: &str) -> Option<i32> {
        let mut writes = self.lock_writes();
        if let Some(w) = writes.get_mut(target) {
            match w.unobserved {
                Some((_, at)) if at.elapsed() < UNOBSERVED_FOR => return None,
                Some(_) => w.unobserved = None,
                None => {}
            }
        }
        drop(writes);
        let snapshot = self.snapshot();
        let state = snapshot.get(target)?;
        let desired = state.desired.filter(|_| state.error.is_empty())?;
        // Observed values are whole numbers converted from i32.
        Some(desired as i32)
    }

    /// Publishes an observation of `target`.
    pub fn observe(&self, target: &str, seen: Observed) {
        let changed_by = self.changed_by(target, &seen);
        let managed_by = self.know(target, |known| {
            known.owners.gitops = seen.gitops.clone();
            known.hpa_bounds = seen.hpa.map(|h| (h.min, h.max));
        });
        self.update(target, |state| {
            state.desired = Some(f64::from(seen.desired));
            state.current = seen.current.map(f64::from);
            state.ready = seen.ready.map(f64::from);
            state.autoscaler_desired = seen.hpa.and_then(|h| h.desired).map(f64::from);
            state.changed_by = changed_by;
            state.managed_by = managed_by;
            state.error.clear();
        });
        self.set_ready(target, None);
    }

    /// Notes which autoscaler (if any) scales `target`'s object now; sessions see the change
    /// in `managed_by` at once.
    pub fn set_autoscaler(&self, target: &str, autoscaler: Option<Autoscaler>) {
        let managed_by = self.know(target, |known| known.owners.autoscaler = autoscaler);
        self.update(target, |state| state.managed_by = managed_by);
    }

    /// Who else manages `target`, as last observed.
    pub fn owners(&self, target: &str) -> Owners {
        self.lock_known()
            .get(target)
            .map(|k| k.owners.clone())
            .unwrap_or_default()
    }

    /// For an HPA-bound target: the HPA's `(minReplicas, maxReplicas)` as last observed.
    pub fn hpa_bounds(&self, target: &str) -> Option<(i32, i32)> {
        self.lock_known().get(target).and_then(|k| k.hpa_bounds)
    }

    /// Changes what is known of `target`; returns its `managed_by` text.
    fn know(&self, target: &str, change: impl FnOnce(&mut Known)) -> String {
        let mut known = self.lock_known();
        let entry = known.entry(target.to_owned()).or_default();
        change(entry);
        entry.owners.managed_by()
    }

    fn lock_known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Marks something besides a target that the gateway must know before it is ready (`what`,
    /// e.g. "HorizontalPodAutoscalers of shop"): waiting while `why` is `Some`.
    pub fn waiting_for(&self, what: &str, why: Option<String>) {
        self.set_ready(what, why);
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

    /// Who made the observed value: the field manager that owns it, or, when that is kubeknobs,
    /// the operator of its most recent write of that value. Also settles a write the watch now
    /// shows.
    fn changed_by(&self, target: &str, seen: &Observed) -> String {
        let mut writes = self.lock_writes();
        let ours = writes.get_mut(target);
        let operator = ours.and_then(|w| {
            if w.unobserved.is_some_and(|(v, _)| v == seen.desired) {
                w.unobserved = None;
            }
            let (_, operator, shown) = w
                .recent
                .iter_mut()
                .rev()
                .find(|(v, ..)| *v == seen.desired)?;
            *shown = true;
            Some(operator.to_string())
        });
        match seen.manager.as_deref() {
            Some(FIELD_MANAGER) | None => operator.or_else(|| seen.manager.clone()),
            Some(other) => Some(other.to_owned()),
        }
        .unwrap_or_default()
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

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Writes>> {
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
            ..Observed::default()
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
    fn the_operator_of_the_matching_recent_write_is_credited() {
        let hub = hub();
        hub.record_write("web", 5, "alice".into());
        hub.record_write("web", 7, "bob".into());
        // alice's write shows in the watch after bob's was sent: still alice's.
        hub.observe("web", seen(5, FIELD_MANAGER));
        assert_eq!(hub.snapshot()["web"].changed_by, "alice");
        hub.observe("web", seen(7, FIELD_MANAGER));
        assert_eq!(hub.snapshot()["web"].changed_by, "bob");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_watch_has_not_shown_leaves_the_value_unsettled() {
        let hub = hub();
        assert_eq!(hub.settled("web"), None, "never observed");
        hub.observe("web", seen(3, "kubectl"));
        assert_eq!(hub.settled("web"), Some(3));
        hub.record_write("web", 6, "alice".into());
        hub.wrote("web", 6);
        assert_eq!(
            hub.settled("web"),
            None,
            "6 was written, the watch still says 3"
        );
        hub.observe("web", seen(6, FIELD_MANAGER));
        assert_eq!(hub.settled("web"), Some(6));
        hub.wrote("web", 9);
        tokio::time::advance(UNOBSERVED_FOR).await;
        assert_eq!(
            hub.settled("web"),
            Some(6),
            "a write the watch never showed is not waited for forever"
        );
        hub.set_error("web", "deployment default/web was deleted".into());
        assert_eq!(hub.settled("web"), None);
    }

    #[test]
    fn only_changed_targets_are_reported() {
        let hub = hub();
        let before = hub.snapshot();
        let mut rx = hub.subscribe();
        hub.observe("db", seen(3, "kubectl"));
        assert!(rx.has_changed().expect("open"));
        let now = rx.borrow_and_update().clone();
        let diff: Vec<&String> = now
            .iter()
            .filter(|(name, state)| before.get(*name) != Some(*state))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(diff, ["db"]);
        assert!(now.get("db").is_some_and(|db| db.error.is_empty()));
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
        let hpas = "HorizontalPodAutoscalers of default";
        hub.waiting_for(hpas, Some("not listed yet".into()));
        assert_eq!(
            *ready.borrow(),
            Err(format!("{hpas}: not listed yet")),
            "not ready while it cannot know who autoscales a target"
        );
        hub.waiting_for(hpas, None);
        assert_eq!(*ready.borrow(), Ok(()));
    }

    #[test]
    fn a_change_of_owners_is_news_at_once_and_kept_across_observations() {
        let hub = hub();
        let mut rx = hub.subscribe();
        rx.borrow_and_update();
        let hpa = Autoscaler {
            hpa: "web-hpa".into(),
            min: 2,
            max: 10,
            keda: None,
        };
        hub.set_autoscaler("web", Some(hpa.clone()));
        assert!(rx.has_changed().expect("open"), "an HPA appearing is news");
        assert_eq!(
            rx.borrow_and_update()["web"].managed_by,
            "HorizontalPodAutoscaler web-hpa (2..10)"
        );
        let flux = Observed {
            gitops: Some("Flux Kustomization apps/web".into()),
            ..seen(3, "kubectl")
        };
        hub.observe("web", flux);
        assert_eq!(
            hub.snapshot()["web"].managed_by,
            "HorizontalPodAutoscaler web-hpa (2..10); Flux Kustomization apps/web"
        );
        assert_eq!(hub.owners("web").autoscaler, Some(hpa));
        rx.borrow_and_update();
        hub.set_autoscaler("web", None);
        assert!(rx.has_changed().expect("open"), "an HPA going away is news");
        assert_eq!(
            hub.snapshot()["web"].managed_by,
            "Flux Kustomization apps/web"
        );
        assert_eq!(hub.owners("db"), Owners::default());
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
