//! `[midi]` once validated (by `crate::config`): which ports and devices to open, and the
//! mappings of their controls.

use std::path::PathBuf;
use std::time::Duration;

use super::binding::Binding;

/// Default `midi.rescan_ms`: how often MIDI ports are listed to find (re)plugged devices.
pub const DEFAULT_RESCAN: Duration = Duration::from_millis(1000);

/// The MIDI side of the bridge.
#[derive(Debug, Clone)]
pub struct MidiConfig {
    /// Port-name patterns of MIDI inputs to open (case-insensitive substrings).
    pub inputs: Vec<String>,
    /// Port-name patterns of MIDI outputs that get feedback.
    pub outputs: Vec<String>,
    /// How often ports are listed to pick up devices plugged in after start or replugged.
    pub rescan: Duration,
    /// Raw MIDI byte streams from serial devices or device files.
    pub serial: Vec<SerialConfig>,
    /// Control → target mappings, unique by control and channel.
    pub bindings: Vec<Binding>,
}

impl Default for MidiConfig {
    fn default() -> MidiConfig {
        MidiConfig {
            inputs: Vec::new(),
            outputs: Vec::new(),
            rescan: DEFAULT_RESCAN,
            serial: Vec::new(),
            bindings: Vec::new(),
        }
    }
}

impl MidiConfig {
    /// True when there is nothing MIDI to open.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.outputs.is_empty() && self.serial.is_empty()
    }
}

/// One `[[midi.serial]]`: a device that carries raw MIDI bytes.
#[derive(Debug, Clone)]
pub struct SerialConfig {
    /// The device file, e.g. `/dev/ttyAMA0`, `/dev/ttyUSB0`, `/dev/snd/midiC1D0`.
    pub device: PathBuf,
    /// Baud rate to set when the device is a terminal (31250 for DIN MIDI); `None` leaves it.
    pub baud: Option<u32>,
    /// Also write feedback to the device.
    pub feedback: bool,
}
