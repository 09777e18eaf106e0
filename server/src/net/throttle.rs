//! Failed-login throttling, and the bound on password checks running at once.
//!
//! Nothing here sleeps: an attempt is either admitted at once, or refused at once with how
//! long to wait ("too many failed logins; try again in N s"). A refused attempt changes
//! nothing, so a terminal that keeps asking (or asks and hangs up) costs the real user
//! nothing, and a throttled login holds no connection, task or timer.
//!
//! # Keys
//! Each attempt is counted under three keys, each with its own [`Policy`]:
//! - [`DEVICE_USER`]: this device and this user ID (3 free failures);
//! - [`DEVICE`]: this device, any user (10 free failures: one terminal spraying many users);
//! - [`USER`]: this user ID, any device (a ceiling of 10 free failures), which is *not*
//!   checked for a device that has neither failures nor an attempt in flight for that user:
//!   one device's failures never lock the user out of the others, and the right password
//!   from a clean device always gets through. Several stolen device tokens still give an
//!   attacker no more than one attempt each past the ceiling.
//!
//! A key keeps its failures, the time until which it is blocked (the last failure plus
//! [`delay_after`]: nothing for the free failures, then 250 ms doubling up to 30 s) and the
//! attempts in flight. An attempt is admitted when, on every key that applies, the block is
//! over and either `failures + in_flight < free` (with fewer than the policy's
//! `max_in_flight`) or nothing is in flight: concurrent attempts cannot skip the count.
//!
//! An admitted attempt is an [`Attempt`] that holds its place in flight until it ends:
//! [`Attempt::failed`] counts a failure on every key, [`Attempt::succeeded`] clears the
//! device-and-user and device keys (the user key keeps its failures: a success elsewhere must
//! not give an attacker a fresh ceiling), and dropping it (the peer went away, the connection
//! was dropped, the password changed meanwhile) only gives the place back. Keys idle for
//! 15 minutes are forgotten.
//!
//! # Password checks
//! An argon2 check takes ~19 MiB and tens of milliseconds of a core. [`PasswordChecks`] lets
//! a few run at once (one per core, at most 4) and a bounded number wait; past that a login
//! is told at once that the server is busy. Nothing spawns a thread per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imagecast_shared::domain::domain_key;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How one key counts failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures before delays begin (and attempts that may run at once while there are
    /// fewer failures than this).
    pub free: u32,
    /// Attempts in flight at once on the key, whatever the failures.
    pub max_in_flight: u32,
}

/// One device and one user ID.
pub const DEVICE_USER: Policy = Policy {
    free: 3,
    max_in_flight: 3,
};
/// One device, whatever the user ID (a terminal trying many users). A real terminal has one
/// login in flight per connection, and a connection or two.
pub const DEVICE: Policy = Policy {
    free: 10,
    max_in_flight: 4,
};
/// One user ID, whatever the device: the ceiling, checked only for devices with failures (or
/// an attempt in flight) for that user.
pub const USER: Policy = Policy {
    free: 10,
    max_in_flight: 10,
};
/// The delay after the last free failure.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// A key idle this long (nothing in flight) is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Past this many keys, idle ones are swept.
const SWEEP_ABOVE: usize = 10_000;

/// How long a key is blocked after its `failures`-th failure under `policy`.
pub fn delay_after(policy: Policy, failures: u32) -> Duration {
    if failures < policy.free {
        return Duration::ZERO;
    }
    let exp = (failures - policy.free).min(10);
    (FIRST_DELAY * (1u32 << exp)).min(MAX_DELAY)
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    DeviceUser(String, String),
    Device(String),
    User(String),
}

impl Key {
    fn policy(&self) -> Policy {
        match self {
            Key::DeviceUser(..) => DEVICE_USER,
            Key::Device(_) => DEVICE,
            Key::User(_) => USER,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    in_flight: u32,
    blocked_until: Instant,
    last: Instant,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            failures: 0,
            in_flight: 0,
            blocked_until: now,
            last: now,
        }
    }

    /// Why this key refuses an attempt at `now`, if it does.
    fn refuses(&self, policy: Policy, now: Instant) -> Option<Refused> {
        if now < self.blocked_until {
            return Some(Refused::Blocked(self.blocked_until - now));
        }
        let crowded = self.failures.saturating_add(self.in_flight) >= policy.free
            || self.in_flight >= policy.max_in_flight;
        (self.in_flight > 0 && crowded).then_some(Refused::InFlight)
    }

