//! Ready-made layouts for OSC apps, from a bridge config: `kubeknobs-bridge layout --format
//! open-stage-control` writes an Open Stage Control session (JSON) with, for each OSC mapping, a
//! fader on its address (its range, a touch address `<address>/z` for TouchOSC-style touch and
//! release) and a text widget on its label address; a presence text and a momentary arm button
//! when the config has `osc.presence_label` and `osc.arm_address`. Load it in Open Stage Control
//! (menu → Load session), point its `send` at the bridge's OSC port and its port at
//! `osc.feedback_port`, and every control talks to the bridge and shows its feedback.

use serde_json::{Value, json};

use crate::config::OscConfig;

/// The layout formats `layout --format` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An Open Stage Control (1.x) session file.
    OpenStageControl,
}

/// Width of one column of widgets in the Open Stage Control layout, in its pixels.
const COLUMN: i64 = 110;
const FADER_HEIGHT: i64 = 300;
const TEXT_HEIGHT: i64 = 40;
const MARGIN: i64 = 10;

/// The session for `osc` in `format`, as pretty-printed JSON.
pub fn render(osc: &OscConfig, format: Format) -> String {
    match format {
        Format::OpenStageControl => {
            serde_json::to_string_pretty(&open_stage_control(osc)).unwrap_or_default()
        }
    }
}

fn open_stage_control(osc: &OscConfig) -> Value {
    let mut widgets = Vec::new();
    let mut top = MARGIN;
    if let Some(presence) = &osc.presence_label {
        widgets.push(json!({
            "type": "text", "id": "presence", "label": false,
            "top": top, "left": MARGIN, "width": 4 * COLUMN, "height": TEXT_HEIGHT,
            "address": presence, "value": "", "default": "",
        }));
        top += TEXT_HEIGHT + MARGIN;
    }
    if let Some(arm) = &osc.arm_address {
        widgets.push(json!({
            "type": "button", "id": "arm", "label": "ARM", "mode": "push",
            "top": top, "left": MARGIN, "width": COLUMN, "height": TEXT_HEIGHT * 2,
            "on": 1, "off": 0, "address": arm,
        }));
        top += TEXT_HEIGHT * 2 + MARGIN;
    }
    for (i, m) in osc.mappings.iter().enumerate() {
        let left = MARGIN + i64::try_from(i).unwrap_or(0) * (COLUMN + MARGIN);
        widgets.push(json!({
            "type": "fader", "id": widget_id("fader", &m.address), "label": m.target,
            "top": top, "left": left, "width": COLUMN, "height": FADER_HEIGHT,
            "range": {"min": m.range.lo(), "max": m.range.hi()},
            "address": m.address, "onValue": touch_script(&m.address),
            "design": "default", "pips": true,
        }));
        if let Some(label) = &m.label {
            widgets.push(json!({
                "type": "text", "id": widget_id("label", label), "label": false,
                "top": top + FADER_HEIGHT + MARGIN, "left": left,
                "width": COLUMN, "height": TEXT_HEIGHT,
                "address": label, "value": m.target, "default": m.target,
            }));
        }
    }
    json!({
        "createdWith": "Open Stage Control",
        "version": "1.26.2",
        "type": "session",
        "content": {
            "type": "root", "id": "root", "address": "auto", "layout": "default",
            "variables": {}, "widgets": widgets, "tabs": [],
        },
    })
}

/// The fader script that sends `<address>/z` on touch (true) and release (false), written the
/// way Open Stage Control itself converts an old session's `touchAddress` (its 1.3.0 and
/// 1.13.2 session converters): `touch` is set only when the script runs for a touch or release.
fn touch_script(address: &str) -> String {
    // A JSON string is a JavaScript string literal, whatever the address holds.
    let touch = Value::String(format!("{address}/z"));
    format!("if (touch !== undefined) {{\n  send({touch}, touch)\n}}")
}

/// A widget id from an OSC address: `/1/fader1` → `fader_1_fader1`.
fn widget_id(kind: &str, address: &str) -> String {
    let tail: String = address
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{kind}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Local;

    #[test]
    fn one_fader_per_mapping_with_its_touch_and_label_addresses() {
        let text = r#"
            bridge_id = "b"
            [osc]
            presence_label = "/1/presence"
            arm_address = "/1/push1"
            [[osc.mappings]]
            address = "/1/fader1"
            target = "web"
            label = "/1/label1"
            [[osc.mappings]]
            address = "/1/fader2"
            target = "db"
            range = [0.0, 127.0]
        "#;
        let local = Local::parse(text, std::path::Path::new("b.toml")).expect("config");
        let session: Value =
            serde_json::from_str(&render(&local.osc, Format::OpenStageControl)).expect("json");
        assert_eq!(session["type"], "session");
        assert_eq!(session["content"]["type"], "root");
        let widgets = session["content"]["widgets"].as_array().expect("widgets");
        let faders: Vec<&Value> = widgets.iter().filter(|w| w["type"] == "fader").collect();
        assert_eq!(faders.len(), 2);
        assert_eq!(faders[0]["address"], "/1/fader1");
        assert_eq!(
            faders[0]["onValue"],
            "if (touch !== undefined) {\n  send(\"/1/fader1/z\", touch)\n}"
        );
        assert_eq!(faders[1]["range"]["max"], 127.0);
        let addresses: Vec<&str> = widgets
            .iter()
            .filter_map(|w| w["address"].as_str())
            .collect();
        assert!(addresses.contains(&"/1/label1"));
        assert!(addresses.contains(&"/1/presence"));
        assert!(addresses.contains(&"/1/push1"));
        let ids: std::collections::HashSet<&str> =
            widgets.iter().filter_map(|w| w["id"].as_str()).collect();
        assert_eq!(ids.len(), widgets.len(), "widget ids are unique");
    }
}
