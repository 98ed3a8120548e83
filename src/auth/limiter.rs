//! Counts failed logins per account and per client address in a sliding window, so password
//! guessing is slowed down without locking anyone out for long.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failed logins per account and per client address in a sliding window.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait when any of `keys` has used up its attempts.
    pub fn blocked_for(&self, keys: &[String], now: Instant) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for key in keys {
            if let Some(times) = map.get_mut(key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= self.max_failures as usize
                    && let Some(oldest) = times.first()
                {
                    let left = self.window.saturating_sub(now.duration_since(*oldest));
                    wait = Some(wait.unwrap_or(0).max(left.as_secs().max(1)));
                }
            }
        }
        wait
    }

    pub fn record_failure(&self, keys: &[String], now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bound memory under a flood of distinct keys: forget everything outside the window.
        if map.len() > 10_000 {
            map.retain(|_, times| {
                times.retain(|t| now.duration_since(*t) < self.window);
                !times.is_empty()
            });
        }
        for key in keys {
            map.entry(key.clone()).or_default().push(now);
        }
    }

    pub fn clear(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_after_max_failures_and_forgets_after_the_window() {
        let limiter = LoginLimiter::new(3, Duration::from_secs(60));
        let keys = vec!["email:a@example.com".to_owned()];
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.blocked_for(&keys, t0), None);
            limiter.record_failure(&keys, t0);
        }
        assert!(limiter.blocked_for(&keys, t0).is_some());
        assert_eq!(
            limiter.blocked_for(&keys, t0 + Duration::from_secs(61)),
            None
        );
    }
}
