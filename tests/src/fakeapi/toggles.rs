//! The test-side handle on CronJobs and Nodes: create them, read their toggles, and flip them
//! as someone else (`kubectl patch`, `kubectl cordon`) would.

use super::fields::Writer;
use super::kind::Kind;
use super::spec::SpecPatch;
use super::{FakeApiServer, key, lock};

impl FakeApiServer {
    /// Creates a CronJob (not suspended); ADDED on watches.
    pub fn add_cronjob(&self, ns: &str, name: &str) {
        self.add(Kind::CronJob, ns, name, 0);
    }

    /// Creates a Node (schedulable); ADDED on watches.
    pub fn add_node(&self, name: &str) {
        self.add(Kind::Node, "", name, 0);
    }

    /// `spec.suspend` of a CronJob, if it exists.
    pub fn suspended(&self, ns: &str, name: &str) -> Option<bool> {
        lock(&self.inner.shared.store)
            .get(&key(Kind::CronJob, ns, name))
            .map(|w| w.suspend)
    }

    /// `spec.unschedulable` of a Node, if it exists.
    pub fn unschedulable(&self, name: &str) -> Option<bool> {
        lock(&self.inner.shared.store)
            .get(&key(Kind::Node, "", name))
            .map(|w| w.unschedulable)
    }

    /// Suspends or resumes a CronJob as a merge patch by field manager `manager` would; MODIFIED
    /// on watches unless nothing changed. Not counted in `write_count`.
    ///
    /// # Panics
    /// If the CronJob does not exist.
    pub fn suspend_externally(&self, ns: &str, name: &str, suspend: bool, manager: &str) {
        let patch = SpecPatch {
            suspend: Some(suspend),
            ..SpecPatch::default()
        };
        self.patch_externally(key(Kind::CronJob, ns, name), patch, manager);
    }

    /// Cordons (`true`) or uncordons a Node as `kubectl cordon` by field manager `manager`
    /// would; MODIFIED on watches unless nothing changed. Not counted in `write_count`.
    ///
    /// # Panics
    /// If the Node does not exist.
    pub fn cordon_externally(&self, name: &str, cordon: bool, manager: &str) {
        let patch = SpecPatch {
            unschedulable: Some(cordon),
            ..SpecPatch::default()
        };
        self.patch_externally(key(Kind::Node, "", name), patch, manager);
    }

    fn patch_externally(&self, key: super::store::Key, patch: SpecPatch, manager: &str) {
        let writer = Writer {
            manager,
            operation: "Update",
            subresource: None,
        };
        let result = lock(&self.inner.shared.store).patch_spec(&key, patch, &writer, false);
        if let Err(err) = result {
            panic!("patch of {key:?}: {}", err.message);
        }
    }
}
