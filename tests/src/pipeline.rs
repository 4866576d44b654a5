//! A whole pipeline for end-to-end tests: gateway, bridge and an OSC "phone", with configs that
//! map TouchOSC's `/1/fader1` to target `web` (0..=20 replicas) for operator `alice`.

use std::path::Path;

use crate::harness::{Bridge, Gateway, OscDump, gen_certs, require_tool, token_hash};

/// The token of operator `alice`.
pub const TOKEN: &str = "e2e-secret-token";

/// A gateway config with operator `alice` and target `web` (0..=20) on `namespace`/`object`.
pub fn gateway_config(cluster: &str, namespace: &str, object: &str) -> String {
    format!(
        r#"
[server]
tls_cert = "certs/server.pem"
tls_key = "certs/server.key"

[cluster]
{cluster}

[[operators]]
name = "alice"
token_sha256 = "{hash}"

[targets.web]
kind = "deployment-replicas"
namespace = "{namespace}"
name = "{object}"
min = 0
max = 20
max_writes_per_second = 5
initial = 2
"#,
        hash = token_hash(TOKEN)
    )
}

/// A bridge config mapping `/1/fader1` to `web`, with feedback to `feedback_port`, and OSC over
/// TCP and its ops port on free loopback ports.
pub fn bridge_config(dir: &Path, gateway: &Gateway, feedback_port: u16, token: &str) -> String {
    std::fs::write(dir.join("token.txt"), format!("{token}\n")).expect("write token");
    format!(
        r#"
bridge_id = "e2e-bridge"

[gateway]
url = "https://localhost:{port}"
ca = "certs/ca.pem"
token_file = "token.txt"

[osc]
listen = "127.0.0.1:0"
tcp_listen = "127.0.0.1:0"
feedback_port = {feedback_port}

[ops]
listen = "127.0.0.1:0"

[[osc.mappings]]
address = "/1/fader1"
target = "web"
range = [0.0, 1.0]
label = "/1/label1"
"#,
        port = gateway.addr.port()
    )
}

/// A gateway (sandbox unless `cluster` says otherwise), a bridge connected to it, and oscdump.
pub struct Pipeline {
    /// The directory holding configs, certificates and the token.
    pub dir: tempfile::TempDir,
    /// The gateway process.
    pub gateway: Gateway,
    /// The bridge process.
    pub bridge: Bridge,
    /// oscdump, standing in for the phone's screen.
    pub phone: OscDump,
}

/// Starts a gateway on `cluster` (a `[cluster]` TOML body), oscdump, and a bridge using `bridge_token`.
pub fn pipeline(cluster: &str, target: (&str, &str), bridge_token: &str) -> Pipeline {
    require_tool("oscsend");
    let dir = tempfile::tempdir().expect("tempdir");
    gen_certs(dir.path());
    let gateway = Gateway::start(dir.path(), &gateway_config(cluster, target.0, target.1));
    let phone = OscDump::start();
    let bridge = Bridge::start(
        dir.path(),
        &bridge_config(dir.path(), &gateway, phone.port, bridge_token),
    );
    Pipeline {
        dir,
        gateway,
        bridge,
        phone,
    }
}

/// A pipeline whose bridge has connected as `alice`.
pub fn connected(cluster: &str, target: (&str, &str)) -> Pipeline {
    let p = pipeline(cluster, target, TOKEN);
    p.bridge.process.wait_for(&["connected", "alice"]);
    p
}
