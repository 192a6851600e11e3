//! Choosing a server for a request: one file per `balance` algorithm family, dispatched here.
//!
//! Selection is synchronous and sees servers only through [`ServerView`], so every algorithm is
//! tested with fake servers. Rules every algorithm shares, HAProxy's (without
//! `option allbackups`):
//!
//! - The candidates are the usable active servers with a weight above 0. Only when there is
//!   none does the first usable backup server (weight above 0) take the traffic, alone.
//! - Algorithms that do not hash (roundrobin, static-rr, leastconn, first, random, and the round
//!   robin a hash falls back to) skip a server at its `maxconn`; `None` when all are full sends
//!   the request to the backend's queue (`balancer/queue.rs`).
//! - Hashes ignore `maxconn`, as HAProxy does: a key keeps its server.
//! - Weights are capped at 256, HAProxy's maximum.

mod first;
mod hash;
mod leastconn;
mod random;
mod roundrobin;

use std::fmt;

use crate::config::{Balance, HashType};

/// HAProxy's largest server weight.
const MAX_WEIGHT: u32 = 256;
/// Steps of effective weight per unit of configured weight (HAProxy's `BE_WEIGHT_SCALE`), so
/// that a server starting slowly ramps in sixteenths even at weight 1.
const WEIGHT_SCALE: u32 = 16;
/// A full `ServerView::ramp`.
pub const FULL_RAMP: u32 = 1000;

/// What selection needs to know about one server right now (index = position in the backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerView {
    /// Current effective weight (0 takes no new traffic).
    pub weight: u32,
    /// Up and not in maintenance/drain: may take new traffic.
    pub usable: bool,
    /// A backup server: used only when no active (non-backup) server is usable.
    pub backup: bool,
    /// Requests/connections it is serving now.
    pub active: u32,
    /// Its `maxconn` (0 = unlimited); `first` fills servers up to this.
    pub maxconn: usize,
    /// The share of its weight in effect, in thousandths: under 1000 while `slowstart`
    /// ramps it up after it came back.
    pub ramp: u32,
}

impl ServerView {
    /// Below its `maxconn`, or unlimited.
    fn has_slot(&self) -> bool {
        self.maxconn == 0 || usize::try_from(self.active).is_ok_and(|a| a < self.maxconn)
    }
}

/// What selection may look at in a request.
pub struct RequestKey<'a> {
    /// The client's address (`balance source`).
    pub client: std::net::IpAddr,
    /// The request target, path and query (`balance uri`, `url_param`).
    pub uri: &'a str,
    /// A request header's value by name, case-insensitive (`balance hdr(name)`).
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
}

/// A backend's server selection state (round-robin position, hash ring, ...).
pub struct Selector {
    balance: Balance,
    hash_type: HashType,
    /// Weights from the configuration, which the static algorithms keep using.
    configured: Vec<u32>,
    algorithm: Algorithm,
}

/// Each algorithm family's state.
enum Algorithm {
    RoundRobin(roundrobin::Smooth),
    StaticRr(roundrobin::Static),
    LeastConn(leastconn::LeastConn),
    First,
    Hash(hash::Hash),
    Random(random::Random),
}

impl Selector {
    /// For `balance` and `hash-type` over servers with these configured weights.
    pub fn new(balance: &Balance, hash_type: HashType, weights: &[u32]) -> Self {
        let hashed = |key| Algorithm::Hash(hash::Hash::new(key, hash_type));
        let algorithm = match balance {
            Balance::RoundRobin => Algorithm::RoundRobin(roundrobin::Smooth::default()),
            Balance::StaticRr => Algorithm::StaticRr(roundrobin::Static::default()),
            Balance::LeastConn => Algorithm::LeastConn(leastconn::LeastConn::default()),
            Balance::First => Algorithm::First,
            Balance::Source => hashed(hash::Key::Source),
            Balance::Uri => hashed(hash::Key::Uri),
            Balance::UrlParam(name) => hashed(hash::Key::UrlParam(name.clone())),
            Balance::Hdr(name) => hashed(hash::Key::Hdr(name.clone())),
            Balance::Random(draws) => Algorithm::Random(random::Random::new(*draws)),
        };
        Selector {
            balance: balance.clone(),
            hash_type,
            configured: weights.to_vec(),
            algorithm,
        }
    }

