//! Pure: one configured MIDI mapping ([`Binding`]) and its live [`State`] — soft takeover
//! ("pickup"), relative encoders, toggles, and telling our own echo from a real move.
//!
//! Positions: a control's position `p` and the target's value `y` are both fractions in `0..=1`;
//! `y` is what goes to [`crate::uplink::Link::send_move`] through the binding's [`Mapping`] (range
//! `[0, 1]`), which scales it onto the target's bounds. `invert` and `curve` sit between them.
//!
//! Rules, each unit-tested below:
//! - **Pickup** (absolute controls with `pickup = true`): after the target changed elsewhere, a
//!   move does nothing until the control reaches (within 1.5/127) or crosses the target's value.
//! - **Own results are not changes**: feedback equal (within half a target step) to a value this
//!   binding sent in the last [`RECENT`] is ours, so it neither drops pickup nor moves a relative
//!   encoder's position back to a stale value.
//! - **No feedback loop**: a CC/Pitch Bend value equal to the one we last sent the device, arriving
//!   within [`ECHO_WINDOW`], is the device (a motor fader) echoing us, and is ignored.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::control::{Control, ControlEvent, Mode, Raw, feedback_messages};
use super::message::Message;
use crate::mapping::{Bounds, Mapping};

/// How long a value we sent counts as ours when the gateway's state comes back.
pub const RECENT: Duration = Duration::from_secs(3);
/// How long after feedback an identical value from the device counts as its echo.
pub const ECHO_WINDOW: Duration = Duration::from_secs(1);
/// How close (in control position) a knob must come to the target's value to pick it up.
pub const PICKUP_TOLERANCE: f64 = 1.5 / 127.0;

/// How control position maps to target value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// `y = p`.
    Linear,
    /// `y = (101^p − 1) / 100`: fine steps at the low end, like an audio taper.
    Log,
}

impl Curve {
    fn apply(self, p: f64) -> f64 {
        match self {
            Curve::Linear => p,
            Curve::Log => (101f64.powf(p) - 1.0) / 100.0,
        }
    }

    fn inverse(self, y: f64) -> f64 {
        match self {
            Curve::Linear => y,
            Curve::Log => (1.0 + 100.0 * y).ln() / 101f64.ln(),
        }
    }
}

/// One `[[midi.mappings]]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The control it listens to.
    pub control: Control,
    /// 0-based channel; `None` listens on every channel (feedback then goes to channel 1).
    pub channel: Option<u8>,
    /// How values are read.
    pub mode: Mode,
    /// Top of the control is the bottom of the target.
    pub invert: bool,
    /// Position → value curve.
    pub curve: Curve,
    /// Soft takeover for controls without motors.
    pub pickup: bool,
    /// Send the target's state back to the control.
    pub feedback: bool,
    /// The target, with range `[0, 1]`; its `address` names the control in logs (`midi ch1 cc7`).
    pub mapping: Mapping,
}

impl Binding {
    /// True when `event` comes from this binding's control.
    pub fn matches(&self, event: &ControlEvent) -> bool {
        event.control == self.control && self.channel.is_none_or(|c| c == event.channel)
    }

    fn to_value(&self, p: f64) -> f64 {
        let p = if self.invert { 1.0 - p } else { p };
        self.curve.apply(p.clamp(0.0, 1.0)).clamp(0.0, 1.0)
    }

    fn to_position(&self, y: f64) -> f64 {
        let p = self.curve.inverse(y.clamp(0.0, 1.0)).clamp(0.0, 1.0);
        if self.invert { 1.0 - p } else { p }
    }
}

/// Why a move was not sent (logged at debug).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The device echoing our feedback.
    Echo,
    /// Waiting for the knob to reach the target's value.
    NotPickedUp,
    /// A relative encoder or toggle before the target's state is known.
    NoState,
    /// A note release on a toggle, or a value that means nothing in this mode.
    Ignored,
}

/// The live state of one binding.
#[derive(Debug, Default)]
pub struct State {
    /// The target's value as a control position, from feedback or our own relative moves.
    current: Option<f64>,
    picked: bool,
    last_input: Option<f64>,
    sent: VecDeque<(Instant, f64)>,
    echo: Option<(Instant, Raw)>,
    bounds: Option<Bounds>,
}

