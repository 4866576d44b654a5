//! The running bridge, in two halves that a config reload treats differently:
//!
//! - the **session**: the gateway session (uplink) and feedback. A reload replaces it only when it
//!   changes how the gateway is reached or who this bridge is (`[gateway]`, `bridge_id`): the
//!   bridge reconnects with the new settings.
//! - the **inputs**: the OSC receiver and the MIDI side, with their mappings. Every reload replaces
//!   them, and reconfigures feedback in place (mappings, feedback port, presence label, MIDI
//!   outputs), which plays the known state to every client again. The gateway session stays, and
//!   with it the operator's touches and arm.
//!
//! What outlives both ([`Parts`]): the OSC socket and TCP connections, the known OSC clients, the
//! metrics, the web control surface's hub (each new session hands it its link, and every event
//! on its way to feedback passes through it, so pages see what OSC clients see).
//! Dropping a half's future stops it: its tasks own nothing that outlives them.

use std::future::Future;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::config::{Config, MidiConfig};
use crate::event::{Event, Level, Settings};
use crate::feedback::{Feedback, Observer};
use crate::link::{self, Link};
use crate::uplink::Uplink;
use crate::{midi, ops, osc, web};

/// Capacity of the channel into feedback, which only encodes and sends packets, so it keeps up.
const FEEDBACK_QUEUE: usize = 256;

/// What outlives a config reload.
pub(crate) struct Parts {
    pub socket: Arc<UdpSocket>,
    pub streams: osc::SharedInbound,
    pub clients: osc::SharedClients,
    pub metrics: ops::Metrics,
    pub observer: Option<Observer>,
    pub web: Option<web::Hub>,
}

/// Handles into a running session, for the inputs that feed it.
pub(crate) struct Session {
    link: Link,
    feedback: mpsc::Sender<Event>,
    /// Turns true to close the gateway session cleanly (shutdown).
    stop: tokio::sync::watch::Sender<bool>,
}

impl Session {
    /// Asks the session to close cleanly; its future then ends within [`CLOSE_WITHIN`].
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

/// How long a stopping bridge gives its gateway session to close cleanly.
pub(crate) const CLOSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

impl Parts {
    /// The session half for `config` with `uplink`; the future runs it until dropped (it never
    /// ends by itself). Feedback sends nothing until [`Parts::inputs`] configures it.
    pub fn session(
        &self,
        config: &Config,
        uplink: Uplink,
    ) -> (Session, impl Future<Output = ()> + use<>) {
        let (publisher, link) = link::pair(self.metrics.clone(), config.gateway.resend_within);
        let (tx, rx) = mpsc::channel(FEEDBACK_QUEUE);
        let feedback = Feedback::new(
            self.socket.clone(),
            self.clients.clone(),
            self.observer.clone(),
        );
        let to_feedback = tx.clone();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (rx, relay) = match &self.web {
            Some(hub) => {
                hub.set_session(link.clone(), &config.bridge_id);
                let (rx, relay) = relay(rx, hub.clone());
                (rx, Some(relay))
            }
            None => (rx, None),
        };
        let run = async move {
            let relay = async move {
                if let Some(relay) = relay {
                    relay.await;
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                () = feedback.run(rx) => {}
                () = uplink.run(publisher, to_feedback, stopped) => {}
                () = relay => {}
            }
        };
        let session = Session {
            link,
            feedback: tx,
            stop,
        };
        (session, run)
    }

    /// The inputs half for `config`, feeding `session`, whose feedback it first reconfigures to
    /// match; the future runs it until dropped (it never ends by itself).
    pub async fn inputs(
        &self,
        config: Config,
        session: &Session,
    ) -> impl Future<Output = ()> + use<> {
        osc::lock(&self.clients).set_timeout(config.osc.client_timeout);
        let mappings = Arc::new(config.osc.mappings);
        let mut mapped: Vec<_> = mappings.iter().cloned().collect();
        mapped.extend(config.midi.bindings.iter().map(|b| b.mapping.clone()));
        let receiver = osc::Receiver {
            socket: self.socket.clone(),
            streams: self.streams.clone(),
            mappings: mappings.clone(),
            clients: self.clients.clone(),
            link: session.link.clone(),
            feedback: session.feedback.clone(),
            metrics: self.metrics.clone(),
            arm_address: config.osc.arm_address,
        };
        let (midi_engine, midi_levels) = start_midi(config.midi, &session.link);
        let settings = Settings {
            mappings,
            mapped,
            port: config.osc.feedback_port,
            presence_label: config.osc.presence_label,
            midi: midi_levels,
        };
        // Queued before anything a new session's gateway says, so no state is played unconfigured.
        let _ = session.feedback.send(Event::Configure(settings)).await;
        async move {
            tokio::select! {
                () = midi_engine => {}
                () = receiver.run() => {}
            }
        }
    }
}

/// Shows every event to the web hub on its way to feedback: feedback reads the returned
/// receiver, which the returned future fills.
fn relay(
    mut events: mpsc::Receiver<Event>,
    hub: web::Hub,
) -> (
    mpsc::Receiver<Event>,
    impl Future<Output = ()> + Send + use<>,
) {
    let (tx, rx) = mpsc::channel(FEEDBACK_QUEUE);
    let run = async move {
        while let Some(event) = events.recv().await {
            hub.observe(&event);
            if tx.send(event).await.is_err() {
                break;
            }
        }
    };
    (rx, run)
}

/// Starts the MIDI side if configured; its future never ends (if every MIDI source failed to
/// start, OSC keeps going).
fn start_midi(
    config: MidiConfig,
    link: &Link,
) -> (
    impl Future<Output = ()> + use<>,
    Option<mpsc::Sender<Level>>,
) {
    let (engine, levels) = if config.is_empty() {
        if !config.bindings.is_empty() {
            tracing::warn!("midi.mappings are configured but no midi.inputs or midi.serial");
        }
        (None, None)
    } else {
        let (engine, levels) = midi::start(config, link.clone());
        (Some(engine), Some(levels))
    };
    let engine = async move {
        if let Some(engine) = engine {
            engine.await;
        }
        std::future::pending::<()>().await
    };
    (engine, levels)
}
