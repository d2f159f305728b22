//! A session's send queue: the packets buffered for its client, and the latest volatile one.
//!
//! A bounded tokio channel allocates its shared state and a first block of 32 slots when it
//! is made, and a watch channel its own shared state, whether anything is ever sent or not:
//! about 2.5 kB for every session, most of them idle. This queue lives inside the socket and
//! allocates only while packets wait in it.
//!
//! It has one receiver at a time: whoever holds the socket's `internal_rx` lock (the
//! WebSocket writer, or a polling request).

use std::{
    collections::VecDeque,
    fmt,
    sync::Mutex,
    task::{Context, Poll},
};

use futures_util::task::AtomicWaker;
use tokio::sync::{Notify, mpsc::error::TrySendError};

/// A queue that keeps more room than this when emptied gives it back.
const KEPT_ROOM: usize = 8;

pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    /// The receiver waiting for a packet, if any.
    receiver: AtomicWaker,
    /// Those waiting for the queue to close.
    closing: Notify,
    capacity: usize,
}

struct State<T> {
    buffered: VecDeque<T>,
    /// Places promised to permits not yet used: they count against the capacity.
    reserved: usize,
    /// The latest volatile packet not yet taken: a newer one replaces it.
    volatile: Option<T>,
    closed: bool,
}

/// What the receiver gets: buffered packets come before the volatile one.
#[derive(Debug)]
pub(crate) enum Received<T> {
    Buffered(T),
    Volatile(T),
}

impl<T> Received<T> {
    pub(crate) fn into_inner(self) -> T {
        match self {
            Self::Buffered(item) | Self::Volatile(item) => item,
        }
    }
}

/// A place in the queue, promised to one packet.
pub(crate) struct QueuePermit<'a, T> {
    queue: &'a Queue<T>,
}

impl<T> QueuePermit<'_, T> {
    pub(crate) fn send(self, item: T) {
        let queue = self.queue;
        std::mem::forget(self);
        let mut state = queue.lock();
        state.reserved -= 1;
        // As with a tokio channel, a place promised before the queue closed may still be used.
        state.buffered.push_back(item);
        drop(state);
        queue.receiver.wake();
    }
}

impl<T> Drop for QueuePermit<'_, T> {
    fn drop(&mut self) {
        self.queue.lock().reserved -= 1;
    }
}

