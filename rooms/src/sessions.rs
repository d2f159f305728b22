//! Plain WebSocket sessions on this node as a transport: each session is a bounded queue of
//! text frames and sits in some rooms, which it may join and leave while open. The server's
//! socket task drains the queue; this side never waits on a client.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::future::BoxFuture;
use smallvec::SmallVec;
use tokio::sync::Notify;

use crate::{Closing, Outgoing, Room, Transport};

/// Frames queued per session; a client that falls further behind is disconnected rather than
/// letting its queue grow without bound.
pub const SESSION_QUEUE: usize = 256;

/// Why the server ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Told to close (a sign-out, or the server stopping).
    Closed(Closing),
    /// The client fell `SESSION_QUEUE` frames behind.
    TooSlow,
}

#[derive(Debug, Default)]
pub struct Sessions {
    next_id: AtomicU64,
    state: RwLock<State>,
    /// Sessions open per kind (their dialect), for operators to see.
    kinds: Mutex<BTreeMap<&'static str, usize>>,
    /// Told when the last counted session is gone.
    gone: tokio::sync::Notify,
}

/// One open session of a kind, counted until dropped.
#[derive(Debug)]
pub struct Counted {
    sessions: Arc<Sessions>,
    kind: &'static str,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut kinds = self.sessions.kinds.lock().unwrap();
        if let Some(count) = kinds.get_mut(self.kind) {
            *count -= 1;
            if *count == 0 {
                kinds.remove(self.kind);
            }
        }
        if kinds.is_empty() {
            self.sessions.gone.notify_waiters();
        }
    }
}

/// Which sessions are in which rooms. Most of a node's rooms hold one or two of its sessions
/// (a user's own, a direct chat's), so a room's name is allocated once, shared by the room
/// and its sessions' entries, and its first members are kept inline.
#[derive(Debug, Default)]
struct State {
    rooms: HashMap<Arc<str>, Members>,
    sessions: HashMap<u64, Entry>,
}

/// A room's sessions on this node. Leaving looks through them, as a delivery to the room does.
type Members = SmallVec<[u64; 2]>;

#[derive(Debug)]
struct Entry {
    queue: Arc<Queue>,
    rooms: SmallVec<[Arc<str>; 2]>,
}

/// The frames waiting for one session, shared by the session and its entry. Unlike a tokio
/// channel, which allocates its state and a first block of 32 slots up front (about 1 kB per
/// session, most of them idle), it allocates only while frames wait.
#[derive(Debug, Default)]
struct Queue {
    waiting: Mutex<Waiting>,
    arrived: Notify,
}

#[derive(Debug, Default)]
struct Waiting {
    frames: VecDeque<Frame>,
    /// Set once the session is forgotten: no frame comes after those waiting.
    ended: Option<Ended>,
}

/// A queue emptied with more room than this gives it back.
const KEPT_ROOM: usize = 8;

impl Queue {
    /// Queue a frame; false if `SESSION_QUEUE` wait already.
    fn push(&self, frame: Frame) -> bool {
        let mut waiting = self.waiting.lock().unwrap();
        if waiting.frames.len() >= SESSION_QUEUE {
            return false;
        }
        waiting.frames.push_back(frame);
        drop(waiting);
        self.arrived.notify_one();
        true
    }

    fn end(&self, why: Ended) {
        self.waiting.lock().unwrap().ended.get_or_insert(why);
        self.arrived.notify_one();
    }

    /// The next frame, or why the session ended once none is left.
    async fn next(&self) -> Result<Frame, Ended> {
        loop {
            {
                let mut waiting = self.waiting.lock().unwrap();
                if let Some(frame) = waiting.frames.pop_front() {
                    if waiting.frames.is_empty() && waiting.frames.capacity() > KEPT_ROOM {
                        waiting.frames = VecDeque::new();
                    }
                    return Ok(frame);
                }
                if let Some(why) = waiting.ended {
                    return Err(why);
                }
            }
            // One receiver: a frame pushed since looking left a permit, so this returns.
            self.arrived.notified().await;
        }
    }
}

