//! Good and bad config files, each bad one checked for the file, line and field it names.

use std::path::{Path, PathBuf};

use super::*;

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

/// A temp dir holding `token.txt` and `certs/ca.pem`, and the config path inside it.
fn dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("token.txt"), "  s3cret-token\n").expect("write token");
    std::fs::create_dir(dir.path().join("certs")).expect("mkdir");
    std::fs::write(dir.path().join("certs/ca.pem"), CA).expect("write ca");
    let path = dir.path().join("bridge.toml");
    (dir, path)
}

const GOOD: &str = r#"bridge_id = "pi-stage-left"
[gateway]
url = "https://10.0.0.5:50051"
ca = "certs/ca.pem"
token_file = "token.txt"
domain = "gateway.local"
[osc]
listen = "0.0.0.0:8001"
feedback_port = 9001
client_timeout_secs = 60
[[osc.mappings]]
address = "/1/fader1"
target = "web"
label = "/1/label1"
[[osc.mappings]]
address = "/1/fader2"
target = "api"
range = [0.0, 127.0]
"#;

fn parse(text: &str) -> (Result<Config>, tempfile::TempDir) {
    let (dir, path) = dir();
    (Config::parse(text, &path), dir)
}

/// Parses `text` expecting an error, and returns it rendered with the temp dir stripped.
fn error(text: &str) -> String {
    let (dir, path) = dir();
    let err = Config::parse(text, &path).expect_err("config should be refused");
    err.to_string()
        .replace(&format!("{}/", dir.path().display()), "")
}

#[test]
fn parses_a_full_config() {
    let (config, _dir) = parse(GOOD);
    let config = config.expect("valid config");
    assert_eq!(config.bridge_id, "pi-stage-left");
    assert_eq!(config.gateway.url, "https://10.0.0.5:50051");
    assert_eq!(config.gateway.ca_pem.as_deref(), Some(CA.as_bytes()));
    assert_eq!(config.gateway.token, "s3cret-token");
    assert_eq!(config.gateway.domain.as_deref(), Some("gateway.local"));
    assert_eq!(config.osc.listen.to_string(), "0.0.0.0:8001");
    assert_eq!(config.osc.feedback_port, 9001);
    assert_eq!(config.osc.client_timeout.as_secs(), 60);
    let fader1 = config.osc.mappings.by_address("/1/fader1").expect("mapped");
    assert_eq!(fader1.target, "web");
    assert_eq!(fader1.range, crate::mapping::Range::default());
    assert_eq!(fader1.label.as_deref(), Some("/1/label1"));
    let fader2 = config.osc.mappings.by_address("/1/fader2").expect("mapped");
    assert_eq!((fader2.range.lo(), fader2.range.hi()), (0.0, 127.0));
    assert!(
        !format!("{config:?}").contains("s3cret"),
        "Debug must not leak the token"
    );
    assert!(config.summary().contains("/1/fader2 -> api [0, 127]"));
}

#[test]
fn applies_defaults() {
    let text = "[gateway]\nurl = \"http://127.0.0.1:50051\"\ntoken_file = \"token.txt\"\n";
    let (config, _dir) = parse(text);
    let config = config.expect("valid config");
    assert!(!config.bridge_id.is_empty());
    assert_eq!(config.gateway.ca_pem, None);
    assert_eq!(config.osc.listen, DEFAULT_OSC_LISTEN);
    assert_eq!(config.osc.feedback_port, 9000);
    assert_eq!(config.osc.client_timeout.as_secs(), 300);
    assert!(config.osc.mappings.is_empty());
    assert_eq!(config.osc.tcp_listen, None, "no OSC over TCP unless asked");
}

#[test]
fn osc_over_tcp_is_configured_and_checked() {
    let text = GOOD.replace(
        "feedback_port = 9001",
        "tcp_listen = \"0.0.0.0:8001\"\nfeedback_port = 9001",
    );
    let (config, _dir) = parse(&text);
    let config = config.expect("valid config");
    assert_eq!(config.osc.tcp_listen, Some("0.0.0.0:8001".parse().unwrap()));
    assert!(config.summary().contains("osc tcp     listen 0.0.0.0:8001"));
    let msg = error(&text.replace("\"0.0.0.0:8001\"\nfeedback", "\"port 8001\"\nfeedback"));
    assert!(
        msg.starts_with("bridge.toml:9: osc.tcp_listen: not a socket address"),
        "{msg}"
    );
}

