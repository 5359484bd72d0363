//! Reconnect delays: capped exponential backoff with jitter.
//!
//! Agents that lose their hub connection come back the way real agents do:
//! after a delay that grows with each failed attempt, capped, and spread by
//! jitter so a wave of drops does not turn into a synchronised stampede of
//! reconnects. The jitter formulas are the ones compared in Marc Brooker,
//! "Exponential Backoff And Jitter", AWS Architecture Blog (2015),
//! <https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>.
//!
//! Attempts are numbered from 0: attempt 0 is the first retry after a drop
//! and waits `base` (before jitter). All randomness comes from the caller's
//! [`SmallRng`], so a seeded run replays the same delays.

use rand::rngs::SmallRng;
use rand::Rng;
use serde::Deserialize;
use std::time::Duration;

/// How a delay is spread around the exponential curve.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    /// The exponential delay itself: every agent retries at the same instants.
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// Half the delay plus a uniform half: `[d/2, d]`.
    Equal,
    /// Grows from the previous delay: uniform in `[base, 3·previous]`, capped.
    Decorrelated,
}

/// A reconnect policy (`reconnect = { base, max, factor, jitter }`).
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The delay of attempt 0 (before jitter); the floor of decorrelated jitter.
    pub base: Duration,
    /// The cap of every delay.
    pub max: Duration,
    /// Growth per attempt (2.0 doubles).
    pub factor: f64,
    pub jitter: Jitter,
    /// Attempts allowed; `None` retries for ever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    /// The design's example: 500ms doubling up to 30s, full jitter, no limit.
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: Jitter::Full,
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The capped exponential delay of `attempt`, before jitter:
    /// `min(max, base·factor^attempt)`. Overflow (and a nonsensical factor
    /// giving NaN) saturates at `max`.
    pub fn exponential(&self, attempt: u32) -> Duration {
        let nanos = self.base.as_nanos() as f64 * self.factor.powf(f64::from(attempt));
        if nanos.is_nan() || nanos >= self.max.as_nanos() as f64 {
            return self.max;
        }
        // Saturating cast: a negative product (negative factor) gives zero.
        Duration::from_nanos(nanos.round() as u64).min(self.max)
    }

    /// The delay before retry number `attempt` (from 0), or `None` once
    /// `max_attempts` are used up. `previous` is the delay returned for the
    /// previous attempt; only [`Jitter::Decorrelated`] uses it, and treats
    /// anything below `base` (e.g. `Duration::ZERO` on the first attempt)
    /// as `base`.
    ///
    /// With `d = min(max, base·factor^attempt)`, the AWS blog's formulas:
    /// - None:         `d`
    /// - Full:         `sleep = random_between(0, d)`
    /// - Equal:        `sleep = d/2 + random_between(0, d/2)`
    /// - Decorrelated: `sleep = min(cap, random_between(base, sleep·3))`
    ///   (ignores `attempt` and `factor`; it grows from `previous`).
    pub fn delay(&self, attempt: u32, previous: Duration, rng: &mut SmallRng) -> Option<Duration> {
        if self.max_attempts.is_some_and(|n| attempt >= n) {
            return None;
        }
        let delay = match self.jitter {
            Jitter::None => self.exponential(attempt),
            Jitter::Full => rng.gen_range(Duration::ZERO..=self.exponential(attempt)),
            Jitter::Equal => {
                let half = self.exponential(attempt) / 2;
                half + rng.gen_range(Duration::ZERO..=half)
            }
            Jitter::Decorrelated => {
                let high = previous.max(self.base).saturating_mul(3);
                rng.gen_range(self.base..=high).min(self.max)
            }
        };
        Some(delay)
    }

    /// [`delay`](Backoff::delay), then sleep it on the tokio clock. Returns
    /// the delay slept, or `None` at once when the attempts are used up.
    ///
    /// The delay is rounded up to whole milliseconds first: tokio's timer
    /// has millisecond resolution and rounds every deadline up anyway, so
    /// the returned value is what is actually slept (exactly, under a
    /// paused clock) and the right `previous` for the next attempt.
    pub async fn wait(
        &self,
        attempt: u32,
        previous: Duration,
        rng: &mut SmallRng,
    ) -> Option<Duration> {
        let delay = ceil_millis(self.delay(attempt, previous, rng)?);
        tokio::time::sleep(delay).await;
        Some(delay)
    }
}

