//! Starts the real `kubeknobs-gateway` and `kubeknobs-bridge` binaries for end-to-end tests, each
//! test in its own temp dir on 127.0.0.1 with ports the programs pick themselves (`:0`) and report
//! in their logs, and drives them with OSC tools the project did not write (liblo's `oscsend` and
//! `oscdump`). Every wait has a deadline, so a broken pipeline fails the test instead of hanging.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long to wait for something a working pipeline does in well under a second.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Path of a workspace binary next to this test executable (`target/<profile>/NAME`): the debug
/// build for `cargo test`, the release build for `cargo bench`. `KUBEKNOBS_BRIDGE_BINARY` and
/// `KUBEKNOBS_GATEWAY_BINARY` name another build instead (the benches measure the lean bridge a
/// Pi runs, `target/lean/kubeknobs-bridge`, this way).
pub fn binary(name: &str) -> PathBuf {
    let key = format!(
        "KUBEKNOBS_{}_BINARY",
        name.trim_start_matches("kubeknobs-").to_uppercase()
    );
    if let Some(path) = std::env::var_os(&key) {
        let path = PathBuf::from(path);
        assert!(path.exists(), "{key}={} does not exist", path.display());
        return path;
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    let build = if dir.ends_with("release") {
        "cargo build --release --workspace --bins"
    } else {
        "cargo build --workspace --bins"
    };
    assert!(
        path.exists(),
        "{} is missing: run `{build}` first (README.md's test command and the bench commands in \
         docs/ do)",
        path.display()
    );
    path
}

/// Fails loudly when an external tool the tests need is not installed.
pub fn require_tool(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is not installed: run `bash .ci/run` once, or `apt-get install liblo-tools`"
    );
}

/// The python to run third-party Python clients with: `KUBEKNOBS_PYTHON` (set by .ci/run) or
/// `python3`. Fails loudly unless it can import `module` (`package` is its PyPI name).
pub fn python_with(module: &str, package: &str) -> String {
    let python = std::env::var("KUBEKNOBS_PYTHON").unwrap_or_else(|_| "python3".into());
    let import = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output();
    assert!(
        import.as_ref().is_ok_and(|o| o.status.success()),
        "{package} is not installed for {python} (.ci/run installs it and sets \
         KUBEKNOBS_PYTHON): {import:?}"
    );
    python
}

/// A running program whose stdout and stderr lines are collected for assertions.
pub struct Process {
    name: String,
    child: Mutex<Child>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `command`, collecting its output.
    pub fn spawn(name: &str, mut command: Command) -> Process {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A command that sets its own filter (the load benchmark's quiet one) keeps it.
        if !command.get_envs().any(|(key, _)| key == "RUST_LOG") {
            command.env(
                "RUST_LOG",
                std::env::var("KUBEKNOBS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            );
        }
        command.env("NO_COLOR", "1");
        // Assertions read plain log lines; without this a piped program would log JSON.
        command.env("KUBEKNOBS_LOG_FORMAT", "plain");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        let err = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        for stream in [out, err].into_iter().flatten() {
            let lines = lines.clone();
            let name = name.to_owned();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[{name}] {line}");
                    lines.lock().unwrap().push(strip_ansi(&line));
                }
            });
        }
        Process {
            name: name.to_owned(),
            child: Mutex::new(child),
            lines,
        }
    }

