//! `balance source | uri | url_param | hdr`: the same key goes to the same server.
//!
//! Keys are hashed as HAProxy's `backend.c` does with the default `hash-type` functions: the
//! client address XOR-folded into 32 bits (IPv6 as four words; an IPv4-mapped IPv6 address
//! counts as IPv4); everything else with `sdbm` over the bytes: the URI up to `?`, the value
//! of the first `NAME=` query parameter, the header's first comma-separated value. An absent
//! parameter or an absent or empty header means round robin instead, as in HAProxy.
//!
//! `map-based` takes the hash modulo the size of the static-rr slot map, built from the
//! configured weights of the servers up now: cheap, but most keys move when one goes down.
//! `consistent` applies HAProxy's avalanche (`full_hash`, its default for that type) and looks
//! the hash up on a ring where server `i` has its effective weight (`16 × weight`) in points at
//! `full_hash((i + 1) × 4096 + k)`, HAProxy's own placement for server id `i + 1`. The key
//! goes to the nearer of the two neighbouring points, as in `lb_chash.c`. Only the keys of a
//! server that goes down move, and they come back with it. Both ignore `maxconn`.

use super::roundrobin::{Smooth, Static};
use super::{Candidates, RequestKey};
use crate::config::HashType;

/// Spacing of two servers' point ids (HAProxy's `SRV_EWGHT_RANGE`, 256 × 16).
const POINT_ID_RANGE: u32 = 4096;

/// What is hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Key {
    Source,
    Uri,
    UrlParam(String),
    Hdr(String),
}

/// A hash algorithm's state.
#[derive(Debug)]
pub(super) struct Hash {
    key: Key,
    table: Table,
}

/// Where hashes land, and the round robin for requests without the key.
#[derive(Debug)]
enum Table {
    /// The static-rr slot map; walking it is the fallback, as in HAProxy's `lb_map.c`.
    Map(Static),
    /// Consistent weights are dynamic, so is the fallback.
    Consistent { ring: Ring, fallback: Smooth },
}

impl Hash {
    pub(super) fn new(key: Key, hash_type: HashType) -> Self {
        let table = match hash_type {
            HashType::MapBased => Table::Map(Static::default()),
            HashType::Consistent => Table::Consistent {
                ring: Ring::default(),
                fallback: Smooth::default(),
            },
        };
        Hash { key, table }
    }

    /// The key's server, or the next in round robin when the request has no key.
    pub(super) fn pick(&mut self, c: &Candidates<'_>, request: &RequestKey<'_>) -> Option<usize> {
        let hash = self.key.hash(request);
        match (&mut self.table, hash) {
            (Table::Map(map), Some(hash)) => map.slot(c, hash),
            (Table::Map(map), None) => map.pick(c),
            (Table::Consistent { ring, .. }, Some(hash)) => ring.lookup(c, full_hash(hash)),
            (Table::Consistent { fallback, .. }, None) => fallback.pick(c),
        }
    }
}

impl Key {
    /// The request's hash, or `None` when it lacks the key.
    fn hash(&self, request: &RequestKey<'_>) -> Option<u32> {
        match self {
            Key::Source => Some(address_hash(request.client)),
            Key::Uri => {
                let path = request.uri.split('?').next().unwrap_or_default();
                Some(sdbm(path.as_bytes()))
            }
            Key::UrlParam(name) => url_param(request.uri, name).map(|v| sdbm(v.as_bytes())),
            Key::Hdr(name) => first_value((request.header)(name)?).map(|v| sdbm(v.as_bytes())),
        }
    }
}

/// HAProxy's `get_server_sh` input: the address in host order, IPv6 XOR-folded to 32 bits.
fn address_hash(client: std::net::IpAddr) -> u32 {
    match client.to_canonical() {
        std::net::IpAddr::V4(v4) => u32::from(v4),
        std::net::IpAddr::V6(v6) => {
            let x = u128::from(v6);
            [96, 64, 32, 0]
                .iter()
                .fold(0, |h, &shift| h ^ (x >> shift) as u32)
        }
    }
}

/// The value of the first `name=` parameter of the query string, up to the next `&`.
fn url_param<'u>(uri: &'u str, name: &str) -> Option<&'u str> {
    let (_, query) = uri.split_once('?')?;
    query
        .split('&')
        .find_map(|param| param.strip_prefix(name)?.strip_prefix('='))
}

