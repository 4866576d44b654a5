//! The generator's sessions: each its own TLS connection speaking `kubeknobs.v1`, as a bridge does.
//! Senders send control events at a fixed rate and time every `Outcome`; every session counts
//! the `StateUpdate`s it gets and times the probe target's changes reaching it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kubeknobs_proto::v1::{
    self, ClientMessage, ControlEvent, Hello, OutcomeKind, ServerMessage, client_message,
    knobs_client::KnobsClient, server_message::Msg,
};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// The probe target: the prober changes it, every session times its arrival.
pub const PROBE: &str = "probe";

/// Where the gateway is and how to trust it.
#[derive(Clone)]
pub struct Link {
    pub port: u16,
    pub ca: String,
}

/// An open session.
pub struct Open {
    pub tx: mpsc::Sender<ClientMessage>,
    pub rx: Streaming<ServerMessage>,
    pub welcome: v1::Welcome,
    /// From starting to connect to the `Welcome`.
    pub took: Duration,
}

impl Link {
    /// Connects (TCP, TLS, HTTP/2), opens a session as `token` and waits for its `Welcome`.
    pub async fn open(&self, token: &str, bridge: &str) -> Result<Open, String> {
        let start = Instant::now();
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://localhost:{}", self.port))
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true)
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (tx, rx) = mpsc::channel(1024);
        let hello = ClientMessage {
            msg: Some(client_message::Msg::Hello(Hello {
                bridge_id: bridge.to_owned(),
                protocol_version: v1::PROTOCOL_VERSION,
            })),
        };
        tx.send(hello).await.map_err(|_| "queue hello")?;
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        let bearer = format!("Bearer {token}").parse().map_err(|_| "token")?;
        request.metadata_mut().insert("authorization", bearer);
        let mut rx = KnobsClient::new(channel)
            .session(request)
            .await
            .map_err(|s| format!("session refused: {s}"))?
            .into_inner();
        match rx.message().await {
            Ok(Some(ServerMessage {
                msg: Some(Msg::Welcome(welcome)),
            })) => Ok(Open {
                tx,
                rx,
                welcome,
                took: start.elapsed(),
            }),
            other => Err(format!("expected Welcome, got {other:?}")),
        }
    }
}

/// The probe's changes and who has seen them.
#[derive(Default)]
pub struct Probe {
    /// When each probe value was sent.
    sent: Mutex<HashMap<i64, Instant>>,
    /// Per value, the delay to each session that has seen it.
    seen: Mutex<HashMap<i64, Vec<Duration>>>,
    arrived: Notify,
}

impl Probe {
    /// Notes that `value` is being sent now.
    pub fn sending(&self, value: i64) {
        self.sent.lock().unwrap().insert(value, Instant::now());
    }

    /// A session saw the probe's desired value become `value`.
    fn saw(&self, value: i64) {
        let Some(sent) = self.sent.lock().unwrap().get(&value).copied() else {
            return;
        };
        let mut seen = self.seen.lock().unwrap();
        seen.entry(value).or_default().push(sent.elapsed());
        self.arrived.notify_waiters();
    }

