//! The pause before a terminal dials its server again.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Pauses doubling from a first step to a largest one, each drawn at random from the upper
/// half of its step: terminals cut off together (a server restart) come back spread over the
/// step instead of in lockstep, and none waits less than half of it.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// Steps from `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            step: first,
        }
    }

    /// The pause to wait now; the next step doubles.
    pub fn pause(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(self.max);
        jittered(step)
    }

    /// The current step, the longest the next pause may be.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// Back to the first step (a connection worked).
    pub fn reset(&mut self) {
        self.step = self.first;
    }
}

/// A pause drawn at random from the upper half of `step`, for a caller that keeps its own
/// steps.
pub fn jittered(step: Duration) -> Duration {
    let half = step / 2;
    half + half.mul_f64(unit_random())
}

/// A number in [0, 1) that differs from call to call and from process to process (std's
/// randomly keyed hasher; jitter needs no more).
fn unit_random() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_within_the_upper_half_of_each_step_and_spread() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut step = Duration::from_millis(200);
        for _ in 0..10 {
            let p = b.pause();
            assert!(
                p >= step / 2 && p <= step,
                "{p:?} outside ({step:?}/2, {step:?})"
            );
            step = (step * 2).min(Duration::from_secs(5));
        }
        assert_eq!(b.step(), Duration::from_secs(5));
        b.reset();
        assert_eq!(b.step(), Duration::from_millis(200));
        // A thousand terminals at the same step do not all pick the same pause.
        let pauses: std::collections::HashSet<Duration> = (0..1000)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).pause())
            .collect();
        assert!(pauses.len() > 900, "only {} distinct pauses", pauses.len());
    }
}