    fn forgettable(&self, now: Instant) -> bool {
        self.in_flight == 0 && now.saturating_duration_since(self.last) >= FORGET_AFTER
    }
}

/// Why a login attempt was refused without checking its password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too many failures on a key: blocked for this much longer.
    Blocked(Duration),
    /// Too many attempts on a key are being checked already.
    InFlight,
}

impl Refused {
    /// When to try again, in whole seconds (at least 1).
    pub fn retry_secs(&self) -> u64 {
        match self {
            Refused::Blocked(d) => d.as_millis().div_ceil(1000).max(1) as u64,
            Refused::InFlight => 1,
        }
    }

    /// The sentence for the terminal.
    pub fn message(&self) -> String {
        match self {
            Refused::Blocked(_) => format!(
                "too many failed logins; try again in {} s",
                self.retry_secs()
            ),
            Refused::InFlight => "too many logins at once; try again in 1 s".to_owned(),
        }
    }

    fn max(self, other: Refused) -> Refused {
        match (self, other) {
            (Refused::Blocked(a), Refused::Blocked(b)) => Refused::Blocked(a.max(b)),
            (b @ Refused::Blocked(_), Refused::InFlight) => b,
            (Refused::InFlight, other) => other,
        }
    }
}

/// The throttle. One per server.
#[derive(Default)]
pub struct LoginThrottle {
    keys: Mutex<HashMap<Key, Entry>>,
}

/// An admitted login attempt, in flight until it ends (see the module doc).
#[must_use = "dropping the attempt gives its place back without counting anything"]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: [Key; 3],
    ended: bool,
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits an attempt of `user` from device `domain` now, or says why not.
    pub fn admit(&self, domain: &str, user: &str) -> Result<Attempt<'_>, Refused> {
        self.admit_at(Instant::now(), domain, user)
    }

    /// [`LoginThrottle::admit`] at a given time (for tests of schedules).
    pub fn admit_at(&self, now: Instant, domain: &str, user: &str) -> Result<Attempt<'_>, Refused> {
        let device = domain_key(domain).into_owned();
        let keys = [
            Key::DeviceUser(device.clone(), user.to_owned()),
            Key::Device(device),
            Key::User(user.to_owned()),
        ];
        let mut map = self.lock();
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, e| !e.forgettable(now));
        }
        for k in &keys {
            if map.get(k).is_some_and(|e| e.forgettable(now)) {
                map.remove(k);
            }
        }
        // The user key is a ceiling for devices that failed for this user, not for the others.
        let clean = map
            .get(&keys[0])
            .is_none_or(|e| e.failures == 0 && e.in_flight == 0);
        let mut refused: Option<Refused> = None;
        for k in &keys {
            if clean && matches!(k, Key::User(_)) {
                continue;
            }
            if let Some(r) = map.get(k).and_then(|e| e.refuses(k.policy(), now)) {
                refused = Some(refused.map_or(r, |old| old.max(r)));
            }
        }
        if let Some(r) = refused {
            return Err(r);
        }
        for k in &keys {
            let e = map.entry(k.clone()).or_insert_with(|| Entry::new(now));
            e.in_flight += 1;
            e.last = now;
        }
        drop(map);
        Ok(Attempt {
            throttle: self,
            keys,
            ended: false,
        })
    }
}

impl Attempt<'_> {
    /// The password was wrong (or the user unknown): counts a failure on every key. Returns
    /// the highest failure count, for the log.
    pub fn failed(self) -> u32 {
        self.failed_at(Instant::now())
    }

    /// [`Attempt::failed`] at a given time.
    pub fn failed_at(mut self, now: Instant) -> u32 {
        self.ended = true;
        let mut map = self.throttle.lock();
        let mut most = 0;
        for k in &self.keys {
            let e = map.entry(k.clone()).or_insert_with(|| Entry::new(now));
            e.in_flight = e.in_flight.saturating_sub(1);
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            e.blocked_until = e
                .blocked_until
                .max(now + delay_after(k.policy(), e.failures));
            most = most.max(e.failures);
        }
        most
    }

    /// The password was right: clears the device-and-user and device keys; the user key
    /// keeps its failures.
    pub fn succeeded(self) {
        self.succeeded_at(Instant::now());
    }

    /// [`Attempt::succeeded`] at a given time.
    pub fn succeeded_at(mut self, now: Instant) {
        self.ended = true;
        let mut map = self.throttle.lock();
        for k in &self.keys {
            if let Some(e) = map.get_mut(k) {
                e.in_flight = e.in_flight.saturating_sub(1);
                e.last = now;
                if !matches!(k, Key::User(_)) {
                    e.failures = 0;
                    e.blocked_until = now;
                }
                if e.failures == 0 && e.in_flight == 0 {
                    map.remove(k);
                }
            }
        }
    }
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt").field("keys", &self.keys).finish()
    }
}

