//! `balance roundrobin` and `balance static-rr`, and the weighted slot map static-rr shares with
//! map-based hashing.
//!
//! roundrobin is nginx's smooth weighted round robin on the *current* weights: each server's
//! score grows by its weight at every pick and the best pays the total back, so weights 5,1,1
//! give `a a b a c a a`, never five `a` in a row, and a weight changed at run time counts from
//! the next pick. HAProxy's `lb_fwrr.c` reaches a similar interleaving with weighted trees; this
//! is simpler, with the same proportions but not always the same order.
//!
//! static-rr walks a map of slots built from the *configured* weights (HAProxy's `lb_map.c`):
//! exact proportions over each turn of the map, and a run-time weight counts only when it is 0.

use super::Candidates;

/// `roundrobin`: smooth weighted round robin on the current weights.
#[derive(Debug, Default)]
pub(super) struct Smooth {
    /// Each server's running score (nginx's `current_weight`).
    current: Vec<i64>,
}

impl Smooth {
    /// The next server, or `None` when every candidate is at its `maxconn`.
    pub(super) fn pick(&mut self, c: &Candidates<'_>) -> Option<usize> {
        self.current.resize(c.len(), 0);
        let mut total = 0_i64;
        let mut best: Option<usize> = None;
        for i in 0..c.len() {
            if !c.contains(i) {
                // Out of the rotation: it comes back with a fresh score, not an old debt.
                self.current[i] = 0;
                continue;
            }
            if !c.has_room(i) {
                continue;
            }
            let weight = i64::from(c.weight(i));
            self.current[i] += weight;
            total += weight;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        self.current[best] -= total;
        Some(best)
    }
}

/// `static-rr`: walks the slot map of the configured weights.
#[derive(Debug, Default)]
pub(super) struct Static {
    map: SlotMap,
    /// The next slot to try.
    next: usize,
}

impl Static {
    /// The next server with room in the map, or `None` when all are at their `maxconn`.
    pub(super) fn pick(&mut self, c: &Candidates<'_>) -> Option<usize> {
        let slots = self.map.refresh(c);
        let len = slots.len();
        for step in 0..len {
            let at = (self.next + step) % len;
            let server = slots[at] as usize;
            if c.has_room(server) {
                self.next = at + 1;
                return Some(server);
            }
        }
        None
    }

    /// The server in slot `hash` modulo the map's size (map-based hashing: `maxconn` ignored).
    pub(super) fn slot(&mut self, c: &Candidates<'_>, hash: u32) -> Option<usize> {
        let slots = self.map.refresh(c);
        let at = usize::try_from(hash).ok()? % slots.len().max(1);
        slots.get(at).map(|&server| server as usize)
    }
}

/// Weighted slots: each server in the group holds weight / gcd slots, spread evenly.
#[derive(Debug, Default)]
struct SlotMap {
    /// The static weights the slots were built from (0: not in the map).
    weights: Vec<u32>,
    /// Server indexes.
    slots: Vec<u32>,
}

impl SlotMap {
    /// The slots for the current group, rebuilt when a server entered or left it.
    fn refresh(&mut self, c: &Candidates<'_>) -> &[u32] {
        let n = c.len();
        let same = self.weights.len() == n && (0..n).all(|i| self.weights[i] == c.static_weight(i));
        if !same {
            self.weights = (0..n).map(|i| c.static_weight(i)).collect();
            self.slots = interleave(&self.weights);
            // The caller's position stays meaningful modulo the new length.
        }
        &self.slots
    }
}

/// Slots for these weights: server `i`'s `k`-th slot sits at `(2k + 1) / 2w_i` of the way
/// round, and sorting those places spreads every server evenly (earliest deadline first).
/// This costs total × log total, where replaying smooth round robin would cost total × servers
/// (a million steps for thousands of servers). Dividing by the gcd keeps the map small (all
/// weights 256 is one slot each) without changing any proportion.
fn interleave(weights: &[u32]) -> Vec<u32> {
    let divisor = weights.iter().fold(0, |g, &w| gcd(g, w));
    if divisor == 0 {
        return Vec::new();
    }
    // (k, server, reduced weight)
    let mut places: Vec<(u32, u32, u32)> = Vec::new();
    for (server, &w) in weights.iter().enumerate() {
        let (Ok(server), w) = (u32::try_from(server), w / divisor) else {
            break;
        };
        places.extend((0..w).map(|k| (k, server, w)));
    }
    places.sort_unstable_by(|a, b| {
        let left = u64::from(2 * a.0 + 1) * u64::from(b.2);
        let right = u64::from(2 * b.0 + 1) * u64::from(a.2);
        left.cmp(&right).then(a.1.cmp(&b.1))
    });
    places.into_iter().map(|(_, server, _)| server).collect()
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::super::{request, servers, Selector, ServerView};
    use crate::config::{Balance, HashType};

    fn picks(selector: &mut Selector, views: &[ServerView], n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| selector.pick(views, &request("/")).expect("a server"))
            .collect()
    }

    fn counts(picked: &[usize], servers: usize) -> Vec<usize> {
        let mut counts = vec![0; servers];
        picked.iter().for_each(|&i| counts[i] += 1);
        counts
    }