impl<T> Queue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                buffered: VecDeque::new(),
                reserved: 0,
                volatile: None,
                closed: false,
            }),
            receiver: AtomicWaker::new(),
            closing: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; a poisoned one still holds a valid queue.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Buffer `item`, unless the queue is full or closed.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let mut state = self.lock();
        if state.closed {
            return Err(TrySendError::Closed(item));
        }
        if state.buffered.len() + state.reserved >= self.capacity {
            return Err(TrySendError::Full(item));
        }
        state.buffered.push_back(item);
        drop(state);
        self.receiver.wake();
        Ok(())
    }

    /// Buffer `item` even past the capacity, unless the queue is closed: for the one packet
    /// that must not wait for room (the no-op that ends a polling request at an upgrade).
    pub(crate) fn send_past_capacity(&self, item: T) -> Result<(), T> {
        let mut state = self.lock();
        if state.closed {
            return Err(item);
        }
        state.buffered.push_back(item);
        drop(state);
        self.receiver.wake();
        Ok(())
    }

    /// Promise a place to a packet to come, unless the queue is full or closed.
    pub(crate) fn try_reserve(&self) -> Result<QueuePermit<'_, T>, TrySendError<()>> {
        let mut state = self.lock();
        if state.closed {
            return Err(TrySendError::Closed(()));
        }
        if state.buffered.len() + state.reserved >= self.capacity {
            return Err(TrySendError::Full(()));
        }
        state.reserved += 1;
        Ok(QueuePermit { queue: self })
    }

    /// Replace the volatile packet waiting, if any, with `item`. False if the queue is closed.
    pub(crate) fn send_volatile(&self, item: T) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.volatile = Some(item);
        drop(state);
        self.receiver.wake();
        true
    }

    /// No more packets may be sent; those already buffered can still be received.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.receiver.wake();
        self.closing.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Wait until the queue is closed.
    pub(crate) async fn closed(&self) {
        loop {
            let closing = self.closing.notified();
            tokio::pin!(closing);
            // Registered before looking, so that a close in between is not missed.
            closing.as_mut().enable();
            if self.is_closed() {
                return;
            }
            closing.await;
        }
    }

    /// Take the next buffered packet, if one waits.
    pub(crate) fn try_recv(&self) -> Option<T> {
        let mut state = self.lock();
        let item = state.buffered.pop_front();
        if state.buffered.is_empty() && state.buffered.capacity() > KEPT_ROOM {
            state.buffered = VecDeque::new();
        }
        item
    }

    /// The next buffered packet, else the volatile one; `None` once the queue is closed and
    /// nothing buffered is left.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Received<T>>> {
        if let Some(item) = self.take() {
            return Poll::Ready(item);
        }
        // Registered before looking again, so that a send in between is not missed.
        self.receiver.register(cx.waker());
        match self.take() {
            Some(item) => Poll::Ready(item),
            None => Poll::Pending,
        }
    }

    pub(crate) async fn recv(&self) -> Option<Received<T>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// `Some(None)` when closed and drained, `None` when there is nothing yet.
    fn take(&self) -> Option<Option<Received<T>>> {
        if let Some(item) = self.try_recv() {
            return Some(Some(Received::Buffered(item)));
        }
        let mut state = self.lock();
        if let Some(item) = state.volatile.take() {
            return Some(Some(Received::Volatile(item)));
        }
        state.closed.then_some(None)
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Queue")
            .field("buffered", &state.buffered.len())
            .field("reserved", &state.reserved)
            .field("volatile", &state.volatile.is_some())
            .field("closed", &state.closed)
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn allocates_nothing_until_a_packet_waits_and_gives_large_room_back() {
        let queue = Queue::new(64);
        assert_eq!(queue.lock().buffered.capacity(), 0);
        for i in 0..20 {
            queue.try_send(i).unwrap();
        }
        assert!(queue.lock().buffered.capacity() >= 20);
        for i in 0..20 {
            assert_eq!(queue.try_recv(), Some(i));
        }
        assert_eq!(queue.lock().buffered.capacity(), 0);
    }

    #[test]
    fn is_bounded_by_packets_and_permits() {
        let queue = Queue::new(2);
        let permit = queue.try_reserve().unwrap();
        queue.try_send(1).unwrap();
        assert!(matches!(queue.try_send(2), Err(TrySendError::Full(2))));
        assert!(matches!(queue.try_reserve(), Err(TrySendError::Full(()))));
        drop(permit);
        queue.try_reserve().unwrap().send(3);
        assert_eq!(queue.try_recv(), Some(1));
        assert_eq!(queue.try_recv(), Some(3));
        assert!(queue.send_past_capacity(4).is_ok());
    }

    #[test]
    fn buffered_come_before_the_latest_volatile() {
        let queue = Queue::new(8);
        assert!(queue.send_volatile(10));
        assert!(queue.send_volatile(11));
        queue.try_send(1).unwrap();
        let next = || queue.recv().now_or_never().unwrap().unwrap();
        assert!(matches!(next(), Received::Buffered(1)));
        assert!(matches!(next(), Received::Volatile(11)));
        assert!(queue.recv().now_or_never().is_none());
    }

    #[tokio::test]
    async fn a_closed_queue_refuses_sends_and_drains() {
        let queue = std::sync::Arc::new(Queue::new(8));
        queue.try_send(1).unwrap();
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.closed().await }
        });
        let permit = queue.try_reserve().unwrap();
        queue.close();
        waiting.await.unwrap();
        permit.send(2);
        assert!(matches!(queue.try_send(3), Err(TrySendError::Closed(3))));
        assert!(matches!(queue.try_reserve(), Err(TrySendError::Closed(()))));
        assert!(!queue.send_volatile(4));
        assert!(matches!(queue.recv().await, Some(Received::Buffered(1))));
        assert!(matches!(queue.recv().await, Some(Received::Buffered(2))));
        assert!(queue.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_send() {
        let queue = std::sync::Arc::new(Queue::new(8));
        let receiver = tokio::spawn({
            let queue = queue.clone();
            async move { queue.recv().await.map(Received::into_inner) }
        });
        tokio::task::yield_now().await;
        queue.try_send(7).unwrap();
        assert_eq!(receiver.await.unwrap(), Some(7));
    }
}