#[test]
fn the_web_surface_is_off_unless_configured_and_checked() {
    let (config, _dir) = parse(GOOD);
    let config = config.expect("valid config");
    assert_eq!(config.web, WebConfig::default());
    assert!(config.summary().contains("web         off"));
    let on = format!("{GOOD}\n[web]\nlisten = \"0.0.0.0:8080\"\npin = \" 4711 \"\n");
    let (config, _dir) = parse(&on);
    let config = config.expect("valid config");
    assert_eq!(config.web.listen, Some("0.0.0.0:8080".parse().unwrap()));
    assert_eq!(config.web.pin.as_deref(), Some("4711"));
    assert!(config.summary().contains("http://0.0.0.0:8080/ with a PIN"));
    assert!(
        !format!("{:?}", config.web).contains("4711"),
        "Debug hides the PIN"
    );
    let web_line = GOOD.lines().count() + 3;
    for (bad, field, message) in [
        (
            "listen = \"port 8080\"",
            "web.listen",
            "not a socket address",
        ),
        (
            "listen = \"0.0.0.0:8080\"\npin = \"  \"",
            "web.pin",
            "must not be empty",
        ),
        ("pin = \"4711\"", "web.pin", "is set but web.listen is not"),
        (
            "listen = \"0.0.0.0:8080\"\nport = 1",
            "web",
            "unknown field `port`",
        ),
    ] {
        let msg = error(&format!("{GOOD}\n[web]\n{bad}\n"));
        assert!(msg.contains(field) && msg.contains(message), "{msg}");
        if !bad.contains('\n') {
            assert!(
                msg.starts_with(&format!("bridge.toml:{web_line}:")),
                "{msg}"
            );
        }
    }
    let long = format!(
        "{GOOD}\n[web]\nlisten = \"0.0.0.0:8080\"\npin = \"{}\"\n",
        "9".repeat(65)
    );
    assert!(error(&long).contains("at most 64 characters"));
}

#[test]
fn allows_plaintext_to_loopback_only() {
    for url in ["http://localhost:1", "http://127.0.0.9:1", "http://[::1]:1"] {
        let text = format!("[gateway]\nurl = \"{url}\"\ntoken_file = \"token.txt\"\n");
        assert!(parse(&text).0.is_ok(), "{url} should be allowed");
    }
    let text = "[gateway]\nurl = \"http://10.0.0.5:50051\"\ntoken_file = \"token.txt\"\n";
    let msg = error(text);
    assert!(
        msg.starts_with("bridge.toml:2: gateway.url: plaintext http:// is only allowed"),
        "{msg}"
    );
}

#[test]
fn names_file_line_and_field() {
    let bad_range = GOOD.replace("range = [0.0, 127.0]", "range = [1.0, 0.0]");
    assert_eq!(
        error(&bad_range),
        "bridge.toml:18: osc.mappings[1].range: lower bound must be below upper bound (got [1, 0])"
    );
    let dup = GOOD.replace("/1/fader2", "/1/fader1");
    assert_eq!(
        error(&dup),
        "bridge.toml:16: osc.mappings[1].address: duplicate address /1/fader1, already mapped by \
         osc.mappings[0]"
    );
    let empty_target = GOOD.replace("target = \"api\"", "target = \" \"");
    assert!(error(&empty_target).starts_with("bridge.toml:17: osc.mappings[1].target: "));
    let no_slash = GOOD.replace("\"/1/fader2\"", "\"1/fader2\"");
    assert!(
        error(&no_slash).starts_with("bridge.toml:16: osc.mappings[1].address: must be an OSC")
    );
    let bad_label = GOOD.replace("/1/label1", "label 1");
    assert!(error(&bad_label).starts_with("bridge.toml:14: osc.mappings[0].label: "));
}

#[test]
fn reports_unreadable_files() {
    let msg = error(&GOOD.replace("token.txt", "missing.txt"));
    assert!(
        msg.starts_with("bridge.toml:5: gateway.token_file: cannot read "),
        "{msg}"
    );
    assert!(msg.contains("missing.txt"), "{msg}");
    let msg = error(&GOOD.replace("certs/ca.pem", "token.txt"));
    assert!(msg.starts_with("bridge.toml:4: gateway.ca: "), "{msg}");
    assert!(msg.ends_with("token.txt holds no PEM certificate"), "{msg}");
    let msg = error(&GOOD.replace("ca = \"certs/ca.pem\"\n", ""));
    assert!(
        msg.starts_with("bridge.toml:2: gateway.ca: required"),
        "{msg}"
    );
}