impl State {
    /// A move of the control: the target value (`0..=1`) to send, or why nothing is sent.
    pub fn input(&mut self, b: &Binding, raw: Raw, now: Instant) -> Result<f64, Held> {
        // Buttons have no motors: a press that equals the light we sent is still a press.
        if !matches!(b.mode, Mode::Button | Mode::Toggle)
            && let Some((at, sent)) = self.echo
            && sent == raw
            && now.duration_since(at) < ECHO_WINDOW
        {
            return Err(Held::Echo);
        }
        let p = match (b.mode, raw) {
            (Mode::Relative(enc), Raw::Seven(v)) => {
                let base = self.current.ok_or(Held::NoState)?;
                let p = (base + f64::from(enc.delta(v)) / 127.0).clamp(0.0, 1.0);
                self.current = Some(p);
                p
            }
            // A CC button sends 127 (or anything from 64) when pressed, 0 when released.
            (Mode::Toggle, Raw::Note(true) | Raw::Seven(64..)) => {
                let on = self.current.is_some_and(|c| c >= 0.5);
                let p = if on { 0.0 } else { 1.0 };
                self.current = Some(p);
                p
            }
            (Mode::Toggle, _) | (Mode::Relative(_), _) => return Err(Held::Ignored),
            (Mode::Button, Raw::Seven(v)) => f64::from(u8::from(v >= 64)),
            (Mode::Absolute | Mode::Button, raw) => raw.fraction(),
        };
        if b.pickup && b.mode == Mode::Absolute && !self.picked {
            let reached = match self.current {
                None => true,
                Some(c) => {
                    (p - c).abs() <= PICKUP_TOLERANCE
                        || self.last_input.is_some_and(|l| (l - c) * (p - c) < 0.0)
                }
            };
            self.last_input = Some(p);
            if !reached {
                return Err(Held::NotPickedUp);
            }
            self.picked = true;
        }
        self.last_input = Some(p);
        let y = b.to_value(p);
        self.sent.push_back((now, y));
        self.prune(now);
        Ok(y)
    }

    /// The target's live state changed to `desired` within `bounds`: updates pickup and relative
    /// position, and returns what to send the device (when the binding has feedback).
    pub fn feedback(
        &mut self,
        b: &Binding,
        desired: f64,
        bounds: Bounds,
        now: Instant,
    ) -> Option<Vec<Message>> {
        self.bounds = Some(bounds);
        let y = b.mapping.to_osc(desired, &bounds).ok()?;
        let p = b.to_position(y);
        self.prune(now);
        let tolerance = self.tolerance();
        // A button or toggle is compared with its last press only: its few values repeat, and
        // an older press equal to a change made elsewhere must not hide that change.
        let own = match b.mode {
            Mode::Button | Mode::Toggle => self
                .sent
                .back()
                .is_some_and(|&(_, s)| (s - y).abs() <= tolerance),
            _ => self.sent.iter().any(|&(_, s)| (s - y).abs() <= tolerance),
        };
        if !own {
            if self.current.is_none_or(|c| (c - p).abs() > 1e-9) {
                self.picked = false;
            }
            self.current = Some(p);
        } else if self.current.is_none() {
            self.current = Some(p);
        }
        if !b.feedback {
            return None;
        }
        let (raw, messages) = feedback_messages(b.control, b.channel.unwrap_or(0), p)?;
        self.echo = Some((now, raw));
        Some(messages)
    }

    /// Half a target step as a fraction of the target's span (or half a 7-bit step).
    fn tolerance(&self) -> f64 {
        let fallback = 0.5 / 127.0;
        match self.bounds.map(|b| b.fraction_of_step()) {
            Some(f) if f > 0.0 => f / 2.0 + 1e-9,
            _ => fallback,
        }
    }

    fn prune(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|&(t, _)| now.duration_since(t) > RECENT)
        {
            self.sent.pop_front();
        }
        // A burst of moves keeps at most this many values to compare against.
        while self.sent.len() > 256 {
            self.sent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;
