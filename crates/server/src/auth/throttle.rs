//! Throttling of password checks: per (username, client address), so a stranger cannot lock a
//! user out from elsewhere, and per client address, so one client cannot sweep usernames.
//! An attempt counts from the moment it is admitted, before its password is checked, so
//! simultaneous attempts cannot all pass the limit; a success takes its attempt back.
//! Memory is bounded: at most [`MAX_ENTRIES`] keys of each kind, and no more timestamps per
//! key than its limit. Kept in memory ([`LoginThrottle`]) on the embedded backend, where one
//! instance serves (a restart forgets it, which is acceptable for a brake on guessing); in
//! the database ([`Throttle::Shared`]) where several instances share it, so that the limit
//! holds for the whole deployment.

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

    /// Admits an attempt and counts it, or refuses it with `Err(seconds to wait)` without
    /// any password being checked.
    pub fn attempt(&self, username: &str, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut guard = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let failures = &mut *guard;
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
        let window = self.window;
        if !failures.by_user_and_client.contains_key(&key)
            && !make_room(&mut failures.by_user_and_client, now, window)
        {
            return Err(window.as_secs().max(1));
        }
        if !failures.by_client.contains_key(&client)
            && !make_room(&mut failures.by_client, now, window)
        {
            return Err(window.as_secs().max(1));
        }
        failures
            .by_user_and_client
            .entry(key)
            .or_default()
            .push_back(now);
        failures.by_client.entry(client).or_default().push_back(now);
        Ok(())
    }

    /// Takes back an attempt that was admitted but never checked (the server was too busy).
    pub fn refund(&self, username: &str, client: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = failures
            .by_user_and_client
            .get_mut(&(username.to_lowercase(), client))
        {
            times.pop_back();
        }
        if let Some(times) = failures.by_client.get_mut(&client) {
            times.pop_back();
        }
    }

    /// Forgets the failures of this username from this client after a success, and takes
    /// back the successful attempt from the client's count.
    pub fn succeeded(&self, username: &str, client: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .by_user_and_client
            .remove(&(username.to_lowercase(), client));
        if let Some(times) = failures.by_client.get_mut(&client) {
            times.pop_back();
        }
    }
}

/// Most keys of each kind the throttle keeps.
pub const MAX_ENTRIES: usize = 100_000;

/// Makes room for one more key: forgets idle keys when full; `false` when every key is still
/// in use (the attempt is then refused: memory stays bounded under a spray of usernames or
/// addresses, and the brake holds).
fn make_room<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, VecDeque<Instant>>,
    now: Instant,
    window: Duration,
) -> bool {
    if map.len() < MAX_ENTRIES {
        return true;
    }
    map.retain(|_, times| {
        times
            .back()
            .is_some_and(|t| now.duration_since(*t) < window)
    });
    map.len() < MAX_ENTRIES
}

/// An admitted attempt, to take back or settle.
#[derive(Debug, Default)]
pub struct Admitted(Vec<i64>);

/// The sign-in throttle of a server: in memory, or in the database instances share.
pub enum Throttle {
    /// One instance: counted in memory.
    Local(LoginThrottle),
    /// Several instances: counted in the database.
    Shared {
        /// The database.
        store: std::sync::Arc<dyn mymonit_store::Store>,
        /// Attempts allowed per (username, client) within the window.
        max_per_user: u32,
        /// Attempts allowed per client within the window.
        max_per_client: u32,
        /// The window.
        window: Duration,
    },
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Throttle::Local(local) => local.fmt(f),
            Throttle::Shared { .. } => f.write_str("Throttle::Shared"),
        }
    }
}

/// The keys of an attempt as the database keeps them: hashes, so no username is stored.
fn shared_keys(username: &str, client: IpAddr) -> (String, String) {
    (
        super::tokens::token_hash(&format!("user\0{}\0{client}", username.to_lowercase())),
        super::tokens::token_hash(&format!("client\0{client}")),
    )
}

impl Throttle {
    /// The throttle for a store: shared when the store keeps attempts, else in memory.
    pub fn for_store(
        store: std::sync::Arc<dyn mymonit_store::Store>,
        max_per_user: u32,
        max_per_client: u32,
        window: Duration,
    ) -> Self {
        if store.attempts().is_some() {
            Throttle::Shared {
                store,
                max_per_user,
                max_per_client,
                window,
            }
        } else {
            Throttle::Local(LoginThrottle::new(max_per_user, max_per_client, window))
        }
    }

