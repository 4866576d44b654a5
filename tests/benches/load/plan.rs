//! What one run of the load generator does, from `KUBEKNOBS_LOAD_*` variables; each is bounded,
//! so a typo cannot start an unbounded flood.
//!
//! `KUBEKNOBS_LOAD_GATEWAY` names the gateway binary to run instead of the one next to the
//! generator (e.g. the release gateway under a debug-built generator).

use std::time::Duration;

/// One run's shape.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Sessions that send control events (`KUBEKNOBS_LOAD_SESSIONS`, 0..=2000, default 10).
    pub sessions: usize,
    /// Events per second each of them sends (`KUBEKNOBS_LOAD_RATE`, 0.1..=5000, default 10).
    pub rate: f64,
    /// Targets the sessions share round-robin (`KUBEKNOBS_LOAD_TARGETS`, 1..=1000; the default,
    /// one per session, makes them distinct).
    pub targets: usize,
    /// Sessions that only watch (`KUBEKNOBS_LOAD_LISTENERS`, 0..=2000, default 0).
    pub listeners: usize,
    /// How long the events flow (`KUBEKNOBS_LOAD_SECS`, 1..=120, default 5).
    pub duration: Duration,
    /// Changes of the probe target whose arrival at every session is timed
    /// (`KUBEKNOBS_LOAD_PROBES`, 0..=100, default 10).
    pub probes: usize,
    /// The gateway's frame rate, `server.state_updates_per_second`
    /// (`KUBEKNOBS_LOAD_FRAME_RATE`, 1..=1000, default 30).
    pub frame_rate: u32,
    /// The gateway's `RUST_LOG` (`KUBEKNOBS_LOAD_LOG`): warnings, plus the line that says where
    /// it listens.
    pub log: String,
}

/// The replicas every load target ranges over (0..=MAX).
pub const MAX_REPLICAS: i64 = 20;

impl Plan {
    /// The plan the environment asks for; panics with the variable's name on a bad value.
    pub fn from_env() -> Plan {
        let sessions = var("SESSIONS", 0.0, 2000.0, 10.0) as usize;
        let listeners = var("LISTENERS", 0.0, 2000.0, 0.0) as usize;
        Plan {
            sessions,
            rate: var("RATE", 0.1, 5000.0, 10.0),
            targets: var("TARGETS", 1.0, 1000.0, sessions.max(1) as f64) as usize,
            listeners,
            duration: Duration::from_secs_f64(var("SECS", 1.0, 120.0, 5.0)),
            probes: var("PROBES", 0.0, 100.0, 10.0) as usize,
            frame_rate: var("FRAME_RATE", 1.0, 1000.0, 30.0) as u32,
            log: std::env::var("KUBEKNOBS_LOAD_LOG")
                .unwrap_or_else(|_| "warn,kubeknobs_gateway::server=info".to_owned()),
        }
    }

    /// Every session the run opens: senders, listeners, the prober and the checker.
    pub fn connections(&self) -> usize {
        self.sessions + self.listeners + 2
    }

    /// The target session `i` drives.
    pub fn target_of(&self, i: usize) -> String {
        format!("t{}", i % self.targets)
    }
}

fn var(name: &str, min: f64, max: f64, default: f64) -> f64 {
    kubeknobs_tests::knob::from_env(&format!("KUBEKNOBS_LOAD_{name}"), min..=max, default)
}
