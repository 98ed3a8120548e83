//! The sign-in limiter: counts attempts per account and client address, per client address
//! and per account in sliding windows, and bounds how many password verifications run at
//! once, so password guessing is slowed down without anyone locking a known user out.
//!
//! An attempt is counted *before* the slow verification (and refunded when it succeeds), so
//! parallel guesses cannot all pass the check while the first ones are still being verified.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits, from `HINDSIGHT_LOGIN_*`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failed attempts allowed for one account from one client address per window.
    pub per_account_and_address: u32,
    /// Failed attempts allowed from one client address, whatever the accounts, per window
    /// (password spraying).
    pub per_address: u32,
    /// Failed attempts allowed against one account from addresses it has not signed in from
    /// lately, whatever the address, per window (a distributed guesser). Addresses the account
    /// signed in from lately are not held by this ceiling, so guessing from elsewhere cannot
    /// lock the account's owner out.
    pub per_account: u32,
    pub window: Duration,
    /// Password verifications (Argon2id, ~19 MiB each) allowed to run at once.
    pub max_concurrent: usize,
    /// Most keys kept in memory; beyond it the oldest are forgotten first.
    pub max_keys: usize,
}

/// How long an address stays "known" for an account after a successful sign-in.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why an attempt is refused before its password is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures: wait this many seconds. `first` is true for the first refusal of
    /// this key in this window (so it is audited once, not on every retry).
    Throttled {
        retry_after_secs: u64,
        key: &'static str,
        first: bool,
    },
    /// Every verification slot is busy right now: try again in a second.
    Busy,
}

/// A counted attempt holding a verification slot; say how it went with `succeeded` or
/// `failed`. Dropping it unreported counts as a failure (the attempt stays counted).
#[derive(Debug)]
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    keys: Vec<(Key, Instant)>,
    account: String,
    client: Option<IpAddr>,
    _permit: OwnedSemaphorePermit,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, Option<IpAddr>),
    Address(IpAddr),
    Account(String),
}

impl Key {
    fn label(&self) -> &'static str {
        match self {
            Self::Pair(..) => "account and address",
            Self::Address(_) => "address",
            Self::Account(_) => "account",
        }
    }
}

#[derive(Debug, Default)]
struct Bucket {
    times: VecDeque<Instant>,
    /// Whether the refusal of this key has been reported in the current window.
    reported: bool,
    last_touched: Option<Instant>,
}

#[derive(Debug, Default)]
struct Maps {
    buckets: HashMap<Key, Bucket>,
    /// (account, address) → last successful sign-in.
    known: HashMap<(String, IpAddr), Instant>,
}

#[derive(Debug)]
pub struct LoginLimiter {
    limits: Limits,
    maps: Mutex<Maps>,
    slots: std::sync::Arc<Semaphore>,
}

