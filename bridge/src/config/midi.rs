//! `[midi]` rules: port patterns, serial devices, and `[[midi.mappings]]`, each failure naming
//! the file, the line and the field.

use std::collections::HashMap;
use std::time::Duration;

use super::Result;
use super::raw::{RawMidi, RawMidiMapping};
use super::validate::Source;
use crate::mapping::{Mapping, Range};
use crate::midi::binding::{Binding, Encoder};
use crate::midi::control::{Control, Mode};
use crate::midi::{DEFAULT_RESCAN, MidiConfig, SerialConfig};

impl MidiConfig {
    pub(super) fn summary(&self) -> String {
        if self.is_empty() && self.bindings.is_empty() {
            return "midi        none\n".to_owned();
        }
        let mut out = format!(
            "midi        inputs {:?}, outputs {:?}, rescan every {} ms\n",
            self.inputs,
            self.outputs,
            self.rescan.as_millis()
        );
        for s in &self.serial {
            out.push_str(&format!("  serial {}", s.device.display()));
            if let Some(b) = s.baud {
                out.push_str(&format!(" at {b} baud"));
            }
            if s.feedback {
                out.push_str(", feedback on");
            }
            out.push('\n');
        }
        out.push_str(&format!("midi maps   {}\n", self.bindings.len()));
        for b in &self.bindings {
            out.push_str(&format!(
                "  {} -> {}: {}\n",
                b.mapping.address,
                b.mapping.target,
                b.describe()
            ));
        }
        out
    }
}

pub(super) fn midi(src: &Source<'_>, raw: &RawMidi) -> Result<MidiConfig> {
    let patterns = |list: &[toml::Spanned<String>], name: &str| -> Result<Vec<String>> {
        list.iter()
            .enumerate()
            .map(|(i, p)| match p.get_ref().trim() {
                "" => Err(src.at(
                    p,
                    &format!("midi.{name}[{i}]"),
                    "must be part of a port name (see `kubeknobs-bridge ports`)",
                )),
                t => Ok(t.to_owned()),
            })
            .collect()
    };
    let rescan = match &raw.rescan_ms {
        Some(r) if !(100..=60_000).contains(r.get_ref()) => {
            return Err(src.at(r, "midi.rescan_ms", "must be 100..60000"));
        }
        Some(r) => Duration::from_millis(*r.get_ref()),
        None => DEFAULT_RESCAN,
    };
    let mut serial = Vec::with_capacity(raw.serial.len());
    for (i, s) in raw.serial.iter().enumerate() {
        if s.device.get_ref().trim().is_empty() {
            return Err(src.at(
                &s.device,
                &format!("midi.serial[{i}].device"),
                "must name a device file",
            ));
        }
        if let Some(b) = &s.baud
            && *b.get_ref() == 0
        {
            return Err(src.at(
                b,
                &format!("midi.serial[{i}].baud"),
                "must be above 0 (31250 for DIN MIDI)",
            ));
        }
        serial.push(SerialConfig {
            device: src.resolve(s.device.get_ref().trim()),
            baud: s.baud.as_ref().map(|b| *b.get_ref()),
            feedback: s.feedback.unwrap_or(false),
        });
    }
    let mut seen: HashMap<(Control, Option<u8>), usize> = HashMap::new();
    let mut bindings = Vec::with_capacity(raw.mappings.len());
    for (i, m) in raw.mappings.iter().enumerate() {
        let field = |name: &str| format!("midi.mappings[{i}].{name}");
        let b = binding(src, m, &field)?;
        if let Some(first) = seen.insert((b.control, b.channel), i) {
            return Err(src.at(
                &m.control,
                &field("control"),
                format!(
                    "{} is already mapped by midi.mappings[{first}]",
                    b.mapping.address
                ),
            ));
        }
        bindings.push(b);
    }
    Ok(MidiConfig {
        inputs: patterns(&raw.inputs, "inputs")?,
        outputs: patterns(&raw.outputs, "outputs")?,
        rescan,
        serial,
        bindings,
    })
}

