//! Feedback: plays the cluster's live state back to every OSC client, and hands it to the MIDI
//! side (LEDs, motor faders, pickup) as [`crate::event::Level`]s.
//!
//! Contract: feedback is the truth. It is built only from state the gateway reports (the
//! `Welcome`'s targets and every `StateUpdate`), never echoed from what a control sent, so a change
//! made with `kubectl` or by another operator shows on every phone. A control is sent a message
//! only when what it shows differs from it: what feedback last sent to that client's address,
//! forgotten when the client moves that control (so a refused or no-op move is answered with the
//! truth, and a ready-count change resends the label, not the fader). For each state change, every
//! client seen within `osc.client_timeout_secs` gets, at `client_ip:feedback_port` (a TCP client:
//! on its connection, while connected), one float per mapping of that target (the inverse-mapped
//! `desired`) and, where a mapping has a `label`, a text like `web 7/10` (`<target>
//! <ready>/<desired>`, `?` when unknown). A new client gets the state of every mapped target at
//! once, and so does every client when a config reload brings new mappings. While the gateway is
//! unreachable, clients keep getting the last known state, labelled `(stale)`, until a new
//! session brings the truth.

mod messages;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use kubeknobs_proto::v1::TargetState;
use kubeknobs_runtime::telemetry;
use rosc::{OscMessage, OscPacket};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub use messages::{label_text, messages, number};

use crate::event::{Event, Level, Peer, Settings};
use crate::mapping::Bounds;
use crate::osc::{self, SharedClients, Unsent};

/// What can go wrong sending feedback; logged, never fatal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A message could not be encoded as OSC.
    #[error("cannot encode OSC feedback for {address}")]
    Encode {
        /// The message's address.
        address: String,
        /// rosc's reason.
        #[source]
        source: rosc::OscError,
    },
    /// The datagram could not be sent.
    #[error("cannot send OSC feedback to {to}")]
    Send {
        /// The client's feedback address.
        to: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
}

/// Gets a copy of every target state feedback receives (the demo prints them).
pub type Observer = mpsc::Sender<TargetState>;

/// The last known bounds and state of one target.
struct Known {
    bounds: Option<Bounds>,
    state: TargetState,
}

/// The feedback task.
pub(crate) struct Feedback {
    socket: Arc<UdpSocket>,
    clients: SharedClients,
    settings: Settings,
    known: HashMap<String, Known>,
    /// A session's catalog is known (from its `Welcome` until it ends).
    catalog: bool,
    observer: Option<Observer>,
    /// The last presence text.
    presence: String,
}

impl Feedback {
    /// Feedback sent from `socket` to the clients in `clients`, once an [`Event::Configure`] has
    /// said what to send where.
    pub fn new(
        socket: Arc<UdpSocket>,
        clients: SharedClients,
        observer: Option<Observer>,
    ) -> Feedback {
        Feedback {
            socket,
            clients,
            settings: Settings::default(),
            known: HashMap::new(),
            catalog: false,
            observer,
            presence: String::new(),
        }
    }

    /// Sends the presence text, if a label is configured, to `clients`.
    async fn send_presence(&self, clients: &[Peer]) {
        let Some(label) = &self.settings.presence_label else {
            return;
        };
        let message = OscMessage {
            addr: label.clone(),
            args: vec![rosc::OscType::String(self.presence.clone())],
        };
        match encode(message) {
            Ok(bytes) => {
                self.deliver(&[(label.clone(), bytes)], clients, "presence")
                    .await
            }
            Err(e) => warn!(error = %telemetry::chain(&e), "presence not sent"),
        }
    }

    /// Warns about each mapped target this session's catalog lacks or gives unusable bounds:
    /// its moves are not sent.
    fn check_mappings(&self) {
        if !self.catalog {
            return;
        }
        for m in &self.settings.mapped {
            match self.known.get(&m.target).map(|k| k.bounds) {
                None => warn!(
                    address = %m.address, target_name = %m.target,
                    "mapped target is not in this operator's catalog; its moves are not sent"
                ),
                Some(None) => warn!(
                    address = %m.address, target_name = %m.target,
                    "mapped target has unusable bounds from the gateway; its moves are not sent"
                ),
                Some(Some(_)) => {}
            }
        }
    }

