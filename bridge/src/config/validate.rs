//! Raw config → checked [`Config`]: every rule a value must follow, each failure reported with
//! the file, the line and the field. The `[gateway]` rules live in `gateway.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kubeknobs_runtime::config_file::{self, line_of};
use toml::Spanned;

use super::raw::{RawConfig, RawMapping, RawOsc};
use super::{
    Config, DEFAULT_CLIENT_TIMEOUT, DEFAULT_FEEDBACK_PORT, DEFAULT_OSC_LISTEN, Error, Local,
    OscConfig, Result,
};
use crate::mapping::{Mapping, Mappings, Range};

/// The id used when neither `bridge_id` nor the hostname is available.
const FALLBACK_BRIDGE_ID: &str = "kubeknobs-bridge";

/// Where the text came from, to turn byte offsets into `file:line: field: message` errors.
pub(super) struct Source<'a> {
    text: &'a str,
    origin: &'a Path,
}

impl Source<'_> {
    pub(super) fn err(
        &self,
        offset: Option<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> Error {
        Error::Invalid {
            path: self.origin.to_owned(),
            line: offset.map(|o| line_of(self.text, o)),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub(super) fn at<T>(
        &self,
        value: &Spanned<T>,
        field: &str,
        message: impl Into<String>,
    ) -> Error {
        self.err(Some(value.span().start), field, message)
    }

    /// A path from the config, relative to the config file's directory unless absolute.
    pub(super) fn resolve(&self, path: &str) -> PathBuf {
        let dir = self.origin.parent().unwrap_or_else(|| Path::new(""));
        dir.join(path)
    }

    fn parse(&self) -> Result<RawConfig> {
        config_file::deserialize(self.text).map_err(|e| self.err(e.at, &e.field, e.message))
    }
}

pub(super) fn config(text: &str, origin: &Path) -> Result<Config> {
    let src = Source { text, origin };
    let raw = src.parse()?;
    let local = local_from(&src, &raw)?;
    let gateway = match &raw.gateway {
        Some(g) => super::gateway::gateway(&src, g)?,
        None => {
            return Err(src.err(
                None,
                "gateway",
                "missing table [gateway] (with url and token_file)",
            ));
        }
    };
    Ok(Config::new(local, gateway))
}

pub(super) fn local(text: &str, origin: &Path) -> Result<Local> {
    let src = Source { text, origin };
    let raw = src.parse()?;
    local_from(&src, &raw)
}

fn local_from(src: &Source<'_>, raw: &RawConfig) -> Result<Local> {
    let bridge_id = match &raw.bridge_id {
        Some(id) if id.get_ref().trim().is_empty() => {
            return Err(src.at(
                id,
                "bridge_id",
                "must not be empty (omit it to use the hostname)",
            ));
        }
        Some(id) => id.get_ref().trim().to_owned(),
        None => default_bridge_id(),
    };
    let ops_listen =
        match &raw.ops.listen {
            Some(l) => Some(l.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
                src.at(l, "ops.listen", "not a socket address like 127.0.0.1:9465")
            })?),
            None => None,
        };
    let osc = osc(src, &raw.osc)?;
    let midi = super::midi::midi(src, &raw.midi)?;
    let discovery = super::discovery::discovery(src, &raw.discovery, &bridge_id)?;
    let web = super::web::web(src, &raw.web)?;
    Ok(Local {
        bridge_id,
        osc,
        midi,
        ops_listen,
        discovery,
        web,
    })
}

fn default_bridge_id() -> String {
    hostname::get()
        .ok()
        .map(|h| h.to_string_lossy().trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| FALLBACK_BRIDGE_ID.to_owned())
}