    /// Waits until `audience` sessions have seen `value`, or `deadline`; returns how many did.
    pub async fn wait(&self, value: i64, audience: usize, deadline: Instant) -> usize {
        loop {
            // Registered before counting, so an arrival in between is not missed.
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let count = self.seen.lock().unwrap().get(&value).map_or(0, Vec::len);
            if count >= audience || Instant::now() >= deadline {
                return count;
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }

    /// Every (value, session) delay, and per value (in the order sent) the delay to the last
    /// session.
    pub fn delays(&self) -> (Vec<Duration>, Vec<Duration>) {
        let seen = self.seen.lock().unwrap();
        let all = seen.values().flatten().copied().collect();
        let mut values: Vec<&i64> = seen.keys().collect();
        values.sort();
        let last = values
            .into_iter()
            .filter_map(|v| seen[v].iter().max().copied())
            .collect();
        (all, last)
    }
}

/// What one session measured.
#[derive(Debug, Default)]
pub struct Tally {
    /// Events sent.
    pub sent: u64,
    /// Send → `Outcome` for each answered event, and whether it was applied (it waited for its
    /// write) rather than superseded or refused (answered as soon as the gateway saw it).
    pub latencies: Vec<(Duration, bool)>,
    /// Outcomes by kind: applied, superseded, rejected (and the first rejection's message).
    pub applied: u64,
    pub superseded: u64,
    pub rejected: u64,
    pub rejection: Option<String>,
    /// `StateUpdate`s received while events flowed (until the run's planned end).
    pub updates: u64,
}

/// A session's reading side: outcomes, state updates and the probe.
pub struct Reader {
    rx: Streaming<ServerMessage>,
    /// The probe, for sessions whose arrivals are timed (not the prober's, not the checker's).
    probe: Option<Arc<Probe>>,
    /// Updates are counted until then.
    count_until: Instant,
    pending: HashMap<u64, Instant>,
    probe_desired: Option<f64>,
    /// Every target's desired value as this session last heard it.
    pub desired: HashMap<String, f64>,
    /// How many sessions the last presence list named.
    pub present: usize,
    pub tally: Tally,
}

impl Reader {
    /// A reader of `open`'s stream, starting from its `Welcome`.
    pub fn new(
        rx: Streaming<ServerMessage>,
        welcome: &v1::Welcome,
        probe: Option<Arc<Probe>>,
        count_until: Instant,
    ) -> Reader {
        let desired = welcome
            .targets
            .iter()
            .filter_map(|t| {
                let state = t.state.as_ref()?;
                Some((t.name.clone(), state.desired?))
            })
            .collect();
        Reader {
            rx,
            probe,
            count_until,
            pending: HashMap::new(),
            probe_desired: None,
            desired,
            present: 0,
            tally: Tally::default(),
        }
    }

    /// Notes that event `seq` was sent now.
    pub fn sent(&mut self, seq: u64) {
        self.pending.insert(seq, Instant::now());
        self.tally.sent += 1;
    }

    /// Events sent and not answered yet.
    pub fn unanswered(&self) -> usize {
        self.pending.len()
    }

    /// Reads one message; `false` when the stream ended.
    pub async fn read(&mut self) -> Result<(), String> {
        let message = self
            .rx
            .message()
            .await
            .map_err(|s| format!("stream failed: {s}"))?
            .ok_or("the gateway ended the session")?;
        match message.msg {
            Some(Msg::Outcome(outcome)) => self.outcome(&outcome),
            Some(Msg::State(update)) => {
                if Instant::now() < self.count_until {
                    self.tally.updates += 1;
                }
                for state in update.states {
                    self.state(&state);
                }
            }
            Some(Msg::Presence(presence)) => {
                self.present = presence.operators.iter().map(|o| o.bridges.len()).sum();
            }
            _ => {}
        }
        Ok(())
    }

    fn outcome(&mut self, outcome: &v1::Outcome) {
        if let Some(sent) = self.pending.remove(&outcome.seq) {
            let applied = outcome.kind() == OutcomeKind::Applied;
            self.tally.latencies.push((sent.elapsed(), applied));
        }
        match outcome.kind() {
            OutcomeKind::Applied => self.tally.applied += 1,
            OutcomeKind::Superseded => self.tally.superseded += 1,
            _ => {
                self.tally.rejected += 1;
                self.tally
                    .rejection
                    .get_or_insert_with(|| format!("{} ({})", outcome.message, outcome.target));
            }
        }
    }

    fn state(&mut self, state: &v1::TargetState) {
        let Some(desired) = state.desired else { return };
        self.desired.insert(state.target.clone(), desired);
        if state.target == PROBE && self.probe_desired != Some(desired) {
            self.probe_desired = Some(desired);
            if let Some(probe) = &self.probe {
                probe.saw(desired as i64);
            }
        }
    }
}

/// A control event.
pub fn control(seq: u64, target: &str, value: f64) -> ClientMessage {
    ClientMessage {
        msg: Some(client_message::Msg::Control(ControlEvent {
            seq,
            target: target.to_owned(),
            value,
        })),
    }
}