    /// The server for this request among `servers` (same order and length as at `new`), or
    /// `None` when no server may take it. Callers retrying on another server pass the failed
    /// one as not usable.
    pub fn pick(&mut self, servers: &[ServerView], request: &RequestKey<'_>) -> Option<usize> {
        let candidates = Candidates {
            servers,
            configured: &self.configured,
            eligible: Eligible::of(servers),
        };
        if candidates.eligible == Eligible::Nothing {
            return None;
        }
        match &mut self.algorithm {
            Algorithm::RoundRobin(rr) => rr.pick(&candidates),
            Algorithm::StaticRr(rr) => rr.pick(&candidates),
            Algorithm::LeastConn(lc) => lc.pick(&candidates),
            Algorithm::First => first::pick(&candidates),
            Algorithm::Hash(h) => h.pick(&candidates, request),
            Algorithm::Random(r) => r.pick(&candidates),
        }
    }
}

impl fmt::Debug for Selector {
    // The ring and slot map can hold millions of entries: show what identifies the state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Selector")
            .field("balance", &self.balance)
            .field("hash_type", &self.hash_type)
            .field("weights", &self.configured)
            .finish_non_exhaustive()
    }
}

/// Which group of servers may take new traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eligible {
    /// The usable active servers with a weight above 0.
    Active,
    /// No such active server: this backup alone, the first usable one.
    Backup(usize),
    /// No server at all.
    Nothing,
}

impl Eligible {
    fn of(servers: &[ServerView]) -> Self {
        let up = |s: &ServerView| s.usable && s.weight > 0;
        if servers.iter().any(|s| !s.backup && up(s)) {
            return Eligible::Active;
        }
        match servers.iter().position(|s| s.backup && up(s)) {
            Some(i) => Eligible::Backup(i),
            None => Eligible::Nothing,
        }
    }
}

/// One pick's servers and which of them may take the request.
#[derive(Clone, Copy)]
struct Candidates<'a> {
    servers: &'a [ServerView],
    /// Weights from the configuration (static algorithms use them).
    configured: &'a [u32],
    eligible: Eligible,
}

impl Candidates<'_> {
    fn len(&self) -> usize {
        self.servers.len()
    }

    /// In the group that takes traffic now; hashes look no further (a key keeps its server).
    fn contains(&self, i: usize) -> bool {
        match self.eligible {
            Eligible::Active => {
                let s = &self.servers[i];
                !s.backup && s.usable && s.weight > 0
            }
            Eligible::Backup(b) => i == b,
            Eligible::Nothing => false,
        }
    }

    /// May take a new connection now: in the group and below its `maxconn`.
    fn has_room(&self, i: usize) -> bool {
        self.contains(i) && self.servers[i].has_slot()
    }

    /// The effective weight of a server in the group (its current weight in sixteenths,
    /// reduced while it starts slowly; at least 1 when its weight is not 0), 0 for the
    /// others. Dynamic algorithms compare these.
    fn weight(&self, i: usize) -> u32 {
        if !self.contains(i) {
            return 0;
        }
        let server = &self.servers[i];
        let full = server.weight.min(MAX_WEIGHT) * WEIGHT_SCALE;
        let ramped = u64::from(full) * u64::from(server.ramp.min(FULL_RAMP));
        let ramped = ramped.div_ceil(u64::from(FULL_RAMP)) as u32;
        if full == 0 {
            0
        } else {
            ramped.max(1)
        }
    }

    /// The configured weight of a server in the group, 0 for the others: static algorithms
    /// honour a run-time weight only when it is 0.
    fn static_weight(&self, i: usize) -> u32 {
        if self.contains(i) {
            let configured = self.configured.get(i).copied();
            configured.unwrap_or(self.servers[i].weight).min(MAX_WEIGHT)
        } else {
            0
        }
    }

    fn active(&self, i: usize) -> u32 {
        self.servers[i].active
    }
}

/// Usable, idle, unlimited servers with these weights.
#[cfg(test)]
fn servers(weights: &[u32]) -> Vec<ServerView> {
    let view = |&weight| ServerView {
        weight,
        usable: true,
        backup: false,
        active: 0,
        maxconn: 0,
        ramp: FULL_RAMP,
    };
    weights.iter().map(view).collect()
}

#[cfg(test)]
fn no_header<'a>(_: &str) -> Option<&'a str> {
    None
}

