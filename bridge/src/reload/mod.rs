//! Config reload: on SIGHUP, or when the config file changes, the bridge reads the file again and
//! checks it exactly as at start-up (including the token and CA files it names, and that tonic
//! accepts the gateway URL). A usable file replaces the inputs (mappings, MIDI) and feedback's
//! settings, and the gateway session too unless [`same_session`] holds, while the OSC socket, the
//! OSC TCP connections, the ops port and the known OSC clients stay. An unusable one changes
//! nothing, and the log says why.
//!
//! `osc.listen`, `osc.tcp_listen` and `ops.listen` are bound once, and `[discovery]` advertises
//! those sockets for as long as they are bound: a file that changes them (or the instance name,
//! which is the bridge_id when `discovery.name` is unset) is refused, naming the field, since
//! only a restart can apply it. A new bridge_id or feedback port is re-announced in the TXT
//! record.

use std::path::Path;

pub use kubeknobs_runtime::reload::{Cause, FileWatch, Triggers};

use crate::Config;
use crate::uplink::Uplink;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The file does not parse or validate, or a file it names cannot be read.
    #[error(transparent)]
    Invalid(#[from] crate::config::Error),
    /// The gateway URL, CA or token is refused by tonic.
    #[error(transparent)]
    Uplink(#[from] crate::Error),
    /// It changes a setting only a restart applies.
    #[error("{} changed, which takes effect only on restart", .0.join(", "))]
    NeedsRestart(Vec<&'static str>),
}

/// The next reason to reload; never, without triggers.
pub async fn next(triggers: &mut Option<Triggers>) -> Cause {
    match triggers {
        Some(triggers) => triggers.next().await,
        None => std::future::pending().await,
    }
}

/// Reads the config file at `path` again and checks it against the `running` config.
pub fn load(running: &Config, path: &Path) -> Result<(Config, Uplink), Refused> {
    let new = Config::load(path)?;
    let changed = needs_restart(running, &new);
    if !changed.is_empty() {
        return Err(Refused::NeedsRestart(changed));
    }
    let uplink = crate::uplink_for(&new)?;
    Ok((new, uplink))
}

/// True when `new` keeps the gateway session of `old`: it reaches the same gateway the same way
/// as the same bridge (`[gateway]`, with the token and CA read from their files, and `bridge_id`).
pub fn same_session(old: &Config, new: &Config) -> bool {
    old.gateway == new.gateway && old.bridge_id == new.bridge_id
}

/// The settings `new` changes that only a restart applies, by config field name.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let checks = [
        ("osc.listen", old.osc.listen != new.osc.listen),
        ("osc.tcp_listen", old.osc.tcp_listen != new.osc.tcp_listen),
        ("ops.listen", old.ops_listen != new.ops_listen),
        ("web.listen", old.web.listen != new.web.listen),
        ("web.pin", old.web.pin != new.web.pin),
        ("discovery.mdns", old.discovery.mdns != new.discovery.mdns),
        (
            "discovery.name (bridge_id when unset)",
            old.discovery.name != new.discovery.name,
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(field, changed)| changed.then_some(field))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token.txt"), "reload-test-token\n").expect("token");
        let path = dir.path().join("bridge.toml");
        let base = "[gateway]\nurl = \"http://127.0.0.1:9\"\ntoken_file = \"token.txt\"\n";
        std::fs::write(&path, format!("{text}\n{base}")).expect("config");
        Config::load(&path).expect("valid config")
    }

    #[test]
    fn a_new_bridge_id_needs_a_restart_only_when_it_names_the_service() {
        let named = "[discovery]\nname = \"Stage\"";
        let old = config(&format!("bridge_id = \"a\"\n{named}"));
        let new = config(&format!("bridge_id = \"b\"\n{named}"));
        assert!(needs_restart(&old, &new).is_empty());
        let old = config("bridge_id = \"a\"");
        let new = config("bridge_id = \"b\"");
        assert_eq!(
            needs_restart(&old, &new),
            ["discovery.name (bridge_id when unset)"]
        );
        let off = config("bridge_id = \"a\"\n[discovery]\nmdns = false");
        assert_eq!(needs_restart(&old, &off), ["discovery.mdns"]);
    }
}