    /// Handles events until every sender is gone.
    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        while let Some(event) = events.recv().await {
            self.handle(event).await;
        }
    }

    async fn handle(&mut self, event: Event) {
        match event {
            Event::Configure(settings) => {
                info!(
                    port = settings.port,
                    "OSC feedback goes to port {} of each client", settings.port
                );
                self.settings = settings;
                // New mappings: every control is sent its state again, whatever it showed.
                osc::lock(&self.clients).forget_shown();
                self.check_mappings();
                let clients = self.active_clients();
                self.send_presence(&clients).await;
                let names: Vec<String> = self.known.keys().cloned().collect();
                for name in names {
                    self.changed(&name, &clients).await;
                }
            }
            Event::Welcome(targets) => {
                self.known.clear();
                let mut changed = Vec::with_capacity(targets.len());
                for t in targets {
                    let bounds = t.bounds.as_ref().and_then(|b| match Bounds::try_from(b) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            warn!(target_name = %t.name, error = %e, "gateway sent unusable bounds");
                            None
                        }
                    });
                    let mut state = t.state.unwrap_or_default();
                    state.target.clone_from(&t.name);
                    changed.push(t.name.clone());
                    self.known.insert(t.name, Known { bounds, state });
                }
                self.catalog = true;
                self.check_mappings();
                let clients = self.active_clients();
                for name in changed {
                    self.changed(&name, &clients).await;
                }
            }
            Event::States(states) => {
                let clients = self.active_clients();
                for state in states {
                    let name = state.target.clone();
                    match self.known.get_mut(&name) {
                        Some(known) => known.state = state,
                        None => {
                            self.known.insert(
                                name.clone(),
                                Known {
                                    bounds: None,
                                    state,
                                },
                            );
                        }
                    }
                    self.changed(&name, &clients).await;
                }
            }
            Event::Disconnected(reason) => {
                self.catalog = false;
                let stale = format!("stale: gateway unreachable ({reason})");
                let names: Vec<String> = self.known.keys().cloned().collect();
                for known in self.known.values_mut() {
                    known.state.error.clone_from(&stale);
                }
                let clients = self.active_clients();
                for name in names {
                    self.send(&name, &clients).await;
                }
            }
            Event::Presence(text) => {
                self.presence = text;
                self.send_presence(&self.active_clients()).await;
            }
            Event::Rejected(_) => {}
            Event::NewClient(peer) => {
                self.send_presence(&[peer]).await;
                let mut targets: Vec<&str> = Vec::new();
                for m in self.settings.mappings.iter() {
                    if !targets.contains(&m.target.as_str()) {
                        targets.push(&m.target);
                    }
                }
                for target in targets {
                    self.send(target, &[peer]).await;
                }
            }
        }
    }

    fn active_clients(&self) -> Vec<Peer> {
        osc::lock(&self.clients).active(Instant::now())
    }

    /// One target's state changed: tell the observer and the clients.
    async fn changed(&self, target: &str, clients: &[Peer]) {
        if let (Some(observer), Some(known)) = (&self.observer, self.known.get(target)) {
            // Display only: if the observer lags, it misses a line rather than slowing feedback.
            let _ = observer.try_send(known.state.clone());
        }
        if let (Some(midi), Some(known)) = (&self.settings.midi, self.known.get(target))
            && let (Some(desired), Some(bounds)) = (known.state.desired, known.bounds)
        {
            let level = Level {
                target: target.to_owned(),
                desired,
                bounds,
            };
            // The same state stream drives MIDI feedback; if the MIDI side is gone, so be it.
            let _ = midi.send(level).await;
        }
        self.send(target, clients).await;
    }

    /// Sends the last known state of `target` to `clients`, one packet per message.
    async fn send(&self, target: &str, clients: &[Peer]) {
        let Some(known) = self.known.get(target) else {
            return;
        };
        if clients.is_empty() {
            return;
        }
        let mut packets = Vec::new();
        for mapping in self.settings.mappings.for_target(target) {
            for message in messages(mapping, known.bounds.as_ref(), &known.state) {
                let address = message.addr.clone();
                match encode(message) {
                    Ok(bytes) => packets.push((address, bytes)),
                    Err(e) => warn!(error = %telemetry::chain(&e), "feedback not sent"),
                }
            }
        }
        if !packets.is_empty() {
            self.deliver(&packets, clients, "feedback").await;
        }
    }

    /// Sends `packets` (`what`: feedback or presence, each with its address) to each of
    /// `clients` whose control at that address does not show it already: as datagrams to port
    /// `osc.feedback_port` of a UDP client, queued for the writer of a TCP client's connection.
    async fn deliver(&self, packets: &[(String, Vec<u8>)], clients: &[Peer], what: &str) {
        for &peer in clients {
            let packets: Vec<&Vec<u8>> = {
                let mut registry = osc::lock(&self.clients);
                packets
                    .iter()
                    .filter(|(address, bytes)| registry.show(peer, address, bytes))
                    .map(|(_, bytes)| bytes)
                    .collect()
            };
            if packets.is_empty() {
                continue;
            }
            match peer {
                Peer::Udp(ip) => {
                    let to = SocketAddr::new(ip, self.settings.port);
                    for bytes in &packets {
                        if let Err(source) = self.socket.send_to(bytes, to).await {
                            let e = Error::Send { to, source };
                            warn!(error = %telemetry::chain(&e), "{what} not sent");
                        }
                    }
                }
                Peer::Tcp(addr) => {
                    let mut registry = osc::lock(&self.clients);
                    let queued = packets
                        .iter()
                        .try_for_each(|bytes| registry.queue(addr, (*bytes).clone()));
                    if queued == Err(Unsent::TooSlow) {
                        warn!(client = %peer, "OSC TCP client reads its {what} too slowly; disconnecting it");
                    }
                }
            }
            debug!(client = %peer, messages = packets.len(), "{what} sent");
        }
    }
}

fn encode(message: OscMessage) -> Result<Vec<u8>, Error> {
    let address = message.addr.clone();
    rosc::encoder::encode(&OscPacket::Message(message))
        .map_err(|source| Error::Encode { address, source })
}
