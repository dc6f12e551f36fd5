//! Throttling of failed sign-ins: per (username, client address), so a stranger cannot lock a
//! user out from elsewhere, and per client address, so one client cannot sweep usernames.
//! Kept in memory: a restart forgets it, which is acceptable for a brake on guessing.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Counts failures in a sliding window.
#[derive(Debug)]
pub struct LoginThrottle {
    max_per_user: u32,
    max_per_client: u32,
    window: Duration,
    failures: Mutex<Failures>,
}

#[derive(Debug, Default)]
struct Failures {
    by_user_and_client: HashMap<(String, IpAddr), VecDeque<Instant>>,
    by_client: HashMap<IpAddr, VecDeque<Instant>>,
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|first| now.duration_since(*first) >= window)
    {
        times.pop_front();
    }
}

/// Seconds until the oldest of `times` leaves the window, at least 1.
fn retry_after(times: &VecDeque<Instant>, now: Instant, window: Duration) -> u64 {
    times
        .front()
        .map(|first| {
            (window.saturating_sub(now.duration_since(*first)))
                .as_secs()
                .max(1)
        })
        .unwrap_or(1)
}

impl LoginThrottle {
    /// A throttle allowing `max_per_user` failures per (username, client) and
    /// `max_per_client` per client within `window`.
    pub fn new(max_per_user: u32, max_per_client: u32, window: Duration) -> Self {
        Self {
            max_per_user,
            max_per_client,
            window,
            failures: Mutex::new(Failures::default()),
        }
    }

    /// `Err(seconds)` when the attempt must be refused without checking the password.
    pub fn check(&self, username: &str, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let key = (username.to_lowercase(), client);
        if let Some(times) = failures.by_user_and_client.get_mut(&key) {
            prune(times, now, self.window);
            if times.len() >= self.max_per_user as usize {
                return Err(retry_after(times, now, self.window));
            }
        }
        if let Some(times) = failures.by_client.get_mut(&client) {
            prune(times, now, self.window);
            if times.len() >= self.max_per_client as usize {
                return Err(retry_after(times, now, self.window));
            }
        }
        Ok(())
    }

    /// Records a failed attempt.
    pub fn failed(&self, username: &str, client: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bound memory under a username-spraying attack: forget idle entries.
        if failures.by_user_and_client.len() > 100_000 {
            let window = self.window;
            failures.by_user_and_client.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        failures
            .by_user_and_client
            .entry((username.to_lowercase(), client))
            .or_default()
            .push_back(now);
        failures.by_client.entry(client).or_default().push_back(now);
    }

    /// Forgets the failures of this username from this client after a success.
    pub fn succeeded(&self, username: &str, client: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .by_user_and_client
            .remove(&(username.to_lowercase(), client));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let throttle = LoginThrottle::new(3, 10, Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(throttle.check("phigg", HERE, start), Ok(()), "attempt {i}");
            throttle.failed("phigg", HERE, start);
        }
        assert_eq!(throttle.check("phigg", HERE, start), Err(60));
        assert_eq!(
            throttle.check("PHIGG", HERE, start + Duration::from_secs(20)),
            Err(40)
        );
        // Another client, or another user from this client, is not locked out.
        assert_eq!(throttle.check("phigg", THERE, start), Ok(()));
        assert_eq!(throttle.check("kbouman", HERE, start), Ok(()));
        assert_eq!(
            throttle.check("phigg", HERE, start + Duration::from_secs(60)),
            Ok(())
        );
    }

    #[test]
    fn per_client_limit_stops_username_sweeps() {
        let throttle = LoginThrottle::new(3, 4, Duration::from_secs(60));
        let now = Instant::now();
        for user in ["a", "b", "c", "d"] {
            throttle.failed(user, HERE, now);
        }
        assert!(throttle.check("e", HERE, now).is_err());
        assert!(throttle.check("e", THERE, now).is_ok());
    }

    #[test]
    fn success_clears_the_user_count() {
        let throttle = LoginThrottle::new(2, 10, Duration::from_secs(60));
        let now = Instant::now();
        throttle.failed("phigg", HERE, now);
        throttle.succeeded("phigg", HERE);
        throttle.failed("phigg", HERE, now);
        assert_eq!(throttle.check("phigg", HERE, now), Ok(()));
    }
}
