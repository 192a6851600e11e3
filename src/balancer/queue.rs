//! HAProxy's queues: a request that finds every server it may use at its `maxconn` waits for a
//! slot instead of failing, in the backend's queue, or in one server's queue when a hash ties
//! the request to that server. A freed slot goes to the oldest request waiting for that server,
//! else to the oldest waiting for any; `timeout queue` bounds the wait (HAProxy answers 503
//! `sQ--` then).
//!
//! Claiming a slot and joining the queue happen under one lock, and so do handing a slot over
//! and freeing it: otherwise a slot freed between a failed claim and the join would leave a
//! request waiting next to an idle server.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::logline::Queues;

/// A backend's waiting requests, oldest first.
#[derive(Debug, Default)]
pub(super) struct Queue {
    waiting: Mutex<VecDeque<Waiter>>,
}

/// One waiting request: the server it waits for (`None`: any), and where its slot goes.
#[derive(Debug)]
struct Waiter {
    server: Option<usize>,
    slot: oneshot::Sender<usize>,
}

/// A place in the queue: the slot arrives on `slot` (the server's index, already counted as
/// active for this request); `ahead` is what HAProxy logs as `sq/bq`.
#[derive(Debug)]
pub(super) struct Ticket {
    pub slot: oneshot::Receiver<usize>,
    pub ahead: Queues,
}

impl Queue {
    /// Takes a slot with `claim` if there is one, else joins the queue for `server` (or for
    /// any server).
    pub(super) fn claim_or_join(
        &self,
        server: Option<usize>,
        claim: impl FnOnce() -> Option<usize>,
    ) -> Result<usize, Ticket> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = claim() {
            return Ok(i);
        }
        // Requests that gave up are not ahead of anyone.
        waiting.retain(|w| !w.slot.is_closed());
        let count = |pred: &dyn Fn(&Waiter) -> bool| waiting.iter().filter(|w| pred(w)).count();
        let ahead = Queues {
            server: server.map_or(0, |s| count(&|w| w.server == Some(s))) as u32,
            backend: count(&|w| w.server.is_none()) as u32,
        };
        let (slot, receiver) = oneshot::channel();
        waiting.push_back(Waiter { server, slot });
        Err(Ticket {
            slot: receiver,
            ahead,
        })
    }

    /// Requests waiting now for `server`, or for any server (`None`).
    pub(super) fn waiting_for(&self, server: Option<usize>) -> u32 {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting
            .iter()
            .filter(|w| w.server == server && !w.slot.is_closed())
            .count() as u32
    }

    /// A slot on `server` is free: if the server may take requests (`usable`), it goes to the
    /// oldest request waiting for that server, else to the oldest waiting for any; when nobody
    /// takes it, `free` releases it. Whether a request took it.
    pub(super) fn release(&self, server: usize, usable: bool, free: impl FnOnce()) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if !usable {
            free();
            return false;
        }
        loop {
            let next = waiting
                .iter()
                .position(|w| w.server == Some(server))
                .or_else(|| waiting.iter().position(|w| w.server.is_none()));
            let Some(waiter) = next.and_then(|at| waiting.remove(at)) else {
                free();
                return false;
            };
            // A request that gave up in the meantime refuses it: try the next one.
            if waiter.slot.send(server).is_ok() {
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_slot_goes_to_its_servers_queue_first_then_to_the_oldest_for_any() {
        let queue = Queue::default();
        let mut any = queue.claim_or_join(None, || None).unwrap_err();
        let mut on_one = queue.claim_or_join(Some(1), || None).unwrap_err();
        let second_any = queue.claim_or_join(None, || None).unwrap_err();
        assert_eq!((on_one.ahead.server, on_one.ahead.backend), (0, 1));
        assert_eq!((second_any.ahead.server, second_any.ahead.backend), (0, 1));

        let freed = std::cell::Cell::new(0);
        queue.release(1, true, || freed.set(freed.get() + 1));
        assert_eq!(on_one.slot.try_recv(), Ok(1), "server 1's own queue first");
        queue.release(0, true, || freed.set(freed.get() + 1));
        assert_eq!(any.slot.try_recv(), Ok(0), "then the oldest for any server");
        // The last waiter gave up: its slot is freed instead.
        drop(second_any);
        queue.release(0, true, || freed.set(freed.get() + 1));
        assert_eq!(freed.get(), 1);
    }

    #[test]
    fn a_slot_of_a_server_that_went_down_is_not_handed_over() {
        let queue = Queue::default();
        let mut waiting = queue.claim_or_join(None, || None).unwrap_err();
        let freed = std::cell::Cell::new(false);
        queue.release(0, false, || freed.set(true));
        assert!(freed.get());
        assert!(waiting.slot.try_recv().is_err());
        assert_eq!(queue.claim_or_join(None, || Some(3)).unwrap(), 3);
    }
}
