//! OSC packets on a byte stream (TCP): the two framings OSC apps use, told apart by the first
//! byte a client sends.
//!
//! - **SLIP** (OSC 1.1; TouchOSC, Open Stage Control, python-osc's default): each packet is
//!   wrapped in `END` (0xC0) bytes, with `END` and `ESC` inside escaped (RFC 1055). Empty frames
//!   (the double `END` between packets) are skipped.
//! - **Length-prefixed** (OSC 1.0; liblo's `osc.tcp://`): each packet is preceded by its size as
//!   a 32-bit big-endian integer. Empty packets are skipped here too.
//!
//! An OSC packet starts with `/` or `#`, and a length prefix of any sane size with a 0 byte, so a
//! stream whose first byte is 0 is length-prefixed and any other is SLIP. Replies use the
//! framing the client chose. A frame larger than the limit is an error: the connection is
//! closed rather than buffering without bound.

use bytes::{Buf, BytesMut};

const END: u8 = 0xC0;
const ESC: u8 = 0xDB;
const ESC_END: u8 = 0xDC;
const ESC_ESC: u8 = 0xDD;

/// How a client frames its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// SLIP (OSC 1.1).
    Slip,
    /// A 32-bit big-endian size before each packet (OSC 1.0).
    LengthPrefixed,
}

impl std::fmt::Display for Framing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Framing::Slip => "SLIP (OSC 1.1)",
            Framing::LengthPrefixed => "length-prefixed (OSC 1.0)",
        })
    }
}

/// Why a stream cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A frame is larger than the limit.
    #[error("an OSC packet of more than {limit} bytes (framing {framing})")]
    TooLarge {
        /// The framing in use.
        framing: Framing,
        /// The limit in bytes.
        limit: usize,
    },
    /// A SLIP escape byte followed by a byte that is not an escape code.
    #[error("a SLIP escape byte followed by 0x{0:02X}, which is not an escape code")]
    BadEscape(u8),
}

/// Splits a byte stream into packets.
#[derive(Debug)]
pub struct Deframer {
    framing: Option<Framing>,
    buf: BytesMut,
    limit: usize,
}

impl Deframer {
    /// A deframer for packets of at most `limit` bytes.
    pub fn new(limit: usize) -> Deframer {
        Deframer {
            framing: None,
            buf: BytesMut::new(),
            limit,
        }
    }

    /// The client's framing, once its first byte has arrived.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.framing.is_none() && !bytes.is_empty() {
            self.framing = Some(match bytes[0] {
                0 => Framing::LengthPrefixed,
                _ => Framing::Slip,
            });
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole packet, if one has arrived.
    pub fn next_packet(&mut self) -> Result<Option<Vec<u8>>, Error> {
        match self.framing {
            None => Ok(None),
            Some(Framing::LengthPrefixed) => self.next_prefixed(),
            Some(Framing::Slip) => self.next_slip(),
        }
    }

    fn too_large(&self) -> Error {
        Error::TooLarge {
            framing: self.framing.unwrap_or(Framing::Slip),
            limit: self.limit,
        }
    }

    fn next_prefixed(&mut self) -> Result<Option<Vec<u8>>, Error> {
        loop {
            let Some(size) = self.buf.first_chunk::<4>().map(|b| u32::from_be_bytes(*b)) else {
                return Ok(None);
            };
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > self.limit {
                return Err(self.too_large());
            }
            if self.buf.len() < 4 + size {
                return Ok(None);
            }
            self.buf.advance(4);
            if size > 0 {
                return Ok(Some(self.buf.split_to(size).to_vec()));
            }
        }
    }

    fn next_slip(&mut self) -> Result<Option<Vec<u8>>, Error> {
        loop {
            let Some(end) = self.buf.iter().position(|&b| b == END) else {
                // A frame's escaped form is at most twice its size: once more than twice the
                // limit is buffered without an END, the frame is surely too large.
                return match self.buf.len() > self.limit.saturating_mul(2) {
                    true => Err(self.too_large()),
                    false => Ok(None),
                };
            };
            let escaped = self.buf.split_to(end);
            self.buf.advance(1);
            if escaped.is_empty() {
                continue;
            }
            let packet = unescape(&escaped)?;
            if packet.len() > self.limit {
                return Err(self.too_large());
            }
            return Ok(Some(packet));
        }
    }
}

fn unescape(escaped: &[u8]) -> Result<Vec<u8>, Error> {
    let mut packet = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.iter();
    while let Some(&b) = bytes.next() {
        packet.push(match b {
            ESC => match bytes.next() {
                Some(&ESC_END) => END,
                Some(&ESC_ESC) => ESC,
                Some(&other) => return Err(Error::BadEscape(other)),
                None => return Err(Error::BadEscape(END)),
            },
            b => b,
        });
    }
    Ok(packet)
}

/// `packet` framed for a client that uses `framing`.
pub fn frame(framing: Framing, packet: &[u8]) -> Vec<u8> {
    match framing {
        Framing::LengthPrefixed => {
            let size = u32::try_from(packet.len()).unwrap_or(u32::MAX);
            let mut out = Vec::with_capacity(4 + packet.len());
            out.extend_from_slice(&size.to_be_bytes());
            out.extend_from_slice(packet);
            out
        }
        Framing::Slip => {
            let mut out = Vec::with_capacity(packet.len() + 2);
            out.push(END);
            for &b in packet {
                match b {
                    END => out.extend_from_slice(&[ESC, ESC_END]),
                    ESC => out.extend_from_slice(&[ESC, ESC_ESC]),
                    b => out.push(b),
                }
            }
            out.push(END);
            out
        }
    }
}

#[cfg(test)]
mod tests;
