//! What the demo prints on stdout for the person holding the phone: where to point TouchOSC, and
//! one line per target whenever its state changes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use kubeknobs_gateway::config::BackendConfig;
use kubeknobs_proto::v1::TargetState;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::discovery::{self, Scope};
use crate::feedback::number;

/// The start-up instructions.
pub(super) fn banner(
    config: &Config,
    gateway: &kubeknobs_gateway::config::Config,
    osc: Option<SocketAddr>,
) {
    let listen = osc.unwrap_or(config.osc.listen);
    println!();
    match &gateway.backend {
        BackendConfig::Sandbox => {
            println!(
                "*** SANDBOX: the demo gateway drives an in-memory cluster; nothing real changes. ***"
            );
            println!(
                "*** Pass --kubeconfig PATH to drive a real cluster.                               ***"
            );
        }
        BackendConfig::Kube {
            kubeconfig,
            context,
        } => {
            let file = kubeconfig
                .as_ref()
                .map_or("the default kubeconfig".to_owned(), |p| {
                    p.display().to_string()
                });
            let ctx = context.as_deref().unwrap_or("its current context");
            println!("Cluster: REAL, from {file}, {ctx}. Moves change it.");
        }
    }
    println!(
        "Gateway: {} (TLS with a CA made for this run, operator \"{}\")",
        config.gateway.url,
        super::OPERATOR
    );
    println!();
    println!("In TouchOSC: Connections > OSC > UDP");
    let hosts = hosts(listen.ip());
    if hosts.is_empty() {
        println!("  Host:          (no network address found; is this machine on Wi-Fi/LAN?)");
    } else if listen.ip().is_loopback() {
        println!(
            "  Host:          {} (osc.listen is loopback: only this machine can send)",
            listen.ip()
        );
    } else {
        println!("  Host:          {}", hosts.join("  or  "));
    }
    println!("  Send port:     {}", listen.port());
    println!("  Receive port:  {}", config.osc.feedback_port);
    if let Some(tcp) = config.osc.tcp_listen {
        println!(
            "  (or Connections > OSC > TCP, port {}: feedback comes back on the connection)",
            tcp.port()
        );
    }
    if let Some(hint) = discovery_hint(config, listen) {
        println!("{hint}");
    }
    println!();
    for m in config.osc.mappings.iter() {
        let label = m
            .label
            .as_deref()
            .map(|l| format!(", label at {l}"))
            .unwrap_or_default();
        println!(
            "  {} drives target {} (values {}..{}){label}",
            m.address,
            m.target,
            m.range.lo(),
            m.range.hi()
        );
    }
    web(config);
    println!("Ctrl-C stops the demo.");
    println!();
}

/// Where a browser opens the web control surface, and a QR code of it for a phone's camera.
fn web(config: &Config) {
    let Some(listen) = config.web.listen else {
        return;
    };
    println!();
    if listen.port() == 0 {
        println!("In a browser: the web control surface is on a free port (see the log).");
        return;
    }
    let urls = web_urls(listen);
    let Some(first) = urls.first() else {
        println!("In a browser: no network address found; is this machine on Wi-Fi/LAN?");
        return;
    };
    println!("In a browser (any phone on this network, no app needed):");
    for url in &urls {
        println!("  {url}");
    }
    if let Some(code) = qr(first) {
        println!("{code}");
    }
    if config.web.pin.is_none() {
        println!(
            "  (no PIN: anyone who can reach it acts as operator \"{}\")",
            super::OPERATOR
        );
    }
}

/// `http://ADDR:PORT/` for each address a phone can use to reach `listen`.
fn web_urls(listen: SocketAddr) -> Vec<String> {
    hosts(listen.ip())
        .iter()
        .map(|h| {
            let ip = h.split_whitespace().next().unwrap_or(h);
            format!(
                "http://{}/",
                SocketAddr::new(ip.parse().unwrap_or(listen.ip()), listen.port())
            )
        })
        .collect()
}