/// `d` rounded up to a whole number of milliseconds (saturating).
pub fn ceil_millis(d: Duration) -> Duration {
    let millis = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn policy(jitter: Jitter) -> Backoff {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter,
            max_attempts: None,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Delays of attempts `0..n`, each fed the previous one.
    fn sequence(b: &Backoff, seed: u64, n: u32) -> Vec<Duration> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut previous = Duration::ZERO;
        (0..n)
            .map(|attempt| {
                previous = b.delay(attempt, previous, &mut rng).unwrap();
                previous
            })
            .collect()
    }

    #[test]
    fn no_jitter_is_exact_exponential_capped_at_max() {
        let got = sequence(&policy(Jitter::None), 1, 10);
        let want = [
            500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000,
        ]
        .map(ms);
        assert_eq!(got, want);
    }

    #[test]
    fn exponential_saturates_instead_of_overflowing() {
        let b = policy(Jitter::None);
        assert_eq!(b.exponential(u32::MAX), b.max);
        let nan = Backoff {
            factor: f64::NAN,
            ..policy(Jitter::None)
        };
        assert_eq!(nan.exponential(3), nan.max);
        let slow = Backoff {
            base: ms(100),
            factor: 1.5,
            ..policy(Jitter::None)
        };
        assert_eq!(
            (0..4).map(|a| slow.exponential(a)).collect::<Vec<_>>(),
            [ms(100), ms(150), ms(225), Duration::from_micros(337_500)]
        );
    }

    #[test]
    fn full_jitter_stays_within_zero_and_d() {
        let b = policy(Jitter::Full);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut below_half = false;
        for attempt in 0..200 {
            let d = b.exponential(attempt % 12);
            let got = b.delay(attempt % 12, Duration::ZERO, &mut rng).unwrap();
            assert!(got <= d, "{got:?} > {d:?}");
            below_half |= got < d / 2;
        }
        assert!(below_half, "full jitter never went below d/2 in 200 draws");
    }

    #[test]
    fn equal_jitter_stays_within_half_d_and_d() {
        let b = policy(Jitter::Equal);
        let mut rng = SmallRng::seed_from_u64(7);
        for attempt in 0..200 {
            let d = b.exponential(attempt % 12);
            let got = b.delay(attempt % 12, Duration::ZERO, &mut rng).unwrap();
            assert!(
                d / 2 <= got && got <= d,
                "{got:?} outside [{:?}, {d:?}]",
                d / 2
            );
        }
    }

    #[test]
    fn decorrelated_jitter_stays_within_base_and_three_times_previous() {
        let b = policy(Jitter::Decorrelated);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut previous = Duration::ZERO;
        let mut reached_max = false;
        for attempt in 0..200 {
            let got = b.delay(attempt, previous, &mut rng).unwrap();
            let high = b.max.min(previous.max(b.base) * 3);
            assert!(
                b.base <= got && got <= high,
                "{got:?} outside [{:?}, {high:?}]",
                b.base
            );
            reached_max |= got == b.max;
            previous = got;
        }
        assert!(reached_max, "never capped in 200 attempts");
    }

    #[test]
    fn same_seed_same_sequence() {
        for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
            let b = policy(jitter);
            assert_eq!(sequence(&b, 42, 20), sequence(&b, 42, 20), "{jitter:?}");
            assert_ne!(sequence(&b, 42, 20), sequence(&b, 43, 20), "{jitter:?}");
        }
    }

    #[test]
    fn max_attempts_is_honoured() {
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let b = Backoff {
                max_attempts: Some(3),
                ..policy(jitter)
            };
            let mut rng = SmallRng::seed_from_u64(1);
            for attempt in 0..3 {
                assert!(b.delay(attempt, ms(500), &mut rng).is_some());
            }
            assert_eq!(b.delay(3, ms(500), &mut rng), None);
            assert_eq!(b.delay(u32::MAX, ms(500), &mut rng), None);
        }
        let none = Backoff {
            max_attempts: Some(0),
            ..policy(Jitter::None)
        };
        assert_eq!(
            none.delay(0, Duration::ZERO, &mut SmallRng::seed_from_u64(1)),
            None
        );
    }

    #[test]
    fn ceil_millis_rounds_up() {
        assert_eq!(ceil_millis(Duration::ZERO), Duration::ZERO);
        assert_eq!(ceil_millis(Duration::from_nanos(1)), ms(1));
        assert_eq!(ceil_millis(ms(3)), ms(3));
        assert_eq!(ceil_millis(Duration::from_micros(3_001)), ms(4));
        assert_eq!(ceil_millis(Duration::MAX), Duration::from_millis(u64::MAX));
    }

    #[test]
    fn jitter_deserializes_lowercase() {
        #[derive(Deserialize)]
        struct R {
            jitter: Vec<Jitter>,
        }
        let r: R = toml::from_str(r#"jitter = ["none", "full", "equal", "decorrelated"]"#).unwrap();
        assert_eq!(
            r.jitter,
            [
                Jitter::None,
                Jitter::Full,
                Jitter::Equal,
                Jitter::Decorrelated
            ]
        );
        assert!(toml::from_str::<R>(r#"jitter = ["Full"]"#).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn wait_sleeps_exactly_the_returned_delay() {
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let b = policy(jitter);
            let mut rng = SmallRng::seed_from_u64(9);
            let mut previous = Duration::ZERO;
            let mut twin = rng.clone();
            for attempt in 0..8 {
                let start = tokio::time::Instant::now();
                let got = b.wait(attempt, previous, &mut rng).await.unwrap();
                assert_eq!(start.elapsed(), got, "{jitter:?} attempt {attempt}");
                // The same draw as `delay`, rounded up to the millisecond.
                let drawn = b.delay(attempt, previous, &mut twin).unwrap();
                assert!(drawn <= got && got - drawn < ms(1), "{drawn:?} -> {got:?}");
                assert_eq!(got.subsec_nanos() % 1_000_000, 0);
                previous = got;
            }
        }
        let b = Backoff {
            max_attempts: Some(1),
            ..policy(Jitter::None)
        };
        let mut rng = SmallRng::seed_from_u64(9);
        let start = tokio::time::Instant::now();
        assert_eq!(b.wait(1, ms(500), &mut rng).await, None);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