    /// The longest run of the same server in `picked`, per server.
    fn longest_runs(picked: &[usize], servers: usize) -> Vec<usize> {
        let mut longest = vec![0; servers];
        let mut run = 0;
        for (at, &i) in picked.iter().enumerate() {
            run = if at > 0 && picked[at - 1] == i {
                run + 1
            } else {
                1
            };
            longest[i] = longest[i].max(run);
        }
        longest
    }

    fn roundrobin(weights: &[u32]) -> Selector {
        Selector::new(&Balance::RoundRobin, HashType::MapBased, weights)
    }

    fn static_rr(weights: &[u32]) -> Selector {
        Selector::new(&Balance::StaticRr, HashType::MapBased, weights)
    }

    #[test]
    fn exact_proportions_over_each_cycle() {
        for make in [roundrobin, static_rr] {
            let mut selector = make(&[3, 1]);
            let views = servers(&[3, 1]);
            for _ in 0..5 {
                assert_eq!(counts(&picks(&mut selector, &views, 4), 2), [3, 1]);
            }
            let mut selector = make(&[5, 1, 1]);
            let views = servers(&[5, 1, 1]);
            for _ in 0..5 {
                assert_eq!(counts(&picks(&mut selector, &views, 7), 3), [5, 1, 1]);
            }
        }
    }

    #[test]
    fn weights_5_1_1_interleave_as_nginx_documents() {
        // nginx's commit introducing smooth weighted round robin gives { a, a, b, a, c, a, a }.
        let mut selector = roundrobin(&[5, 1, 1]);
        let picked = picks(&mut selector, &servers(&[5, 1, 1]), 14);
        assert_eq!(picked, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn no_server_runs_longer_than_its_weight_ratio_allows() {
        let sets: [&[u32]; 5] = [
            &[3, 1],
            &[5, 1, 1],
            &[10, 3, 2],
            &[1, 1, 1, 1],
            &[256, 1, 7],
        ];
        for weights in sets {
            for make in [roundrobin, static_rr] {
                let mut selector = make(weights);
                let total: u32 = weights.iter().sum();
                let picked = picks(&mut selector, &servers(weights), 3 * total as usize);
                let runs = longest_runs(&picked, weights.len());
                for (i, &w) in weights.iter().enumerate() {
                    // ceil(w_i / w_j) + 1 for every other j: the heaviest j is the tightest.
                    let others = weights.iter().enumerate().filter(|&(j, _)| j != i);
                    let w_j = others.map(|(_, &w)| w).max().unwrap();
                    let bound = w.div_ceil(w_j) as usize + 1;
                    assert!(runs[i] <= bound, "{weights:?}: server {i} ran {}", runs[i]);
                }
            }
        }
    }

    #[test]
    fn a_down_server_gets_nothing_and_the_others_keep_their_proportions() {
        for make in [roundrobin, static_rr] {
            let mut selector = make(&[3, 2, 1]);
            let mut views = servers(&[3, 2, 1]);
            picks(&mut selector, &views, 5);
            views[1].usable = false;
            // Let the rotation settle on the new group, then count whole cycles.
            picks(&mut selector, &views, 4);
            assert_eq!(counts(&picks(&mut selector, &views, 400), 3), [300, 0, 100]);
            views[1].usable = true;
            picks(&mut selector, &views, 6);
            assert_eq!(
                counts(&picks(&mut selector, &views, 600), 3),
                [300, 200, 100]
            );
        }
    }

    #[test]
    fn a_weight_changed_at_run_time_takes_effect_for_roundrobin_only() {
        let mut dynamic = roundrobin(&[1, 1]);
        let mut fixed = static_rr(&[1, 1]);
        let mut views = servers(&[1, 1]);
        assert_eq!(counts(&picks(&mut dynamic, &views, 10), 2), [5, 5]);
        assert_eq!(counts(&picks(&mut fixed, &views, 10), 2), [5, 5]);
        views[0].weight = 3;
        picks(&mut dynamic, &views, 4);
        assert_eq!(counts(&picks(&mut dynamic, &views, 400), 2), [300, 100]);
        assert_eq!(counts(&picks(&mut fixed, &views, 400), 2), [200, 200]);
        // 0 is the one run-time weight static-rr honours.
        views[0].weight = 0;
        assert_eq!(counts(&picks(&mut dynamic, &views, 10), 2), [0, 10]);
        assert_eq!(counts(&picks(&mut fixed, &views, 10), 2), [0, 10]);
    }

    #[test]
    fn a_server_at_its_maxconn_is_skipped_and_all_full_gives_none() {
        for make in [roundrobin, static_rr] {
            let mut selector = make(&[1, 1]);
            let mut views = servers(&[1, 1]);
            views[0].maxconn = 2;
            views[0].active = 2;
            assert_eq!(picks(&mut selector, &views, 4), [1, 1, 1, 1]);
            views[1].maxconn = 1;
            views[1].active = 1;
            assert_eq!(selector.pick(&views, &request("/")), None);
        }
    }

    #[test]
    fn slot_map_is_reduced_by_the_gcd_and_spread() {
        assert_eq!(super::interleave(&[256, 256, 0, 256]), [0, 1, 3]);
        assert_eq!(super::interleave(&[6, 2]), [0, 0, 1, 0]);
        assert_eq!(super::interleave(&[0, 0]), Vec::<u32>::new());
        let big: Vec<u32> = (0..3000).map(|i| 1 + i % 256).collect();
        let slots = super::interleave(&big);
        assert_eq!(slots.len() as u32, big.iter().sum::<u32>());
    }
}
