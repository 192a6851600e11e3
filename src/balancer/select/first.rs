//! `balance first`: the first server, in configuration order, with a free connection slot.
//!
//! HAProxy's `lb_fas.c` orders servers by id, which is configuration order unless ids are set
//! by hand (halyard does not read `id`). A server fills up to its `maxconn` before the next one
//! gets anything, so idle servers can be powered down; without `maxconn` the first usable server
//! takes everything. Weights only matter at 0.

use super::Candidates;

/// The first server with room, or `None` when every candidate is at its `maxconn`.
pub(super) fn pick(c: &Candidates<'_>) -> Option<usize> {
    (0..c.len()).find(|&i| c.has_room(i))
}

#[cfg(test)]
mod tests {
    use super::super::{request, servers, Selector, ServerView};
    use crate::config::{Balance, HashType};

    fn first(weights: &[u32]) -> Selector {
        Selector::new(&Balance::First, HashType::MapBased, weights)
    }

    fn limited(maxconn: &[usize]) -> Vec<ServerView> {
        let mut views = servers(&vec![1; maxconn.len()]);
        views
            .iter_mut()
            .zip(maxconn)
            .for_each(|(v, &m)| v.maxconn = m);
        views
    }

    #[test]
    fn fills_each_server_to_its_maxconn_then_spills_over() {
        let mut selector = first(&[1, 1, 1]);
        let mut views = limited(&[2, 3, 1]);
        let mut picked = Vec::new();
        for _ in 0..7 {
            match selector.pick(&views, &request("/")) {
                Some(i) => {
                    views[i].active += 1;
                    picked.push(Some(i));
                }
                None => picked.push(None),
            }
        }
        let expected = [0, 0, 1, 1, 1, 2].map(Some);
        assert_eq!(picked[..6], expected);
        assert_eq!(picked[6], None, "all full");
        // A connection closing on the first server sends the next request back to it.
        views[0].active -= 1;
        assert_eq!(selector.pick(&views, &request("/")), Some(0));
    }

    #[test]
    fn without_maxconn_the_first_usable_server_takes_everything() {
        let mut selector = first(&[1, 1, 1]);
        let mut views = limited(&[0, 0, 0]);
        views[0].active = 1_000_000;
        for _ in 0..5 {
            assert_eq!(selector.pick(&views, &request("/")), Some(0));
        }
        views[0].usable = false;
        assert_eq!(selector.pick(&views, &request("/")), Some(1));
        views[1].weight = 0;
        assert_eq!(selector.pick(&views, &request("/")), Some(2));
    }
}