#[test]
fn reports_schema_errors_with_their_path() {
    let msg = error(&GOOD.replace("feedback_port = 9001", "feedback_port = 90000"));
    assert!(
        msg.starts_with("bridge.toml:9: osc.feedback_port: "),
        "{msg}"
    );
    let msg = error(&GOOD.replace("feedback_port", "feedbackport"));
    assert!(
        msg.starts_with("bridge.toml:9: osc.feedbackport: unknown field"),
        "{msg}"
    );
    let msg = error(&GOOD.replace("range = [0.0, 127.0]", "range = [0.0, \"x\"]"));
    assert!(
        msg.starts_with("bridge.toml:18: osc.mappings[1].range[1]: invalid type"),
        "{msg}"
    );
    let msg = error(&GOOD.replace("target = \"api\"\n", ""));
    assert!(
        msg.contains("osc.mappings[1]: missing field `target`"),
        "{msg}"
    );
    let msg = error("[gateway\n");
    assert!(msg.starts_with("bridge.toml:1: "), "{msg}");
    let msg = error("[osc]\n");
    assert!(
        msg.starts_with("bridge.toml: gateway: missing table [gateway]"),
        "{msg}"
    );
}

#[test]
fn refuses_out_of_range_numbers() {
    let msg = error(&GOOD.replace("feedback_port = 9001", "feedback_port = 0"));
    assert!(
        msg.starts_with("bridge.toml:9: osc.feedback_port: must be"),
        "{msg}"
    );
    let msg = error(&GOOD.replace("client_timeout_secs = 60", "client_timeout_secs = 0"));
    assert!(
        msg.starts_with("bridge.toml:10: osc.client_timeout_secs: "),
        "{msg}"
    );
    let msg = error(&GOOD.replace("0.0.0.0:8001", "0.0.0.0"));
    assert!(msg.starts_with("bridge.toml:8: osc.listen: "), "{msg}");
}

#[test]
fn local_ignores_the_gateway_table() {
    let (_dir, path) = dir();
    let text = GOOD.replace("token.txt", "missing.txt");
    let local = Local::parse(&text, &path).expect("local side is valid");
    assert_eq!(local.bridge_id, "pi-stage-left");
    assert_eq!(local.osc.mappings.len(), 2);
    let local = Local::parse(
        "[[osc.mappings]]\naddress = \"/a\"\ntarget = \"web\"\n",
        Path::new("x.toml"),
    )
    .expect("no gateway needed");
    assert_eq!(local.osc.mappings.len(), 1);
}

#[test]
fn load_names_a_missing_file() {
    let err = Config::load(Path::new("/nonexistent/bridge.toml")).expect_err("no such file");
    assert!(
        err.to_string()
            .starts_with("/nonexistent/bridge.toml: cannot read config file")
    );
}

const MIDI: &str = r#"
[gateway]
url = "http://127.0.0.1:50051"
token_file = "token.txt"
[midi]
inputs = ["nanoKONTROL2"]
outputs = ["X-Touch"]
rescan_ms = 500
[[midi.serial]]
device = "/dev/ttyAMA0"
baud = 31250
feedback = true
[[midi.mappings]]
control = "cc"
number = 7
channel = 2
target = "web"
pickup = true
curve = "log"
invert = true
[[midi.mappings]]
control = "cc"
number = 16
target = "api"
mode = "relative-twos-complement"
step = 2
acceleration = 4
[[midi.mappings]]
control = "note"
number = 36
target = "api"
mode = "toggle"
feedback = false
[[midi.mappings]]
control = "nrpn"
number = 300
target = "web"
[[midi.mappings]]
control = "pitchbend"
channel = 1
target = "web"
"#;

