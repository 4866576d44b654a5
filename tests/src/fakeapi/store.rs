//! The in-memory object store: Deployments, StatefulSets, CronJobs and Nodes (namespace ""), one
//! global resourceVersion counter
//! (as etcd's revision), and the history of changes that watches replay.
//!
//! Invariants: every change bumps the counter by one and is recorded in `history` and sent on
//! `events` while the store lock is held, so a watcher that subscribes under the same lock sees
//! each change exactly once, in order. A no-op write (same replicas) changes nothing, as on a real
//! API server.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::sync::broadcast;

use super::fields::{ManagedField, Writer, now, take_ownership};
use super::kind::Kind;
use super::spec::{SpecPatch, same_spec};
use super::status::ApiError;

/// How many changes are kept for watches to replay; older resourceVersions answer 410 Expired.
const HISTORY: usize = 10_000;

/// Identity of a stored object: kind, namespace, name.
pub(crate) type Key = (Kind, String, String);

/// A stored object, reduced to the fields the fake models (replica fields are 0 on CronJobs and
/// Nodes).
#[derive(Clone, Debug)]
pub(crate) struct Workload {
    pub(crate) kind: Kind,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) created: String,
    pub(crate) resource_version: u64,
    pub(crate) generation: i64,
    pub(crate) observed_generation: i64,
    pub(crate) spec_replicas: i32,
    /// `spec.paused` (Deployments).
    pub(crate) paused: bool,
    /// The pod template's `kubectl.kubernetes.io/restartedAt` annotation (Deployments).
    pub(crate) restarted_at: Option<String>,
    /// `spec.suspend` (CronJobs).
    pub(crate) suspend: bool,
    /// `spec.unschedulable` (Nodes).
    pub(crate) unschedulable: bool,
    /// Spec and status of an HPA (HorizontalPodAutoscalers).
    pub(crate) hpa: Option<Hpa>,
    /// Labels besides `app: NAME`, which every object has.
    pub(crate) labels: BTreeMap<String, String>,
    /// Annotations.
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) status_replicas: i32,
    pub(crate) ready_replicas: i32,
    pub(crate) managed_fields: Vec<ManagedField>,
}

/// What the fake keeps of an autoscaling/v2 HorizontalPodAutoscaler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hpa {
    /// `spec.scaleTargetRef.kind` (`Deployment`, `StatefulSet`).
    pub(crate) target_kind: String,
    /// `spec.scaleTargetRef.name`.
    pub(crate) target_name: String,
    /// `spec.minReplicas`.
    pub(crate) min: i32,
    /// `spec.maxReplicas`.
    pub(crate) max: i32,
    /// `status.currentReplicas`.
    pub(crate) current: i32,
    /// `status.desiredReplicas`.
    pub(crate) desired: i32,
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One recorded change: the object as it was right after it (or right before, for Deleted).
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub(crate) resource_version: u64,
    pub(crate) event: EventType,
    pub(crate) object: Workload,
}

/// Where a watch starts.
pub(crate) enum WatchStart {
    /// Synthetic ADDED events for the current objects, then changes after now.
    Current,
    /// Changes after this resourceVersion.
    After(u64),
}

/// What a new watch gets: events to send first, then the live feed.
pub(crate) struct Subscription {
    pub(crate) replay: Vec<Change>,
    pub(crate) live: broadcast::Receiver<Arc<Change>>,
    /// The resourceVersion the replay brings the watcher to.
    pub(crate) resource_version: u64,
}

/// The objects, the resourceVersion counter and the change history.
pub(crate) struct Store {
    objects: BTreeMap<Key, Workload>,
    resource_version: u64,
    uids: u64,
    history: VecDeque<Change>,
    /// Watches from a resourceVersion below this answer 410 Expired.
    oldest_watchable: u64,
    events: broadcast::Sender<Arc<Change>>,
}

