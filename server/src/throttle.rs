//! Failed-login throttling, per device and per user: after a few failures each further attempt
//! on the same key waits longer (250 ms doubling up to 30 s), and attempts on one key are
//! spaced by that delay even when they arrive on many connections at once. A success clears
//! the key; a key idle for 15 minutes is forgotten.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before delays begin.
pub const FREE_FAILURES: u32 = 3;
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// A key idle this long is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    next_slot: Instant,
    last: Instant,
}

/// The throttle. One per server.
#[derive(Default)]
pub struct LoginThrottle {
    keys: Mutex<HashMap<String, Entry>>,
}

/// The delay after `failures` consecutive failures.
pub fn delay_after(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let exp = (failures - FREE_FAILURES).min(10);
    (Duration::from_millis(250) * (1u32 << exp)).min(MAX_DELAY)
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves the next attempt for these keys; returns how long to wait before checking it.
    pub fn reserve(&self, keys: &[String]) -> Duration {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() > 10_000 {
            map.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
        }
        let mut wait = Duration::ZERO;
        for k in keys {
            if let Some(e) = map.get_mut(k) {
                if now.duration_since(e.last) >= FORGET_AFTER {
                    map.remove(k);
                    continue;
                }
                let d = delay_after(e.failures);
                if d.is_zero() {
                    continue;
                }
                let slot = e.next_slot.max(now);
                e.next_slot = slot + d;
                wait = wait.max(slot - now + d);
            }
        }
        wait
    }

    /// Counts a failure against every key; returns the highest failure count.
    pub fn failed(&self, keys: &[String]) -> u32 {
        let now = Instant::now();
        let mut map = self.lock();
        let mut most = 0;
        for k in keys {
            let e = map.entry(k.clone()).or_insert(Entry {
                failures: 0,
                next_slot: now,
                last: now,
            });
            e.failures += 1;
            e.last = now;
            most = most.max(e.failures);
        }
        most
    }

    /// Clears the keys after a success.
    pub fn succeeded(&self, keys: &[String]) {
        let mut map = self.lock();
        for k in keys {
            map.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_the_free_failures_and_clear_on_success() {
        assert_eq!(delay_after(2), Duration::ZERO);
        assert_eq!(delay_after(3), Duration::from_millis(250));
        assert_eq!(delay_after(5), Duration::from_secs(1));
        assert_eq!(delay_after(40), MAX_DELAY);
        let t = LoginThrottle::default();
        let keys = vec!["device:a".to_owned(), "user:1001".to_owned()];
        for _ in 0..4 {
            t.failed(&keys);
        }
        // Two attempts at once are spaced, not run side by side.
        let first = t.reserve(&keys);
        let second = t.reserve(&keys);
        assert!(first >= Duration::from_millis(500), "{first:?}");
        assert!(
            second >= first + Duration::from_millis(400),
            "{first:?} {second:?}"
        );
        // Another user on another device is not slowed.
        assert_eq!(
            t.reserve(&["device:b".into(), "user:1002".into()]),
            Duration::ZERO
        );
        t.succeeded(&keys);
        assert_eq!(t.reserve(&keys), Duration::ZERO);
    }
}