impl State {
    fn join(&mut self, id: u64, room: &Room) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        if entry.rooms.iter().any(|joined| **joined == *room.as_str()) {
            return;
        }
        let name = match self.rooms.get_key_value(room.as_str()) {
            Some((name, _)) => name.clone(),
            None => Arc::from(room.as_str()),
        };
        entry.rooms.push(name.clone());
        self.rooms.entry(name).or_default().push(id);
    }

    fn leave(&mut self, id: u64, room: &Room) {
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.rooms.retain(|joined| **joined != *room.as_str());
        }
        self.forget_member(id, room.as_str());
    }

    /// Take `id` out of the room's members, and the room out once it is empty.
    fn forget_member(&mut self, id: u64, room: &str) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.retain(|member| *member != id);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    fn members(&self, room: &Room) -> Vec<u64> {
        self.rooms
            .get(room.as_str())
            .map(|m| m.to_vec())
            .unwrap_or_default()
    }

    /// Forget the session; its queue ends once drained, and it reads why.
    fn end(&mut self, id: u64, why: Option<Ended>) {
        let Some(entry) = self.sessions.remove(&id) else {
            return;
        };
        // Without a reason the session itself is gone, and nobody reads it.
        entry
            .queue
            .end(why.unwrap_or(Ended::Closed(Closing::Shutdown)));
        for room in &entry.rooms {
            self.forget_member(id, room);
        }
    }
}

/// One open session: the frames sent to it. Dropping it leaves every room.
#[derive(Debug)]
pub struct Session {
    id: u64,
    frames: Arc<Queue>,
    sessions: Arc<Sessions>,
}

impl Session {
    /// The next frame, or why the server ended the session (once what was queued is read).
    pub async fn next_frame(&mut self) -> Result<Frame, Ended> {
        self.frames.next().await
    }

    /// Start hearing a room (e.g. after signing in inside the protocol).
    pub fn join(&self, room: &Room) {
        self.sessions.state.write().unwrap().join(self.id, room);
    }

    pub fn leave(&self, room: &Room) {
        self.sessions.state.write().unwrap().leave(self.id, room);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.sessions.state.write().unwrap().end(self.id, None);
    }
}

impl Sessions {
    /// Open a session in these rooms.
    pub fn open(self: &Arc<Self>, rooms: impl IntoIterator<Item = Room>) -> Session {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frames = Arc::new(Queue::default());
        let mut state = self.state.write().unwrap();
        state.sessions.insert(
            id,
            Entry {
                queue: frames.clone(),
                rooms: SmallVec::new(),
            },
        );
        for room in rooms {
            state.join(id, &room);
        }
        Session {
            id,
            frames,
            sessions: self.clone(),
        }
    }

    /// End every session (the server is stopping).
    pub fn close_all(&self, why: Closing) {
        let mut state = self.state.write().unwrap();
        let ids: Vec<u64> = state.sessions.keys().copied().collect();
        for id in ids {
            state.end(id, Some(Ended::Closed(why)));
        }
    }

    pub fn len(&self) -> usize {
        self.state.read().unwrap().sessions.len()
    }

    /// Count a session of `kind` as open until the guard is dropped.
    pub fn counted(self: &Arc<Self>, kind: &'static str) -> Counted {
        *self.kinds.lock().unwrap().entry(kind).or_default() += 1;
        Counted {
            sessions: self.clone(),
            kind,
        }
    }

    /// Once no counted session is left (each is counted until its connection is done with,
    /// its goodbye said).
    pub async fn all_gone(&self) {
        loop {
            let gone = self.gone.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            if self.kinds.lock().unwrap().is_empty() {
                return;
            }
            gone.await;
        }
    }

    /// Sessions open now, per kind.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let kinds = self.kinds.lock().unwrap();
        kinds.iter().map(|(kind, count)| (*kind, *count)).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queue an already encoded frame for every session in `rooms` but those in `except`.
    pub fn deliver(&self, rooms: &[Room], except: Option<&Room>, frame: &Frame) {
        let mut behind = Vec::new();
        {
            let state = self.state.read().unwrap();
            let left_out = except.and_then(|room| state.rooms.get(room.as_str()));
            let recipients: HashSet<u64> = rooms
                .iter()
                .filter_map(|room| state.rooms.get(room.as_str()))
                .flatten()
                .filter(|id| !left_out.is_some_and(|out| out.contains(id)))
                .copied()
                .collect();
            for id in recipients {
                if let Some(entry) = state.sessions.get(&id)
                    && !entry.queue.push(frame.clone())
                {
                    behind.push(id);
                }
            }
        }
        if !behind.is_empty() {
            let mut state = self.state.write().unwrap();
            for id in behind {
                state.end(id, Some(Ended::TooSlow));
            }
        }
    }