/// A request from 192.0.2.1 for `uri`, without headers.
#[cfg(test)]
fn request(uri: &str) -> RequestKey<'_> {
    RequestKey {
        client: std::net::IpAddr::from([192, 0, 2, 1]),
        uri,
        header: &no_header,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_balance() -> Vec<Balance> {
        vec![
            Balance::RoundRobin,
            Balance::StaticRr,
            Balance::LeastConn,
            Balance::First,
            Balance::Source,
            Balance::Uri,
            Balance::UrlParam("user".into()),
            Balance::Hdr("host".into()),
            Balance::Random(2),
        ]
    }

    /// Every algorithm with both hash types.
    fn every_selector(weights: &[u32]) -> Vec<Selector> {
        let mut all = Vec::new();
        for balance in every_balance() {
            for hash_type in [HashType::MapBased, HashType::Consistent] {
                all.push(Selector::new(&balance, hash_type, weights));
            }
        }
        all
    }

    #[test]
    fn backups_only_when_no_active_server_is_usable() {
        let mut views = servers(&[1, 1, 1, 1]);
        views[2].backup = true;
        views[3].backup = true;
        for mut selector in every_selector(&[1, 1, 1, 1]) {
            for _ in 0..20 {
                let picked = selector.pick(&views, &request("/a?user=1")).unwrap();
                assert!(picked < 2, "{selector:?} picked backup {picked}");
            }
        }
        // Actives down or at weight 0: the first usable backup, never the second.
        views[0].usable = false;
        views[1].weight = 0;
        for mut selector in every_selector(&[1, 1, 1, 1]) {
            for _ in 0..20 {
                assert_eq!(
                    selector.pick(&views, &request("/a")),
                    Some(2),
                    "{selector:?}"
                );
            }
        }
        views[2].usable = false;
        for mut selector in every_selector(&[1, 1, 1, 1]) {
            assert_eq!(
                selector.pick(&views, &request("/a")),
                Some(3),
                "{selector:?}"
            );
        }
        views[3].weight = 0;
        for mut selector in every_selector(&[1, 1, 1, 1]) {
            assert_eq!(selector.pick(&views, &request("/a")), None, "{selector:?}");
        }
    }

    #[test]
    fn an_active_server_coming_back_takes_over_from_the_backup() {
        let mut views = servers(&[1, 1]);
        views[1].backup = true;
        views[0].usable = false;
        for mut selector in every_selector(&[1, 1]) {
            assert_eq!(
                selector.pick(&views, &request("/")),
                Some(1),
                "{selector:?}"
            );
        }
        views[0].usable = true;
        for mut selector in every_selector(&[1, 1]) {
            assert_eq!(
                selector.pick(&views, &request("/")),
                Some(0),
                "{selector:?}"
            );
        }
    }

    #[test]
    fn degenerate_backends_never_panic() {
        let cases: Vec<Vec<ServerView>> = vec![
            Vec::new(),
            servers(&[0, 0, 0]),
            servers(&[1]),
            servers(&[256, 1, 0, 256]),
            servers(&[u32::MAX, 7]),
        ];
        for views in &cases {
            let weights: Vec<u32> = views.iter().map(|s| s.weight).collect();
            for mut selector in every_selector(&weights) {
                for _ in 0..10 {
                    let picked = selector.pick(views, &request("/x?user=1"));
                    assert!(picked.is_none_or(|i| views[i].weight > 0), "{selector:?}");
                }
            }
        }
        for mut selector in every_selector(&[1, 1, 1]) {
            let mut down = servers(&[1, 1, 1]);
            down.iter_mut().for_each(|s| s.usable = false);
            assert_eq!(selector.pick(&down, &request("/")), None);
            // More servers than at `new`: unusual, but not a reason to panic.
            let more = servers(&[1, 1, 1, 1, 1]);
            assert!(selector.pick(&more, &request("/")).is_some());
            assert_eq!(selector.pick(&servers(&[]), &request("/")), None);
        }
    }

    #[test]
    fn thousands_of_servers_with_weights_up_to_256() {
        // Every weight from 0 to 256 appears; most are small so that the debug build's rings
        // stay quick to sort.
        let weight = |i: u32| match i % 7 {
            0 => i % 257,
            _ => i % 5,
        };
        let weights: Vec<u32> = (0..3000).map(weight).collect();
        let mut views = servers(&weights);
        for (i, view) in views.iter_mut().enumerate() {
            view.usable = i % 3 != 0;
            view.active = (i % 11) as u32;
            view.maxconn = i % 5;
        }
        for mut selector in every_selector(&weights) {
            for n in 0..50 {
                let uri = format!("/objects/{n}?user={n}");
                let picked = selector.pick(&views, &request(&uri));
                let i = picked.unwrap_or_else(|| panic!("{selector:?}: nothing picked"));
                assert!(
                    views[i].usable && views[i].weight > 0,
                    "{selector:?} picked {i}"
                );
            }
        }
    }

    #[test]
    fn debug_names_the_algorithm_not_the_ring() {
        let selector = Selector::new(&Balance::Uri, HashType::Consistent, &[1, 2]);
        let text = format!("{selector:?}");
        assert!(
            text.contains("Uri") && text.contains("Consistent"),
            "{text}"
        );
    }
}
