//! `balance random(N)`: draw N servers at random, weighted by weight, and keep the least loaded
//! (the power of N choices; `random` alone is N = 2).
//!
//! As HAProxy's `get_server_rnd`, the comparison is relative to weight (active × other weight),
//! and a later draw wins a tie. HAProxy draws by looking a random number up on the consistent
//! hash ring, so its odds follow the ring's uneven slices; halyard draws from the cumulative
//! weights, so a server's odds are exactly its share of the weight. Servers at their `maxconn`
//! are not drawn (HAProxy would queue on the winner when it is full; halyard queues on the backend
//! only when all are).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::Candidates;

/// `random(N)` state: the generator and a scratch buffer reused across picks.
#[derive(Debug)]
pub(super) struct Random {
    draws: u32,
    rng: SplitMix64,
    /// Running total of the weights of the servers with room, by index.
    cumulative: Vec<u64>,
}

impl Random {
    /// `draws` choices per pick (0 counts as 1), seeded from the clock and a process counter
    /// so two backends never share a sequence.
    pub(super) fn new(draws: u32) -> Self {
        static BACKENDS: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let nth = BACKENDS.fetch_add(1, Ordering::Relaxed);
        Self::with_seed(draws, nanos ^ nth.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn with_seed(draws: u32, seed: u64) -> Self {
        Random {
            draws: draws.max(1),
            rng: SplitMix64(seed),
            cumulative: Vec::new(),
        }
    }

    /// The least loaded of `draws` weighted draws, or `None` when no server has room.
    pub(super) fn pick(&mut self, c: &Candidates<'_>) -> Option<usize> {
        self.cumulative.clear();
        let mut total = 0_u64;
        for i in 0..c.len() {
            if c.has_room(i) {
                total += u64::from(c.weight(i));
            }
            self.cumulative.push(total);
        }
        if total == 0 {
            return None;
        }
        let mut best: Option<usize> = None;
        for _ in 0..self.draws {
            let ticket = self.rng.below(total);
            // Server i holds the tickets [cumulative[i - 1], cumulative[i]).
            let drawn = self.cumulative.partition_point(|&end| end <= ticket);
            best = match best {
                Some(kept) if busier(c, drawn, kept) => Some(kept),
                _ => Some(drawn),
            };
        }
        best
    }
}

/// `a` carries more load for its weight than `b`.
fn busier(c: &Candidates<'_>, a: usize, b: usize) -> bool {
    let load = |x: usize, y: usize| u64::from(c.active(x)) * u64::from(c.weight(y));
    load(a, b) > load(b, a)
}

/// Vigna's SplitMix64: tiny, fast, and plenty for spreading load (not for secrets).
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` by multiply-and-shift (bias below 2^-40 for our totals).
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::super::{servers, Candidates, Eligible, ServerView};
    use super::*;

    fn candidates(views: &[ServerView]) -> Candidates<'_> {
        Candidates {
            servers: views,
            configured: &[],
            eligible: Eligible::of(views),
        }
    }

    /// How often each server wins over `n` picks.
    fn tally(random: &mut Random, views: &[ServerView], n: usize) -> Vec<f64> {
        let mut counts = vec![0.0; views.len()];
        for _ in 0..n {
            counts[random.pick(&candidates(views)).unwrap()] += 1.0;
        }
        counts.iter().map(|c| c / n as f64).collect()
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // splitmix64.c seeded with 0.
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn two_choices_prefer_the_idle_server() {
        let mut views = servers(&[1, 1]);
        views[1].active = 100;
        // The busy server wins only when both draws are it: 1/4 of picks.
        let idle = tally(&mut Random::with_seed(2, 7), &views, 20_000)[0];
        assert!(idle > 0.70 && idle < 0.80, "idle won {idle}");
        // Whenever both are drawn the idle one wins.
        assert!(!busier(&candidates(&views), 0, 1) && busier(&candidates(&views), 1, 0));
        // Three choices: 1 - 1/8.
        let idle = tally(&mut Random::with_seed(3, 7), &views, 20_000)[0];
        assert!(idle > 0.85, "idle won {idle} with three draws");
        // One choice is plain weighted random.
        let idle = tally(&mut Random::with_seed(1, 7), &views, 20_000)[0];
        assert!(
            (0.47..0.53).contains(&idle),
            "idle won {idle} with one draw"
        );
    }

    #[test]
    fn equal_loads_follow_weights() {
        let views = servers(&[1, 3, 4]);
        let got = tally(&mut Random::with_seed(2, 11), &views, 40_000);
        for (share, expected) in got.iter().zip([0.125, 0.375, 0.5]) {
            assert!((share - expected).abs() < 0.02, "{got:?}");
        }
    }

    #[test]
    fn load_is_compared_relative_to_weight() {
        // 10 requests on weight 10 is lighter than 2 on weight 1.
        let mut views = servers(&[10, 1]);
        views[0].active = 10;
        views[1].active = 2;
        assert!(busier(&candidates(&views), 1, 0));
    }

    #[test]
    fn never_draws_a_down_full_or_weightless_server() {
        let mut views = servers(&[1, 1, 0, 1]);
        views[0].usable = false;
        views[1].maxconn = 4;
        views[1].active = 4;
        let got = tally(&mut Random::with_seed(2, 3), &views, 1_000);
        assert_eq!(got, [0.0, 0.0, 0.0, 1.0]);
        views[3].usable = false;
        let mut random = Random::with_seed(2, 3);
        assert_eq!(random.pick(&candidates(&views)), None);
    }

    #[test]
    fn two_selectors_get_different_sequences() {
        let (mut a, mut b) = (Random::new(2), Random::new(2));
        let same = (0..8).filter(|_| a.rng.next() == b.rng.next()).count();
        assert!(same < 8);
    }
}