impl Drop for Attempt<'_> {
    /// An attempt that ended without an answer only gives its place back.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let mut map = self.throttle.lock();
        for k in &self.keys {
            if let Some(e) = map.get_mut(k) {
                e.in_flight = e.in_flight.saturating_sub(1);
                if e.failures == 0 && e.in_flight == 0 {
                    map.remove(k);
                }
            }
        }
    }
}

/// Password checks running at once: each holds a permit, and the blocking task that runs
/// argon2 keeps it until argon2 is done (even when the login waiting for it is gone).
pub struct PasswordChecks {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Too many password checks are waiting already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

impl Busy {
    /// The sentence for the terminal.
    pub fn message(&self) -> &'static str {
        "the server is busy checking passwords; try again in 1 s"
    }
}

/// Password checks waiting for a permit, beyond which a login is told the server is busy.
pub const CHECKS_WAITING: usize = 32;

impl PasswordChecks {
    /// `running` checks at once, `max_waiting` more waiting.
    pub fn new(running: usize, max_waiting: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(running.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// One check per core (at most 4), and [`CHECKS_WAITING`] waiting.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores.clamp(1, 4), CHECKS_WAITING)
    }

    /// A permit to run one check if one is free now.
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.running.clone().try_acquire_owned().ok()
    }

    /// A permit to run one check: at once, after a wait in line, or [`Busy`] when the line is
    /// full. Dropping the future leaves the line.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Some(p) = self.try_acquire() {
            return Ok(p);
        }
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < self.max_waiting).then_some(w + 1)
            })
            .map_err(|_| Busy)?;
        let _in_line = InLine(&self.waiting);
        self.running.clone().acquire_owned().await.map_err(|_| Busy)
    }
}

