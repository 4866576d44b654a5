//! Pure: one configured MIDI mapping ([`Binding`]) and its live [`State`] — soft takeover
//! ("pickup"), relative encoders, toggles.
//!
//! Positions: a control's position `p` and the target's value `y` are both fractions in `0..=1`;
//! `y` is what goes to [`crate::link::Link::send_move`] through the binding's [`Mapping`] (range
//! `[0, 1]`), which scales it onto the target's bounds. `invert` and `curve` sit between them.
//!
//! Rules, each unit-tested below:
//! - **Pickup** (absolute controls with `pickup = true`): after the target changed elsewhere, a
//!   move does nothing until the control reaches (within 1.5/127) or crosses the target's value.
//! - **Own results are not changes**: feedback equal (within half a target step) to a value this
//!   binding sent in the last [`RECENT`] is ours, so it neither drops pickup nor moves a relative
//!   encoder's position back to a stale value.
//! - **Encoders** move by `step` target units per click (default: one target step), times an
//!   acceleration factor when `acceleration` is set and clicks come fast.
//! - **Toggles** flip their own pending write while it is in flight (for [`RECENT`], or until
//!   the cluster reports it), otherwise the cluster's observed value: an unrelated state update
//!   cannot make a second press repeat the first.
//!
//! Telling the device's echo of feedback from a real move is not done here but in
//! [`super::shown`], which knows what was sent to which output.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kubeknobs_runtime::config_file::{Named, named};
use serde::{Deserialize, Deserializer};

use super::control::{Control, ControlEvent, Mode, Raw, feedback_messages};
use super::message::Message;
use crate::mapping::{Bounds, Mapping};

/// How long a value we sent counts as ours when the gateway's state comes back.
pub const RECENT: Duration = Duration::from_secs(3);
/// How close (in control position) a knob must come to the target's value to pick it up.
pub const PICKUP_TOLERANCE: f64 = 1.5 / 127.0;
/// Encoder clicks closer together than this (in the same direction) accelerate.
pub const FAST_CLICK: Duration = Duration::from_millis(60);

/// How control position maps to target value (`curve` in a `[[midi.mappings]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Curve {
    /// `y = p`.
    #[default]
    Linear,
    /// `y = (101^p − 1) / 100`: fine steps at the low end, like an audio taper.
    Log,
}

impl Named for Curve {
    const NAMES: &'static [(&'static str, Curve)] =
        &[("linear", Curve::Linear), ("log", Curve::Log)];
}

impl<'de> Deserialize<'de> for Curve {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Curve, D::Error> {
        named(deserializer)
    }
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
    /// How far a relative encoder moves per click.
    pub encoder: Encoder,
    /// The target, with range `[0, 1]`; its `address` names the control in logs (`midi ch1 cc7`).
    pub mapping: Mapping,
}

/// How far a relative encoder moves (`step`, `acceleration` of a `[[midi.mappings]]`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Encoder {
    /// Target units per click; `None` is one step of the target (1/127 of the range when the
    /// target is continuous).
    pub step: Option<f64>,
    /// The largest factor fast turning multiplies a click by; `None` (or 1) never accelerates.
    /// Each click within [`FAST_CLICK`] of the previous one in the same direction adds 1 to the
    /// factor, up to this; a slow click starts again at 1.
    pub acceleration: Option<f64>,
}

impl Binding {
    /// True when `event` comes from this binding's control.
    pub fn matches(&self, event: &ControlEvent) -> bool {
        event.control == self.control && self.channel.is_none_or(|c| c == event.channel)
    }

