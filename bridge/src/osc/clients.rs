//! The registry of OSC clients: every sender's IP with the time it last sent something.
//!
//! Feedback goes to the clients seen within the timeout; a client that appears (for the first
//! time, or again after it was forgotten) is reported as new so it can be sent the whole state.
//! Time is passed in, so the rules are tested without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Last-seen times of OSC clients.
#[derive(Debug)]
pub struct Clients {
    timeout: Duration,
    seen: HashMap<IpAddr, Instant>,
}

impl Clients {
    /// A registry that forgets clients silent for longer than `timeout`.
    pub fn new(timeout: Duration) -> Clients {
        Clients {
            timeout,
            seen: HashMap::new(),
        }
    }

    /// Changes the timeout (a config reload); the clients seen so far are kept.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Records a packet from `ip` at `now`. Returns true when the client is new: never seen, or
    /// silent for longer than the timeout.
    pub fn touch(&mut self, ip: IpAddr, now: Instant) -> bool {
        match self.seen.insert(ip, now) {
            None => true,
            Some(last) => now.saturating_duration_since(last) > self.timeout,
        }
    }

    /// The clients seen within the timeout before `now`; forgets the others.
    pub fn active(&mut self, now: Instant) -> Vec<IpAddr> {
        let timeout = self.timeout;
        self.seen
            .retain(|_, last| now.saturating_duration_since(*last) <= timeout);
        let mut ips: Vec<IpAddr> = self.seen.keys().copied().collect();
        ips.sort();
        ips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets_clients() {
        let t0 = Instant::now();
        let phone: IpAddr = [192, 168, 1, 20].into();
        let tablet: IpAddr = [192, 168, 1, 21].into();
        let mut clients = Clients::new(Duration::from_secs(300));
        assert!(clients.touch(phone, t0));
        assert!(!clients.touch(phone, t0 + Duration::from_secs(10)));
        assert!(clients.touch(tablet, t0 + Duration::from_secs(100)));
        assert_eq!(
            clients.active(t0 + Duration::from_secs(200)),
            vec![phone, tablet]
        );
        // The phone was last seen at t0+10 s: forgotten at t0+311 s, the tablet still there.
        assert_eq!(clients.active(t0 + Duration::from_secs(311)), vec![tablet]);
        // A forgotten client that talks again is new again.
        assert!(clients.touch(phone, t0 + Duration::from_secs(312)));
        // Silent longer than the timeout but not yet pruned: also new again.
        assert!(clients.touch(tablet, t0 + Duration::from_secs(401)));
    }
}
