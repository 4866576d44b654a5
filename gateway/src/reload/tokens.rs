//! Token rotation without a restart: the tokens file the authenticator reads
//! (`auth.tokens_file`, whichever its sources name now) is polled like the config file, and
//! re-read when it changes ([`Authenticator::reload`] keeps the previous operators if the new
//! file is unusable).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::trigger::{FileWatch, POLL};
use crate::auth::Authenticator;

/// Polls `auth`'s tokens file and reloads it when it changes, until `shutdown`.
pub async fn watch_tokens(auth: Arc<Authenticator>, shutdown: CancellationToken) {
    let mut watch = auth.tokens_file().map(FileWatch::new);
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = shutdown.cancelled() => return,
        }
        let file = auth.tokens_file();
        match (&mut watch, file) {
            (Some(w), Some(path)) if w.path() == path => {
                if w.changed() {
                    auth.reload();
                }
            }
            (_, path) => watch = path.map(FileWatch::new),
        }
    }
}