    pub fn join_members(&self, members_of: &Room, room: &Room) {
        let mut state = self.state.write().unwrap();
        for id in state.members(members_of) {
            state.join(id, room);
        }
    }

    pub fn leave_members(&self, members_of: &Room, room: &Room) {
        let mut state = self.state.write().unwrap();
        for id in state.members(members_of) {
            state.leave(id, room);
        }
    }

    pub fn disconnect_members(&self, members_of: &Room, why: Closing) {
        let mut state = self.state.write().unwrap();
        for id in state.members(members_of) {
            state.end(id, Some(Ended::Closed(why)));
        }
    }
}

/// What a session receives for an event: its payload, encoded once for every recipient, and
/// the id of what it carries.
#[derive(Debug, Clone)]
pub struct Frame {
    pub text: Arc<str>,
    /// `Outgoing::id`: what a protocol that sent the client this thing already drops a
    /// repeat by, without reading the text.
    pub id: Option<i64>,
}

pub(crate) fn frame_of(outgoing: &Outgoing) -> Frame {
    Frame {
        text: outgoing.payload.to_string().into(),
        id: outgoing.id,
    }
}

impl Transport for Sessions {
    fn emit<'a>(&'a self, outgoing: &'a Outgoing) -> BoxFuture<'a, ()> {
        self.deliver(
            &outgoing.rooms,
            outgoing.except.as_ref(),
            &frame_of(outgoing),
        );
        Box::pin(async {})
    }

    fn join<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()> {
        self.join_members(members_of, room);
        Box::pin(async {})
    }

    fn leave<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()> {
        self.leave_members(members_of, room);
        Box::pin(async {})
    }

