//! Leader election on a Kubernetes Lease (`[cluster.leader_election]`): of the gateways that share
//! the Lease, only its holder serves sessions, so only it writes; the others wait as hot standbys
//! (watching, not ready, refusing sessions with UNAVAILABLE) and take over when the holder stops
//! renewing. The configured write rates then hold however many gateways run: a rollout that
//! overlaps two pods, a Deployment scaled up, a second install by mistake.
//!
//! The algorithm is client-go's. Every `duration / 3` each gateway reads the Lease. Its holder
//! renews it; another takes it over only when it is free or when its record has not changed for
//! a whole `duration` measured on the taker's own clock (so clock skew between nodes does not
//! matter); every write carries the `resourceVersion` it read, so of two gateways racing for a
//! free Lease exactly one wins, the other gets 409. A holder that cannot renew for `2/3 ×
//! duration` gives up ([`Role::Lost`]: the gateway stops with an error, exit code 2) before any
//! standby may take over; one that shuts down gracefully releases the Lease so a standby takes
//! over at once.
//!
//! Writes are fenced by the role ([`Fenced`]): a gateway that knows it is not the leader writes
//! nothing, so values still pending when a leader loses the Lease are refused and reported, not
//! written beside its successor. Like client-go's, there is no fencing token at the API server: a
//! holder frozen for longer than the Lease, not knowing it lost it, could overlap its successor
//! by a write.
//!
//! kube-rs has no leader election of its own and the crates that add one lag behind kube 5, so
//! this is the ~200 lines it takes.

mod fence;

pub use fence::Fenced;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Why the Lease could not be read or written this round.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// The API server answered with an error, or could not be reached.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// No answer in time.
    #[error("no answer from the API server within {0:?}")]
    TimedOut(Duration),
}

/// Which Lease, and how long a holder keeps it without renewing (`[cluster.leader_election]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// Namespace of the Lease (`namespace`).
    pub namespace: String,
    /// Name of the Lease (`lease`).
    pub name: String,
    /// `leaseDurationSeconds` (`duration_secs`).
    pub duration: Duration,
}

/// This gateway's part in the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Not known yet (the Lease has not been read).
    Candidate,
    /// Another gateway holds the Lease.
    Standby {
        /// Its identity.
        holder: String,
    },
    /// This gateway holds the Lease: it serves sessions and writes.
    Leader,
    /// This gateway held the Lease and could not renew it: it must stop.
    Lost(String),
}

impl Role {
    /// Why this gateway is not serving, or `None` when it leads.
    pub fn standby_reason(&self, settings: &LeaseSettings) -> Option<String> {
        let lease = format!("{}/{}", settings.namespace, settings.name);
        match self {
            Role::Leader => None,
            Role::Candidate => Some(format!("standby: reading the lease {lease}")),
            Role::Standby { holder } => {
                Some(format!("standby: the lease {lease} is held by {holder}"))
            }
            Role::Lost(why) => Some(format!("lost the lease {lease}: {why}")),
        }
    }
}

/// This process's identity in the Lease: the pod's name (`POD_NAME`, so a restarted container
/// takes its own Lease back at once), else `HOSTNAME-PID`.
pub fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            let host = hostname::get().map_or_else(
                |_| "gateway".to_owned(),
                |h| h.to_string_lossy().into_owned(),
            );
            format!("{host}-{}", std::process::id())
        })
}

/// Runs the election until `stop` (then releases the Lease if held) or until the Lease is lost.
/// Publishes the role on the returned channel.
pub fn start(
    client: kube::Client,
    settings: LeaseSettings,
    identity: String,
    stop: CancellationToken,
) -> (watch::Receiver<Role>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(Role::Candidate);
    let election = Election {
        api: Api::namespaced(client, &settings.namespace),
        settings,
        identity,
        observed: None,
        renewed: None,
    };
    (rx, tokio::spawn(election.run(tx, stop)))
}

struct Election {
    api: Api<Lease>,
    settings: LeaseSettings,
    identity: String,
    /// The Lease record last read and when this gateway first saw it.
    observed: Option<(Record, Instant)>,
    /// When this gateway last renewed (while it leads).
    renewed: Option<Instant>,
}

/// What changes when the holder renews.
type Record = (Option<String>, Option<MicroTime>);

