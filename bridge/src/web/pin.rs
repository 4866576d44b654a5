//! The PIN gate (`web.pin`): a guess is compared in constant time (the SHA-256 digests of guess
//! and PIN, so not even the length leaks), and guesses are answered one at a time with a wrong
//! one taking [`WRONG_PIN_DELAY`]: however many connections try, at most one wrong PIN per
//! delay is answered, which puts guessing a 4-digit PIN at hours rather than seconds.

use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;

/// How long a wrong PIN takes to be refused, with every other guess waiting behind it.
pub const WRONG_PIN_DELAY: Duration = Duration::from_secs(1);

/// Checks PINs; `None` lets everyone in.
pub struct Gate {
    digest: Option<[u8; 32]>,
    /// Held while a guess is answered, so wrong guesses queue up behind the delay.
    turn: Mutex<()>,
}

impl Gate {
    /// A gate for `pin` (none: open).
    pub fn new(pin: Option<&str>) -> Gate {
        Gate {
            digest: pin.map(digest),
            turn: Mutex::new(()),
        }
    }

    /// True when a PIN is needed.
    pub fn required(&self) -> bool {
        self.digest.is_some()
    }

    /// True when `guess` is the PIN (or none is needed); a wrong guess returns only after
    /// [`WRONG_PIN_DELAY`], and holds up every other guess meanwhile.
    pub async fn check(&self, guess: &str) -> bool {
        let Some(pin) = &self.digest else {
            return true;
        };
        let _turn = self.turn.lock().await;
        let right: bool = digest(guess.trim()).ct_eq(pin).into();
        if !right {
            tokio::time::sleep(WRONG_PIN_DELAY).await;
        }
        right
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wrong_pin_is_slow_and_holds_up_the_next_guess() {
        let gate = std::sync::Arc::new(Gate::new(Some("4711")));
        let start = tokio::time::Instant::now();
        assert!(gate.check("4711").await, "right PIN");
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "a right PIN is not delayed"
        );
        let (wrong, right) = tokio::join!(gate.check("1234"), async {
            tokio::task::yield_now().await;
            gate.check("4711").await
        });
        assert!(!wrong && right);
        assert_eq!(
            start.elapsed(),
            WRONG_PIN_DELAY,
            "the right one waited its turn"
        );
        assert!(!gate.check("").await);
        assert!(!gate.check("47111").await);
    }

    #[tokio::test]
    async fn no_pin_lets_everyone_in() {
        let gate = Gate::new(None);
        assert!(!gate.required());
        assert!(gate.check("anything").await);
    }
}