/// `text` as a QR code in text, light modules drawn as blocks (for a dark terminal), with its
/// quiet zone.
fn qr(text: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// How to pick the bridge in an app that browses for OSC services, when it is advertised.
fn discovery_hint(config: &Config, listen: SocketAddr) -> Option<String> {
    match discovery::scope(config.discovery.mdns, listen.ip()) {
        Scope::On(_) => Some(format!(
            "  Or pick \"{}\" where the app lists OSC services found on the network (mDNS).",
            config.discovery.name
        )),
        Scope::Off | Scope::Loopback(_) => None,
    }
}

/// The addresses a phone can use to reach `listen`: the address itself when it is specific,
/// otherwise every non-loopback IPv4 address of this machine (read locally, no traffic sent).
fn hosts(listen: IpAddr) -> Vec<String> {
    if !listen.is_unspecified() {
        return vec![listen.to_string()];
    }
    let Ok(interfaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut ips: Vec<String> = interfaces
        .iter()
        .filter(|i| !i.is_loopback() && !i.is_link_local())
        .filter_map(|i| match i.ip() {
            IpAddr::V4(v4) => Some(format!("{v4} ({})", i.name)),
            IpAddr::V6(_) => None,
        })
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// Prints a line per target each time its state changes, until the bridge stops.
pub(super) async fn live(mut states: mpsc::Receiver<TargetState>) {
    let mut last: HashMap<String, String> = HashMap::new();
    while let Some(state) = states.recv().await {
        let line = line(&state);
        if last.get(&state.target) != Some(&line) {
            println!("{line}");
            last.insert(state.target.clone(), line);
        }
    }
}

/// `web  desired 10  ready 7/10  by demo`, then `  managed by …` when someone else manages it
/// too; an HPA bound: `floor  desired 2  HPA at 3, wants 4`.
fn line(s: &TargetState) -> String {
    let mut out = match s.autoscaler_desired {
        Some(wants) => format!(
            "{}  desired {}  HPA at {}, wants {}",
            s.target,
            number(s.desired),
            number(s.current),
            number(Some(wants))
        ),
        None => format!(
            "{}  desired {}  ready {}/{}",
            s.target,
            number(s.desired),
            number(s.ready),
            number(s.desired)
        ),
    };
    if !s.changed_by.is_empty() {
        out.push_str(&format!("  by {}", s.changed_by));
    }
    if !s.managed_by.is_empty() {
        out.push_str(&format!("  managed by {}", s.managed_by));
    }
    if !s.error.is_empty() {
        out.push_str(&format!("  (unavailable: {})", s.error));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_one_line_per_state() {
        let s = TargetState {
            target: "web".into(),
            desired: Some(10.0),
            ready: Some(7.0),
            changed_by: "demo".into(),
            ..Default::default()
        };
        assert_eq!(line(&s), "web  desired 10  ready 7/10  by demo");
        let scaled = TargetState {
            managed_by: "HorizontalPodAutoscaler web-hpa (2..10)".into(),
            ..s.clone()
        };
        assert_eq!(
            line(&scaled),
            "web  desired 10  ready 7/10  by demo  managed by HorizontalPodAutoscaler web-hpa (2..10)"
        );
        let floor = TargetState {
            target: "floor".into(),
            desired: Some(2.0),
            current: Some(3.0),
            autoscaler_desired: Some(4.0),
            ..Default::default()
        };
        assert_eq!(line(&floor), "floor  desired 2  HPA at 3, wants 4");
        let unknown = TargetState {
            target: "api".into(),
            error: "not found".into(),
            ..Default::default()
        };
        assert_eq!(
            line(&unknown),
            "api  desired ?  ready ?/?  (unavailable: not found)"
        );
    }

    #[test]
    fn names_the_bridge_only_where_it_is_advertised() {
        let local = crate::config::Local::parse(
            super::super::BRIDGE_TOML,
            std::path::Path::new("bridge.toml"),
        )
        .expect("built-in config");
        let gateway =
            crate::config::GatewayConfig::new("https://127.0.0.1:1".into(), None, "t".into());
        let mut config = Config::new(local, gateway);
        let hint =
            |config: &Config, listen: &str| discovery_hint(config, listen.parse().expect("addr"));
        assert_eq!(
            hint(&config, "0.0.0.0:8000").as_deref(),
            Some(
                "  Or pick \"demo-bridge\" where the app lists OSC services found on the network (mDNS)."
            )
        );
        assert_eq!(hint(&config, "127.0.0.1:8000"), None);
        config.discovery.mdns = false;
        assert_eq!(hint(&config, "0.0.0.0:8000"), None);
    }

    #[test]
    fn the_web_url_has_a_qr_code() {
        let urls = web_urls("192.168.1.5:8080".parse().expect("addr"));
        assert_eq!(urls, ["http://192.168.1.5:8080/"]);
        let code = qr(&urls[0]).expect("a QR code");
        let rows: Vec<&str> = code.lines().collect();
        // Version 2 (25 modules) plus a 4-module quiet zone each side, two rows per line.
        assert_eq!(rows[0].chars().count(), 33, "{code}");
        assert_eq!(rows.len(), 17, "{code}");
    }

    #[test]
    fn a_specific_listen_address_is_the_host() {
        assert_eq!(hosts("192.168.1.5".parse().expect("ip")), ["192.168.1.5"]);
    }
}
