//! Pure: what each control on each connected MIDI output shows, so feedback is sent only when
//! that changes, and a device's echo of feedback is told from a real move.
//!
//! Contract:
//! - For every connected output and binding, a control *shows* the last value sent to it or the
//!   last value received from it (a hand on a motor fader moves it). Feedback goes to an output
//!   only when the value the control would show differs from what it shows; a newly connected
//!   output shows nothing yet, so it gets every target's state once.
//! - An input and an output belong to one device when they have the same name (a serial device)
//!   or the same client, the part of a port name before the first `:` (`nanoKONTROL2:… CTRL` in
//!   and out), ignoring the `-NN` JACK adds when a second client takes a name already in use.
//! - A value from an input is an echo when, within [`ECHO_WINDOW`], feedback was actually sent
//!   for that binding to an output of the same device and the value matches it at the
//!   resolution received (an MSB alone matches the MSB of 14-bit feedback). Only absolute
//!   controls are ever checked: encoders, buttons and toggles have no motor to echo.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::control::Raw;

/// How long after feedback was sent a matching value from the same device counts as its echo.
pub const ECHO_WINDOW: Duration = Duration::from_secs(1);

/// What one control shows on one output.
#[derive(Debug, Clone, Copy)]
struct Show {
    raw: Raw,
    /// When `raw` was sent by us; `None` when it came from the control itself.
    sent: Option<Instant>,
}

/// What every control on every connected output shows.
#[derive(Debug, Default)]
pub struct Shown {
    outputs: HashMap<Arc<str>, HashMap<usize, Show>>,
}

impl Shown {
    /// `output` was (re)connected: it shows nothing known yet.
    pub fn connect(&mut self, output: Arc<str>) {
        self.outputs.insert(output, HashMap::new());
    }

    /// `output` is gone.
    pub fn disconnect(&mut self, output: &str) {
        self.outputs.remove(output);
    }

    /// Binding `index` should show `raw`: records it as sent (at `now`) on every output that
    /// showed something else, and returns those outputs, to which the caller sends it.
    pub fn show(&mut self, index: usize, raw: Raw, now: Instant) -> Vec<Arc<str>> {
        let mut to = Vec::new();
        for (name, controls) in &mut self.outputs {
            if controls.get(&index).is_some_and(|s| s.raw == raw) {
                continue;
            }
            controls.insert(
                index,
                Show {
                    raw,
                    sent: Some(now),
                },
            );
            to.push(name.clone());
        }
        to.sort();
        to
    }

    /// True when `raw` from input `source` for binding `index` is its device echoing feedback.
    pub fn is_echo(&self, source: &str, index: usize, raw: Raw, now: Instant) -> bool {
        self.outputs
            .iter()
            .filter(|(name, _)| same_device(source, name))
            .filter_map(|(_, controls)| controls.get(&index))
            .any(|s| {
                s.sent
                    .is_some_and(|at| now.saturating_duration_since(at) < ECHO_WINDOW)
                    && s.raw.echoed_by(raw)
            })
    }

    /// The control of binding `index` on input `source` was moved to `raw` by hand: every
    /// output of that device now shows it.
    pub fn moved(&mut self, source: &str, index: usize, raw: Raw) {
        for (name, controls) in &mut self.outputs {
            if same_device(source, name) {
                controls.insert(index, Show { raw, sent: None });
            }
        }
    }
}

/// True when an input and an output are the same device (see the module docs).
pub fn same_device(input: &str, output: &str) -> bool {
    input == output || client(input).is_some_and(|c| client(output) == Some(c))
}

/// The client part of a port name, without a JACK `-NN` suffix.
fn client(port: &str) -> Option<&str> {
    let (client, _) = port.split_once(':')?;
    let base = match client.rsplit_once('-') {
        Some((base, n))
            if !base.is_empty() && n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => client,
    };
    Some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOTOR_IN: &str = "X-Touch:X-Touch MIDI 1 20:0";
    const MOTOR_OUT: &str = "X-Touch:X-Touch MIDI 1 20:0";

    #[test]
    fn feedback_is_sent_once_per_change_and_again_after_a_hand_moved_it() {
        let now = Instant::now();
        let mut s = Shown::default();
        assert!(
            s.show(0, Raw::Seven(19), now).is_empty(),
            "no output, nothing sent"
        );
        s.connect(MOTOR_OUT.into());
        assert_eq!(s.show(0, Raw::Seven(19), now), [Arc::from(MOTOR_OUT)]);
        assert!(s.show(0, Raw::Seven(19), now).is_empty(), "already shown");
        // A hand moves the fader to a value the cluster refuses: the truth is sent again.
        s.moved(MOTOR_IN, 0, Raw::Seven(100));
        assert_eq!(s.show(0, Raw::Seven(19), now).len(), 1);
        // A replugged output shows nothing known.
        s.connect(MOTOR_OUT.into());
        assert_eq!(s.show(0, Raw::Seven(19), now).len(), 1);
        s.disconnect(MOTOR_OUT);
        assert!(s.show(0, Raw::Seven(20), now).is_empty());
    }

    #[test]
    fn an_echo_needs_feedback_sent_to_an_output_of_the_same_device() {
        let now = Instant::now();
        let mut s = Shown::default();
        s.connect("leds-only:out".into());
        s.show(0, Raw::Seven(64), now);
        assert!(
            !s.is_echo(MOTOR_IN, 0, Raw::Seven(64), now),
            "sent to another device only"
        );
        s.connect(MOTOR_OUT.into());
        s.show(0, Raw::Seven(64), now);
        assert!(s.is_echo(MOTOR_IN, 0, Raw::Seven(64), now));
        assert!(
            !s.is_echo(MOTOR_IN, 1, Raw::Seven(64), now),
            "another binding"
        );
        assert!(!s.is_echo(MOTOR_IN, 0, Raw::Seven(65), now));
        assert!(!s.is_echo(MOTOR_IN, 0, Raw::Seven(64), now + ECHO_WINDOW));
        // What a hand did is not ours to ignore.
        s.moved(MOTOR_IN, 0, Raw::Seven(64));
        assert!(!s.is_echo(MOTOR_IN, 0, Raw::Seven(64), now));
    }

    #[test]
    fn a_14_bit_echo_of_the_msb_alone_is_recognised() {
        let now = Instant::now();
        let mut s = Shown::default();
        s.connect("/dev/ttyAMA0".into());
        s.show(3, Raw::Fourteen(300), now);
        assert!(s.is_echo("/dev/ttyAMA0", 3, Raw::Coarse(2), now));
        assert!(s.is_echo("/dev/ttyAMA0", 3, Raw::Fourteen(300), now));
        assert!(!s.is_echo("/dev/ttyAMA0", 3, Raw::Fourteen(297), now));
        assert!(!s.is_echo("/dev/ttyUSB0", 3, Raw::Coarse(2), now));
    }

    #[test]
    fn devices_are_matched_by_client_name() {
        assert!(same_device("kk-motor:surface", "kk-motor-01:leds"));
        assert!(same_device(
            "nanoKONTROL2:CTRL 20:0",
            "nanoKONTROL2:CTRL 20:0"
        ));
        assert!(!same_device("kk-motor:surface", "kk-lights:leds"));
        assert!(!same_device("/dev/ttyAMA0", "/dev/ttyUSB0"));
        assert!(same_device("Launch-Control-XL:in", "Launch-Control-XL:out"));
    }
}