impl Election {
    async fn run(mut self, role: watch::Sender<Role>, stop: CancellationToken) {
        let retry = self.settings.duration / 3;
        let deadline = self.settings.duration * 2 / 3;
        loop {
            let was_leading = *role.borrow() == Role::Leader;
            // A call that hangs counts as failed: the renewal deadline must hold regardless.
            let attempt = tokio::time::timeout(retry, self.try_acquire_or_renew()).await;
            let attempt = attempt.unwrap_or_else(|_| Err(Error::TimedOut(retry)));
            let now = match attempt {
                Ok(now) => now,
                Err(err) => match self.renewed {
                    Some(at) if at.elapsed() >= deadline => {
                        Role::Lost(format!("no renewal for {:?}: {err}", at.elapsed()))
                    }
                    _ => {
                        tracing::warn!(cause = %err, "lease: cannot read or write it; retrying");
                        role.borrow().clone()
                    }
                },
            };
            let now = match now {
                Role::Standby { holder } if was_leading => {
                    Role::Lost(format!("{holder} holds it now"))
                }
                other => other,
            };
            role.send_if_modified(|current| announce(current, now, &self.settings));
            if matches!(*role.borrow(), Role::Lost(_)) {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                () = stop.cancelled() => break,
            }
        }
        if *role.borrow() == Role::Leader {
            self.release().await;
        }
    }

    /// Reads the Lease and takes, renews or leaves it; returns the resulting role.
    async fn try_acquire_or_renew(&mut self) -> Result<Role, Error> {
        let name = &self.settings.name;
        let Some(lease) = self.api.get_opt(name).await? else {
            return self.write(None).await;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (holder.clone(), spec.renew_time.clone());
        if self
            .observed
            .as_ref()
            .is_none_or(|(seen, _)| *seen != record)
        {
            self.observed = Some((record, Instant::now()));
        }
        let unchanged_for = self
            .observed
            .as_ref()
            .map_or(Duration::ZERO, |(_, at)| at.elapsed());
        match holder {
            Some(holder) if holder != self.identity && unchanged_for < self.settings.duration => {
                Ok(Role::Standby { holder })
            }
            _ => self.write(Some(lease)).await,
        }
    }

    /// Creates the Lease (`None`) or replaces the one read with this gateway as holder; a
    /// conflict means another gateway got there first.
    async fn write(&mut self, read: Option<Lease>) -> Result<Role, Error> {
        let now = MicroTime(Timestamp::now());
        let old = read
            .as_ref()
            .and_then(|l| l.spec.clone())
            .unwrap_or_default();
        let taking_over = old.holder_identity.as_deref() != Some(self.identity.as_str());
        let spec = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(duration_secs(self.settings.duration)),
            acquire_time: if taking_over {
                Some(now.clone())
            } else {
                old.acquire_time
            },
            renew_time: Some(now),
            lease_transitions: Some(
                old.lease_transitions.unwrap_or(0) + i32::from(taking_over && read.is_some()),
            ),
            ..LeaseSpec::default()
        };
        let params = PostParams::default();
        let written = match read {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.settings.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&params, &lease).await
            }
            Some(mut lease) => {
                lease.spec = Some(spec);
                self.api.replace(&self.settings.name, &params, &lease).await
            }
        };
        match written {
            Ok(_) => {
                self.renewed = Some(Instant::now());
                Ok(Role::Leader)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Role::Standby {
                holder: "another gateway (it won the race for the lease)".to_owned(),
            }),
            Err(err) => Err(err.into()),
        }
    }

    /// Gives the Lease up so a standby takes over without waiting for it to expire.
    async fn release(&self) {
        let released = async {
            let mut lease = self.api.get(&self.settings.name).await?;
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            self.api
                .replace(&self.settings.name, &PostParams::default(), &lease)
                .await
        };
        match tokio::time::timeout(Duration::from_secs(2), released).await {
            Ok(Ok(_)) => tracing::info!(lease = %self.settings.name, "lease released"),
            Ok(Err(err)) => {
                tracing::warn!(cause = %err, "lease not released; a standby takes over when it expires")
            }
            Err(_) => {
                tracing::warn!("lease not released in time; a standby takes over when it expires")
            }
        }
    }
}

/// Logs a change of role and stores it; true when it changed.
fn announce(current: &mut Role, now: Role, settings: &LeaseSettings) -> bool {
    if *current == now {
        return false;
    }
    let lease = format!("{}/{}", settings.namespace, settings.name);
    match &now {
        Role::Leader => {
            tracing::info!(%lease, "leading: this gateway holds the lease and serves sessions")
        }
        Role::Lost(why) => {
            tracing::error!(%lease, cause = %why, "lost the lease; stopping so that only one gateway writes")
        }
        other => tracing::info!(%lease, reason = ?other.standby_reason(settings), "standby"),
    }
    *current = now;
    true
}

fn duration_secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX).max(1)
}