impl Store {
    pub(crate) fn new() -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            objects: BTreeMap::new(),
            resource_version: 1,
            uids: 0,
            history: VecDeque::new(),
            oldest_watchable: 1,
            events,
        }
    }

    /// The current (latest) resourceVersion.
    pub(crate) fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&Workload> {
        self.objects.get(key)
    }

    /// The object at `key`, or the API server's 404 for it.
    pub(crate) fn existing(&self, key: &Key) -> Result<&Workload, ApiError> {
        self.get(key)
            .ok_or_else(|| ApiError::not_found(key.0, &key.2))
    }

    /// Objects of `kind`, in one namespace or all, ordered by namespace then name.
    pub(crate) fn list(&self, kind: Kind, namespace: Option<&str>) -> Vec<Workload> {
        let in_scope = |w: &&Workload| namespace.is_none_or(|ns| w.namespace == ns);
        self.objects
            .values()
            .filter(|w| w.kind == kind)
            .filter(in_scope)
            .cloned()
            .collect()
    }

    /// Creates the object (or, if it exists, resets its replicas), as `kubectl create` and a
    /// controller that has already made every pod ready.
    pub(crate) fn add(&mut self, key: Key, replicas: i32) {
        self.add_with(key, replicas, |_| {});
    }

    /// Like `add`, with `shape` filling in what else the new object has (an HPA's spec, labels).
    /// An existing object only gets its replicas reset.
    pub(crate) fn add_with(&mut self, key: Key, replicas: i32, shape: impl FnOnce(&mut Workload)) {
        let time = now();
        if let Some(existing) = self.objects.get(&key).cloned() {
            let mut next = existing;
            next.spec_replicas = replicas;
            next.status_replicas = replicas;
            next.ready_replicas = replicas;
            next.generation += 1;
            next.observed_generation = next.generation;
            self.commit(EventType::Modified, next);
            return;
        }
        self.uids += 1;
        let (kind, namespace, name) = key;
        let manager = |name: &str, subresource, replicas, status, rest| ManagedField {
            manager: name.to_owned(),
            operation: "Update",
            subresource,
            time: Some(time.clone()),
            replicas,
            status,
            rest,
        };
        let mut workload = Workload {
            kind,
            namespace,
            name,
            uid: format!("00000000-0000-4000-8000-{:012x}", self.uids),
            created: time.clone(),
            resource_version: 0,
            generation: 1,
            observed_generation: 1,
            spec_replicas: replicas,
            paused: false,
            restarted_at: None,
            suspend: false,
            unschedulable: false,
            hpa: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            status_replicas: replicas,
            ready_replicas: replicas,
            managed_fields: vec![
                manager("kubectl-create", None, true, false, true),
                manager(
                    "kube-controller-manager",
                    Some("status"),
                    false,
                    true,
                    false,
                ),
            ],
        };
        shape(&mut workload);
        self.commit(EventType::Added, workload);
    }

    /// Sets `spec.replicas` through the scale subresource. `expect` is a resourceVersion
    /// precondition; `dry_run` validates and answers without storing.
    pub(crate) fn scale(
        &mut self,
        key: &Key,
        replicas: i32,
        writer: &Writer<'_>,
        expect: Option<u64>,
        dry_run: bool,
    ) -> Result<Workload, ApiError> {
        let (kind, _, name) = key;
        let current = self.existing(key)?;
        if expect.is_some_and(|rv| rv != current.resource_version) {
            return Err(ApiError::conflict(*kind, name));
        }
        if replicas < 0 {
            let field = format!(
                "spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
            );
            return Err(ApiError::invalid(name, field));
        }
        if replicas == current.spec_replicas || dry_run {
            let mut answer = current.clone();
            answer.spec_replicas = replicas;
            return Ok(answer);
        }
        let mut next = current.clone();
        next.spec_replicas = replicas;
        next.generation += 1;
        take_ownership(&mut next.managed_fields, writer, |f| &mut f.replicas);
        Ok(self.commit(EventType::Modified, next))
    }

    /// Applies a merge patch of the object's own spec fields (`SpecPatch`); `dry_run` validates
    /// and answers without storing. (The fake books these fields under the writer's "rest" group.)
    pub(crate) fn patch_spec(
        &mut self,
        key: &Key,
        patch: SpecPatch,
        writer: &Writer<'_>,
        dry_run: bool,
    ) -> Result<Workload, ApiError> {
        let current = self.existing(key)?;
        let mut next = patch.apply(current)?;
        if same_spec(&next, current) || dry_run {
            return Ok(next);
        }
        next.generation += 1;
        take_ownership(&mut next.managed_fields, writer, |f| &mut f.rest);
        Ok(self.commit(EventType::Modified, next))
    }

    /// Sets the status as the workload controller would: `status.replicas` catches up with the
    /// spec, `readyReplicas` is `ready`.
    pub(crate) fn set_ready(&mut self, key: &Key, ready: i32) -> bool {
        let Some(mut next) = self.objects.get(key).cloned() else {
            return false;
        };
        next.ready_replicas = ready;
        next.status_replicas = next.spec_replicas;
        next.observed_generation = next.generation;
        let writer = Writer {
            manager: "kube-controller-manager",
            operation: "Update",
            subresource: Some("status"),
        };
        take_ownership(&mut next.managed_fields, &writer, |f| &mut f.status);
        self.commit(EventType::Modified, next);
        true
    }

    /// Changes the object's metadata (labels, annotations) or HPA status as `change` says, as
    /// someone outside the gateway would; MODIFIED on watches unless nothing changed.
    pub(crate) fn touch(&mut self, key: &Key, change: impl FnOnce(&mut Workload)) -> bool {
        let Some(current) = self.objects.get(key) else {
            return false;
        };
        let mut next = current.clone();
        change(&mut next);
        let same = (&next.labels, &next.annotations, &next.hpa)
            == (&current.labels, &current.annotations, &current.hpa);
        if !same {
            self.commit(EventType::Modified, next);
        }
        true
    }

    /// Deletes the object; watches see DELETED.
    pub(crate) fn remove(&mut self, key: &Key) -> bool {
        let Some(gone) = self.objects.remove(key) else {
            return false;
        };
        self.resource_version += 1;
        let mut last = gone;
        last.resource_version = self.resource_version;
        self.record(EventType::Deleted, last);
        true
    }

    /// Forgets the history: watches from any resourceVersion before now get 410 Expired.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.oldest_watchable = self.resource_version;
    }

    /// Starts a watch. `Err(oldest)` when `start` is older than the history kept.
    pub(crate) fn subscribe(&self, start: &WatchStart) -> Result<Subscription, u64> {
        let live = self.events.subscribe();
        let replay = match *start {
            WatchStart::Current => {
                let objects = self.objects.values().cloned();
                objects
                    .map(|object| Change {
                        resource_version: object.resource_version,
                        event: EventType::Added,
                        object,
                    })
                    .collect()
            }
            WatchStart::After(rv) if rv < self.oldest_watchable => {
                return Err(self.oldest_watchable);
            }
            WatchStart::After(rv) => self
                .history
                .iter()
                .filter(|c| c.resource_version > rv)
                .cloned()
                .collect(),
        };
        Ok(Subscription {
            replay,
            live,
            resource_version: self.resource_version,
        })
    }

    /// Stores `object` under a new resourceVersion and records the change.
    fn commit(&mut self, event: EventType, mut object: Workload) -> Workload {
        self.resource_version += 1;
        object.resource_version = self.resource_version;
        let key = (object.kind, object.namespace.clone(), object.name.clone());
        self.objects.insert(key, object.clone());
        self.record(event, object.clone());
        object
    }

    fn record(&mut self, event: EventType, object: Workload) {
        let change = Change {
            resource_version: self.resource_version,
            event,
            object,
        };
        if self.history.len() == HISTORY
            && let Some(dropped) = self.history.pop_front()
        {
            self.oldest_watchable = dropped.resource_version;
        }
        self.history.push_back(change.clone());
        // No receiver is not an error: nobody is watching.
        let _ = self.events.send(Arc::new(change));
    }
}
