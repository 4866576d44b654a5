//! Pure: what a MIDI message means as a control. The [`Decoder`] turns messages into
//! [`ControlEvent`]s (pairing 14-bit CC MSB/LSB and NRPN parameter/data sequences per channel), and
//! a [`Control`] with its [`Mode`] turns one event into a control position in `0..=1`.

use std::fmt;

use kubeknobs_runtime::config_file::{Named, named};
use serde::{Deserialize, Deserializer};

use super::message::Message;

/// Which physical control a mapping listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Control {
    /// A 7-bit Control Change.
    Cc(u8),
    /// A 14-bit Control Change: MSB on `n` (0..=31), LSB on `n + 32`.
    Cc14(u8),
    /// A Non-Registered Parameter Number (CC 99/98 select it, CC 6/38 carry its value).
    Nrpn(u16),
    /// A note (key or pad or button).
    Note(u8),
    /// Pitch Bend, a 14-bit fader.
    PitchBend,
    /// Program Change: the program number is the value.
    Program,
}

impl Control {
    /// Which kind of control it is (`control` in a config).
    pub fn kind(self) -> ControlKind {
        match self {
            Control::Cc(_) => ControlKind::Cc,
            Control::Cc14(_) => ControlKind::Cc14,
            Control::Nrpn(_) => ControlKind::Nrpn,
            Control::Note(_) => ControlKind::Note,
            Control::PitchBend => ControlKind::PitchBend,
            Control::Program => ControlKind::Program,
        }
    }

    /// Its `number` in a config, if its kind has one.
    pub fn number(self) -> Option<u16> {
        match self {
            Control::Cc(n) | Control::Cc14(n) | Control::Note(n) => Some(u16::from(n)),
            Control::Nrpn(n) => Some(n),
            Control::PitchBend | Control::Program => None,
        }
    }

    /// True when it can be read in `mode`: a cc in any mode, a note as a button or toggle, any
    /// other control as absolute only.
    pub fn takes(self, mode: Mode) -> bool {
        match (self, mode) {
            (Control::Cc(_), _) => true,
            (Control::Note(_), Mode::Button | Mode::Toggle) => true,
            (Control::Note(_), _) => false,
            (_, mode) => mode == Mode::Absolute,
        }
    }

    /// The mode a mapping without `mode` reads it in: a note is a button, the rest absolute.
    pub fn default_mode(self) -> Mode {
        match self {
            Control::Note(_) => Mode::Button,
            _ => Mode::Absolute,
        }
    }
}

impl fmt::Display for Control {
    /// The `control`/`number` pair as a config line writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "control = \"{}\"", self.kind().name())?;
        match self.number() {
            Some(n) => write!(f, ", number = {n}"),
            None => Ok(()),
        }
    }
}

/// The kinds of [`Control`], by their `control` name in a `[[midi.mappings]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// `cc`: a 7-bit Control Change, `number` 0..=127.
    Cc,
    /// `cc14`: a 14-bit Control Change, `number` 0..=31 (its MSB).
    Cc14,
    /// `nrpn`: a Non-Registered Parameter Number, `number` 0..=16383.
    Nrpn,
    /// `note`: a note, `number` 0..=127.
    Note,
    /// `pitchbend`, with no number.
    PitchBend,
    /// `program`: Program Change, with no number.
    Program,
}

impl Named for ControlKind {
    const NAMES: &'static [(&'static str, ControlKind)] = &[
        ("cc", ControlKind::Cc),
        ("cc14", ControlKind::Cc14),
        ("nrpn", ControlKind::Nrpn),
        ("note", ControlKind::Note),
        ("pitchbend", ControlKind::PitchBend),
        ("program", ControlKind::Program),
    ];
}

impl<'de> Deserialize<'de> for ControlKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ControlKind, D::Error> {
        named(deserializer)
    }
}

impl fmt::Display for ControlKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ControlKind {
    /// The largest `number` a control of this kind has; `None` when it has no number.
    pub fn max_number(self) -> Option<u16> {
        match self {
            ControlKind::Cc | ControlKind::Note => Some(127),
            ControlKind::Cc14 => Some(31),
            ControlKind::Nrpn => Some(16383),
            ControlKind::PitchBend | ControlKind::Program => None,
        }
    }

