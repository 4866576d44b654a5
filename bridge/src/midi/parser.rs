//! The MIDI 1.0 byte-stream parser, for sources that deliver raw bytes (a UART at 31250 baud, a
//! USB-serial adapter, an ALSA raw MIDI device file) and for backends that may split messages.
//!
//! Contract: feed it any bytes, one at a time, and it yields each complete message once:
//! - running status: data bytes after a complete channel message reuse its status;
//! - realtime bytes (`F8..FF`) may appear anywhere, even inside another message or a SysEx, and
//!   are yielded at once without disturbing what they interrupt;
//! - SysEx of any length is consumed; up to [`MAX_SYSEX`] bytes are kept and yielded at `F7`,
//!   a longer one is skipped whole;
//! - garbage (data bytes with no status), truncated messages (a status byte arriving before the
//!   data is complete) and undefined status bytes are skipped and counted in [`Parser::skipped`].
//!   Nothing panics, whatever the input.

use super::message::Message;

/// The longest SysEx body kept; longer ones are consumed and dropped (mappings never use SysEx).
pub const MAX_SYSEX: usize = 64 * 1024;

/// Parser state for one byte stream.
#[derive(Debug, Default)]
pub struct Parser {
    /// The status whose data bytes are being collected (running status for channel messages).
    status: Option<u8>,
    /// Data bytes collected for `status`.
    data: [u8; 2],
    /// How many of `data` are filled.
    len: usize,
    /// `Some` while inside a SysEx; `None` inside means the SysEx grew too long and is skipped.
    sysex: Option<Option<Vec<u8>>>,
    /// Bytes or messages skipped as garbage or truncated.
    skipped: u64,
}

/// How many data bytes follow a status byte; `None` for bytes that are not a message start.
fn data_len(status: u8) -> Option<usize> {
    match status {
        0x80..=0xBF | 0xE0..=0xEF => Some(2),
        0xC0..=0xDF => Some(1),
        0xF1 | 0xF3 => Some(1),
        0xF2 => Some(2),
        0xF6 => Some(0),
        _ => None,
    }
}

impl Parser {
    /// A parser with no running status.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// How many garbage bytes, truncated messages and overlong SysExes were skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Parses a whole buffer, returning the messages completed by it in order.
    pub fn feed_all(&mut self, bytes: &[u8]) -> Vec<Message> {
        bytes.iter().filter_map(|&b| self.feed(b)).collect()
    }

    /// Feeds one byte; returns the message it completes, if any.
    pub fn feed(&mut self, byte: u8) -> Option<Message> {
        match byte {
            // Realtime: interleaves with everything, changes nothing. F9 and FD are undefined.
            0xF9 | 0xFD => {
                self.skipped += 1;
                None
            }
            0xF8..=0xFF => Some(Message::Realtime(byte)),
            0xF0 => {
                self.abandon();
                self.status = None;
                self.sysex = Some(Some(Vec::new()));
                None
            }
            0xF7 => match self.sysex.take() {
                Some(Some(body)) => Some(Message::SysEx(body)),
                Some(None) => None, // overlong, already counted
                None => {
                    self.skipped += 1;
                    None
                }
            },
            0x80..=0xF6 => {
                self.abandon();
                match data_len(byte) {
                    Some(0) => {
                        // Tune request; it also cancels running status.
                        self.status = None;
                        Some(Message::Common(byte, Vec::new()))
                    }
                    Some(_) => {
                        self.status = Some(byte);
                        None
                    }
                    None => {
                        // F4, F5: undefined system common; cancels running status.
                        self.status = None;
                        self.skipped += 1;
                        None
                    }
                }
            }
            _ => self.data_byte(byte),
        }
    }

    /// A status byte arrived: drop an unfinished message or SysEx (counted as truncated).
    fn abandon(&mut self) {
        if self.len > 0 {
            self.skipped += 1;
            self.len = 0;
        }
        if self.sysex.take().is_some() {
            self.skipped += 1;
        }
    }

    fn data_byte(&mut self, byte: u8) -> Option<Message> {
        if let Some(sysex) = &mut self.sysex {
            if let Some(body) = sysex {
                if body.len() < MAX_SYSEX {
                    body.push(byte);
                } else {
                    *sysex = None;
                    self.skipped += 1;
                }
            }
            return None;
        }
        let Some(status) = self.status else {
            self.skipped += 1;
            return None;
        };
        let need = data_len(status).unwrap_or(0);
        self.data[self.len] = byte;
        self.len += 1;
        if self.len < need {
            return None;
        }
        self.len = 0;
        let [d0, d1] = self.data;
        let channel = status & 0x0F;
        let message = match status & 0xF0 {
            0x80 => Message::NoteOff {
                channel,
                note: d0,
                velocity: d1,
            },
            0x90 => Message::NoteOn {
                channel,
                note: d0,
                velocity: d1,
            },
            0xA0 => Message::PolyPressure {
                channel,
                note: d0,
                pressure: d1,
            },
            0xB0 => Message::ControlChange {
                channel,
                controller: d0,
                value: d1,
            },
            0xC0 => Message::ProgramChange {
                channel,
                program: d0,
            },
            0xD0 => Message::ChannelPressure {
                channel,
                pressure: d0,
            },
            0xE0 => Message::PitchBend {
                channel,
                value: u16::from(d0) | (u16::from(d1) << 7),
            },
            _ => {
                // System common: no running status.
                self.status = None;
                Message::Common(status, self.data[..need].to_vec())
            }
        };
        Some(message)
    }
}

#[cfg(test)]
mod tests;
