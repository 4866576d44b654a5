//! What every browser shares: the last known state (built from the same events feedback plays to
//! OSC clients), a broadcast of each change as JSON text, the live gateway session's [`Link`],
//! and the touches and arm presses the open pages hold.
//!
//! Touches and the arm key are counted across pages: the gateway hears a touch when the first
//! finger lands on a target and a release when the last one lifts, so one phone letting go does
//! not release a target another phone still holds. A page that goes away releases what it held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kubeknobs_proto::v1::{Outcome, Target, TargetState};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::event::Event;
use crate::link::Link;
use crate::mapping::{Mapping, Range};

/// How many changes a page may fall behind before it is sent the whole state again.
const BACKLOG: usize = 256;

/// The shared state; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
    changes: broadcast::Sender<Arc<str>>,
}

struct Inner {
    bridge_id: String,
    /// Catalog order, as the gateway's `Welcome` listed it.
    targets: Vec<Target>,
    states: HashMap<String, TargetState>,
    presence: String,
    /// Why the state is stale (the gateway session ended), if it is.
    stale: Option<String>,
    link: Option<Link>,
    touches: HashMap<String, usize>,
    arms: usize,
}

impl Hub {
    /// An empty hub for a bridge called `bridge_id`: no session yet.
    pub fn new(bridge_id: &str) -> Hub {
        let (changes, _) = broadcast::channel(BACKLOG);
        Hub {
            inner: Arc::new(Mutex::new(Inner {
                bridge_id: bridge_id.to_owned(),
                targets: Vec::new(),
                states: HashMap::new(),
                presence: String::new(),
                stale: Some("not connected to the gateway yet".to_owned()),
                link: None,
                touches: HashMap::new(),
                arms: 0,
            })),
            changes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new gateway session (start, or a reload that reconnects) of the bridge now called
    /// `bridge_id`: moves go to `link`. The new session starts with nothing touched or armed,
    /// so the counts start again.
    pub(crate) fn set_session(&self, link: Link, bridge_id: &str) {
        let mut inner = self.lock();
        inner.link = Some(link);
        bridge_id.clone_into(&mut inner.bridge_id);
        inner.touches.clear();
        inner.arms = 0;
    }

    /// Takes in one event on its way to feedback and tells every page what changed.
    pub fn observe(&self, event: &Event) {
        let mut inner = self.lock();
        let message = match event {
            Event::Welcome(targets) => {
                inner.targets = targets.clone();
                inner.states = targets
                    .iter()
                    .map(|t| {
                        let mut state = t.state.clone().unwrap_or_default();
                        state.target.clone_from(&t.name);
                        (t.name.clone(), state)
                    })
                    .collect();
                inner.stale = None;
                inner.snapshot()
            }
            Event::States(states) => {
                for s in states {
                    inner.states.insert(s.target.clone(), s.clone());
                }
                json!({"type": "states", "states": states.iter().map(state_json).collect::<Vec<_>>()})
            }
            Event::Disconnected(reason) => {
                inner.stale = Some(reason.clone());
                json!({"type": "stale", "reason": reason})
            }
            Event::Presence(text) => {
                inner.presence.clone_from(text);
                json!({"type": "presence", "operators": text})
            }
            Event::Rejected(outcome) => rejected_json(outcome),
            Event::Configure(_) | Event::NewClient(_) => return,
        };
        // Sent under the lock, so a page that subscribes and reads the snapshot under it too
        // sees every change exactly once after its snapshot.
        let _ = self.changes.send(Arc::from(message.to_string()));
    }

    /// The whole state now, and every change after it.
    pub fn subscribe(&self) -> (String, broadcast::Receiver<Arc<str>>) {
        let inner = self.lock();
        (inner.snapshot().to_string(), self.changes.subscribe())
    }

    /// The whole state now (after a page fell behind).
    pub fn snapshot(&self) -> String {
        self.lock().snapshot().to_string()
    }

    /// The bridge's id, for the page's title.
    pub fn bridge_id(&self) -> String {
        self.lock().bridge_id.clone()
    }

    /// The live link, if a session was ever started.
    pub(crate) fn link(&self) -> Option<Link> {
        self.lock().link.clone()
    }

    /// Counts a touch (`on`) or release of `target` by one page; says whether the gateway must
    /// hear it (the first touch, or the last release).
    pub(crate) fn count_touch(&self, target: &str, on: bool) -> bool {
        let mut inner = self.lock();
        let count = inner.touches.entry(target.to_owned()).or_insert(0);
        if on {
            *count += 1;
            *count == 1
        } else if *count > 0 {
            *count -= 1;
            *count == 0
        } else {
            false
        }
    }

    /// Counts an arm press (`on`) or release by one page; says whether the gateway must hear it.
    pub(crate) fn count_arm(&self, on: bool) -> bool {
        let mut inner = self.lock();
        if on {
            inner.arms += 1;
            inner.arms == 1
        } else if inner.arms > 0 {
            inner.arms -= 1;
            inner.arms == 0
        } else {
            false
        }
    }

    /// True when `target` is in the current catalog.
    pub(crate) fn knows(&self, target: &str) -> bool {
        self.lock().targets.iter().any(|t| t.name == target)
    }
}

impl Inner {
    fn snapshot(&self) -> Value {
        let targets: Vec<Value> = self
            .targets
            .iter()
            .map(|t| {
                let bounds = t
                    .bounds
                    .as_ref()
                    .map(|b| json!({"min": b.min, "max": b.max, "step": b.step}));
                json!({
                    "name": t.name,
                    "kind": kind_name(t.kind),
                    "namespace": t.namespace,
                    "object": t.object,
                    "bounds": bounds,
                    "state": self.states.get(&t.name).map(state_json),
                })
            })
            .collect();
        json!({
            "type": "snapshot",
            "bridge_id": self.bridge_id,
            "targets": targets,
            "presence": self.presence,
            "stale": self.stale,
        })
    }
}

/// The mapping a page's control uses: the target's whole range as 0..1, under a name for logs.
pub(crate) fn mapping(target: &str) -> Mapping {
    Mapping {
        address: format!("/web/{target}"),
        target: target.to_owned(),
        range: Range::default(),
        label: None,
    }
}

/// The page's name for a catalog kind (the gateway config's spelling).
pub fn kind_name(kind: i32) -> &'static str {
    use kubeknobs_proto::v1::TargetKind;
    match TargetKind::try_from(kind) {
        Ok(TargetKind::DeploymentReplicas) => "deployment-replicas",
        Ok(TargetKind::StatefulsetReplicas) => "statefulset-replicas",
        Ok(TargetKind::DeploymentPaused) => "deployment-paused",
        Ok(TargetKind::DeploymentRestart) => "deployment-restart",
        Ok(TargetKind::CronjobSuspended) => "cronjob-suspended",
        Ok(TargetKind::NodeCordoned) => "node-cordoned",
        Ok(TargetKind::HpaMinReplicas) => "hpa-min-replicas",
        Ok(TargetKind::HpaMaxReplicas) => "hpa-max-replicas",
        Ok(TargetKind::Unspecified) | Err(_) => "unknown",
    }
}

fn state_json(s: &TargetState) -> Value {
    json!({
        "target": s.target,
        "desired": s.desired,
        "current": s.current,
        "ready": s.ready,
        "changed_by": s.changed_by,
        "managed_by": s.managed_by,
        "autoscaler_desired": s.autoscaler_desired,
        "error": s.error,
    })
}

fn rejected_json(o: &Outcome) -> Value {
    let reason = o
        .reason()
        .as_str_name()
        .trim_start_matches("REJECT_REASON_")
        .to_ascii_lowercase();
    json!({
        "type": "rejected",
        "target": o.target,
        "value": o.value,
        "reason": reason,
        "message": o.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touches_reach_the_gateway_on_the_first_touch_and_the_last_release() {
        let hub = Hub::new("b");
        assert!(hub.count_touch("web", true), "first finger");
        assert!(!hub.count_touch("web", true), "second finger, other page");
        assert!(!hub.count_touch("web", false), "one finger still down");
        assert!(hub.count_touch("web", false), "last finger lifts");
        assert!(
            !hub.count_touch("web", false),
            "a stray release is not sent"
        );
        assert!(hub.count_arm(true));
        assert!(!hub.count_arm(true));
        assert!(!hub.count_arm(false));
        assert!(hub.count_arm(false));
    }

    #[test]
    fn the_snapshot_follows_welcome_states_and_disconnects() {
        let hub = Hub::new("b");
        let target = Target {
            name: "web".into(),
            kind: kubeknobs_proto::v1::TargetKind::DeploymentReplicas as i32,
            bounds: Some(kubeknobs_proto::v1::Bounds {
                min: 0.0,
                max: 20.0,
                step: 1.0,
                max_writes_per_second: 5.0,
            }),
            ..Default::default()
        };
        let (_, mut changes) = hub.subscribe();
        hub.observe(&Event::Welcome(vec![target]));
        hub.observe(&Event::States(vec![TargetState {
            target: "web".into(),
            desired: Some(7.0),
            changed_by: "kubectl".into(),
            managed_by: "Flux Kustomization apps/web".into(),
            ..Default::default()
        }]));
        hub.observe(&Event::Disconnected("gone".into()));
        let snap: Value = serde_json::from_str(&hub.snapshot()).expect("json");
        assert_eq!(snap["targets"][0]["kind"], "deployment-replicas");
        assert_eq!(snap["targets"][0]["state"]["desired"], 7.0);
        assert_eq!(snap["targets"][0]["state"]["changed_by"], "kubectl");
        assert_eq!(
            snap["targets"][0]["state"]["managed_by"],
            "Flux Kustomization apps/web"
        );
        assert_eq!(snap["stale"], "gone");
        let kinds: Vec<String> = std::iter::from_fn(|| changes.try_recv().ok())
            .map(|m| serde_json::from_str::<Value>(&m).expect("json")["type"].to_string())
            .collect();
        assert_eq!(kinds, ["\"snapshot\"", "\"states\"", "\"stale\""]);
    }
}
