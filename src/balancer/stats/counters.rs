//! The numbers behind the stats page and `show stat`: lock-free counters a request adds to
//! when it ends, a per-second rate, and a latency histogram for percentiles.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A frontend's, backend's or server's counters since start (kept across reloads).
#[derive(Debug, Default)]
pub(in crate::balancer) struct Counters {
    /// `stot`: sessions (frontends: connections; backends and servers: requests or TCP
    /// sessions handed to them).
    pub sessions: AtomicU64,
    /// `req_tot`: HTTP requests.
    pub requests: AtomicU64,
    /// `bin`, `bout`: bytes from and to the client.
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// `dreq`: requests denied by `http-request deny`.
    pub denied: AtomicU64,
    /// `ereq`: requests that could not be read (bad or timed out).
    pub request_errors: AtomicU64,
    /// `econ`: connection attempts to a server that failed.
    pub connect_errors: AtomicU64,
    /// `eresp`: responses that failed (server broke off, timed out, invalid).
    pub response_errors: AtomicU64,
    /// `wretr`, `wredis`: retried and redispatched requests.
    pub retries: AtomicU64,
    pub redispatches: AtomicU64,
    /// `cli_abrt`, `srv_abrt`: transfers the client or the server broke off.
    pub client_aborts: AtomicU64,
    pub server_aborts: AtomicU64,
    /// `hrsp_1xx` .. `hrsp_5xx`, `hrsp_other`.
    pub statuses: [AtomicU64; 6],
    /// `smax`: most sessions at once.
    pub max_sessions: AtomicU32,
    /// `qmax`: most requests queued at once.
    pub max_queue: AtomicU32,
    /// `rate`, `rate_max`: new sessions per second.
    pub rate: Rate,
    /// `req_rate`, `req_rate_max`: HTTP requests per second (frontends).
    pub request_rate: Rate,
    /// `lastsess`: when the last session started (Unix seconds, 0: never).
    pub last_session: AtomicU64,
    /// Tr of the responses (ms): p50/p99 on the page.
    pub response_ms: Histogram,
}

impl Counters {
    /// A new session started at `now` (Unix seconds), with `current` sessions now open.
    pub(in crate::balancer) fn session_started(&self, current: u32, now: u64) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        raise(&self.max_sessions, current);
        self.rate.hit(now);
        // Written once a second, not by every request: the line is shared by all workers.
        if self.last_session.load(Ordering::Relaxed) != now {
            self.last_session.store(now, Ordering::Relaxed);
        }
    }

    /// A response with this status was sent.
    pub(in crate::balancer) fn status(&self, status: u16) {
        let class = match status {
            100..=599 => usize::from(status / 100 - 1),
            _ => 5,
        };
        self.statuses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub(in crate::balancer) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The value of a counter now.
    pub(in crate::balancer) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Raises `max` to `value` if it is higher, without a write (and the cache line it would
/// take from the other workers) when it is not.
fn raise(max: &AtomicU32, value: u32) {
    if value > max.load(Ordering::Relaxed) {
        max.fetch_max(value, Ordering::Relaxed);
    }
}

/// Seconds since the Unix epoch, from a clock a background thread ticks every 100 ms: the
/// counters read it for every request, and a real clock read there cost about 5% of the
/// balancer's CPU time under load (measured with perf in the run-vs-HAProxy benchmark).
pub(in crate::balancer) fn unix_now() -> u64 {
    static TICKING: std::sync::Once = std::sync::Once::new();
    static NOW: AtomicU64 = AtomicU64::new(0);
    TICKING.call_once(|| {
        NOW.store(clock_seconds(), Ordering::Relaxed);
        let ticker = std::thread::Builder::new()
            .name("clock".into())
            .spawn(|| loop {
                std::thread::sleep(std::time::Duration::from_millis(100));
                NOW.store(clock_seconds(), Ordering::Relaxed);
            });
        // Without the thread the clock stays where it was set: rates then count into one
        // long second, which is wrong but harmless.
        drop(ticker);
    });
    NOW.load(Ordering::Relaxed)
}

/// Seconds since the Unix epoch, read from the system clock.
fn clock_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Events per second, as HAProxy's `freq_ctr`: this second's count plus the previous second's
/// weighted by how much of it the sliding one-second window still covers.
#[derive(Debug, Default)]
pub(in crate::balancer) struct Rate {
    /// The second `current` counts (Unix seconds).
    second: AtomicU64,
    current: AtomicU32,
    previous: AtomicU32,
    max: AtomicU32,
}

impl Rate {
    /// Counts one event at `now` (Unix seconds). The maximum is the busiest second's count
    /// (no clock read beyond the caller's one per event).
    pub(in crate::balancer) fn hit(&self, now: u64) {
        self.rotate(now);
        let current = self.current.fetch_add(1, Ordering::Relaxed) + 1;
        raise(&self.max, current);
    }

    /// Moves to second `now` if it has begun; racing threads may lose an event at the turn
    /// of a second, which a rate can afford.
    fn rotate(&self, now: u64) {
        let second = self.second.load(Ordering::Relaxed);
        if now <= second
            || self
                .second
                .compare_exchange(second, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let current = self.current.swap(0, Ordering::Relaxed);
        let previous = if now == second + 1 { current } else { 0 };
        self.previous.store(previous, Ordering::Relaxed);
    }

    /// Events over the last second.
    pub(in crate::balancer) fn per_second(&self) -> u32 {
        let now_ms = unix_now_ms();
        let now = now_ms / 1000;
        let second = self.second.load(Ordering::Relaxed);
        let (current, previous) = match now.saturating_sub(second) {
            0 => (
                self.current.load(Ordering::Relaxed),
                self.previous.load(Ordering::Relaxed),
            ),
            1 => (0, self.current.load(Ordering::Relaxed)),
            _ => (0, 0),
        };
        let left = 1000 - now_ms % 1000;
        current + (u64::from(previous) * left / 1000) as u32
    }

    /// The highest rate seen.
    pub(in crate::balancer) fn max(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }
}

/// Exact buckets below this; above, 16 buckets per power of two (at most 6% off).
const LINEAR: u64 = 32;
const SUB_BITS: u32 = 4;
const BUCKETS: usize = LINEAR as usize + (64 - 5) * (1 << SUB_BITS);

/// A latency histogram in milliseconds, log-linear like HdrHistogram, that threads add to
/// without a lock.
#[derive(Debug)]
pub(in crate::balancer) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    /// Counts one value.
    pub(in crate::balancer) fn record(&self, ms: u64) {
        self.buckets[bucket(ms)].fetch_add(1, Ordering::Relaxed);
    }

    /// The value below which `q` (0..=1) of the values fall (the bucket's midpoint), or
    /// `None` with no values.
    pub(in crate::balancer) fn quantile(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, &n) in counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, high) = bucket_range(i);
                return Some(low + (high - low) / 2);
            }
        }
        None
    }
}

