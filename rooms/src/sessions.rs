//! Plain WebSocket sessions as a transport: each session is a queue of text frames and sits in
//! some rooms. The server's socket task drains the queue; this side never waits on a client.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::{Outgoing, Room, Transport};

/// Frames queued per session; a client that falls further behind is disconnected rather than
/// letting its queue grow without bound.
pub const SESSION_QUEUE: usize = 256;

#[derive(Debug, Default)]
pub struct Sessions {
    next_id: AtomicU64,
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    rooms: HashMap<Room, HashSet<u64>>,
    queues: HashMap<u64, (mpsc::Sender<Arc<str>>, Vec<Room>)>,
}

/// One open session: the frames sent to it. Dropping it leaves every room.
#[derive(Debug)]
pub struct Session {
    id: u64,
    frames: mpsc::Receiver<Arc<str>>,
    sessions: Arc<Sessions>,
}

impl Session {
    /// The next frame, or `None` once the session was dropped by the server (shutdown, or
    /// the client fell too far behind).
    pub async fn next_frame(&mut self) -> Option<Arc<str>> {
        self.frames.recv().await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.sessions.remove(self.id);
    }
}

impl Sessions {
    /// Open a session in these rooms.
    pub fn open(self: &Arc<Self>, rooms: Vec<Room>) -> Session {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, frames) = mpsc::channel(SESSION_QUEUE);
        let mut state = self.state.write().unwrap();
        for room in &rooms {
            state.rooms.entry(room.clone()).or_default().insert(id);
        }
        state.queues.insert(id, (sender, rooms));
        Session {
            id,
            frames,
            sessions: self.clone(),
        }
    }

    /// End every session (the server is stopping).
    pub fn close_all(&self) {
        let mut state = self.state.write().unwrap();
        state.queues.clear();
        state.rooms.clear();
    }

    pub fn len(&self) -> usize {
        self.state.read().unwrap().queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove(&self, id: u64) {
        let mut state = self.state.write().unwrap();
        if let Some((_, rooms)) = state.queues.remove(&id) {
            for room in rooms {
                if let Some(members) = state.rooms.get_mut(&room) {
                    members.remove(&id);
                    if members.is_empty() {
                        state.rooms.remove(&room);
                    }
                }
            }
        }
    }
}

impl Transport for Sessions {
    fn emit<'a>(&'a self, outgoing: &'a Outgoing) -> BoxFuture<'a, ()> {
        let mut behind = Vec::new();
        {
            let state = self.state.read().unwrap();
            let left_out = outgoing
                .except
                .as_ref()
                .and_then(|room| state.rooms.get(room));
            let recipients: HashSet<u64> = outgoing
                .rooms
                .iter()
                .filter_map(|room| state.rooms.get(room))
                .flatten()
                .filter(|id| !left_out.is_some_and(|out| out.contains(id)))
                .copied()
                .collect();
            if !recipients.is_empty() {
                // Encoded once for every recipient.
                let frame: Arc<str> = outgoing.payload.to_string().into();
                for id in recipients {
                    if let Some((queue, _)) = state.queues.get(&id)
                        && queue.try_send(frame.clone()).is_err()
                    {
                        behind.push(id);
                    }
                }
            }
        }
        for id in behind {
            self.remove(id);
        }
        Box::pin(async {})
    }

    fn join<'a>(&'a self, members_of: &'a Room, room: &'a Room) -> BoxFuture<'a, ()> {
        let mut state = self.state.write().unwrap();
        let members: Vec<u64> = state
            .rooms
            .get(members_of)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default();
        for id in members {
            state.rooms.entry(room.clone()).or_default().insert(id);
            if let Some((_, rooms)) = state.queues.get_mut(&id) {
                rooms.push(room.clone());
            }
        }
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let mut ada = sessions.open(vec![Room::chat("hooks", "c1")]);
        let mut bob = sessions.open(vec![Room::user("hooks", "bob")]);
        sessions.emit(&said("hi")).await;
        assert_eq!(
            ada.next_frame().await.unwrap().as_ref(),
            r#"{"message":"hi"}"#
        );
        assert!(bob.frames.try_recv().is_err());
        sessions
            .join(&Room::user("hooks", "bob"), &Room::chat("hooks", "c1"))
            .await;
        sessions.emit(&said("again")).await;
        assert!(bob.next_frame().await.unwrap().contains("again"));
        drop(ada);
        assert_eq!(sessions.len(), 1);
    }

    #[tokio::test]
    async fn a_session_that_falls_behind_is_dropped() {
        let sessions = Arc::new(Sessions::default());
        let mut slow = sessions.open(vec![Room::chat("hooks", "c1")]);
        for _ in 0..=SESSION_QUEUE {
            sessions.emit(&said("flood")).await;
        }
        assert!(sessions.is_empty(), "the slow session was dropped");
        let mut drained = 0;
        while slow.next_frame().await.is_some() {
            drained += 1;
        }
        assert_eq!(drained, SESSION_QUEUE, "then its queue ends");
    }

    #[tokio::test]
    async fn closing_all_ends_every_session() {
        let sessions = Arc::new(Sessions::default());
        let mut session = sessions.open(vec![Room::chat("hooks", "c1")]);
        sessions.close_all();
        assert!(session.next_frame().await.is_none());
    }
}
