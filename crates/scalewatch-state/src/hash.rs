//! Key hashing: one fast, seeded 64-bit hash per sampled access (per access in a sharded
//! keyspace, which counts each shard's load), the key's fingerprint; and a keyed digest of
//! the fingerprint for export.

use std::hash::{BuildHasher, Hash, Hasher};

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// Murmur3's 64-bit finaliser: every input bit affects every output bit.
#[inline]
pub(crate) fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A fast seeded hasher (multiply-rotate per word, murmur finaliser). Not DoS-resistant on
/// its own; the seed is secret by default, and a flood of colliding keys can only make the
/// top-k less precise, never use more memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyHasher {
    state: u64,
}

impl KeyHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(K).rotate_left(29);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.mix(i as u64);
        self.mix((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        fmix64(self.state)
    }
}

/// Builds [`KeyHasher`]s with one seed; also usable as a `HashMap` hasher.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyHash {
    seed: u64,
}

impl KeyHash {
    pub(crate) fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The fingerprint of `key`.
    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hash_one(key)
    }
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    #[inline]
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { state: self.seed }
    }
}

/// Identity hasher for maps keyed by fingerprints (already well mixed).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b) ^ (self.0 >> 56);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A secret 128-bit key from the standard library's per-process random state.
pub(crate) fn random_key() -> u128 {
    let s = std::collections::hash_map::RandomState::new();
    let a = s.hash_one(0x5ca1_e5a7_u64);
    let b = s.hash_one(0x0b5e_17ed_u64);
    (u128::from(a) << 64) | u128::from(b)
}

/// The keyed digest of a fingerprint: SipHash-2-4 under `key`, as 16 lowercase hex digits.
/// Without the key the digest reveals nothing about the fingerprint or the key.
pub(crate) fn digest(key: u128, fingerprint: u64) -> String {
    #[allow(deprecated)] // SipHasher is deprecated for HashMap use only; it is SipHash-2-4.
    let mut h = std::hash::SipHasher::new_with_keys((key >> 64) as u64, key as u64);
    h.write_u64(fingerprint);
    format!("{:016x}", h.finish())
}

/// The fingerprint seed derived from the digest key, so that a configured key makes
/// digests stable across processes.
pub(crate) fn seed_from(key: u128) -> u64 {
    fmix64((key as u64) ^ fmix64((key >> 64) as u64 ^ K))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_per_key_and_16_hex_digits() {
        let d = digest(42, 7);
        assert_eq!(d.len(), 16);
        assert!(d.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(d, digest(42, 7));
        assert_ne!(d, digest(43, 7));
        assert_ne!(d, digest(42, 8));
    }

    #[test]
    fn strings_and_integers_hash_apart() {
        let h = KeyHash::new(1);
        assert_ne!(h.hash("a"), h.hash("b"));
        assert_ne!(h.hash("ab"), h.hash("a\u{0}b"));
        assert_ne!(h.hash(&1u64), h.hash(&2u64));
        assert_eq!(h.hash("key-1"), h.hash(&String::from("key-1")));
        assert_ne!(KeyHash::new(2).hash(&1u64), h.hash(&1u64));
    }
}