/// One place in the line for a permit, given back when dropped.
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const A: &str = "sale1.hqs.mei.co.jp";
    const B: &str = "sale2.hqs.mei.co.jp";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_grow_after_the_free_failures() {
        assert_eq!(delay_after(DEVICE_USER, 2), Duration::ZERO);
        assert_eq!(delay_after(DEVICE_USER, 3), ms(250));
        assert_eq!(delay_after(DEVICE_USER, 5), Duration::from_secs(1));
        assert_eq!(delay_after(DEVICE_USER, 40), MAX_DELAY);
        assert_eq!(delay_after(DEVICE, 9), Duration::ZERO);
        assert_eq!(delay_after(USER, 10), ms(250));
    }

    /// Issue item 2: twelve failures and twenty abandoned attempts from one terminal left the
    /// real user throttled on every terminal for ten minutes.
    #[test]
    fn one_devices_failures_and_abandoned_attempts_do_not_lock_the_user_out() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        let mut now = t0;
        let mut checked = 0;
        for _ in 0..12 {
            if let Ok(a) = t.admit_at(now, A, "1001") {
                a.failed_at(now);
                checked += 1;
            }
            now += ms(10);
        }
        assert_eq!(checked, 3, "three free failures, then refusals");
        // Twenty attempts sent at once and abandoned: refused, or admitted and dropped.
        let before = t.admit_at(now, A, "1001").unwrap_err();
        for _ in 0..20 {
            drop(t.admit_at(now, A, "1001"));
        }
        assert_eq!(t.admit_at(now, A, "1001").unwrap_err(), before);
        // The real user, on another terminal, at once.
        t.admit_at(now, B, "1001").unwrap().succeeded_at(now);
        // On the attacker's terminal the block ends after 250 ms, not later.
        let wait = match before {
            Refused::Blocked(d) => d,
            other => panic!("{other:?}"),
        };
        assert!(wait <= ms(250), "{wait:?}");
        assert_eq!(before.message(), "too many failed logins; try again in 1 s");
        t.admit_at(t0 + ms(400), A, "1001")
            .unwrap()
            .failed_at(t0 + ms(400));
        let Err(Refused::Blocked(d)) = t.admit_at(t0 + ms(400), A, "1001") else {
            panic!("the fourth failure blocks again");
        };
        assert_eq!(d, ms(500));
        // An abandoned admitted attempt costs nothing.
        let later = t0 + ms(1000);
        drop(t.admit_at(later, A, "1001").unwrap());
        t.admit_at(later, A, "1001").unwrap().succeeded_at(later);
        t.admit_at(later, A, "1001").unwrap().failed_at(later);
        t.admit_at(later, A, "1001").unwrap().failed_at(later);
    }

    /// Issue item 3: forty passwords sent at once were all checked.
    #[test]
    fn attempts_in_flight_count_before_their_answers() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let admitted: Vec<_> = (0..40)
            .filter_map(|_| t.admit_at(now, A, "1001").ok())
            .collect();
        assert_eq!(admitted.len(), DEVICE_USER.free as usize);
        assert_eq!(
            t.admit_at(now, A, "1001").err().unwrap().message(),
            "too many logins at once; try again in 1 s"
        );
        for a in admitted {
            a.failed_at(now);
        }
        // Once the free failures are spent, one at a time, after the delay.
        let later = now + ms(250);
        let one = t.admit_at(later, A, "1001").unwrap();
        assert_eq!(t.admit_at(later, A, "1001").err(), Some(Refused::InFlight));
        drop(one);
        // A device trying many users is held back by its own key.
        let t = LoginThrottle::default();
        let spray: Vec<_> = (0..10)
            .filter_map(|u| t.admit_at(now, B, &format!("u{u}")).ok())
            .collect();
        assert_eq!(spray.len(), DEVICE.max_in_flight as usize);
    }

    #[test]
    fn the_user_ceiling_stops_many_devices_but_not_a_clean_one() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let devices: Vec<String> = (0..10).map(|i| format!("d{i}.example")).collect();
        for d in &devices {
            t.admit_at(now, d, "1001").unwrap().failed_at(now);
        }
        // Ten failures for 1001: each of those devices is now held by the user key.
        let Err(Refused::Blocked(d)) = t.admit_at(now, &devices[0], "1001") else {
            panic!("the ceiling applies to a device that failed");
        };
        assert_eq!(d, ms(250));
        // A device with no failures for 1001 gets its attempt; while it is in flight, a second
        // one from it is held by the ceiling.
        let clean = t.admit_at(now, "pc.example", "1001").unwrap();
        assert!(t.admit_at(now, "pc.example", "1001").is_err());
        clean.succeeded_at(now);
        // The success does not lift the ceiling for the others.
        assert!(t.admit_at(now, &devices[1], "1001").is_err());
        assert!(t.admit_at(now + ms(250), &devices[1], "1001").is_ok());
        // Keys are by domain key: another spelling is the same device.
        let t = LoginThrottle::default();
        for _ in 0..3 {
            t.admit_at(now, "PC.Example", "7").unwrap().failed_at(now);
        }
        assert!(t.admit_at(now, "pc.example", "7").is_err());
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..3 {
            t.admit_at(now, A, "1001").unwrap().failed_at(now);
        }
        assert!(t.admit_at(now, A, "1001").is_err());
        let later = now + FORGET_AFTER;
        t.admit_at(later, A, "1001").unwrap().succeeded_at(later);
        assert!(t.lock().is_empty(), "{:?}", t.lock().keys());
    }

    #[tokio::test]
    async fn password_checks_are_bounded_and_the_line_too() {
        let checks = PasswordChecks::new(2, 2);
        let p1 = checks.acquire().await.unwrap();
        let _p2 = checks.acquire().await.unwrap();
        let mut w1 = Box::pin(checks.acquire());
        let mut w2 = Box::pin(checks.acquire());
        // Both wait in line.
        assert!(futures_poll(&mut w1).is_none());
        assert!(futures_poll(&mut w2).is_none());
        assert_eq!(checks.acquire().await.err(), Some(Busy));
        // Leaving the line makes room in it.
        drop(w2);
        let mut w3 = Box::pin(checks.acquire());
        assert!(futures_poll(&mut w3).is_none());
        drop(p1);
        assert!(w1.await.is_ok());
        drop(w3);
        assert_eq!(checks.waiting.load(Ordering::Acquire), 0);
    }

    /// Polls a future once.
    fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
