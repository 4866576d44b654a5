//! A private LAN for tests that need a real network segment (multicast, mDNS) without touching
//! the machine's own: two network namespaces made for this test run, joined by a veth pair, each
//! with `lo` up. Traffic between them never leaves the pair, and the namespaces (and with them the
//! veth pair) are deleted when the [`Lan`] is dropped, also when the test fails.
//!
//! Needs `ip` from iproute2 and the right to create namespaces (root). [`Lan::create`] says why
//! not instead of failing, so that a test can skip loudly where that right is missing.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The veth end's name inside each namespace (names are per namespace, so both use it).
const VETH: &str = "veth0";
/// Prefix length of the segment.
const PREFIX: u8 = 24;

/// One end of the segment: a namespace and its address on the veth.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace's name (`ip netns exec NAME …`).
    pub netns: String,
    /// Its address on the veth.
    pub addr: Ipv4Addr,
}

impl Host {
    /// `program` run inside this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns]).arg(program);
        command
    }
}

/// Two namespaces on one segment, `10.77.0.1/24` and `10.77.0.2/24`; deleted on drop.
#[derive(Debug)]
pub struct Lan {
    /// The first host, 10.77.0.1.
    pub a: Host,
    /// The second host, 10.77.0.2.
    pub b: Host,
}

impl Lan {
    /// Creates the namespaces, named after `tag`, this process and a counter so that concurrent
    /// tests and test runs never share one. `Err` says why it cannot be done here.
    pub fn create(tag: &str) -> Result<Lan, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = |side: &str| format!("kk-{tag}-{}-{n}-{side}", std::process::id());
        let host = |side: &str, last: u8| Host {
            netns: name(side),
            addr: Ipv4Addr::new(10, 77, 0, last),
        };
        let (a, b) = (host("a", 1), host("b", 2));
        ip(&["netns", "add", &a.netns])?;
        // From here on, dropping the Lan removes whatever was made.
        let lan = Lan { a, b };
        ip(&["netns", "add", &lan.b.netns])?;
        ip(&[
            "-n",
            &lan.a.netns,
            "link",
            "add",
            VETH,
            "type",
            "veth",
            "peer",
            "name",
            VETH,
            "netns",
            &lan.b.netns,
        ])?;
        for host in [&lan.a, &lan.b] {
            let cidr = format!("{}/{PREFIX}", host.addr);
            ip(&["-n", &host.netns, "addr", "add", &cidr, "dev", VETH])?;
            ip(&["-n", &host.netns, "link", "set", "lo", "up"])?;
            ip(&["-n", &host.netns, "link", "set", VETH, "up"])?;
        }
        Ok(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth end inside it, and with it the pair.
        for host in [&self.a, &self.b] {
            let _ = ip(&["netns", "delete", &host.netns]);
        }
    }
}

/// Runs `ip ARGS`; `Err` holds the command and what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// True when `ip netns list` shows a namespace called `name`.
pub fn exists(name: &str) -> bool {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name))
        })
}
