//! What the listener counts: every message is received and then either written or counted as
//! lost somewhere, so that "no loss" is a checkable claim.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Live counters, shared by the receiving threads and the writer.
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[doc = $doc])* pub(super) $name: AtomicU64,)*
        }

        /// The counters at one moment.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        pub struct CounterSnapshot {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Counters {
            /// Reads every counter.
            pub fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }

        impl std::fmt::Display for CounterSnapshot {
            /// `received=N written=N ...`, every counter, in declaration order.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut sep = "";
                $(
                    write!(f, "{sep}{}={}", stringify!($name), self.$name)?;
                    sep = " ";
                )*
                let _ = sep;
                Ok(())
            }
        }
    };
}

counters! {
    /// Messages received (UDP datagrams and TCP frames) from allowed senders.
    received,
    /// Bytes of those messages.
    received_bytes,
    /// Lines written to files (a message routed to two files counts twice).
    written,
    /// Messages with no syslog header, written as received.
    not_syslog,
    /// Messages longer than the maximum size, truncated to it.
    truncated,
    /// Messages from senders outside `--allow`, dropped.
    rejected,
    /// Datagrams the kernel dropped because the receive buffer was full (SO_RXQ_OVFL).
    kernel_dropped,
    /// Messages dropped because the writer's queue was full.
    queue_dropped,
    /// Lines that could not be written (disk full, file unwritable).
    write_lost,
    /// Messages that matched no route (written only when an unmatched file is set).
    unmatched,
    /// Messages the live view and periodic report skipped because they fell behind (the files
    /// still have them).
    live_skipped,
    /// Files rotated.
    rotations,
    /// TCP connections accepted.
    tcp_connections,
}

impl Counters {
    /// Adds `n` to a counter.
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl CounterSnapshot {
    /// Messages lost anywhere between the network and the files.
    pub fn lost(&self) -> u64 {
        self.kernel_dropped + self.queue_dropped + self.write_lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_every_counter_and_lost_sums_the_losses() {
        let c = Counters::default();
        Counters::add(&c.received, 3);
        Counters::add(&c.kernel_dropped, 2);
        Counters::add(&c.write_lost, 1);
        let s = c.snapshot();
        assert_eq!(s.lost(), 3);
        let text = s.to_string();
        assert!(
            text.starts_with("received=3 received_bytes=0 written=0 "),
            "{text}"
        );
        assert!(text.ends_with("rotations=0 tcp_connections=0"), "{text}");
        assert_eq!(text.split(' ').count(), 13);
    }
}