    /// Every line printed so far.
    pub fn output(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// True if any line so far contains `needle`.
    pub fn printed(&self, needle: &str) -> bool {
        self.output().iter().any(|l| l.contains(needle))
    }

    /// Waits until a line containing every one of `needles` appears; returns it.
    pub fn wait_for(&self, needles: &[&str]) -> String {
        self.wait_for_nth(needles, 1)
    }

    /// Waits until the `n`th line (from 1) containing every one of `needles` appears; returns it.
    pub fn wait_for_nth(&self, needles: &[&str], n: usize) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self
                .output()
                .into_iter()
                .filter(|l| needles.iter().all(|needle| l.contains(needle)))
                .nth(n - 1)
            {
                return line;
            }
            if let Some(status) = self.exit_status() {
                panic!(
                    "{} exited ({status}) before printing {needles:?}",
                    self.name
                );
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{} did not print {needles:?} within {DEADLINE:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the program exits; returns its exit code.
    pub fn wait_exit(&self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exit_status() {
                return status.code();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{} did not exit within {DEADLINE:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id, to read its footprint from `/proc/<pid>`.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// True while the program runs.
    pub fn is_running(&self) -> bool {
        self.exit_status().is_none()
    }

    fn exit_status(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Kills the program at once (SIGKILL): no graceful shutdown.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Sends SIGHUP (reload the config); the program must be running.
    pub fn hang_up(&self) {
        assert!(self.signal("HUP"), "{} is not running", self.name);
    }

    fn signal(&self, name: &str) -> bool {
        Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The socket address after `marker` in `line`, e.g. `listening on 127.0.0.1:4242`.
pub fn address_after(line: &str, marker: &str) -> SocketAddr {
    let rest = &line[line
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {line:?}"))
        + marker.len()..];
    let token: String = rest
        .trim_start()
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ')' && *c != ',')
        .collect();
    token
        .parse()
        .unwrap_or_else(|e| panic!("{token:?} in {line:?} is not an address: {e}"))
}

/// A UDP port that was free a moment ago (for a third-party tool that cannot report its own).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind")
        .port()
}

/// True once a socket on this machine is bound to UDP `port` (the kernel's tables in
/// `/proc/net/udp` and `udp6`, whose second column is the local `ADDRESS:PORT` in hex).
fn udp_port_bound(port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| line.split_whitespace().nth(1))
                .any(|local| local.ends_with(&suffix))
        })
    })
}

/// Sends one OSC message with liblo's `oscsend`, e.g. `osc_send(port, "/1/fader1", "f", "0.5")`.
pub fn osc_send(port: u16, address: &str, types: &str, value: &str) {
    let status = Command::new("oscsend")
        .args(["127.0.0.1", &port.to_string(), address, types, value])
        .status()
        .expect("run oscsend");
    assert!(status.success(), "oscsend failed: {status}");
}

/// liblo's `oscdump` listening on a UDP port: what the bridge plays back to a phone.
pub struct OscDump {
    /// The port it listens on.
    pub port: u16,
    process: Process,
}

impl OscDump {
    /// Starts `oscdump` on a free port, and returns once it listens there.
    pub fn start() -> OscDump {
        require_tool("oscdump");
        let port = free_udp_port();
        let mut command = Command::new("oscdump");
        command.args(["-L", &port.to_string()]);
        let process = Process::spawn("oscdump", command);
        let start = Instant::now();
        while !udp_port_bound(port) {
            if let Some(status) = process.exit_status() {
                panic!("oscdump exited ({status}) before listening on {port}");
            }
            assert!(
                start.elapsed() < DEADLINE,
                "oscdump did not listen on {port} within {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        OscDump { port, process }
    }

    /// Waits for a message at `address` whose text contains `value` (as oscdump prints it).
    pub fn wait_for(&self, address: &str, value: &str) -> String {
        self.process.wait_for(&[&format!(" {address} "), value])
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<String> {
        self.process.output()
    }
}

/// Generates a CA and server certificate into `dir/certs` with `kubeknobs-gateway gen-certs`.
pub fn gen_certs(dir: &Path) {
    let status = Command::new(binary("kubeknobs-gateway"))
        .args(["gen-certs", "--out"])
        .arg(dir.join("certs"))
        .stdout(Stdio::null())
        .status()
        .expect("run gen-certs");
    assert!(status.success(), "gen-certs failed");
}

/// The hex SHA-256 of a token, as `token_sha256` wants it.
pub fn token_hash(token: &str) -> String {
    kubeknobs_gateway::auth::hash_token(token)
}

/// A started gateway and the address it listens on.
pub struct Gateway {
    /// The process.
    pub process: Process,
    /// Its gRPC address.
    pub addr: SocketAddr,
}

impl Gateway {
    /// Writes `config` to `dir/gateway.toml` and runs the gateway on a free port.
    pub fn start(dir: &Path, config: &str) -> Gateway {
        Gateway::start_at(dir, config, "127.0.0.1:0")
    }

    /// Like [`Gateway::start`], listening on `listen` (to come back on the same port).
    pub fn start_at(dir: &Path, config: &str, listen: &str) -> Gateway {
        let path = dir.join("gateway.toml");
        std::fs::write(&path, config).expect("write gateway.toml");
        let mut command = Command::new(binary("kubeknobs-gateway"));
        command
            .args(["run", "--listen", listen, "--config"])
            .arg(&path);
        let process = Process::spawn("gateway", command);
        let line = process.wait_for(&["gRPC listening on"]);
        let addr = address_after(&line, "gRPC listening on");
        Gateway { process, addr }
    }

    /// The audit records the gateway has printed on stdout so far, in order: one JSON object per
    /// applied or rejected change (docs/operations.md, "Audit").
    pub fn audit(&self) -> Vec<serde_json::Value> {
        self.process
            .output()
            .iter()
            .filter(|line| line.starts_with('{'))
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|record| record.get("outcome").is_some())
            .collect()
    }

    /// Waits until an audit record satisfies `pred` (described by `what` if none does); returns it.
    pub fn wait_for_audit(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            if let Some(record) = self.audit().into_iter().find(&pred) {
                return record;
            }
            assert!(
                self.process.is_running(),
                "the gateway exited before auditing {what}"
            );
            assert!(
                start.elapsed() < DEADLINE,
                "the gateway did not audit {what} within {DEADLINE:?}: {:#?}",
                self.audit()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the audit shows `operator`'s change of `target` to `value` applied.
    pub fn wait_for_applied(&self, operator: &str, target: &str, value: f64) -> serde_json::Value {
        self.wait_for_audit(&format!("{operator}'s {target} = {value} applied"), |r| {
            r["outcome"] == "applied"
                && r["operator"] == operator
                && r["target"] == target
                && r["new"] == value
        })
    }

    /// The values of `target` the audit shows applied so far, in order.
    pub fn applied_values(&self, target: &str) -> Vec<f64> {
        self.audit()
            .iter()
            .filter(|r| r["outcome"] == "applied" && r["target"] == target)
            .filter_map(|r| r["new"].as_f64())
            .collect()
    }
}

/// A started bridge and its OSC port.
pub struct Bridge {
    /// The process.
    pub process: Process,
    /// The UDP port it reads OSC on.
    pub osc_port: u16,
    /// Where it accepts OSC over TCP, when its config has `osc.tcp_listen`.
    pub osc_tcp: Option<SocketAddr>,
    /// Its ops port (`/metrics`, `/healthz`, `/readyz`), when its config has `[ops]`.
    pub ops: Option<SocketAddr>,
    /// Its web control surface, when its config has `[web]`.
    pub web: Option<SocketAddr>,
}

impl Bridge {
    /// Writes `config` to `dir/bridge.toml` (its OSC listen must be `127.0.0.1:0`) and runs the bridge.
    pub fn start(dir: &Path, config: &str) -> Bridge {
        let path = dir.join("bridge.toml");
        std::fs::write(&path, config).expect("write bridge.toml");
        let mut command = Command::new(binary("kubeknobs-bridge"));
        command.args(["run", "--config"]).arg(&path);
        let process = Process::spawn("bridge", command);
        let line = process.wait_for(&["OSC listening on"]);
        let osc_port = address_after(&line, "OSC listening on").port();
        // Announced before the OSC line, so they are there now if they ever will be.
        let announced = |marker: &str| {
            process
                .output()
                .iter()
                .find(|l| l.contains(marker))
                .map(|l| address_after(l, marker))
        };
        let ops = announced("ops listening on");
        let osc_tcp = announced("OSC over TCP listening on");
        let web = announced("web control surface listening on");
        Bridge {
            process,
            osc_port,
            osc_tcp,
            ops,
            web,
        }
    }

    /// The value of one series of the bridge's `/metrics`, named exactly as exposed
    /// (`kubeknobs_bridge_moves_total{result="sent"}`); 0 while it has not been counted yet.
    pub fn metric(&self, series: &str) -> f64 {
        let ops = self.ops.expect("the bridge's config has an [ops] port");
        let (status, body) = http_get(ops, "/metrics");
        assert_eq!(status, 200, "{body}");
        body.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().expect("a number"))
    }

    /// Waits until `series` reads `want`; fails with the last value after [`DEADLINE`].
    pub fn wait_for_metric(&self, series: &str, want: f64) {
        let start = Instant::now();
        loop {
            let now = self.metric(series);
            if now == want {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{series} stayed {now}, wanted {want}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A plain HTTP/1.1 GET (the ops ports); returns the status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the ops port");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls `path` until it answers `want`, within [`DEADLINE`]; returns the body.
pub fn wait_for_http(addr: SocketAddr, path: &str, want: u16) -> String {
    wait_for_http_saying(addr, path, want, "")
}

/// Polls `GET path` until it answers `want` with a body containing `saying` (a state that
/// takes a moment to reach, e.g. a standby that has read who holds the lease); returns the body.
pub fn wait_for_http_saying(addr: SocketAddr, path: &str, want: u16, saying: &str) -> String {
    let start = Instant::now();
    loop {
        let (status, body) = http_get(addr, path);
        if status == want && body.contains(saying) {
            return body;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{path} stayed {status} ({body}), wanted {want} saying {saying:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
