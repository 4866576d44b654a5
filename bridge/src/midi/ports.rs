//! midir port discovery, hot-plug, and feedback output, on one dedicated thread (midir is a
//! blocking API, and its connections live and die with this thread).
//!
//! Every `rescan` the thread lists ports: a port whose name contains one of the configured
//! patterns (case-insensitive) and is not yet connected is connected; a connected port that is
//! gone (unplugged) is dropped, so when it comes back it is connected again. A pattern that
//! matches nothing is a warning, once, until it matches. If the MIDI system itself is missing, that
//! is said once and retried, backing off from `rescan` to [`UNAVAILABLE_RETRY_MAX`]. Between rescans the thread writes feedback to the
//! output it is addressed to, **one MIDI message per send** ([`deliver`]): midir's ALSA backend
//! encodes only the first message of a buffer, and a JACK peer would see one joined event. Ports
//! of this bridge itself are never opened (that would be a loop).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use midir::{MidiInput, MidiInputConnection, MidiOutput, MidiOutputConnection};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{BACKEND, Error, Event, Input, Out};

/// The longest wait between attempts while the MIDI system itself is missing.
pub const UNAVAILABLE_RETRY_MAX: Duration = Duration::from_secs(30);

/// The midir client name of this bridge (and the part of port names it skips).
pub const CLIENT: &str = "kubeknobs-bridge";

/// What the ports thread watches.
pub struct Watch {
    /// Input port-name patterns.
    pub inputs: Vec<String>,
    /// Output port-name patterns.
    pub outputs: Vec<String>,
    /// How often to list ports.
    pub rescan: Duration,
    /// Where input bytes go.
    pub tx: mpsc::Sender<Event>,
    /// Feedback for outputs; the thread ends when its sender is dropped.
    pub out: Receiver<Out>,
}

/// Starts the ports thread.
pub fn spawn(watch: Watch) {
    let spawned = std::thread::Builder::new()
        .name("midi-ports".into())
        .spawn(move || Ports::default().run(watch));
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the MIDI ports thread; MIDI ports disabled");
    }
}

/// Lists MIDI input and output port names, or says why the MIDI system cannot be used.
pub fn list() -> Result<(Vec<String>, Vec<String>), Error> {
    let input = MidiInput::new(CLIENT).map_err(unavailable)?;
    let output = MidiOutput::new(CLIENT).map_err(unavailable)?;
    let ins = input
        .ports()
        .iter()
        .filter_map(|p| input.port_name(p).ok())
        .collect();
    let outs = output
        .ports()
        .iter()
        .filter_map(|p| output.port_name(p).ok())
        .collect();
    Ok((ins, outs))
}

fn unavailable(e: midir::InitError) -> Error {
    Error::Unavailable {
        backend: BACKEND,
        reason: if cfg!(feature = "jack") {
            format!("{e} (is a JACK server running? e.g. `jackd -d dummy`)")
        } else {
            format!("{e} (no ALSA sequencer: is /dev/snd/seq present and readable?)")
        },
    }
}

/// True when `name` is wanted by one of `patterns` (and is not one of ours).
pub fn wanted(name: &str, patterns: &[String]) -> bool {
    let lower = name.to_lowercase();
    !lower.contains(CLIENT) && patterns.iter().any(|p| lower.contains(&p.to_lowercase()))
}

#[derive(Default)]
struct Ports {
    inputs: HashMap<String, MidiInputConnection<()>>,
    outputs: HashMap<String, MidiOutputConnection>,
    missing_warned: HashSet<String>,
    unavailable_warned: bool,
    /// Output (dis)connections not yet told to the engine (its queue was full): retried at
    /// every rescan, in order, so no output is left without feedback.
    untold: std::collections::VecDeque<Event>,
}

