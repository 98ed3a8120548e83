//! A short-lived in-memory cache of session → user, so a page view does not need a database
//! round trip just to learn who is asking. Entries live a few seconds; signing out, disabling
//! a user or changing their role removes theirs at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::User;

#[derive(Debug)]
pub struct SessionCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (User, Instant)>>,
}

/// More entries than this and the cache starts over (bounded memory under many sessions).
const MAX_ENTRIES: usize = 10_000;

impl SessionCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (User, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, secret: &str, now: Instant) -> Option<User> {
        let entries = self.lock();
        entries
            .get(secret)
            .filter(|(_, fetched)| now.duration_since(*fetched) < self.ttl)
            .map(|(user, _)| user.clone())
    }

    pub fn insert(&self, secret: &str, user: User, now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(secret.to_owned(), (user, now));
    }

    /// Forgets one session (sign-out).
    pub fn remove(&self, secret: &str) {
        self.lock().remove(secret);
    }

    /// Forgets every session of a user (disabled, role changed).
    pub fn remove_user(&self, user_id: &str) {
        self.lock().retain(|_, (user, _)| user.id != user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            email: format!("{id}@example.com"),
            name: id.into(),
            role: Role::Viewer,
        }
    }

    #[test]
    fn entries_expire_and_can_be_removed_by_session_or_user() {
        let cache = SessionCache::new(Duration::from_secs(5));
        let t0 = Instant::now();
        cache.insert("s1", user("a"), t0);
        cache.insert("s2", user("a"), t0);
        cache.insert("s3", user("b"), t0);
        assert!(cache.get("s1", t0 + Duration::from_secs(4)).is_some());
        assert!(
            cache.get("s1", t0 + Duration::from_secs(5)).is_none(),
            "expired"
        );
        cache.remove("s3");
        assert!(cache.get("s3", t0).is_none());
        cache.remove_user("a");
        assert!(cache.get("s1", t0).is_none() && cache.get("s2", t0).is_none());
    }
}
