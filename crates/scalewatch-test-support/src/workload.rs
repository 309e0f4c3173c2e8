//! Deterministic workloads: a seeded PRNG and a Zipf sampler, so that every stream is the
//! same on every run and its ground truth is computed exactly.

/// xorshift64* (Vigna): fast, seeded, good enough for workloads.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is taken as 1: xorshift never leaves 0).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Zipf(s) over keys 0..n: key i has probability (i+1)^-s / H(n, s). Exact inverse CDF
/// by binary search over the cumulative table.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// Zipf(`s`) over `n` keys.
    pub fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for i in 1..=n {
            acc += (i as f64).powf(-s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Self { cdf }
    }

    /// One key, drawn with `rng`.
    pub fn sample(&self, rng: &mut XorShift) -> u64 {
        let u = rng.next_f64();
        self.cdf
            .partition_point(|c| *c <= u)
            .min(self.cdf.len() - 1) as u64
    }

    /// The exact probability of key `i`.
    pub fn probability(&self, i: usize) -> f64 {
        self.cdf[i] - if i == 0 { 0.0 } else { self.cdf[i - 1] }
    }
}

/// A meter that goes nowhere (the global no-op provider, when none is installed).
pub fn noop_meter() -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter_provider().meter("scalewatch-tests")
}

/// Whether the long variants run (`SCALEWATCH_LONG=1`): ten times the counts.
pub fn long() -> bool {
    std::env::var_os("SCALEWATCH_LONG").is_some_and(|v| !v.is_empty() && v != "0")
}
