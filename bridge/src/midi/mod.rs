//! MIDI in and out: USB control surfaces through midir, raw MIDI byte streams from serial devices,
//! and feedback to LEDs and motor faders.
//!
//! Device I/O stays at the rim: midir callbacks and serial reader threads only `try_send` raw
//! bytes into one channel ([`Input`]); the engine task parses them ([`parser`]), decodes controls
//! ([`control`]), runs each matching [`binding::Binding`] (pure) and hands the value to the same
//! [`Link::send_move`] OSC uses. Feedback reaches it as [`Level`]s from the `feedback` task (the
//! same state stream that drives OSC feedback) and leaves as [`Out`]s to each MIDI output and
//! serial device with `feedback = true` whose control shows something else ([`shown`]); a Level
//! that changes nothing any control shows sends nothing. Moves the device makes on its own
//! (a motor fader's echo of feedback) are recognised there too and not sent. A move that is held
//! (pickup, echo, no state yet) is explained at info once per episode.
//!
//! A missing MIDI system (no `/dev/snd/seq`, no JACK server) or a missing device is logged, never
//! fatal: the ports thread keeps looking (every `midi.rescan_ms`, backing off while the system is
//! missing), and OSC keeps working.

pub mod binding;
mod config;
pub mod control;
pub mod message;
pub mod parser;
pub mod ports;
pub mod serial;
pub mod shown;

pub use config::{DEFAULT_RESCAN, MidiConfig, SerialConfig};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::event::Level;
use crate::link::Link;
use binding::{Binding, Held, State};
use control::{Decoder, Mode, Raw};
use message::Message;
use parser::Parser;
use shown::Shown;

