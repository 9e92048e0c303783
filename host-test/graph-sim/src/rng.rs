//! Seeded pseudo-randomness: a SplitMix64 stream and stateless hash-derived values.
//!
//! Why both? World facts (names, metrics, schedules) must be a pure function of the seed and the
//! object's identity, so they use [`mix`] on a tuple of integers and never depend on the order in
//! which requests arrive. Fault injection, on the other hand, is specified as "drawn in request
//! order", which is exactly what a sequential [`SplitMix64`] stream gives.

/// SplitMix64's golden-ratio increment; any odd constant works, this one is the published one.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Finalises a 64-bit state into a well-mixed output (the SplitMix64 output function).
pub fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a seed and a list of integers into one well-mixed value.
pub fn mix(seed: u64, parts: &[u64]) -> u64 {
    let mut h = finalize(seed ^ GOLDEN);
    for (i, p) in parts.iter().enumerate() {
        h = finalize(h ^ p.wrapping_add(GOLDEN.wrapping_mul(i as u64 + 1)));
    }
    h
}

/// FNV-1a over bytes: a stable string hash (std's `DefaultHasher` is not promised stable).
pub fn hash_str(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Maps a hash to a float in `[0, 1)`.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A value in `lo..=hi` derived from a hash.
pub fn range(h: u64, lo: u64, hi: u64) -> u64 {
    if hi <= lo { lo } else { lo + h % (hi - lo + 1) }
}

/// A sequential SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Starts a stream at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        finalize(self.state)
    }

    /// The next float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        unit(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_the_same_stream() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn mix_depends_on_every_part_and_its_position() {
        assert_ne!(mix(1, &[1, 2]), mix(1, &[2, 1]));
        assert_ne!(mix(1, &[1, 2]), mix(2, &[1, 2]));
        assert!(unit(u64::MAX) < 1.0);
    }
}