    /// Every setting that changes behaviour, for `check`: `absolute, pickup, curve log,
    /// inverted, feedback` or `relative-twos-complement, step 1 per click, acceleration up to 4x`.
    pub fn describe(&self) -> String {
        let mut parts = vec![match self.mode {
            Mode::Button => "button (momentary)".to_owned(),
            mode => mode.name().to_owned(),
        }];
        if let Mode::Relative(_) = self.mode {
            parts.push(match self.encoder.step {
                Some(s) => format!("step {s} per click"),
                None => "step: one target step per click".to_owned(),
            });
            if let Some(a) = self.encoder.acceleration.filter(|a| *a > 1.0) {
                parts.push(format!("acceleration up to {a}x"));
            }
        }
        if self.mode == Mode::Absolute {
            parts.push(if self.pickup { "pickup" } else { "no pickup" }.to_owned());
            parts.push(format!("curve {}", self.curve.name()));
        }
        if self.invert {
            parts.push("inverted".to_owned());
        }
        parts.push(
            if self.feedback {
                "feedback"
            } else {
                "no feedback"
            }
            .to_owned(),
        );
        parts.join(", ")
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

/// Why a move was not sent (explained at info once per episode).
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
    bounds: Option<Bounds>,
    /// A toggle's last press (when, position) until the cluster reports it or it is stale.
    pending: Option<(Instant, f64)>,
    /// The last encoder click: when, its direction, and the acceleration factor it had.
    last_click: Option<(Instant, i32, f64)>,
    /// The hold already explained in this episode (reset by a move that is sent).
    explained: Option<Held>,
}

impl State {
    /// A move of the control: the target value (`0..=1`) to send, or why nothing is sent.
    pub fn input(&mut self, b: &Binding, raw: Raw, now: Instant) -> Result<f64, Held> {
        let p = match (b.mode, raw) {
            (Mode::Relative(enc), Raw::Seven(v)) => {
                let base = self.current.ok_or(Held::NoState)?;
                let clicks = f64::from(enc.delta(v)) * self.acceleration(b, enc.delta(v), now);
                let p = (base + clicks * self.click(b)).clamp(0.0, 1.0);
                self.current = Some(p);
                p
            }
            // A CC button sends 127 (or anything from 64) when pressed, 0 when released.
            (Mode::Toggle, Raw::Note(true) | Raw::Seven(64..)) => {
                let on = self.toggle_position(now).is_some_and(|c| c >= 0.5);
                let p = if on { 0.0 } else { 1.0 };
                self.pending = Some((now, p));
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

    /// True the first time `held` stops this binding's moves since its last sent move: the
    /// caller explains a hold once per episode, not once per message.
    pub fn explain(&mut self, held: Held) -> bool {
        let new = self.explained != Some(held);
        self.explained = Some(held);
        new
    }

    /// A move was sent: the next hold is a new episode.
    pub fn released(&mut self) {
        self.explained = None;
    }

    /// The target value (`0..=1`) a held absolute control must reach to be picked up.
    pub fn pickup_value(&self, b: &Binding) -> Option<f64> {
        self.current.map(|c| b.to_value(c))
    }

    /// The position a toggle flips from: its own press while that write is pending, otherwise
    /// the cluster's value.
    fn toggle_position(&mut self, now: Instant) -> Option<f64> {
        if self
            .pending
            .is_some_and(|(at, _)| now.duration_since(at) > RECENT)
        {
            self.pending = None;
        }
        match self.pending {
            Some((_, p)) => Some(p),
            None => self.current,
        }
    }

    /// One click as a fraction of the range.
    fn click(&self, b: &Binding) -> f64 {
        let fallback = 1.0 / 127.0;
        let bounds = self.bounds.as_ref();
        match (b.encoder.step, bounds) {
            (Some(step), Some(bounds)) => match bounds.span() {
                span if span > 0.0 => step / span,
                _ => fallback,
            },
            (None, Some(bounds)) => match bounds.fraction_of_step() {
                f if f > 0.0 => f,
                _ => fallback,
            },
            (_, None) => fallback,
        }
    }

    /// The factor this click is multiplied by: grows by 1 per fast click in one direction.
    fn acceleration(&mut self, b: &Binding, delta: i32, now: Instant) -> f64 {
        let max = b.encoder.acceleration.unwrap_or(1.0).max(1.0);
        let direction = delta.signum();
        let factor = match self.last_click {
            Some((at, dir, factor))
                if dir == direction && now.saturating_duration_since(at) < FAST_CLICK =>
            {
                (factor + 1.0).min(max)
            }
            _ => 1.0,
        };
        self.last_click = Some((now, direction, factor));
        factor
    }

    /// The target's live state changed to `desired` within `bounds`: updates pickup, relative
    /// position and toggle state, and returns what the control should show (its raw value and
    /// the messages that show it) when the binding has feedback.
    pub fn feedback(
        &mut self,
        b: &Binding,
        desired: f64,
        bounds: Bounds,
        now: Instant,
    ) -> Option<(Raw, Vec<Message>)> {
        self.bounds = Some(bounds);
        let y = b.mapping.to_osc(desired, &bounds).ok()?;
        let p = b.to_position(y);
        self.prune(now);
        let tolerance = self.tolerance();
        match b.mode {
            // A toggle shows the cluster's value; its pending press ends when the cluster has it.
            Mode::Toggle => {
                if self
                    .pending
                    .is_some_and(|(_, s)| (b.to_value(s) - y).abs() <= tolerance)
                {
                    self.pending = None;
                }
                self.current = Some(p);
            }
            // A button is compared with its last press only: its two values repeat, and an
            // older press equal to a change made elsewhere must not hide that change.
            Mode::Button => {
                let own = self
                    .sent
                    .back()
                    .is_some_and(|&(_, s)| (s - y).abs() <= tolerance);
                if !own || self.current.is_none() {
                    self.current = Some(p);
                }
            }
            _ => {
                let own = self.sent.iter().any(|&(_, s)| (s - y).abs() <= tolerance);
                if !own {
                    if self.current.is_none_or(|c| (c - p).abs() > 1e-9) {
                        self.picked = false;
                    }
                    self.current = Some(p);
                } else if self.current.is_none() {
                    self.current = Some(p);
                }
            }
        }
        if !b.feedback {
            return None;
        }
        feedback_messages(b.control, b.channel.unwrap_or(0), p)
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