    /// The control of this kind with `number` (cut to 7 bits for the kinds that have them; see
    /// [`ControlKind::max_number`]), which kinds without a number ignore.
    pub fn with(self, number: u16) -> Control {
        let seven = (number & 0x7F) as u8;
        match self {
            ControlKind::Cc => Control::Cc(seven),
            ControlKind::Cc14 => Control::Cc14(seven),
            ControlKind::Nrpn => Control::Nrpn(number),
            ControlKind::Note => Control::Note(seven),
            ControlKind::PitchBend => Control::PitchBend,
            ControlKind::Program => Control::Program,
        }
    }
}

/// The raw value an event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw {
    /// A 7-bit value (CC, Program Change).
    Seven(u8),
    /// The coarse half (MSB) of a 14-bit control arriving on its own: a CC14 MSB (`cc N`,
    /// N < 32) or an NRPN data entry MSB (CC 6). Devices that send only MSBs use it as a 7-bit
    /// value; a motor fader echoing only the MSB of 14-bit feedback sends this.
    Coarse(u8),
    /// A 14-bit value (CC14 pairs, NRPN MSB+LSB, Pitch Bend).
    Fourteen(u16),
    /// A note went down (`true`) or up.
    Note(bool),
}

impl Raw {
    /// The value as a fraction of its full scale (notes: down 1, up 0).
    pub fn fraction(self) -> f64 {
        match self {
            Raw::Seven(v) | Raw::Coarse(v) => f64::from(v.min(127)) / 127.0,
            Raw::Fourteen(v) => f64::from(v.min(16383)) / 16383.0,
            Raw::Note(on) => f64::from(u8::from(on)),
        }
    }

    /// True when `got`, arriving from a control, is what it shows after being sent `self`,
    /// compared at the resolution `got` has: an MSB alone matches the MSB of a 14-bit value.
    pub fn echoed_by(self, got: Raw) -> bool {
        match (self, got) {
            (Raw::Fourteen(sent), Raw::Coarse(msb)) => (sent >> 7) as u8 == msb,
            (sent, got) => sent == got,
        }
    }
}

/// One control moved: channel (0-based), which control, what value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlEvent {
    /// 0-based channel.
    pub channel: u8,
    /// The control.
    pub control: Control,
    /// Its value.
    pub raw: Raw,
}

/// How the value of a control is read (`mode` in a `[[midi.mappings]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The value is the position (faders, knobs, pitch bend, program change).
    Absolute,
    /// The value is a signed step (endless encoders).
    Relative(Encoding),
    /// Note down (or CC ≥ 64) = top of the range, note up (CC < 64) = bottom (momentary).
    Button,
    /// Each note down (or CC ≥ 64) flips between top and bottom of the range.
    Toggle,
}

/// How a relative encoder writes a signed step into 7 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 1..=63 up, 127..=65 down (-1..=-63), 64 = -64.
    TwosComplement,
    /// 64 is zero: 65 = +1, 63 = -1.
    BinaryOffset,
    /// Bit 6 is the sign (set = down), bits 0..=5 the size: 1 = +1, 65 = -1.
    SignMagnitude,
}

impl Named for Mode {
    const NAMES: &'static [(&'static str, Mode)] = &[
        ("absolute", Mode::Absolute),
        ("button", Mode::Button),
        ("toggle", Mode::Toggle),
        (
            "relative-twos-complement",
            Mode::Relative(Encoding::TwosComplement),
        ),
        (
            "relative-binary-offset",
            Mode::Relative(Encoding::BinaryOffset),
        ),
        (
            "relative-sign-magnitude",
            Mode::Relative(Encoding::SignMagnitude),
        ),
    ];
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Mode, D::Error> {
        named(deserializer)
    }
}

impl Encoding {
    /// The signed step a 7-bit value encodes.
    pub fn delta(self, v: u8) -> i32 {
        let v = i32::from(v & 0x7F);
        match self {
            Encoding::TwosComplement => {
                if v < 64 {
                    v
                } else {
                    v - 128
                }
            }
            Encoding::BinaryOffset => v - 64,
            Encoding::SignMagnitude => {
                if v & 0x40 != 0 {
                    -(v & 0x3F)
                } else {
                    v & 0x3F
                }
            }
        }
    }
}

/// Per-channel pairing state for CC14 and NRPN.
#[derive(Debug, Clone, Copy, Default)]
struct ChannelState {
    msb: [u8; 32],
    nrpn_msb: Option<u8>,
    nrpn_lsb: Option<u8>,
    nrpn_data_msb: u8,
}

/// Turns messages of one input into control events. One per input: pairing is per stream.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    channels: [ChannelState; 16],
}