    /// Admits an attempt and counts it, or refuses it with `Ok(Err(seconds to wait))`
    /// without any password being checked.
    pub async fn attempt(
        &self,
        username: &str,
        client: IpAddr,
    ) -> Result<Result<Admitted, u64>, mymonit_store::StoreError> {
        match self {
            Throttle::Local(local) => Ok(local
                .attempt(username, client, Instant::now())
                .map(|()| Admitted::default())),
            Throttle::Shared {
                store,
                max_per_user,
                max_per_client,
                window,
            } => {
                let Some(attempts) = store.attempts() else {
                    return Ok(Ok(Admitted::default()));
                };
                let (user_key, client_key) = shared_keys(username, client);
                let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
                let now_ms = mymonit_model::time::now_ns() / 1_000_000;
                let admitted = attempts
                    .admit_attempt(
                        &[(&user_key, *max_per_user), (&client_key, *max_per_client)],
                        window_ms,
                        now_ms,
                    )
                    .await?;
                Ok(admitted
                    .map(Admitted)
                    .map_err(|ms| (ms.max(0) as u64).div_ceil(1000).max(1)))
            }
        }
    }

    /// Takes back an attempt that was admitted but never checked.
    pub async fn refund(&self, username: &str, client: IpAddr, admitted: Admitted) {
        match self {
            Throttle::Local(local) => local.refund(username, client),
            Throttle::Shared { store, .. } => {
                if let Some(attempts) = store.attempts()
                    && let Err(err) = attempts.forget_attempts(&admitted.0, &[]).await
                {
                    tracing::warn!(error = %err, "cannot take back a sign-in attempt");
                }
            }
        }
    }

    /// Forgets the failures of this username from this client after a success, and takes
    /// back the successful attempt.
    pub async fn succeeded(&self, username: &str, client: IpAddr, admitted: Admitted) {
        match self {
            Throttle::Local(local) => local.succeeded(username, client),
            Throttle::Shared { store, .. } => {
                let (user_key, _) = shared_keys(username, client);
                if let Some(attempts) = store.attempts()
                    && let Err(err) = attempts.forget_attempts(&admitted.0, &[&user_key]).await
                {
                    tracing::warn!(error = %err, "cannot clear sign-in failures");
                }
            }
        }
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
            assert_eq!(
                throttle.attempt("phigg", HERE, start),
                Ok(()),
                "attempt {i}"
            );
        }
        assert_eq!(throttle.attempt("phigg", HERE, start), Err(60));
        assert_eq!(
            throttle.attempt("PHIGG", HERE, start + Duration::from_secs(20)),
            Err(40)
        );
        // Another client, or another user from this client, is not locked out.
        assert_eq!(throttle.attempt("phigg", THERE, start), Ok(()));
        assert_eq!(throttle.attempt("kbouman", HERE, start), Ok(()));
        assert_eq!(
            throttle.attempt("phigg", HERE, start + Duration::from_secs(60)),
            Ok(())
        );
    }

    #[test]
    fn per_client_limit_stops_username_sweeps() {
        let throttle = LoginThrottle::new(3, 4, Duration::from_secs(60));
        let now = Instant::now();
        for user in ["a", "b", "c", "d"] {
            assert!(throttle.attempt(user, HERE, now).is_ok());
        }
        assert!(throttle.attempt("e", HERE, now).is_err());
        assert!(throttle.attempt("e", THERE, now).is_ok());
    }

    #[test]
    fn success_and_refunds_take_their_attempt_back() {
        let throttle = LoginThrottle::new(2, 3, Duration::from_secs(60));
        let now = Instant::now();
        throttle.attempt("phigg", HERE, now).unwrap();
        throttle.succeeded("phigg", HERE);
        throttle.attempt("phigg", HERE, now).unwrap();
        throttle.refund("phigg", HERE);
        throttle.attempt("phigg", HERE, now).unwrap();
        assert_eq!(throttle.attempt("phigg", HERE, now), Ok(()));
        // Two failures counted for the user, two for the client (of three).
        assert!(throttle.attempt("phigg", HERE, now).is_err());
        assert!(throttle.attempt("kbouman", HERE, now).is_ok());
        assert!(throttle.attempt("aalcorn", HERE, now).is_err());
    }

    #[test]
    fn a_spray_of_addresses_is_bounded() {
        let throttle = LoginThrottle::new(5, 50, Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..MAX_ENTRIES as u32 {
            let client = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(throttle.attempt("phigg", client, now).is_ok());
        }
        let one_more = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(throttle.attempt("phigg", one_more, now), Err(60));
        // Once the window has passed, idle keys make room.
        let later = now + Duration::from_secs(61);
        assert_eq!(throttle.attempt("phigg", one_more, later), Ok(()));
        let failures = throttle.failures.lock().unwrap();
        assert_eq!(failures.by_client.len(), 1);
    }
}