impl Ports {
    fn run(mut self, watch: Watch) {
        let mut next = Instant::now();
        let mut interval = watch.rescan;
        loop {
            if Instant::now() >= next {
                self.rescan(&watch);
                self.tell(&watch.tx);
                // While the MIDI system is missing, look less and less often: every attempt
                // makes alsa-lib (or libjack) print a line to stderr.
                interval = if self.unavailable_warned {
                    (interval * 2).min(UNAVAILABLE_RETRY_MAX.max(watch.rescan))
                } else {
                    watch.rescan
                };
                next = Instant::now() + interval;
            }
            let wait = next.saturating_duration_since(Instant::now());
            match watch.out.recv_timeout(wait) {
                Ok(out) => self.send(&out),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn send(&mut self, out: &Out) {
        if let Some(conn) = self.outputs.get_mut(&*out.output)
            && let Err(e) = deliver(conn, &out.messages)
        {
            warn!(port = %out.output, error = %e, "MIDI feedback not sent");
        }
    }

    fn rescan(&mut self, watch: &Watch) {
        let (ins, outs) = match list() {
            Ok(lists) => {
                if self.unavailable_warned {
                    info!("MIDI system available again");
                    self.unavailable_warned = false;
                }
                lists
            }
            Err(e) => {
                if !self.unavailable_warned {
                    super::warn_unavailable(&e);
                    self.unavailable_warned = true;
                }
                self.inputs.clear();
                for name in std::mem::take(&mut self.outputs).into_keys() {
                    let _ = watch
                        .tx
                        .try_send(Event::OutputGone(Arc::from(name.as_str())));
                }
                return;
            }
        };
        self.inputs.retain(|name, _| {
            let present = ins.contains(name);
            if !present {
                warn!(port = %name, "MIDI input gone (unplugged?); will reconnect when it is back");
            }
            present
        });
        let untold = &mut self.untold;
        self.outputs.retain(|name, _| {
            let present = outs.contains(name);
            if !present {
                warn!(port = %name, "MIDI output gone (unplugged?); will reconnect when it is back");
                untold.push_back(Event::OutputGone(Arc::from(name.as_str())));
            }
            present
        });
        for name in ins.iter().filter(|n| wanted(n, &watch.inputs)) {
            if !self.inputs.contains_key(name) {
                match connect_input(name, watch.tx.clone()) {
                    Ok(conn) => {
                        super::connected("input", name);
                        self.inputs.insert(name.clone(), conn);
                    }
                    Err(e) => warn!(error = %e, "MIDI input not connected"),
                }
            }
        }
        for name in outs.iter().filter(|n| wanted(n, &watch.outputs)) {
            if !self.outputs.contains_key(name) {
                match connect_output(name) {
                    Ok(conn) => {
                        super::connected("output", name);
                        self.outputs.insert(name.clone(), conn);
                        self.untold
                            .push_back(Event::OutputConnected(Arc::from(name.as_str())));
                    }
                    Err(e) => warn!(error = %e, "MIDI output not connected"),
                }
            }
        }
        self.warn_missing("input", &watch.inputs, &ins);
        self.warn_missing("output", &watch.outputs, &outs);
    }

    /// Tells the engine about output (dis)connections, as many as its queue takes.
    fn tell(&mut self, tx: &mpsc::Sender<Event>) {
        // Bounded: an engine that never takes them again only hears of the latest.
        while self.untold.len() > 1024 {
            self.untold.pop_front();
        }
        while let Some(event) = self.untold.pop_front() {
            match tx.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.untold.push_front(event);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.untold.clear();
                    return;
                }
            }
        }
    }

    fn warn_missing(&mut self, direction: &str, patterns: &[String], names: &[String]) {
        for p in patterns {
            let key = format!("{direction}:{p}");
            if names.iter().any(|n| wanted(n, std::slice::from_ref(p))) {
                self.missing_warned.remove(&key);
            } else if self.missing_warned.insert(key) {
                warn!(pattern = %p, "no MIDI {direction} matches {p:?} yet; still looking");
            }
        }
    }
}

/// Where [`deliver`] sends bytes: a midir output connection (a recorder in tests).
pub trait Sink {
    /// Sends one buffer as one MIDI event.
    fn send_one(&mut self, bytes: &[u8]) -> Result<(), midir::SendError>;
}

impl Sink for MidiOutputConnection {
    fn send_one(&mut self, bytes: &[u8]) -> Result<(), midir::SendError> {
        self.send(bytes)
    }
}

/// Sends each message with its own send, never two in one buffer; stops at the first failure.
pub fn deliver(
    sink: &mut impl Sink,
    messages: &[super::message::Message],
) -> Result<(), midir::SendError> {
    for m in messages {
        sink.send_one(&m.to_bytes())?;
    }
    Ok(())
}

fn connect_input(name: &str, tx: mpsc::Sender<Event>) -> Result<MidiInputConnection<()>, Error> {
    let err = |reason: String| Error::Connect {
        port: name.to_owned(),
        reason,
    };
    let input = MidiInput::new(CLIENT).map_err(|e| err(e.to_string()))?;
    let port = input
        .ports()
        .into_iter()
        .find(|p| input.port_name(p).ok().as_deref() == Some(name))
        .ok_or_else(|| err("gone before it could be opened".into()))?;
    let source: Arc<str> = Arc::from(name);
    // The callback runs on midir's thread: it only copies the bytes into the channel. If the
    // engine is that far behind, dropping bytes is better than blocking the MIDI system.
    let callback = move |_stamp: u64, bytes: &[u8], _: &mut ()| {
        let _ = tx.try_send(Event::Input(Input {
            source: source.clone(),
            bytes: bytes.to_vec(),
        }));
    };
    input
        .connect(&port, "in", callback, ())
        .map_err(|e| err(e.to_string()))
}

fn connect_output(name: &str) -> Result<MidiOutputConnection, Error> {
    let err = |reason: String| Error::Connect {
        port: name.to_owned(),
        reason,
    };
    let output = MidiOutput::new(CLIENT).map_err(|e| err(e.to_string()))?;
    let port = output
        .ports()
        .into_iter()
        .find(|p| output.port_name(p).ok().as_deref() == Some(name))
        .ok_or_else(|| err("gone before it could be opened".into()))?;
    output.connect(&port, "out").map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_case_insensitive_substrings_and_skip_our_own_ports() {
        let p = vec!["nanokontrol".to_owned()];
        assert!(wanted("nanoKONTROL2:nanoKONTROL2 _ CTRL 20:0", &p));
        assert!(!wanted("X-TOUCH MINI", &p));
        assert!(!wanted("kubeknobs-bridge:out nanokontrol", &p));
        assert!(wanted("anything", &[String::new()]));
    }

    /// Records every send, as midir's ALSA backend would get them.
    #[derive(Default)]
    struct Recorder(Vec<Vec<u8>>);

    impl Sink for Recorder {
        fn send_one(&mut self, bytes: &[u8]) -> Result<(), midir::SendError> {
            self.0.push(bytes.to_vec());
            Ok(())
        }
    }

    #[test]
    fn every_message_is_its_own_send() {
        use crate::midi::control::{Control, feedback_messages};
        use crate::midi::parser::Parser;
        let mut sink = Recorder::default();
        let mut messages = Vec::new();
        for control in [
            Control::Cc14(1),
            Control::Nrpn(300),
            Control::Cc(7),
            Control::PitchBend,
        ] {
            let (_, m) = feedback_messages(control, 2, 0.3).expect("feedback");
            messages.extend(m);
        }
        deliver(&mut sink, &messages).expect("recorded");
        // ALSA's midir encodes only the first message of a buffer: a send must hold exactly one.
        assert_eq!(sink.0.len(), messages.len());
        for (bytes, message) in sink.0.iter().zip(&messages) {
            let parsed = Parser::default().feed_all(bytes);
            assert_eq!(
                parsed,
                std::slice::from_ref(message),
                "one whole message per send: {bytes:02X?}"
            );
            assert_eq!(bytes, &message.to_bytes());
        }
    }
}