fn binding(
    src: &Source<'_>,
    m: &RawMidiMapping,
    field: &dyn Fn(&str) -> String,
) -> Result<Binding> {
    let control = control(src, m, field)?;
    let kind = control.kind();
    let channel = match &m.channel {
        Some(c) if !(1..=16).contains(c.get_ref()) => {
            return Err(src.at(
                c,
                &field("channel"),
                "must be 1..16 (omit it for any channel)",
            ));
        }
        Some(c) => Some(c.get_ref() - 1),
        None => None,
    };
    let mode = match &m.mode {
        None => control.default_mode(),
        Some(mode) if control.takes(*mode.get_ref()) => *mode.get_ref(),
        Some(mode) => {
            let message = match control {
                Control::Note(_) => "a note is a button or a toggle".to_owned(),
                _ => format!("{kind} is absolute only (the other modes are for cc and note)"),
            };
            return Err(src.at(mode, &field("mode"), message));
        }
    };
    let pickup = match &m.pickup {
        Some(p) if *p.get_ref() && mode != Mode::Absolute => {
            return Err(src.at(p, &field("pickup"), "applies to absolute controls only"));
        }
        Some(p) => *p.get_ref(),
        None => false,
    };
    let encoder = encoder(src, m, matches!(mode, Mode::Relative(_)), field)?;
    let target = super::validate::target_name(src, &m.target, &field("target"))?;
    let address = match channel {
        Some(c) => format!("midi ch{} {}", c + 1, short(control)),
        None => format!("midi {}", short(control)),
    };
    Ok(Binding {
        control,
        channel,
        mode,
        invert: m.invert.unwrap_or(false),
        curve: m.curve.unwrap_or_default(),
        pickup,
        feedback: m.feedback.unwrap_or(true),
        encoder,
        mapping: Mapping {
            address,
            target: target.to_owned(),
            range: Range::default(),
            label: None,
        },
    })
}

/// `control` and its `number`, which every kind but `pitchbend` and `program` needs.
fn control(
    src: &Source<'_>,
    m: &RawMidiMapping,
    field: &dyn Fn(&str) -> String,
) -> Result<Control> {
    let kind = *m.control.get_ref();
    match (kind.max_number(), &m.number) {
        (Some(max), Some(n)) if *n.get_ref() <= max => Ok(kind.with(*n.get_ref())),
        (Some(max), Some(n)) => {
            Err(src.at(n, &field("number"), format!("must be 0..{max} for {kind}")))
        }
        (Some(max), None) => Err(src.at(
            &m.control,
            &field("number"),
            format!("{kind} needs a number (0..{max})"),
        )),
        (None, Some(n)) => Err(src.at(n, &field("number"), format!("{kind} has no number"))),
        (None, None) => Ok(kind.with(0)),
    }
}

/// `step` and `acceleration`, which only a `relative` encoder has.
fn encoder(
    src: &Source<'_>,
    m: &RawMidiMapping,
    relative: bool,
    field: &dyn Fn(&str) -> String,
) -> Result<Encoder> {
    let step = match &m.step {
        Some(s) if !relative => {
            return Err(src.at(s, &field("step"), "applies to relative encoders only"));
        }
        Some(s) if !(s.get_ref().is_finite() && *s.get_ref() > 0.0) => {
            return Err(src.at(
                s,
                &field("step"),
                "must be a number above 0 (target units per click)",
            ));
        }
        s => s.as_ref().map(|s| *s.get_ref()),
    };
    let acceleration = match &m.acceleration {
        Some(a) if !relative => {
            return Err(src.at(
                a,
                &field("acceleration"),
                "applies to relative encoders only",
            ));
        }
        Some(a) if !(a.get_ref().is_finite() && (1.0..=100.0).contains(a.get_ref())) => {
            return Err(src.at(
                a,
                &field("acceleration"),
                "must be 1..100 (the largest factor)",
            ));
        }
        a => a.as_ref().map(|a| *a.get_ref()),
    };
    Ok(Encoder { step, acceleration })
}

/// `cc7`, `cc14 1`, `nrpn 300`, `note36`, `pitchbend`, `program`.
fn short(control: Control) -> String {
    let kind = control.kind();
    match (control, control.number()) {
        (Control::Cc(_) | Control::Note(_), Some(n)) => format!("{kind}{n}"),
        (_, Some(n)) => format!("{kind} {n}"),
        (_, None) => kind.to_string(),
    }
}
