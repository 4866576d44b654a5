//! A real browser for end-to-end tests of the bridge's web control surface: Debian's Chromium,
//! headless, driven by `tests/browser/drive.mjs` (playwright-core from npm, which drives an
//! installed Chromium over the DevTools protocol and downloads no browser of its own). The test
//! sends one JSON command per line and reads one answer, each under a deadline.
//!
//! [`Browser::start`] returns `None` (the caller prints SKIPPED) when node, Chromium or
//! `tests/browser/node_modules` is missing on a developer's machine; under CI (`CI` set) a
//! missing piece fails the test instead, since `.ci/run` installs all three.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long one command may take (the driver's own waits are 15 s).
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// The Chromium the driver launches: `KUBEKNOBS_CHROMIUM` or Debian's.
pub fn chromium() -> PathBuf {
    std::env::var_os("KUBEKNOBS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// `tests/browser`, where the driver and its npm packages are.
pub fn driver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// What is missing to run a browser, if anything.
fn missing() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".into());
    }
    if !chromium().exists() {
        return Some(format!("{} is not installed", chromium().display()));
    }
    if !driver_dir().join("node_modules/playwright-core").exists() {
        return Some("tests/browser/node_modules is missing (run `npm ci` there)".into());
    }
    None
}

/// A running headless Chromium with one page.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Browser {
    /// Starts the driver; `None` when the machine has no browser to drive (see module docs).
    pub fn start() -> Option<Browser> {
        if let Some(what) = missing() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{what}: .ci/run installs chromium and runs npm ci in tests/browser"
            );
            println!("SKIPPED: {what}");
            return None;
        }
        let mut child = Command::new("node")
            .arg(driver_dir().join("drive.mjs"))
            .current_dir(driver_dir())
            .env("KUBEKNOBS_CHROMIUM", chromium())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node tests/browser/drive.mjs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut browser = Browser {
            child,
            stdin,
            lines,
        };
        let ready = browser.line();
        assert_eq!(ready, "READY", "the browser driver did not start");
        Some(browser)
    }

    fn line(&mut self) -> String {
        match self.lines.recv_timeout(COMMAND_DEADLINE) {
            Ok(line) => line,
            Err(e) => panic!("no answer from the browser driver within {COMMAND_DEADLINE:?}: {e}"),
        }
    }

    /// Runs `command` (a JSON object with `cmd`); its result, or the driver's error.
    pub fn try_call(&mut self, command: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{command}").expect("write to the browser driver");
        self.stdin.flush().expect("flush");
        let line = self.line();
        if let Some(ok) = line.strip_prefix("OK ") {
            Ok(serde_json::from_str(ok).expect("driver answers JSON"))
        } else {
            Err(line)
        }
    }

    /// Runs `command`; panics with the driver's error if it fails.
    pub fn call(&mut self, command: Value) -> Value {
        let shown = command.to_string();
        self.try_call(command)
            .unwrap_or_else(|e| panic!("browser command {shown} failed: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{{\"cmd\":\"quit\"}}");
        let _ = self.stdin.flush();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
