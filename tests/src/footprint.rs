//! What a running process costs, read from Linux's `/proc/<pid>`: CPU time, memory, threads and
//! the bytes it made the kernel send to storage. The footprint test and the bridge's idle
//! benchmark (`tests/benches/bridge_idle.rs`) read the real bridge with it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::DEADLINE;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was read.
    pub at: Instant,
    /// User plus system CPU time of all its threads, exited ones included (clock ticks).
    pub cpu: Duration,
    /// Time on a CPU of its live threads, in nanoseconds (`/proc/<pid>/task/*/schedstat`): the
    /// same as `cpu` with the resolution an idle process needs, without exited threads.
    pub on_cpu: Duration,
    /// Context switches of its live threads, voluntary and not: how often it woke up.
    pub switches: u64,
    /// Resident memory now (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// The most resident memory it has had since it started (`VmHWM`), in KiB.
    pub peak_rss_kib: u64,
    /// Its threads now.
    pub threads: u64,
    /// Bytes it (or a child it reaped) caused to be sent to storage since it started.
    pub write_bytes: u64,
}

impl Sample {
    /// Reads process `pid`'s counters; panics if it has gone.
    pub fn of(pid: u32) -> Sample {
        let at = Instant::now();
        let status = read(pid, "status");
        Sample {
            at,
            cpu: cpu_time(&read(pid, "stat")),
            on_cpu: per_thread(pid, "schedstat")
                .iter()
                .map(|schedstat| schedstat_cpu(schedstat))
                .sum(),
            switches: per_thread(pid, "status")
                .iter()
                .map(|status| {
                    field(status, "voluntary_ctxt_switches:")
                        + field(status, "nonvoluntary_ctxt_switches:")
                })
                .sum(),
            rss_kib: field(&status, "VmRSS:"),
            peak_rss_kib: field(&status, "VmHWM:"),
            threads: field(&status, "Threads:"),
            write_bytes: write_bytes(pid)
                .expect("no /proc/<pid>/io: this kernel has no task I/O accounting"),
        }
    }
}

/// `write_bytes` of `/proc/<pid>/io`: what the process sent to the storage layer, counted when it
/// dirties a file's pages. Pipes, sockets and terminals are not storage (they count only in
/// `wchar`). `None` if the kernel was built without task I/O accounting.
pub fn write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    Some(field(&io, "write_bytes:"))
}

/// Shows whether `write_bytes` sees writes to files in `dir` on this kernel and file system: a
/// child process writes 64 KiB there and its counter is read as the bridge's is. Returns the bytes
/// counted (0 if this file system hides them), or `None` without `/proc/<pid>/io`.
pub fn calibrate_write_bytes(dir: &Path) -> Option<u64> {
    // The shell waits for `head` (taking on its counters), then becomes `sleep` in the same
    // process, so the counters can be read while it lives.
    let mut child = Command::new("sh")
        .args([
            "-c",
            r#"head -c 65536 /dev/zero > "$1" && exec sleep 60"#,
            "sh",
        ])
        .arg(dir.join("calibration.bin"))
        .stdin(Stdio::null())
        .spawn()
        .expect("run sh");
    let pid = child.id();
    let start = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .as_deref()
        != Some("sleep\n")
    {
        assert!(
            start.elapsed() < DEADLINE,
            "the calibration write did not finish within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let counted = write_bytes(pid);
    let _ = child.kill();
    let _ = child.wait();
    counted
}

/// `file` of each of process `pid`'s live threads (`/proc/<pid>/task/*/<file>`); a thread that
/// ends meanwhile is left out.
fn per_thread(pid: u32, file: &str) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join(file)).ok())
        .collect()
}

/// The first field of a thread's `schedstat`: nanoseconds it has run on a CPU.
fn schedstat_cpu(schedstat: &str) -> Duration {
    let ns = schedstat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn read(pid: u32, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/{file}: {e}"))
}

/// The number after `key` on the line that starts with it, e.g. `VmRSS:   5120 kB`.
fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in:\n{text}"))
}

/// `utime + stime` from `/proc/<pid>/stat` (fields 14 and 15, in clock ticks). The fields are
/// counted after the command name's closing parenthesis, since the name may hold spaces.
fn cpu_time(stat: &str) -> Duration {
    let after_name = &stat[stat.rfind(')').expect("a stat line names its command") + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11..=12]
        .iter()
        .map(|f| f.parse::<u64>().expect("utime and stime are numbers"))
        .sum();
    Duration::from_millis(ticks * 1000 / rustix::param::clock_ticks_per_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_counts_user_and_system_ticks_after_the_name() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 30 20 0 0 20 0 3 0 5 0 0";
        let hz = rustix::param::clock_ticks_per_second();
        assert_eq!(cpu_time(stat), Duration::from_millis(50 * 1000 / hz));
    }

    #[test]
    fn a_field_is_the_line_that_starts_with_its_key() {
        let io = "rchar: 7\nwchar: 8\nwrite_bytes: 4096\ncancelled_write_bytes: 9\n";
        assert_eq!(field(io, "write_bytes:"), 4096);
        assert_eq!(field("VmRSS:\t    5120 kB\n", "VmRSS:"), 5120);
    }
}
