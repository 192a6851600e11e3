//! `balance leastconn`: the server with the least load relative to its weight.
//!
//! The load is HAProxy's `lb_fwlc.c` key: 0 for an idle server, otherwise `(active + 1) /
//! weight`, the share it would carry with one more request, so idle servers always come first
//! and a heavier server takes proportionally more. Servers with equal keys take turns: the scan
//! starts after the last server picked.

use std::cmp::Ordering;

use super::Candidates;

/// `leastconn` state: where the next tie-breaking scan starts.
#[derive(Debug, Default)]
pub(super) struct LeastConn {
    next: usize,
}

impl LeastConn {
    /// The least loaded server with room, or `None` when all are at their `maxconn`.
    pub(super) fn pick(&mut self, c: &Candidates<'_>) -> Option<usize> {
        let n = c.len();
        let mut best: Option<(usize, Load)> = None;
        for step in 0..n {
            let i = (self.next + step) % n;
            if !c.has_room(i) {
                continue;
            }
            let load = Load::of(c.active(i), c.weight(i));
            // Strictly less: among equals the first after the last pick wins.
            if best.is_none_or(|(_, b)| load < b) {
                best = Some((i, load));
            }
        }
        let (i, _) = best?;
        self.next = i + 1;
        Some(i)
    }
}

/// A load as an exact fraction, compared by cross-multiplication (no rounding, no overflow:
/// at most 2^32 × 256).
#[derive(Debug, Clone, Copy)]
struct Load {
    numerator: u64,
    denominator: u64,
}

impl Load {
    fn of(active: u32, weight: u32) -> Self {
        if active == 0 {
            Load {
                numerator: 0,
                denominator: 1,
            }
        } else {
            Load {
                numerator: u64::from(active) + 1,
                denominator: u64::from(weight.max(1)),
            }
        }
    }
}

impl PartialEq for Load {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Load {}

impl PartialOrd for Load {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Load {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.numerator * other.denominator).cmp(&(other.numerator * self.denominator))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{request, servers, Selector, ServerView};
    use crate::config::{Balance, HashType};

    fn leastconn(weights: &[u32]) -> Selector {
        Selector::new(&Balance::LeastConn, HashType::MapBased, weights)
    }

    fn with_active(weights: &[u32], active: &[u32]) -> Vec<ServerView> {
        let mut views = servers(weights);
        views
            .iter_mut()
            .zip(active)
            .for_each(|(v, &a)| v.active = a);
        views
    }

    fn pick(selector: &mut Selector, views: &[ServerView]) -> Option<usize> {
        selector.pick(views, &request("/"))
    }

    #[test]
    fn picks_the_least_loaded_server() {
        let mut selector = leastconn(&[1, 1, 1]);
        assert_eq!(
            pick(&mut selector, &with_active(&[1, 1, 1], &[5, 2, 7])),
            Some(1)
        );
        assert_eq!(
            pick(&mut selector, &with_active(&[1, 1, 1], &[5, 9, 0])),
            Some(2)
        );
    }

    #[test]
    fn load_is_relative_to_weight() {
        let mut selector = leastconn(&[3, 1]);
        // (3+1)/3 < (1+1)/1
        assert_eq!(pick(&mut selector, &with_active(&[3, 1], &[3, 1])), Some(0));
        // (8+1)/3 = 3 > (1+1)/1 = 2
        assert_eq!(pick(&mut selector, &with_active(&[3, 1], &[8, 1])), Some(1));
        // An idle server comes first whatever the weights.
        assert_eq!(
            pick(&mut selector, &with_active(&[10, 1], &[1, 0])),
            Some(1)
        );
    }

    #[test]
    fn equal_servers_take_turns() {
        let mut selector = leastconn(&[1, 1, 1]);
        let views = servers(&[1, 1, 1]);
        let picked: Vec<_> = (0..6)
            .map(|_| pick(&mut selector, &views).unwrap())
            .collect();
        assert_eq!(picked, [0, 1, 2, 0, 1, 2]);
        // Ties among the two least loaded alternate; the loaded one is never picked.
        let views = with_active(&[1, 1, 1], &[4, 9, 4]);
        let picked: Vec<_> = (0..4)
            .map(|_| pick(&mut selector, &views).unwrap())
            .collect();
        assert_eq!(picked, [0, 2, 0, 2]);
    }

    #[test]
    fn connections_that_stay_open_fill_servers_by_weight() {
        let mut selector = leastconn(&[3, 1]);
        let mut views = servers(&[3, 1]);
        for _ in 0..400 {
            let i = pick(&mut selector, &views).unwrap();
            views[i].active += 1;
        }
        let (heavy, light) = (views[0].active, views[1].active);
        assert!(
            (299..=301).contains(&heavy) && heavy + light == 400,
            "{heavy} {light}"
        );
    }

    #[test]
    fn skips_down_and_full_servers() {
        let mut selector = leastconn(&[1, 1, 1]);
        let mut views = with_active(&[1, 1, 1], &[0, 3, 5]);
        views[0].usable = false;
        views[1].maxconn = 3;
        assert_eq!(pick(&mut selector, &views), Some(2));
        views[2].maxconn = 5;
        assert_eq!(pick(&mut selector, &views), None);
    }
}