/// What can go wrong on the MIDI side; logged, never fatal to the bridge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// midir could not open the MIDI system (ALSA sequencer or JACK server missing).
    #[error("MIDI system unavailable ({backend}): {reason}")]
    Unavailable {
        /// `ALSA sequencer` or `JACK`.
        backend: &'static str,
        /// midir's reason.
        reason: String,
    },
    /// A port was listed but could not be opened.
    #[error("cannot connect MIDI port {port}: {reason}")]
    Connect {
        /// The port name.
        port: String,
        /// midir's reason.
        reason: String,
    },
    /// A serial device could not be opened, configured or read.
    #[error("serial MIDI device {device}")]
    Serial {
        /// The device file.
        device: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The MIDI backend this build uses, for messages.
pub const BACKEND: &str = if cfg!(feature = "jack") {
    "JACK"
} else {
    "ALSA sequencer"
};

/// Raw bytes from one MIDI source (a port name or a device file).
#[derive(Debug)]
pub struct Input {
    /// Where they came from; each source has its own parser state.
    pub source: Arc<str>,
    /// The bytes, possibly a partial message.
    pub bytes: Vec<u8>,
}

/// What device threads tell the engine.
#[derive(Debug)]
pub enum Event {
    /// Bytes arrived.
    Input(Input),
    /// An output (a port, or a serial device with feedback) was (re)connected: it gets the
    /// current state of every target at once, so motor faders and LEDs show the truth on plug-in.
    OutputConnected(Arc<str>),
    /// An output is gone (unplugged, closed).
    OutputGone(Arc<str>),
}

/// Feedback for one output (a port name or a serial device file): the messages that make one
/// control show a value. Each message is sent on its own ([`ports::deliver`]).
#[derive(Debug, Clone)]
pub struct Out {
    /// The output it is for; other sinks ignore it.
    pub output: Arc<str>,
    /// The messages, in order.
    pub messages: Vec<Message>,
}

/// Capacity of the input channel; a callback that finds it full drops the bytes (counted).
pub const INPUT_QUEUE: usize = 1024;

/// Starts the device side (ports thread, serial threads) and returns the engine future and the
/// sender feedback uses. The threads stop when the engine future is dropped.
pub fn start(config: MidiConfig, link: Link) -> (impl Future<Output = ()>, mpsc::Sender<Level>) {
    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let (level_tx, level_rx) = mpsc::channel(256);
    let mut sinks = Vec::new();
    if !config.inputs.is_empty() || !config.outputs.is_empty() {
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        sinks.push(out_tx);
        ports::spawn(ports::Watch {
            inputs: config.inputs.clone(),
            outputs: config.outputs.clone(),
            rescan: config.rescan,
            tx: input_tx.clone(),
            out: out_rx,
        });
    }
    for s in &config.serial {
        sinks.push(serial::spawn(s.clone(), config.rescan, input_tx.clone()));
    }
    drop(input_tx);
    let states = config.bindings.iter().map(|_| State::default()).collect();
    let engine = Engine {
        bindings: config.bindings,
        states,
        streams: HashMap::new(),
        levels: HashMap::new(),
        shown: Shown::default(),
        link,
        sinks,
    };
    (engine.run(input_rx, level_rx), level_tx)
}

/// The engine: parsing, bindings and their state, feedback out.
struct Engine {
    bindings: Vec<Binding>,
    /// One per binding, by index.
    states: Vec<State>,
    streams: HashMap<Arc<str>, (Parser, Decoder)>,
    /// The last level of each target, replayed to an output that (re)connects.
    levels: HashMap<String, Level>,
    /// What each output's controls show.
    shown: Shown,
    link: Link,
    sinks: Vec<std::sync::mpsc::Sender<Out>>,
}

impl Engine {
    async fn run(mut self, mut events: mpsc::Receiver<Event>, mut levels: mpsc::Receiver<Level>) {
        loop {
            tokio::select! {
                Some(event) = events.recv() => match event {
                    Event::Input(input) => self.input(input).await,
                    Event::OutputConnected(name) => {
                        debug!(output = %name, "showing every target's state on a new output");
                        self.shown.connect(name);
                        let all: Vec<Level> = self.levels.values().cloned().collect();
                        for level in all {
                            self.level(level);
                        }
                    }
                    Event::OutputGone(name) => self.shown.disconnect(&name),
                },
                Some(level) = levels.recv() => self.level(level),
                else => return,
            }
        }
    }

    async fn input(&mut self, input: Input) {
        let (parser, decoder) = self.streams.entry(input.source.clone()).or_default();
        let mut events = Vec::new();
        for message in parser.feed_all(&input.bytes) {
            events.extend(decoder.decode(&message));
        }
        let now = Instant::now();
        for event in events {
            for (i, b) in self.bindings.iter().enumerate() {
                if !b.matches(&event) {
                    continue;
                }
                let state = &mut self.states[i];
                // Only an absolute control has a position a device could echo or a hand set.
                let result = if b.mode != Mode::Absolute {
                    state.input(b, event.raw, now)
                } else if self.shown.is_echo(&input.source, i, event.raw, now) {
                    Err(Held::Echo)
                } else {
                    self.shown.moved(&input.source, i, event.raw);
                    state.input(b, event.raw, now)
                };
                match result {
                    Ok(value) => {
                        state.released();
                        debug!(address = %b.mapping.address, value, source = %input.source, "MIDI move");
                        self.link.send_move(&b.mapping, value).await;
                    }
                    Err(held) => {
                        let level = self.levels.get(&b.mapping.target);
                        match hold_text(b, state, held, event.raw, level) {
                            Some(text) if state.explain(held) => info!("{text}"),
                            _ => {
                                debug!(address = %b.mapping.address, ?held, raw = ?event.raw, "MIDI move held")
                            }
                        }
                    }
                }
            }
        }
    }

    fn level(&mut self, level: Level) {
        let now = Instant::now();
        let mut outs = Vec::new();
        for (i, b) in self.bindings.iter().enumerate() {
            if b.mapping.target != level.target {
                continue;
            }
            let Some((raw, messages)) =
                self.states[i].feedback(b, level.desired, level.bounds, now)
            else {
                continue;
            };
            for output in self.shown.show(i, raw, now) {
                outs.push(Out {
                    output,
                    messages: messages.clone(),
                });
            }
        }
        for out in outs {
            debug!(target_name = %level.target, output = %out.output, messages = out.messages.len(), "MIDI feedback");
            self.sinks.retain(|sink| sink.send(out.clone()).is_ok());
        }
        self.levels.insert(level.target.clone(), level);
    }
}

/// Why a control does nothing, said at info once per episode:
/// `web: midi ch1 cc7 held until it reaches 15 (pickup)`. `None` for values that mean nothing in
/// the control's mode (a toggle's release), which are only logged at debug.
fn hold_text(
    b: &Binding,
    state: &State,
    held: Held,
    raw: Raw,
    level: Option<&Level>,
) -> Option<String> {
    let (target, control) = (&b.mapping.target, &b.mapping.address);
    Some(match held {
        Held::NotPickedUp => {
            let value = level
                .and_then(|l| {
                    let y = state.pickup_value(b)?;
                    b.mapping.to_target(y, &l.bounds).ok()
                })
                .map_or_else(|| "the target's value".to_owned(), |v| v.to_string());
            format!("{target}: {control} held until it reaches {value} (pickup)")
        }
        Held::Echo => {
            let value = match raw {
                Raw::Seven(v) => v.to_string(),
                Raw::Coarse(v) => format!("{v} (MSB alone)"),
                Raw::Fourteen(v) => v.to_string(),
                Raw::Note(on) => if on { "down" } else { "up" }.to_owned(),
            };
            format!(
                "{target}: {control} {value} ignored: the device echoing feedback just sent (echo)"
            )
        }
        Held::NoState => {
            format!("{target}: {control} waits for the target's state from the gateway")
        }
        Held::Ignored => return None,
    })
}

/// Logs once that MIDI is unavailable, saying what still works.
pub(crate) fn warn_unavailable(e: &Error) {
    warn!("{e}; MIDI ports are disabled until it appears (OSC and serial MIDI keep working)");
}

/// Logs a connected port.
pub(crate) fn connected(direction: &str, port: &str) {
    info!(port, "MIDI {direction} connected: {port}");
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::mapping::{Bounds, Mapping, Range};
    use binding::{Curve, Encoder};
    use control::Control;

    #[test]
    fn a_hold_says_what_the_control_waits_for() {
        let b = Binding {
            control: Control::Cc(7),
            channel: Some(0),
            mode: Mode::Absolute,
            invert: false,
            curve: Curve::Linear,
            pickup: true,
            feedback: false,
            encoder: Encoder::default(),
            mapping: Mapping {
                address: "midi ch1 cc7".into(),
                target: "web".into(),
                range: Range::default(),
                label: None,
            },
        };
        let bounds = Bounds::new(0.0, 20.0, 1.0).expect("bounds");
        let level = Level {
            target: "web".into(),
            desired: 15.0,
            bounds,
        };
        let mut state = State::default();
        state.feedback(&b, 15.0, bounds, Instant::now());
        let text = |held, raw| hold_text(&b, &state, held, raw, Some(&level));
        assert_eq!(
            text(Held::NotPickedUp, Raw::Seven(3)).as_deref(),
            Some("web: midi ch1 cc7 held until it reaches 15 (pickup)")
        );
        assert_eq!(
            text(Held::Echo, Raw::Coarse(2)).as_deref(),
            Some(
                "web: midi ch1 cc7 2 (MSB alone) ignored: the device echoing feedback just sent (echo)"
            )
        );
        assert_eq!(text(Held::Ignored, Raw::Note(false)), None);
    }
}