#[test]
fn parses_midi() {
    use crate::midi::binding::Curve;
    use crate::midi::control::{Control, Encoding, Mode};
    let (config, _dir) = parse(MIDI);
    let midi = config.expect("valid config").midi;
    assert_eq!(midi.inputs, ["nanoKONTROL2"]);
    assert_eq!(midi.outputs, ["X-Touch"]);
    assert_eq!(midi.rescan, Duration::from_millis(500));
    assert_eq!(midi.serial[0].baud, Some(31250));
    assert!(midi.serial[0].feedback);
    let b = &midi.bindings;
    assert_eq!(b.len(), 5);
    assert_eq!((b[0].control, b[0].channel), (Control::Cc(7), Some(1)));
    assert!(b[0].pickup && b[0].invert && b[0].curve == Curve::Log && b[0].feedback);
    assert_eq!(b[0].mapping.address, "midi ch2 cc7");
    assert_eq!(b[1].mode, Mode::Relative(Encoding::TwosComplement));
    assert_eq!(b[1].channel, None);
    assert_eq!(
        (b[1].encoder.step, b[1].encoder.acceleration),
        (Some(2.0), Some(4.0))
    );
    assert_eq!((b[2].mode, b[2].feedback), (Mode::Toggle, false));
    assert_eq!(b[3].control, Control::Nrpn(300));
    assert_eq!(b[4].control, Control::PitchBend);
}

#[test]
fn check_prints_every_midi_setting_that_changes_behaviour() {
    let (config, _dir) = parse(MIDI);
    let summary = config.expect("valid config").summary();
    for want in [
        "midi ch2 cc7 -> web: absolute, pickup, curve log, inverted, feedback",
        "midi cc16 -> api: relative-twos-complement, step 2 per click, acceleration up to 4x, feedback",
        "midi note36 -> api: toggle, no feedback",
        "midi nrpn 300 -> web: absolute, no pickup, curve linear, feedback",
        "serial /dev/ttyAMA0 at 31250 baud, feedback on",
    ] {
        assert!(summary.contains(want), "{want:?} missing from\n{summary}");
    }
}

#[test]
fn step_and_acceleration_are_for_encoders_only() {
    let with = |extra: &str| format!("{MIDI}{extra}");
    let line = MIDI.lines().count() + 1;
    assert_eq!(
        error(&with(
            "[[midi.mappings]]\ncontrol = \"cc\"\nnumber = 1\ntarget = \"web\"\nstep = 2\n"
        )),
        format!(
            "bridge.toml:{}: midi.mappings[5].step: applies to relative encoders only",
            line + 4
        )
    );
    assert_eq!(
        error(&with(
            "[[midi.mappings]]\ncontrol = \"cc\"\nnumber = 1\ntarget = \"web\"\nmode = \"relative-binary-offset\"\nstep = 0\n"
        )),
        format!(
            "bridge.toml:{}: midi.mappings[5].step: must be a number above 0 (target units per click)",
            line + 5
        )
    );
    assert_eq!(
        error(&with(
            "[[midi.mappings]]\ncontrol = \"cc\"\nnumber = 1\ntarget = \"web\"\nmode = \"relative-binary-offset\"\nacceleration = 0.5\n"
        )),
        format!(
            "bridge.toml:{}: midi.mappings[5].acceleration: must be 1..100 (the largest factor)",
            line + 5
        )
    );
}

#[test]
fn reports_midi_errors_with_file_line_and_field() {
    let with = |extra: &str| format!("{MIDI}{extra}");
    let line = MIDI.lines().count() + 1;
    assert_eq!(
        error(&with(
            "[[midi.mappings]]\ncontrol = \"knob\"\ntarget = \"web\"\n"
        )),
        format!(
            "bridge.toml:{}: midi.mappings[5].control: must be one of cc, cc14, nrpn, note, pitchbend, program",
            line + 1
        )
    );
    assert_eq!(
        error(&with(
            "[[midi.mappings]]\ncontrol = \"cc\"\nnumber = 128\ntarget = \"web\"\n"
        )),
        format!(
            "bridge.toml:{}: midi.mappings[5].number: must be 0..127 for cc",
            line + 2
        )
    );
    assert_eq!(
        error(&with(
            "[[midi.mappings]]\ncontrol = \"cc\"\nnumber = 7\nchannel = 17\ntarget = \"web\"\n"
        )),
        format!(
            "bridge.toml:{}: midi.mappings[5].channel: must be 1..16 (omit it for any channel)",
            line + 3
        )
    );
    assert_eq!(
        error(&with(
            "[[midi.mappings]]\ncontrol = \"cc\"\nnumber = 7\nchannel = 2\ntarget = \"x\"\n"
        )),
        format!(
            "bridge.toml:{}: midi.mappings[5].control: midi ch2 cc7 is already mapped by midi.mappings[0]",
            line + 1
        )
    );
    assert_eq!(
        error(&with(
            "[[midi.mappings]]\ncontrol = \"note\"\nnumber = 1\nmode = \"relative-binary-offset\"\ntarget = \"x\"\n"
        )),
        format!(
            "bridge.toml:{}: midi.mappings[5].mode: a note is a button or a toggle",
            line + 3
        )
    );
    assert_eq!(
        error(&with(
            "[[midi.mappings]]\ncontrol = \"cc\"\nnumber = 9\nmode = \"relative-binary-offset\"\npickup = true\ntarget = \"x\"\n"
        )),
        format!(
            "bridge.toml:{}: midi.mappings[5].pickup: applies to absolute controls only",
            line + 4
        )
    );
    assert!(
        error(&with(
            "[[midi.mappings]]\ncontrol = \"cc\"\nnumber = 9\ntarget = \"x\"\nspeed = 2\n"
        ))
        .contains("midi.mappings[5]")
    );
}

