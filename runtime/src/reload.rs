//! When to reload: on SIGHUP, or when a watched file changes.
//!
//! Files are polled (modification time and length, every [`POLL`]) rather than watched with
//! inotify: polling works the same on every filesystem, including the symlink swaps Kubernetes
//! uses for mounted ConfigMaps and Secrets, and costs one `stat` a second.

use std::path::{Path, PathBuf};

use std::time::{Duration, SystemTime};

/// How often watched files are checked for changes.
pub const POLL: Duration = Duration::from_secs(1);

/// What a file looked like when last checked; `None`: it could not be read.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Notices changes to one file between calls to [`FileWatch::changed`].
#[derive(Debug)]
pub struct FileWatch {
    path: PathBuf,
    last: Stamp,
}

impl FileWatch {
    /// Watches `path` from its current state.
    pub fn new(path: PathBuf) -> FileWatch {
        let last = stamp(&path);
        FileWatch { path, last }
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the file changed (or appeared, or went away) since the last call.
    pub fn changed(&mut self) -> bool {
        let now = stamp(&self.path);
        let changed = now != self.last;
        self.last = now;
        changed
    }
}

/// Why a reload happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The process got SIGHUP.
    Signal,
    /// The config file changed.
    FileChanged,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cause::Signal => "SIGHUP",
            Cause::FileChanged => "file changed",
        })
    }
}

/// SIGHUP plus a poll of one file: [`Triggers::next`] resolves at each reason to reload.
pub struct Triggers {
    file: FileWatch,
    hangup: Option<tokio::signal::unix::Signal>,
    tick: tokio::time::Interval,
}

impl Triggers {
    /// Listens for SIGHUP (if the process can) and polls the file of `file`, whose state
    /// should be taken before the config was first read so no edit goes unnoticed. Must run
    /// inside tokio.
    pub fn new(file: FileWatch) -> Triggers {
        use tokio::signal::unix::{SignalKind, signal};
        let hangup = signal(SignalKind::hangup())
            .inspect_err(|err| tracing::warn!(cause = %err, "cannot listen for SIGHUP; config reloads only when the file changes"))
            .ok();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Triggers { file, hangup, tick }
    }

    /// Waits for the next reason to reload.
    pub async fn next(&mut self) -> Cause {
        loop {
            let hangup = async {
                match &mut self.hangup {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hangup => {
                    // Take in the file's current state so a SIGHUP after an edit reloads once.
                    self.file.changed();
                    return Cause::Signal;
                }
                _ = self.tick.tick() => {
                    if self.file.changed() {
                        return Cause::FileChanged;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_watch_sees_edits_appearance_and_removal_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        let mut watch = FileWatch::new(path.clone());
        assert!(!watch.changed(), "nothing yet");
        std::fs::write(&path, "a = 1\n").unwrap();
        assert!(watch.changed(), "appeared");
        assert!(!watch.changed(), "reported once");
        std::fs::write(&path, "a = 12\n").unwrap();
        assert!(watch.changed(), "edited (longer)");
        std::fs::remove_file(&path).unwrap();
        assert!(watch.changed(), "removed");
        assert_eq!(watch.path(), path);
    }
}
