//! The one random generator of the tests: xorshift64, small and
//! deterministic, so that a randomised test can print its seed and be
//! replayed exactly.
//!
//! A randomised test takes its seed from [`seed`] (or [`Rng::seeded`]), which
//! reads `QUIRE_CRASH_SEED` when it is set and the clock otherwise, and
//! prints it on stderr; `QUIRE_CRASH_SEED=N cargo test ...` replays the run.

use std::time::Duration;

/// The seed of a randomised run: `QUIRE_CRASH_SEED` if set (and a number),
/// else the clock. Prints `{label}: seed N (QUIRE_CRASH_SEED=N replays it)`.
pub fn seed(label: &str) -> u64 {
    let seed = std::env::var("QUIRE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{label}: seed {seed} (QUIRE_CRASH_SEED={seed} replays it)");
    seed
}

/// A xorshift64 generator. The same seed gives the same sequence.
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (made odd, so it is never the stuck
    /// state zero).
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// A generator from [`seed`]`(label)`: printed, replayable.
    pub fn seeded(label: &str) -> Self {
        Rng::new(seed(label))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`0` when `n` is `0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A uniformly random point in `0..=whole`.
    pub fn fraction_of(&mut self, whole: Duration) -> Duration {
        whole.mul_f64(self.below(1_000_001) as f64 / 1_000_000.0)
    }
}