#[test]
fn midi_names_are_listed_once_and_refused_with_that_list() {
    use kubeknobs_runtime::config_file::Named;

    use crate::midi::binding::Curve;
    use crate::midi::control::Mode;
    let with = |extra: &str| format!("{MIDI}{extra}");
    let line = MIDI.lines().count() + 1;
    let mapping = |lines: &str| with(&format!("[[midi.mappings]]\ntarget = \"x\"\n{lines}"));
    assert_eq!(
        error(&mapping("control = \"cc\"\nnumber = 9\nmode = \"fader\"\n")),
        format!(
            "bridge.toml:{}: midi.mappings[5].mode: must be one of absolute, button, toggle, \
             relative-twos-complement, relative-binary-offset, relative-sign-magnitude",
            line + 4
        )
    );
    assert_eq!(
        error(&mapping("control = \"cc\"\nnumber = 9\ncurve = \"exp\"\n")),
        format!(
            "bridge.toml:{}: midi.mappings[5].curve: must be one of linear, log",
            line + 4
        )
    );
    assert_eq!(
        error(&mapping(
            "control = \"cc14\"\nnumber = 9\nmode = \"toggle\"\n"
        )),
        format!(
            "bridge.toml:{}: midi.mappings[5].mode: cc14 is absolute only (the other modes are for cc and note)",
            line + 4
        )
    );
    assert_eq!(
        error(&mapping("control = \"pitchbend\"\nnumber = 9\n")),
        format!(
            "bridge.toml:{}: midi.mappings[5].number: pitchbend has no number",
            line + 3
        )
    );
    assert_eq!(
        error(&mapping("control = \"nrpn\"\n")),
        format!(
            "bridge.toml:{}: midi.mappings[5].number: nrpn needs a number (0..16383)",
            line + 2
        )
    );
    // Every name reads as its value, in any case (as `control` always did), spaces around it
    // ignored.
    for (name, mode) in Mode::NAMES {
        let text = mapping(&format!(
            "control = \" CC \"\nnumber = 9\nmode = \"{}\"\n",
            name.to_uppercase()
        ));
        let (config, _dir) = parse(&text);
        let config = config.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.midi.bindings[5].mode, *mode, "{name}");
        assert_eq!(mode.name(), *name);
    }
    for (name, curve) in Curve::NAMES {
        let (config, _dir) = parse(&mapping(&format!(
            "control = \"cc\"\nnumber = 9\ncurve = \"{name}\"\n"
        )));
        assert_eq!(config.expect("valid").midi.bindings[5].curve, *curve);
    }
}

#[test]
fn the_nanokontrol2_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/nanokontrol2.toml");
    let local = Local::load(&path).expect("examples/nanokontrol2.toml is valid");
    assert_eq!(local.midi.inputs, ["nanoKONTROL2"]);
    assert_eq!(local.midi.bindings.len(), 4);
}

#[test]
fn resend_within_defaults_to_ten_seconds_and_is_bounded() {
    let (config, _dir) = parse(GOOD);
    assert_eq!(
        config.expect("valid").gateway.resend_within,
        DEFAULT_RESEND_WITHIN
    );
    let off = GOOD.replace("domain = ", "resend_within_ms = 0\ndomain = ");
    let (config, _dir) = parse(&off);
    assert!(config.expect("valid").gateway.resend_within.is_zero());
    let long = GOOD.replace("domain = ", "resend_within_ms = 600000\ndomain = ");
    assert_eq!(
        error(&long),
        "bridge.toml:6: gateway.resend_within_ms: must be 0..60000 (0: moves made while disconnected are dropped)"
    );
}
