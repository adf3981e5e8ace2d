//! NumPy's legacy `np.random.RandomState(seed).choice(n, m, replace=False)`, draw for draw, so
//! that KID uses exactly the subsets torch-fidelity uses (its `metric_kid.py` draws them from
//! `np.random.RandomState(rng_seed)`, `rng_seed` 2020 by default).
//!
//! The generator is the 32-bit Mersenne Twister (MT19937, Matsumoto and Nishimura 1998) with
//! its reference `init_genrand` seeding, which is what `RandomState(int)` does (NumPy's
//! `_mt19937.pyx`, `_legacy_seeding`; `mt19937.c`, `mt19937_seed`). `choice` without
//! replacement and without weights is `permutation(n)[:m]` (`mtrand.pyx`), and `permutation`
//! shuffles `arange(n)` by Fisher-Yates from the last position down, drawing each swap partner
//! with `random_interval` (`distributions.c`): 32-bit words masked to the smallest all-ones
//! mask covering the bound, rejected until one is within it. `RandomState`'s stream is frozen
//! by NumPy's compatibility policy (NEP 19), so these draws do not change between versions.

/// MT19937 state words.
const N: usize = 624;
/// MT19937 middle word offset.
const M: usize = 397;

/// NumPy's legacy `RandomState` generator, as far as `choice(n, m, replace=False)` needs it.
#[derive(Debug, Clone)]
pub struct RandomState {
    mt: [u32; N],
    pos: usize,
}

impl RandomState {
    /// `np.random.RandomState(seed)`; NumPy accepts integer seeds in `0..=2^32 - 1`.
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; N];
        mt[0] = seed;
        for i in 1..N {
            let prev = mt[i - 1];
            mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        RandomState { mt, pos: N }
    }

    /// The next 32-bit output (MT19937's `genrand_int32`, tempered).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            for i in 0..N {
                let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % N] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.mt[i] = self.mt[(i + M) % N] ^ (y >> 1) ^ mag;
            }
            self.pos = 0;
        }
        let mut y = self.mt[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A uniform integer in `0..=max` by masked rejection (NumPy's `random_interval`); only
    /// bounds below `2^32` occur here (NumPy switches to 64-bit words above).
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `choice(n, m, replace=False)`: the first `m` entries of a uniform permutation of
    /// `0..n`, equal to NumPy's for the same seed and the same sequence of calls.
    ///
    /// # Panics
    /// If `m > n` or `n >= 2^32` (NumPy raises for the first; KID never asks for either).
    pub fn choice_without_replacement(&mut self, n: usize, m: usize) -> Vec<usize> {
        assert!(m <= n, "cannot take {m} of {n} without replacement");
        assert!(
            u32::try_from(n).is_ok(),
            "population {n} is beyond 32-bit draws"
        );
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            perm.swap(i, j);
        }
        perm.truncate(m);
        perm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference outputs of MT19937 seeded by `init_genrand(5489)` (the generator's
    /// default seed): the 1st and the 10000th, from the C++ standard (`std::mt19937`, whose
    /// 10000th output the standard fixes at 4123659995) and the reference implementation.
    #[test]
    fn mersenne_twister_matches_its_reference_outputs() {
        let mut r = RandomState::new(5489);
        assert_eq!(r.next_u32(), 3_499_211_612);
        for _ in 1..9999 {
            r.next_u32();
        }
        assert_eq!(r.next_u32(), 4_123_659_995);
    }

    #[test]
    fn choice_is_a_partial_permutation() {
        let mut r = RandomState::new(2020);
        let mut c = r.choice_without_replacement(50, 20);
        assert_eq!(c.len(), 20);
        c.sort_unstable();
        c.dedup();
        assert_eq!(c.len(), 20);
        assert!(c.iter().all(|&i| i < 50));
        assert_eq!(r.choice_without_replacement(1, 1), vec![0]);
        assert!(r.choice_without_replacement(5, 0).is_empty());
    }
}