    fn disconnect<'a>(&'a self, members_of: &'a Room, why: Closing) -> BoxFuture<'a, ()> {
        self.disconnect_members(members_of, why);
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user;
    use serde_json::json;

    fn nothing_waits(session: &Session) -> bool {
        session.frames.waiting.lock().unwrap().frames.is_empty()
    }

    fn room_kept(session: &Session) -> usize {
        session.frames.waiting.lock().unwrap().frames.capacity()
    }

    fn said(text: &str) -> Outgoing {
        Outgoing::new(
            Room::chat("hooks", "c1"),
            "message",
            json!({ "message": text }),
        )
    }

    #[tokio::test]
    async fn sessions_get_frames_of_their_rooms_only() {
        let sessions = Arc::new(Sessions::default());
        let mut ada = sessions.open([Room::chat("hooks", "c1")]);
        let mut bob = sessions.open([Room::account(user('b'))]);
        sessions.emit(&said("hi")).await;
        assert_eq!(
            ada.next_frame().await.unwrap().text.as_ref(),
            r#"{"message":"hi"}"#
        );
        assert!(nothing_waits(&bob));
        sessions
            .join(&Room::account(user('b')), &Room::chat("hooks", "c1"))
            .await;
        sessions.emit(&said("again")).await;
        assert!(bob.next_frame().await.unwrap().text.contains("again"));
        sessions
            .leave(&Room::account(user('b')), &Room::chat("hooks", "c1"))
            .await;
        sessions.emit(&said("not for bob")).await;
        assert!(nothing_waits(&bob));
        drop(ada);
        assert_eq!(sessions.len(), 1);
    }

    #[tokio::test]
    async fn a_session_joins_and_leaves_rooms_while_open() {
        let sessions = Arc::new(Sessions::default());
        let mut session = sessions.open([]);
        session.join(&Room::chat("hooks", "c1"));
        sessions.emit(&said("hi")).await;
        assert!(session.next_frame().await.unwrap().text.contains("hi"));
        session.leave(&Room::chat("hooks", "c1"));
        sessions.emit(&said("gone")).await;
        assert!(nothing_waits(&session));
    }

    #[tokio::test]
    async fn a_room_keeps_its_other_members_when_one_leaves() {
        let sessions = Arc::new(Sessions::default());
        let mut ada = sessions.open([Room::chat("hooks", "c1")]);
        let mut bob = sessions.open([Room::chat("hooks", "c1"), Room::account(user('b'))]);
        // Joining twice is joining once: one leave is enough.
        ada.join(&Room::chat("hooks", "c1"));
        ada.leave(&Room::chat("hooks", "c1"));
        sessions.emit(&said("hi")).await;
        assert!(nothing_waits(&ada));
        assert!(bob.next_frame().await.unwrap().text.contains("hi"));
        drop(bob);
        sessions.emit(&said("nobody")).await;
        assert!(nothing_waits(&ada));
        let forgotten = sessions.state.read().unwrap().rooms.is_empty();
        assert!(forgotten, "rooms with no member are forgotten");
        ada.join(&Room::chat("hooks", "c1"));
        sessions.emit(&said("back")).await;
        assert!(ada.next_frame().await.unwrap().text.contains("back"));
    }

    #[tokio::test]
    async fn a_queue_takes_room_only_while_frames_wait() {
        let sessions = Arc::new(Sessions::default());
        let mut session = sessions.open([Room::chat("hooks", "c1")]);
        assert_eq!(room_kept(&session), 0);
        for _ in 0..20 {
            sessions.emit(&said("burst")).await;
        }
        assert!(room_kept(&session) >= 20);
        for _ in 0..20 {
            session.next_frame().await.unwrap();
        }
        assert_eq!(
            room_kept(&session),
            0,
            "a drained queue gives its room back"
        );
    }

    #[tokio::test]
    async fn a_waiting_session_wakes_for_a_frame() {
        let sessions = Arc::new(Sessions::default());
        let mut session = sessions.open([Room::chat("hooks", "c1")]);
        let waiting = tokio::spawn(async move { session.next_frame().await });
        tokio::task::yield_now().await;
        sessions.emit(&said("hi")).await;
        assert!(waiting.await.unwrap().unwrap().text.contains("hi"));
    }

    #[tokio::test]
    async fn a_session_that_falls_behind_is_dropped() {
        let sessions = Arc::new(Sessions::default());
        let mut slow = sessions.open([Room::chat("hooks", "c1")]);
        for _ in 0..=SESSION_QUEUE {
            sessions.emit(&said("flood")).await;
        }
        assert!(sessions.is_empty(), "the slow session was dropped");
        let mut drained = 0;
        let ended = loop {
            match slow.next_frame().await {
                Ok(_) => drained += 1,
                Err(ended) => break ended,
            }
        };
        assert_eq!(drained, SESSION_QUEUE, "then its queue ends");
        assert_eq!(ended, Ended::TooSlow);
    }

    #[tokio::test]
    async fn sessions_are_counted_per_kind_while_open() {
        let sessions = Arc::new(Sessions::default());
        let hooks = sessions.counted("hooks");
        let more_hooks = sessions.counted("hooks");
        let hooligram = sessions.counted("hooligram");
        assert_eq!(sessions.counts(), [("hooks", 2), ("hooligram", 1)]);
        drop((hooks, hooligram));
        assert_eq!(sessions.counts(), [("hooks", 1)]);
        let gone = tokio::time::timeout(std::time::Duration::from_millis(50), sessions.all_gone());
        assert!(gone.await.is_err(), "one is left");
        drop(more_hooks);
        assert!(sessions.counts().is_empty());
        sessions.all_gone().await;
    }

    #[tokio::test]
    async fn sessions_are_closed_by_room_with_a_reason() {
        let sessions = Arc::new(Sessions::default());
        let mut ada = sessions.open([Room::account(user('a'))]);
        let mut bob = sessions.open([Room::account(user('b'))]);
        sessions
            .disconnect(&Room::account(user('a')), Closing::SignedOut)
            .await;
        assert_eq!(
            ada.next_frame().await.unwrap_err(),
            Ended::Closed(Closing::SignedOut)
        );
        assert_eq!(sessions.len(), 1);
        sessions.close_all(Closing::Shutdown);
        assert_eq!(
            bob.next_frame().await.unwrap_err(),
            Ended::Closed(Closing::Shutdown)
        );
    }
}
