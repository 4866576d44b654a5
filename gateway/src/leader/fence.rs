//! The write fence of the election: writes go through only while this gateway leads.

use std::sync::Arc;

use tokio::sync::watch;

use super::Role;
use crate::catalog::TargetSpec;
use crate::coalesce::{Actor, WriteError, Writer};

/// A writer that writes only while this gateway leads. The election already keeps sessions,
/// and so writes, away from a standby; this also covers the values still pending when a leader
/// loses the Lease: they are refused (not retried), reported to their operators, and left to
/// the new leader instead of being written beside it.
pub struct Fenced<W> {
    inner: Arc<W>,
    role: watch::Receiver<Role>,
}

impl<W> Fenced<W> {
    /// `inner`, fenced by `role`.
    pub fn new(inner: Arc<W>, role: watch::Receiver<Role>) -> Fenced<W> {
        Fenced { inner, role }
    }
}

impl<W: Writer> Writer for Fenced<W> {
    async fn write(
        &self,
        target: &TargetSpec,
        value: i32,
        actor: Actor<'_>,
    ) -> Result<(), WriteError> {
        let refused = match &*self.role.borrow() {
            Role::Leader => None,
            Role::Lost(why) => Some(format!(
                "not written: this gateway lost the leader-election lease ({why}); move again once the new leader has you connected"
            )),
            Role::Candidate | Role::Standby { .. } => {
                Some("not written: this gateway is not the leader".to_owned())
            }
        };
        match refused {
            Some(message) => Err(WriteError {
                retryable: false,
                message,
            }),
            None => self.inner.write(target, value, actor).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::catalog::TargetKind;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<i32>>);

    impl Writer for Recorder {
        async fn write(&self, _: &TargetSpec, value: i32, _: Actor<'_>) -> Result<(), WriteError> {
            self.0.lock().unwrap().push(value);
            Ok(())
        }
    }

    #[tokio::test]
    async fn only_a_leader_writes() {
        let target = TargetSpec::for_test("web", TargetKind::DeploymentReplicas, "shop", 5);
        let actor = Actor {
            name: "alice",
            groups: &[],
        };
        let recorder = Arc::new(Recorder::default());
        let (role, rx) = watch::channel(Role::Leader);
        let fenced = Fenced::new(recorder.clone(), rx);
        assert_eq!(fenced.write(&target, 3, actor).await, Ok(()));
        role.send_replace(Role::Lost("no renewal for 10s".into()));
        let err = fenced.write(&target, 4, actor).await.unwrap_err();
        assert!(!err.retryable);
        assert!(
            err.message
                .contains("lost the leader-election lease (no renewal for 10s)"),
            "{err}"
        );
        role.send_replace(Role::Standby {
            holder: "gw-2".into(),
        });
        assert!(fenced.write(&target, 5, actor).await.is_err());
        assert_eq!(
            *recorder.0.lock().unwrap(),
            vec![3],
            "only the leader's write went through"
        );
    }
}