impl LoginLimiter {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            maps: Mutex::new(Maps::default()),
            slots: std::sync::Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt to sign in to `account` from `client` and takes a verification slot,
    /// or says why not. Checking and counting happen under one lock, so no number of parallel
    /// attempts gets past a limit.
    pub fn begin(
        &self,
        account: &str,
        client: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt<'_>, Refusal> {
        let mut maps = self.lock();
        let known = client.is_some_and(|ip| {
            maps.known
                .get(&(account.to_owned(), ip))
                .is_some_and(|at| now.duration_since(*at) < KNOWN_FOR)
        });
        let mut keys = vec![(
            Key::Pair(account.to_owned(), client),
            self.limits.per_account_and_address,
        )];
        if let Some(ip) = client {
            keys.push((Key::Address(ip), self.limits.per_address));
        }
        if !known {
            keys.push((Key::Account(account.to_owned()), self.limits.per_account));
        }
        let mut refusal: Option<Refusal> = None;
        for (key, limit) in &keys {
            let Some(bucket) = maps.buckets.get_mut(key) else {
                continue;
            };
            bucket
                .times
                .retain(|t| now.duration_since(*t) < self.limits.window);
            if bucket.times.len() < *limit as usize {
                // Below its limit again: reaching it next time is a new episode, reported anew.
                bucket.reported = false;
            } else {
                let oldest = bucket.times.front().copied().unwrap_or(now);
                let left = self
                    .limits
                    .window
                    .saturating_sub(now.duration_since(oldest))
                    .as_secs()
                    .max(1);
                let first = !bucket.reported;
                bucket.reported = true;
                let wait = match &refusal {
                    Some(Refusal::Throttled {
                        retry_after_secs, ..
                    }) => (*retry_after_secs).max(left),
                    _ => left,
                };
                let first =
                    first || matches!(&refusal, Some(Refusal::Throttled { first: true, .. }));
                refusal = Some(Refusal::Throttled {
                    retry_after_secs: wait,
                    key: key.label(),
                    first,
                });
            }
        }
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        // A slot, or a quick "busy": never a queue of verifications waiting for memory.
        let Ok(permit) = std::sync::Arc::clone(&self.slots).try_acquire_owned() else {
            return Err(Refusal::Busy);
        };
        self.make_room(&mut maps, now, keys.len());
        for (key, _) in &keys {
            let bucket = maps.buckets.entry(key.clone()).or_default();
            bucket.times.push_back(now);
            bucket.last_touched = Some(now);
        }
        Ok(Attempt {
            limiter: self,
            keys: keys.into_iter().map(|(k, _)| (k, now)).collect(),
            account: account.to_owned(),
            client,
            _permit: permit,
        })
    }

    /// Keeps the maps under `max_keys`: first forgets what is outside the window, then the
    /// least recently touched keys. Memory stays bounded under a flood of distinct accounts
    /// or addresses.
    fn make_room(&self, maps: &mut Maps, now: Instant, adding: usize) {
        let max = self.limits.max_keys.max(adding + 1);
        if maps.buckets.len() + adding <= max {
            return;
        }
        let window = self.limits.window;
        maps.buckets.retain(|_, b| {
            b.times.retain(|t| now.duration_since(*t) < window);
            !b.times.is_empty()
        });
        if maps.buckets.len() + adding > max {
            let mut by_age: Vec<(Instant, Key)> = maps
                .buckets
                .iter()
                .map(|(k, b)| (b.last_touched.unwrap_or(now), k.clone()))
                .collect();
            by_age.sort_by_key(|(t, _)| *t);
            let excess = maps.buckets.len() + adding - max;
            for (_, key) in by_age.into_iter().take(excess) {
                maps.buckets.remove(&key);
            }
        }
        if maps.known.len() >= max {
            maps.known
                .retain(|_, at| now.duration_since(*at) < KNOWN_FOR);
            if maps.known.len() >= max {
                maps.known.clear();
            }
        }
    }

    /// How many keys the limiter holds (for tests of its bound).
    pub fn tracked_keys(&self) -> usize {
        let maps = self.lock();
        maps.buckets.len() + maps.known.len()
    }

    /// Verification slots free right now.
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }
}