/// A header's first comma-separated value, trimmed, as HAProxy's `http_find_header` yields it;
/// an empty value counts as absent.
fn first_value(value: &str) -> Option<&str> {
    let first = value.split(',').next().unwrap_or_default();
    Some(first.trim_matches([' ', '\t'])).filter(|v| !v.is_empty())
}

/// HAProxy's default hash function, `hash_sdbm`: `h = c + h × 65599` over the bytes.
fn sdbm(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0_u32, |h, &c| {
        u32::from(c).wrapping_add(h.wrapping_mul(65599))
    })
}

/// HAProxy's `full_hash`: Bob Jenkins' 32-bit avalanche, then a multiply spreading the result
/// over the whole ring.
fn full_hash(mut a: u32) -> u32 {
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

/// The consistent-hash ring of the servers in the group, at their current weights.
#[derive(Debug, Default)]
struct Ring {
    /// The weights the points were placed for (0: no points).
    weights: Vec<u32>,
    /// `position << 32 | server`, sorted: the ring clockwise.
    points: Vec<u64>,
}

impl Ring {
    /// The server whose point is nearest `hash`.
    fn lookup(&mut self, c: &Candidates<'_>, hash: u32) -> Option<usize> {
        self.refresh(c);
        let len = self.points.len();
        if len == 0 {
            return None;
        }
        let at = self.points.partition_point(|&p| position(p) < hash);
        let next = self.points[at % len];
        let prev = self.points[(at + len - 1) % len];
        let before = hash.wrapping_sub(position(prev));
        let after = position(next).wrapping_sub(hash);
        let nearest = if before <= after { prev } else { next };
        Some(server(nearest))
    }

    /// Moves only the points of servers whose weight changed (0 when down): a server going
    /// down or up costs a filter and a merge, not a re-sort of the whole ring.
    fn refresh(&mut self, c: &Candidates<'_>) {
        let n = c.len();
        if self.weights.len() == n && (0..n).all(|i| self.weights[i] == c.weight(i)) {
            return;
        }
        let weights: Vec<u32> = (0..n).map(|i| c.weight(i)).collect();
        let moved = |i: usize| self.weights.get(i) != weights.get(i);
        let mut added: Vec<u64> = (0..n)
            .filter(|&i| moved(i))
            .flat_map(|i| points_of(i, weights[i]))
            .collect();
        added.sort_unstable();
        let kept = self.points.iter().copied().filter(|&p| !moved(server(p)));
        self.points = merge(kept, added);
        self.weights = weights;
    }
}

/// Server `i`'s points for this effective weight, one each (a prefix of those for a larger
/// weight, as in HAProxy).
fn points_of(i: usize, weight: u32) -> impl Iterator<Item = u64> {
    let (id, index) = (u32::try_from(i + 1).unwrap_or(u32::MAX), i as u64);
    (0..weight).map(move |k| {
        let position = full_hash(id.wrapping_mul(POINT_ID_RANGE).wrapping_add(k));
        u64::from(position) << 32 | index
    })
}

fn position(point: u64) -> u32 {
    (point >> 32) as u32
}

fn server(point: u64) -> usize {
    (point & u64::from(u32::MAX)) as usize
}

/// Two sorted sequences as one.
fn merge(kept: impl Iterator<Item = u64>, added: Vec<u64>) -> Vec<u64> {
    let mut out = Vec::with_capacity(added.len());
    let mut added = added.into_iter().peekable();
    for point in kept {
        while let Some(new) = added.next_if(|&new| new < point) {
            out.push(new);
        }
        out.push(point);
    }
    out.extend(added);
    out
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::super::{no_header, request, servers, RequestKey, Selector, ServerView};
    use super::*;
    use crate::config::Balance;

    const BOTH: [HashType; 2] = [HashType::MapBased, HashType::Consistent];

    fn uri_keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("/objects/{i}.jpg")).collect()
    }

    /// Each key's server, hashing `balance uri`.
    fn assign(selector: &mut Selector, views: &[ServerView], keys: &[String]) -> Vec<usize> {
        let pick = |uri: &String| selector.pick(views, &request(uri)).expect("a server");
        keys.iter().map(pick).collect()
    }

    fn shares(assigned: &[usize], servers: usize) -> Vec<f64> {
        let mut counts = vec![0.0; servers];
        assigned.iter().for_each(|&i| counts[i] += 1.0);
        counts.iter().map(|c| c / assigned.len() as f64).collect()
    }

    fn from(client: IpAddr) -> RequestKey<'static> {
        RequestKey {
            client,
            uri: "/",
            header: &no_header,
        }
    }

    #[test]
    fn hash_functions_match_haproxy() {
        assert_eq!(sdbm(b""), 0);
        assert_eq!(sdbm(b"a"), 97);
        // sdbm-pure's reference value for "abc".
        assert_eq!(sdbm(b"abc"), 0x3025_f862);
        // From HAProxy's C `full_hash`, run separately.
        assert_eq!(full_hash(0), 2_874_071_335);
        assert_eq!(full_hash(4096), 1_237_450_891);
    }

    #[test]
    fn keys_are_read_as_haproxy_reads_them() {
        assert_eq!(url_param("/a?x=1&user=bob&y", "user"), Some("bob"));
        assert_eq!(url_param("/a?username=bob&user=", "user"), Some(""));
        assert_eq!(url_param("/a?username=bob", "user"), None);
        assert_eq!(url_param("/a/user=bob", "user"), None);
        assert_eq!(first_value(" 10.0.0.1 , 10.0.0.2"), Some("10.0.0.1"));
        assert_eq!(first_value(" "), None);
        assert_eq!(address_hash([10, 1, 2, 3].into()), 0x0a01_0203);
        let v6: IpAddr = "2001:db8::1:0:0:7".parse().unwrap();
        assert_eq!(address_hash(v6), 0x2001_0db8 ^ 0x0001_0000 ^ 0x0000_0007);
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(address_hash(mapped), 0x0a01_0203);
    }

    #[test]
    fn the_same_key_always_reaches_the_same_server() {
        let balances = [
            Balance::Source,
            Balance::Uri,
            Balance::UrlParam("user".into()),
            Balance::Hdr("x-user".into()),
        ];
        let header = |name: &str| name.eq_ignore_ascii_case("X-User").then_some("alice");
        let key = RequestKey {
            client: "2001:db8::42".parse().unwrap(),
            uri: "/cart?user=alice&item=3",
            header: &header,
        };
        for balance in &balances {
            for hash_type in BOTH {
                let mut selector = Selector::new(balance, hash_type, &[1, 2, 3]);
                let mut views = servers(&[1, 2, 3]);
                let first = selector.pick(&views, &key).unwrap();
                for n in 0..100 {
                    // Load and maxconn change; the server does not (HAProxy ignores both).
                    views
                        .iter_mut()
                        .for_each(|v| (v.active, v.maxconn) = (n, 1));
                    assert_eq!(selector.pick(&views, &key), Some(first), "{balance:?}");
                }
            }
        }
    }

    #[test]
    fn source_follows_weights_exactly_on_consecutive_addresses() {
        // Map-based: 10,000 consecutive addresses cover each of the 10 slots 1,000 times.
        let mut selector = Selector::new(&Balance::Source, HashType::MapBased, &[1, 2, 3, 4]);
        let views = servers(&[1, 2, 3, 4]);
        let mut counts = [0; 4];
        for n in 0..10_000_u32 {
            let client = IpAddr::from((0x0a00_0000 + n).to_be_bytes());
            counts[selector.pick(&views, &from(client)).unwrap()] += 1;
        }
        assert_eq!(counts, [1000, 2000, 3000, 4000]);
    }

    #[test]
    fn distinct_keys_spread_by_weight() {
        // Each share within 5% of its expected value map-based; within 25% consistent, whose
        // 16 ring points per unit of weight slice the ring unevenly.
        let weights = [8, 16, 24, 32];
        let keys = uri_keys(10_000);
        for (hash_type, tolerance) in [(HashType::MapBased, 0.05), (HashType::Consistent, 0.25)] {
            let mut selector = Selector::new(&Balance::Uri, hash_type, &weights);
            let got = shares(&assign(&mut selector, &servers(&weights), &keys), 4);
            for (share, w) in got.iter().zip(weights) {
                let expected = f64::from(w) / 80.0;
                let ok = (share - expected).abs() <= expected * tolerance;
                assert!(ok, "{hash_type:?}: {got:?}");
            }
        }
    }

    #[test]
    fn without_the_key_requests_go_round_robin() {
        let balances = [
            Balance::UrlParam("user".into()),
            Balance::Hdr("x-user".into()),
        ];
        let empty = |name: &str| (name == "x-user").then_some(" ");
        for balance in &balances {
            for hash_type in BOTH {
                let mut selector = Selector::new(balance, hash_type, &[1, 1, 1]);
                let views = servers(&[1, 1, 1]);
                for uri in ["/cart", "/cart?item=3&users=x"] {
                    let key = RequestKey {
                        client: [192, 0, 2, 1].into(),
                        uri,
                        header: &empty,
                    };
                    let picked: Vec<_> = (0..6).map(|_| selector.pick(&views, &key)).collect();
                    let mut turn: Vec<_> = picked[..3].iter().map(|p| p.unwrap()).collect();
                    turn.sort_unstable();
                    assert_eq!(turn, [0, 1, 2], "{balance:?} {hash_type:?}");
                    assert_eq!(picked[..3], picked[3..], "{balance:?} {hash_type:?}");
                }
            }
        }
    }

    #[test]
    fn uri_hash_stops_at_the_query_string() {
        for hash_type in BOTH {
            let mut selector = Selector::new(&Balance::Uri, hash_type, &[1, 1, 1, 1]);
            let views = servers(&[1, 1, 1, 1]);
            let plain = selector.pick(&views, &request("/img/logo.png"));
            for uri in ["/img/logo.png?v=2", "/img/logo.png?x=1&y=2"] {
                assert_eq!(selector.pick(&views, &request(uri)), plain);
            }
        }
    }

    #[test]
    fn a_server_down_moves_only_its_keys_with_consistent_hashing() {
        let keys = uri_keys(10_000);
        let mut views = servers(&[1, 1, 1, 1]);
        let mut consistent = Selector::new(&Balance::Uri, HashType::Consistent, &[1, 1, 1, 1]);
        let mut map = Selector::new(&Balance::Uri, HashType::MapBased, &[1, 1, 1, 1]);
        let (before, map_before) = (
            assign(&mut consistent, &views, &keys),
            assign(&mut map, &views, &keys),
        );
        views[2].usable = false;
        let after = assign(&mut consistent, &views, &keys);
        let map_after = assign(&mut map, &views, &keys);
        for (old, new) in before.iter().zip(&after) {
            assert!(
                *old == 2 || old == new,
                "a key of server {old} moved to {new}"
            );
            assert_ne!(*new, 2);
        }
        let moved = |a: &[usize], b: &[usize]| {
            a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / keys.len() as f64
        };
        // Roughly a quarter: server 2's share of a 64-point ring.
        let share = moved(&before, &after);
        assert!((0.15..=0.35).contains(&share), "consistent moved {share}");
        let share = moved(&map_before, &map_after);
        assert!(share > 0.5, "map-based moved only {share}");
        views[2].usable = true;
        assert_eq!(assign(&mut consistent, &views, &keys), before);
        assert_eq!(assign(&mut map, &views, &keys), map_before);
    }

    #[test]
    fn the_ring_follows_weight_changes() {
        let keys = uri_keys(2_000);
        let mut views = servers(&[2, 2, 2]);
        let mut selector = Selector::new(&Balance::Uri, HashType::Consistent, &[2, 2, 2]);
        let before = assign(&mut selector, &views, &keys);
        views[0].weight = 0;
        assert!(!assign(&mut selector, &views, &keys).contains(&0));
        views[0].weight = 6;
        let heavier = shares(&assign(&mut selector, &views, &keys), 3);
        assert!(heavier[0] > 0.45, "{heavier:?}");
        views[0].weight = 2;
        assert_eq!(assign(&mut selector, &views, &keys), before);
    }

    #[test]
    fn merge_keeps_the_ring_sorted() {
        let merged = merge([1, 4, 9].into_iter(), vec![0, 4, 5, 10]);
        assert_eq!(merged, [0, 1, 4, 4, 5, 9, 10]);
    }
}