/// The bucket of a value.
fn bucket(ms: u64) -> usize {
    if ms < LINEAR {
        return ms as usize;
    }
    let exponent = 63 - ms.leading_zeros();
    let sub = (ms >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR as usize + (exponent as usize - 5) * (1 << SUB_BITS) + sub as usize
}

/// The values a bucket holds, `low..=high`.
fn bucket_range(i: usize) -> (u64, u64) {
    if (i as u64) < LINEAR {
        return (i as u64, i as u64);
    }
    let k = i - LINEAR as usize;
    let exponent = (k >> SUB_BITS) as u32 + 5;
    let sub = (k & ((1 << SUB_BITS) - 1)) as u64;
    let width = 1u64 << (exponent - SUB_BITS);
    let low = (1u64 << exponent) + sub * width;
    (low, low + (width - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_the_bucket_that_holds_it() {
        for ms in (0..5000).chain([u32::MAX as u64, u64::MAX / 2, u64::MAX]) {
            let (low, high) = bucket_range(bucket(ms));
            assert!(low <= ms && ms <= high, "{ms} in {low}..={high}");
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_the_bucket_error() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in 1..=1000 {
            h.record(ms);
        }
        let p50 = h.quantile(0.5).unwrap() as f64;
        let p99 = h.quantile(0.99).unwrap() as f64;
        assert!((p50 - 500.0).abs() <= 500.0 * 0.07, "p50 {p50}");
        assert!((p99 - 990.0).abs() <= 990.0 * 0.07, "p99 {p99}");
        let small = Histogram::default();
        small.record(7);
        assert_eq!(small.quantile(0.99), Some(7));
    }

    #[test]
    fn statuses_fall_in_their_class() {
        let c = Counters::default();
        for status in [101, 200, 204, 302, 404, 503, 503, 999, 0] {
            c.status(status);
        }
        let got: Vec<u64> = c.statuses.iter().map(Counters::get).collect();
        assert_eq!(got, [1, 2, 1, 1, 2, 2]);
    }

    #[test]
    fn a_rate_counts_this_second() {
        let r = Rate::default();
        for _ in 0..5 {
            r.hit(unix_now());
        }
        // The five may straddle a second: then part of them is weighted down.
        assert!((1..=5).contains(&r.per_second()), "{}", r.per_second());
        assert!(r.max() >= 1);
    }
}
