//! The config file exactly as written: serde structs with spans, so that validation can name the
//! line of every field it refuses. Nothing here is checked beyond TOML types and the names of
//! closed sets (`control`, `mode`, `curve`), which serde reads into their enums.

use serde::Deserialize;
use toml::Spanned;

use crate::midi::binding::Curve;
use crate::midi::control::{ControlKind, Mode};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub bridge_id: Option<Spanned<String>>,
    pub gateway: Option<Spanned<RawGateway>>,
    #[serde(default)]
    pub osc: RawOsc,
    #[serde(default)]
    pub midi: RawMidi,
    #[serde(default)]
    pub ops: RawOps,
    #[serde(default)]
    pub discovery: RawDiscovery,
    #[serde(default)]
    pub web: RawWeb,
}

/// `[web]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub listen: Option<Spanned<String>>,
    pub pin: Option<Spanned<String>>,
}

/// `[discovery]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDiscovery {
    pub mdns: Option<bool>,
    pub name: Option<Spanned<String>>,
}

/// `[ops]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOps {
    pub listen: Option<Spanned<String>>,
}

/// `[gateway]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    pub url: Spanned<String>,
    pub ca: Option<Spanned<String>>,
    pub token_file: Spanned<String>,
    pub domain: Option<Spanned<String>>,
    pub resend_within_ms: Option<Spanned<u64>>,
}

/// `[osc]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOsc {
    pub listen: Option<Spanned<String>>,
    pub tcp_listen: Option<Spanned<String>>,
    pub feedback_port: Option<Spanned<u16>>,
    pub client_timeout_secs: Option<Spanned<u64>>,
    pub presence_label: Option<Spanned<String>>,
    pub arm_address: Option<Spanned<String>>,
    #[serde(default)]
    pub mappings: Vec<RawMapping>,
}

/// One `[[osc.mappings]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMapping {
    pub address: Spanned<String>,
    pub target: Spanned<String>,
    pub range: Option<Spanned<[f64; 2]>>,
    pub label: Option<Spanned<String>>,
}

/// `[midi]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMidi {
    #[serde(default)]
    pub inputs: Vec<Spanned<String>>,
    #[serde(default)]
    pub outputs: Vec<Spanned<String>>,
    pub rescan_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub serial: Vec<RawSerial>,
    #[serde(default)]
    pub mappings: Vec<RawMidiMapping>,
}

/// One `[[midi.serial]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSerial {
    pub device: Spanned<String>,
    pub baud: Option<Spanned<u32>>,
    pub feedback: Option<bool>,
}

/// One `[[midi.mappings]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMidiMapping {
    pub control: Spanned<ControlKind>,
    pub number: Option<Spanned<u16>>,
    pub channel: Option<Spanned<u8>>,
    pub target: Spanned<String>,
    pub mode: Option<Spanned<Mode>>,
    pub invert: Option<bool>,
    pub curve: Option<Curve>,
    pub pickup: Option<Spanned<bool>>,
    pub feedback: Option<bool>,
    pub step: Option<Spanned<f64>>,
    pub acceleration: Option<Spanned<f64>>,
}