impl Decoder {
    /// Every control event `message` carries. A CC can be several at once: CC 7 is both `cc 7`
    /// and the MSB of `cc14 7`; CC 6 after CC 99/98 is also an NRPN value.
    pub fn decode(&mut self, message: &Message) -> Vec<ControlEvent> {
        let ev = |channel, control, raw| ControlEvent {
            channel,
            control,
            raw,
        };
        match *message {
            Message::NoteOn {
                channel,
                note,
                velocity,
            } => vec![ev(channel, Control::Note(note), Raw::Note(velocity > 0))],
            Message::NoteOff { channel, note, .. } => {
                vec![ev(channel, Control::Note(note), Raw::Note(false))]
            }
            Message::PitchBend { channel, value } => {
                vec![ev(channel, Control::PitchBend, Raw::Fourteen(value))]
            }
            Message::ProgramChange { channel, program } => {
                vec![ev(channel, Control::Program, Raw::Seven(program))]
            }
            Message::ControlChange {
                channel,
                controller,
                value,
            } => {
                let st = &mut self.channels[usize::from(channel & 0x0F)];
                let mut out = vec![ev(channel, Control::Cc(controller), Raw::Seven(value))];
                let nrpn = match (st.nrpn_msb, st.nrpn_lsb) {
                    (Some(m), Some(l)) => Some((u16::from(m) << 7) | u16::from(l)),
                    _ => None,
                };
                match controller {
                    99 => st.nrpn_msb = Some(value),
                    98 => st.nrpn_lsb = Some(value),
                    // RPN selection ends NRPN data entry.
                    100 | 101 => (st.nrpn_msb, st.nrpn_lsb) = (None, None),
                    6 if nrpn.is_some() => {
                        st.nrpn_data_msb = value;
                        out.push(ev(
                            channel,
                            Control::Nrpn(nrpn.unwrap_or(0)),
                            Raw::Coarse(value),
                        ));
                    }
                    38 if nrpn.is_some() => {
                        let v = (u16::from(st.nrpn_data_msb) << 7) | u16::from(value);
                        out.push(ev(
                            channel,
                            Control::Nrpn(nrpn.unwrap_or(0)),
                            Raw::Fourteen(v),
                        ));
                    }
                    _ => {}
                }
                match controller {
                    0..=31 => {
                        st.msb[usize::from(controller)] = value;
                        out.push(ev(channel, Control::Cc14(controller), Raw::Coarse(value)));
                    }
                    32..=63 => {
                        let msb = controller - 32;
                        let v = (u16::from(st.msb[usize::from(msb)]) << 7) | u16::from(value);
                        out.push(ev(channel, Control::Cc14(msb), Raw::Fourteen(v)));
                    }
                    _ => {}
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

/// The messages that show control position `p` (in `0..=1`) on `control`, for feedback: CC
/// values for LED rings and motor faders, note on/off for button lights. `None` for Program
/// Change, which has nothing to light.
pub fn feedback_messages(control: Control, channel: u8, p: f64) -> Option<(Raw, Vec<Message>)> {
    let p = if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        0.0
    };
    // Both casts are of values already clamped to the target type's range.
    let seven = (p * 127.0).round() as u8;
    let fourteen = (p * 16383.0).round() as u16;
    let cc = |controller, value| Message::ControlChange {
        channel,
        controller,
        value,
    };
    Some(match control {
        Control::Cc(n) => (Raw::Seven(seven), vec![cc(n, seven)]),
        Control::Cc14(n) => (
            Raw::Fourteen(fourteen),
            vec![
                cc(n, (fourteen >> 7) as u8),
                cc(n + 32, (fourteen & 0x7F) as u8),
            ],
        ),
        Control::Nrpn(param) => (
            Raw::Fourteen(fourteen),
            vec![
                cc(99, ((param >> 7) & 0x7F) as u8),
                cc(98, (param & 0x7F) as u8),
                cc(6, (fourteen >> 7) as u8),
                cc(38, (fourteen & 0x7F) as u8),
            ],
        ),
        Control::Note(note) => {
            let on = p >= 0.5;
            let velocity = if on { 127 } else { 0 };
            (
                Raw::Note(on),
                vec![Message::NoteOn {
                    channel,
                    note,
                    velocity,
                }],
            )
        }
        Control::PitchBend => (
            Raw::Fourteen(fourteen),
            vec![Message::PitchBend {
                channel,
                value: fourteen,
            }],
        ),
        Control::Program => return None,
    })
}

#[cfg(test)]
mod tests;