impl Attempt<'_> {
    /// The password was right: the attempt is refunded, the account's failures from this
    /// address are forgotten and the address becomes known for the account.
    pub fn succeeded(self, now: Instant) {
        let mut maps = self.limiter.lock();
        for (key, at) in &self.keys {
            if let Some(bucket) = maps.buckets.get_mut(key) {
                if let Some(pos) = bucket.times.iter().rposition(|t| t == at) {
                    bucket.times.remove(pos);
                }
                if matches!(key, Key::Pair(..)) {
                    bucket.times.clear();
                }
                if bucket.times.is_empty() {
                    maps.buckets.remove(key);
                }
            }
        }
        if let Some(ip) = self.client {
            self.limiter.make_room(&mut maps, now, 1);
            maps.known.insert((self.account.clone(), ip), now);
        }
    }

    /// The password was wrong: the attempt stays counted.
    pub fn failed(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            per_account_and_address: 3,
            per_address: 5,
            per_account: 8,
            window: Duration::from_secs(60),
            max_concurrent: 100,
            max_keys: 1000,
        }
    }

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, n]))
    }

    #[test]
    fn blocks_after_the_limit_and_forgets_after_the_window() {
        let limiter = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.begin("a", ip(1), t0).expect("allowed").failed();
        }
        let refused = limiter
            .begin("a", ip(1), t0)
            .expect_err("fourth is refused");
        assert!(matches!(
            refused,
            Refusal::Throttled {
                first: true,
                key: "account and address",
                ..
            }
        ));
        assert!(matches!(
            limiter.begin("a", ip(1), t0),
            Err(Refusal::Throttled { first: false, .. })
        ));
        // Someone else, from another address, signs in to the same account unhindered.
        assert!(limiter.begin("a", ip(2), t0).is_ok());
        assert!(
            limiter
                .begin("a", ip(1), t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn attempts_are_counted_before_they_finish() {
        // Three attempts in flight at once use up the limit: a fourth is refused even though
        // none of them has failed yet.
        let limiter = LoginLimiter::new(limits());
        let t0 = Instant::now();
        let held: Vec<_> = (0..3)
            .map(|_| limiter.begin("a", ip(1), t0).expect("allowed"))
            .collect();
        assert!(limiter.begin("a", ip(1), t0).is_err());
        drop(held);
    }

    #[test]
    fn a_successful_sign_in_refunds_its_attempt_and_clears_the_pair() {
        let limiter = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for _ in 0..2 {
            limiter.begin("a", ip(1), t0).expect("allowed").failed();
        }
        limiter
            .begin("a", ip(1), t0)
            .expect("allowed")
            .succeeded(t0);
        for _ in 0..3 {
            limiter
                .begin("a", ip(1), t0)
                .expect("pair cleared")
                .failed();
        }
    }

    #[test]
    fn spraying_many_accounts_from_one_address_hits_the_address_limit() {
        let limiter = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for n in 0..5 {
            limiter
                .begin(&format!("user{n}"), ip(9), t0)
                .expect("allowed")
                .failed();
        }
        assert!(matches!(
            limiter.begin("user99", ip(9), t0),
            Err(Refusal::Throttled { key: "address", .. })
        ));
    }

    #[test]
    fn a_distributed_guesser_hits_the_account_ceiling_but_not_the_owners_known_address() {
        let limiter = LoginLimiter::new(limits());
        let t0 = Instant::now();
        // The owner signed in from .200 before.
        limiter
            .begin("admin", ip(200), t0)
            .expect("allowed")
            .succeeded(t0);
        for n in 0..8 {
            limiter.begin("admin", ip(n), t0).expect("allowed").failed();
        }
        assert!(matches!(
            limiter.begin("admin", ip(50), t0),
            Err(Refusal::Throttled { key: "account", .. })
        ));
        assert!(
            limiter.begin("admin", ip(200), t0).is_ok(),
            "the owner's usual address is not locked out"
        );
    }

    #[test]
    fn verifications_beyond_the_bound_are_refused_at_once() {
        let limiter = LoginLimiter::new(Limits {
            max_concurrent: 2,
            per_account_and_address: 100,
            per_address: 100,
            per_account: 100,
            ..limits()
        });
        let t0 = Instant::now();
        let a = limiter.begin("a", ip(1), t0).expect("slot 1");
        let b = limiter.begin("b", ip(2), t0).expect("slot 2");
        assert_eq!(limiter.begin("c", ip(3), t0).err(), Some(Refusal::Busy));
        a.failed();
        assert!(limiter.begin("c", ip(3), t0).is_ok(), "a slot came free");
        drop(b);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_distinct_keys() {
        let limiter = LoginLimiter::new(Limits {
            max_keys: 50,
            ..limits()
        });
        let t0 = Instant::now();
        for n in 0..10_000u32 {
            let client = Some(IpAddr::from(n.to_be_bytes()));
            if let Ok(a) = limiter.begin(&format!("user{n}"), client, t0) {
                a.failed();
            }
        }
        assert!(limiter.tracked_keys() <= 50, "{}", limiter.tracked_keys());
    }
}