fn osc(src: &Source<'_>, raw: &RawOsc) -> Result<OscConfig> {
    let listen = match &raw.listen {
        Some(l) => l
            .get_ref()
            .trim()
            .parse::<SocketAddr>()
            .map_err(|_| src.at(l, "osc.listen", "not a socket address like 0.0.0.0:8000"))?,
        None => DEFAULT_OSC_LISTEN,
    };
    let tcp_listen = match &raw.tcp_listen {
        Some(l) => Some(l.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
            src.at(
                l,
                "osc.tcp_listen",
                "not a socket address like 0.0.0.0:8000",
            )
        })?),
        None => None,
    };
    let feedback_port = match &raw.feedback_port {
        Some(p) if *p.get_ref() == 0 => {
            return Err(src.at(p, "osc.feedback_port", "must be 1..65535"));
        }
        Some(p) => *p.get_ref(),
        None => DEFAULT_FEEDBACK_PORT,
    };
    let client_timeout = match &raw.client_timeout_secs {
        Some(t) if *t.get_ref() == 0 => {
            return Err(src.at(t, "osc.client_timeout_secs", "must be at least 1"));
        }
        Some(t) => Duration::from_secs(*t.get_ref()),
        None => DEFAULT_CLIENT_TIMEOUT,
    };
    let presence_label = match &raw.presence_label {
        Some(l) if rosc::address::verify_address(l.get_ref()).is_err() => {
            return Err(src.at(
                l,
                "osc.presence_label",
                "must be an OSC address like /1/presence",
            ));
        }
        Some(l) => Some(l.get_ref().clone()),
        None => None,
    };
    let arm_address = match &raw.arm_address {
        Some(a) if rosc::address::verify_address(a.get_ref()).is_err() => {
            return Err(src.at(a, "osc.arm_address", "must be an OSC address like /1/push1"));
        }
        Some(a) => Some(a.get_ref().clone()),
        None => None,
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut list = Vec::with_capacity(raw.mappings.len());
    for (i, m) in raw.mappings.iter().enumerate() {
        let field = |name: &str| format!("osc.mappings[{i}].{name}");
        let mapping = mapping(src, m, &field)?;
        let address = m.address.get_ref().as_str();
        if let Some(first) = seen.insert(address, i) {
            return Err(src.at(
                &m.address,
                &field("address"),
                format!("duplicate address {address}, already mapped by osc.mappings[{first}]"),
            ));
        }
        if let Some(arm) = raw.arm_address.as_ref().filter(|a| a.get_ref() == address) {
            return Err(src.at(
                arm,
                "osc.arm_address",
                format!(
                    "{address} is also mapped by osc.mappings[{i}]; the arm control needs its own address"
                ),
            ));
        }
        list.push(mapping);
    }
    Ok(OscConfig {
        listen,
        tcp_listen,
        feedback_port,
        client_timeout,
        presence_label,
        arm_address,
        mappings: Mappings::new(list),
    })
}

/// A mapping's `target`, trimmed; it must name a gateway catalog target.
pub(super) fn target_name<'a>(
    src: &Source<'_>,
    target: &'a Spanned<String>,
    field: &str,
) -> Result<&'a str> {
    let name = target.get_ref().trim();
    if name.is_empty() {
        return Err(src.at(target, field, "must name a gateway catalog target"));
    }
    Ok(name)
}

fn mapping(src: &Source<'_>, m: &RawMapping, field: &dyn Fn(&str) -> String) -> Result<Mapping> {
    const ADDRESS_RULE: &str =
        "must be an OSC address like /1/fader1 (starts with '/', no spaces or # * , ? [ ] { })";
    let address = m.address.get_ref();
    if rosc::address::verify_address(address).is_err() {
        return Err(src.at(&m.address, &field("address"), ADDRESS_RULE));
    }
    let target = target_name(src, &m.target, &field("target"))?;
    let range = match &m.range {
        Some(r) => {
            let [lo, hi] = *r.get_ref();
            Range::new(lo, hi).map_err(|e| src.at(r, &field("range"), e.to_string()))?
        }
        None => Range::default(),
    };
    let label = match &m.label {
        Some(l) if rosc::address::verify_address(l.get_ref()).is_err() => {
            return Err(src.at(l, &field("label"), ADDRESS_RULE));
        }
        Some(l) if l.get_ref() == address => {
            return Err(src.at(
                l,
                &field("label"),
                "must differ from the mapping's own address",
            ));
        }
        Some(l) => Some(l.get_ref().clone()),
        None => None,
    };
    Ok(Mapping {
        address: address.clone(),
        target: target.to_owned(),
        range,
        label,
    })
}
