//! MIDI 1.0 messages as values: what the byte-stream parser produces, what the mapping layer
//! reads, and what feedback writes back to a device.
//!
//! Channels are 0-based here (`0..=15`); the config and everything printed for humans use the
//! 1-based numbers printed on devices (`1..=16`).

use std::fmt;

/// One complete MIDI message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `8n kk vv`.
    NoteOff {
        /// Channel, 0-based.
        channel: u8,
        /// Note number.
        note: u8,
        /// Release velocity.
        velocity: u8,
    },
    /// `9n kk vv` (a velocity of 0 means note off, by convention).
    NoteOn {
        /// Channel, 0-based.
        channel: u8,
        /// Note number.
        note: u8,
        /// Velocity.
        velocity: u8,
    },
    /// `An kk vv`.
    PolyPressure {
        /// Channel, 0-based.
        channel: u8,
        /// Note number.
        note: u8,
        /// Pressure.
        pressure: u8,
    },
    /// `Bn cc vv`.
    ControlChange {
        /// Channel, 0-based.
        channel: u8,
        /// Controller number.
        controller: u8,
        /// Value.
        value: u8,
    },
    /// `Cn pp`.
    ProgramChange {
        /// Channel, 0-based.
        channel: u8,
        /// Program number.
        program: u8,
    },
    /// `Dn vv`.
    ChannelPressure {
        /// Channel, 0-based.
        channel: u8,
        /// Pressure.
        pressure: u8,
    },
    /// `En ll mm`: a 14-bit value, 8192 is the centre.
    PitchBend {
        /// Channel, 0-based.
        channel: u8,
        /// `0..=16383`.
        value: u16,
    },
    /// `F0 … F7`: the bytes between, without `F0` and `F7`.
    SysEx(Vec<u8>),
    /// System common `F1`, `F2`, `F3`, `F6` with its data bytes (unused by mappings).
    Common(u8, Vec<u8>),
    /// System realtime `F8`, `FA`, `FB`, `FC`, `FE`, `FF` (clock, transport, active sensing, reset).
    Realtime(u8),
}

impl Message {
    /// The channel of a channel message (0-based), `None` for system messages.
    pub fn channel(&self) -> Option<u8> {
        match self {
            Message::NoteOff { channel, .. }
            | Message::NoteOn { channel, .. }
            | Message::PolyPressure { channel, .. }
            | Message::ControlChange { channel, .. }
            | Message::ProgramChange { channel, .. }
            | Message::ChannelPressure { channel, .. }
            | Message::PitchBend { channel, .. } => Some(*channel),
            _ => None,
        }
    }

    /// The message as bytes on the wire, with its status byte (no running status). Out-of-range
    /// fields are masked to 7 (or 14) bits, so the result is always valid MIDI.
    pub fn to_bytes(&self) -> Vec<u8> {
        let st = |kind: u8, channel: u8| kind | (channel & 0x0F);
        match self {
            Message::NoteOff {
                channel,
                note,
                velocity,
            } => vec![st(0x80, *channel), note & 0x7F, velocity & 0x7F],
            Message::NoteOn {
                channel,
                note,
                velocity,
            } => vec![st(0x90, *channel), note & 0x7F, velocity & 0x7F],
            Message::PolyPressure {
                channel,
                note,
                pressure,
            } => vec![st(0xA0, *channel), note & 0x7F, pressure & 0x7F],
            Message::ControlChange {
                channel,
                controller,
                value,
            } => vec![st(0xB0, *channel), controller & 0x7F, value & 0x7F],
            Message::ProgramChange { channel, program } => vec![st(0xC0, *channel), program & 0x7F],
            Message::ChannelPressure { channel, pressure } => {
                vec![st(0xD0, *channel), pressure & 0x7F]
            }
            Message::PitchBend { channel, value } => vec![
                st(0xE0, *channel),
                (value & 0x7F) as u8,
                ((value >> 7) & 0x7F) as u8,
            ],
            Message::SysEx(data) => {
                let mut out = Vec::with_capacity(data.len() + 2);
                out.push(0xF0);
                out.extend(data.iter().map(|b| b & 0x7F));
                out.push(0xF7);
                out
            }
            Message::Common(status, data) => {
                let mut out = vec![*status];
                out.extend(data.iter().map(|b| b & 0x7F));
                out
            }
            Message::Realtime(b) => vec![*b],
        }
    }
}

impl fmt::Display for Message {
    /// A short human form, channels 1-based: `ch1 cc7=64`, `ch10 note36 on 127`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::NoteOff { channel, note, .. } => write!(f, "ch{} note{note} off", channel + 1),
            Message::NoteOn {
                channel,
                note,
                velocity,
            } => write!(f, "ch{} note{note} on {velocity}", channel + 1),
            Message::PolyPressure {
                channel,
                note,
                pressure,
            } => write!(f, "ch{} poly-pressure{note}={pressure}", channel + 1),
            Message::ControlChange {
                channel,
                controller,
                value,
            } => write!(f, "ch{} cc{controller}={value}", channel + 1),
            Message::ProgramChange { channel, program } => {
                write!(f, "ch{} program={program}", channel + 1)
            }
            Message::ChannelPressure { channel, pressure } => {
                write!(f, "ch{} pressure={pressure}", channel + 1)
            }
            Message::PitchBend { channel, value } => {
                write!(f, "ch{} pitchbend={value}", channel + 1)
            }
            Message::SysEx(data) => write!(f, "sysex ({} bytes)", data.len()),
            Message::Common(status, _) => write!(f, "system common {status:02X}"),
            Message::Realtime(b) => write!(f, "realtime {b:02X}"),
        }
    }
}
