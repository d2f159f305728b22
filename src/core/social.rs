//! Who follows whom and who is connected to whom (who blocked whom is `blocks.rs`'s). Every
//! dialect shares these: the hooks dialect's follows and confirmed likes are these follows and
//! connections.

use std::collections::HashSet;

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use super::Core;
use super::listing::Window;
use crate::error::{Error, Result, UniqueWrite};
use crate::store::{Answer, Connection, Follow, InsertNew, NotificationKind, User};

/// Which of a user's connections to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    /// Asked by the user, not answered yet.
    Asked,
    /// Asked of the user, waiting for their answer.
    AskedOfMe,
    /// Accepted, whoever asked.
    Accepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowSide {
    Following,
    Followers,
}

impl Core {
    pub async fn user_by_id(&self, id: ObjectId) -> Result<User> {
        self.store
            .users
            .find_one(doc! { "_id": id })
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// A user someone else acts upon: it must exist and must not be the actor.
    pub(super) async fn other_user(
        &self,
        user: &User,
        other: ObjectId,
        doing: &str,
    ) -> Result<User> {
        if other == user.id {
            return Err(Error::invalid(format!("you cannot {doing} yourself")));
        }
        self.user_by_id(other).await
    }

    /// Follow another user, once; they are notified.
    pub async fn follow(&self, user: &User, followee: ObjectId) -> Result<Follow> {
        self.other_user(user, followee, "follow").await?;
        // A follow notifies: someone blocked (or blocking) must not reach the other that way.
        if self.blocked_between(&user.id, &followee).await? {
            return Err(Error::Forbidden("you cannot follow this user".into()));
        }
        let follow = Follow {
            id: ObjectId::new(),
            num: self.store.ids.next("follows").await?,
            follower: user.id,
            followee,
            created_at: DateTime::now(),
        };
        self.store
            .follows
            .insert_new(&follow, follow.id)
            .await
            .unless_duplicate()?
            .ok_or_else(|| Error::Conflict("you already follow this user".into()))?;
        self.notify(followee, NotificationKind::Followed, user, None, true)
            .await;
        Ok(follow)
    }

    pub async fn unfollow(&self, user: &User, followee: ObjectId) -> Result<()> {
        let deleted = self
            .store
            .follows
            .delete_one(doc! { "follower": user.id, "followee": followee })
            .await?;
        if deleted.deleted_count == 0 {
            return Err(Error::NotFound("follow"));
        }
        Ok(())
    }

    /// Of `users`, those `user` follows.
    pub async fn followed_among(
        &self,
        user: &User,
        users: &[ObjectId],
    ) -> Result<HashSet<ObjectId>> {
        let filter = doc! { "follower": user.id, "followee": { "$in": users } };
        let follows: Vec<Follow> = self.store.follows.find(filter).await?.try_collect().await?;
        Ok(follows.into_iter().map(|f| f.followee).collect())
    }

    /// Ask `to` for a connection. One open or accepted connection per pair.
    pub async fn request_connection(&self, user: &User, to: ObjectId) -> Result<Connection> {
        self.other_user(user, to, "connect with").await?;
        if self.blocked_between(&user.id, &to).await? {
            return Err(Error::Forbidden("you cannot connect with this user".into()));
        }
        let existing = self
            .store
            .connections
            .find_one(doc! {
                "$or": [ { "from": user.id, "to": to }, { "from": to, "to": user.id } ],
                "status": { "$in": ["pending", "accepted"] },
            })
            .await?;
        if existing.is_some() {
            return Err(Error::Conflict(
                "a connection with this user is already pending or accepted".into(),
            ));
        }
        let connection = Connection {
            id: ObjectId::new(),
            num: self.store.ids.next("connections").await?,
            from: user.id,
            to,
            status: Answer::Pending,
            created_at: DateTime::now(),
        };
        self.store
            .connections
            .insert_new(&connection, connection.id)
            .await?;
        self.notify(to, NotificationKind::LikeRequested, user, None, true)
            .await;
        Ok(connection)
    }

    /// Accept or reject a connection; only its addressee may, and only once.
    pub async fn answer_connection(
        &self,
        user: &User,
        id: ObjectId,
        answer: Answer,
    ) -> Result<Connection> {
        let status = answer.verdict()?;
        let connection = self.connection(id).await?;
        if connection.to != user.id {
            return Err(Error::Forbidden(
                "only the user asked may answer a connection".into(),
            ));
        }
        let updated = self
            .store
            .connections
            .update_one(
                doc! { "_id": id, "status": "pending" },
                doc! { "$set": { "status": status } },
            )
            .await?;
        if updated.modified_count == 0 {
            return Err(Error::Conflict(
                "this connection was already answered".into(),
            ));
        }
        self.notify(
            connection.from,
            NotificationKind::LikeAnswered,
            user,
            Some(answer),
            true,
        )
        .await;
        Ok(Connection {
            status: answer,
            ..connection
        })
    }

    async fn connection(&self, id: ObjectId) -> Result<Connection> {
        self.store
            .connections
            .find_one(doc! { "_id": id })
            .await?
            .ok_or(Error::NotFound("connection"))
    }

    /// The connection with this numeric id, if `user` is one of its two ends.
    pub async fn connection_by_num(&self, user: &User, num: i64) -> Result<Option<Connection>> {
        let filter = doc! { "num": num, "$or": [ { "from": user.id }, { "to": user.id } ] };
        Ok(self.store.connections.find_one(filter).await?)
    }

    /// The connection `from` asked of `to` that is still waiting for an answer.
    pub async fn pending_connection(
        &self,
        from: ObjectId,
        to: ObjectId,
    ) -> Result<Option<Connection>> {
        let filter = doc! { "from": from, "to": to, "status": "pending" };
        Ok(self.store.connections.find_one(filter).await?)
    }

    /// The accepted connection between two users, which lets them meet.
    pub async fn accepted_connection_between(&self, a: &User, b: &User) -> Result<Connection> {
        let filter = doc! {
            "$or": [ { "from": a.id, "to": b.id }, { "from": b.id, "to": a.id } ],
            "status": "accepted",
        };
        self.store
            .connections
            .find_one(filter)
            .await?
            .ok_or_else(|| {
                Error::Forbidden("you and this user must have an accepted connection first".into())
            })
    }

    /// One page of the user's connections of one kind, newest first, and how many there are.
    pub async fn connections_of(
        &self,
        user: &User,
        kind: ConnectionKind,
        window: Window,
    ) -> Result<(u64, Vec<Connection>)> {
        let filter = match kind {
            ConnectionKind::Asked => doc! { "from": user.id, "status": "pending" },
            ConnectionKind::AskedOfMe => doc! { "to": user.id, "status": "pending" },
            ConnectionKind::Accepted => doc! {
                "$or": [ { "from": user.id }, { "to": user.id } ],
                "status": "accepted",
            },
        };
        let count = self.store.connections.count_documents(filter.clone());
        let page = async {
            let cursor = self
                .store
                .connections
                .find(filter.clone())
                .sort(doc! { "created_at": -1, "_id": -1 })
                .skip(window.skip)
                .limit(window.limit as i64)
                .await?;
            cursor.try_collect::<Vec<_>>().await
        };
        let (count, page) = tokio::try_join!(count, page)?;
        Ok((count, page))
    }

    /// Who the user follows (`Following`) or who follows them (`Followers`), newest first.
    pub async fn follows_of(&self, user: &User, side: FollowSide) -> Result<Vec<Follow>> {
        let filter = match side {
            FollowSide::Following => doc! { "follower": user.id },
            FollowSide::Followers => doc! { "followee": user.id },
        };
        let cursor = self
            .store
            .follows
            .find(filter)
            .sort(doc! { "created_at": -1, "_id": -1 })
            .await?;
        Ok(cursor.try_collect().await?)
    }

    pub async fn follow_count(&self, user: &User, side: FollowSide) -> Result<u64> {
        let filter = match side {
            FollowSide::Following => doc! { "follower": user.id },
            FollowSide::Followers => doc! { "followee": user.id },
        };
        Ok(self.store.follows.count_documents(filter).await?)
    }

    /// The connection `id`, which must join `a` and `b` and be accepted.
    pub async fn accepted_connection(
        &self,
        id: ObjectId,
        a: &ObjectId,
        b: &ObjectId,
    ) -> Result<Connection> {
        let connection = self.connection(id).await?;
        if !connection.joins(a, b) {
            return Err(Error::NotFound("connection"));
        }
        if connection.status != Answer::Accepted {
            return Err(Error::Forbidden(
                "the connection has not been accepted".into(),
            ));
        }
        Ok(connection)
    }

    /// Every one of `users` exists and is followed by `user` or connected to them; the users,
    /// in the order given, without repeats.
    pub async fn reachable_users(&self, user: &User, users: &[ObjectId]) -> Result<Vec<User>> {
        let found = self.other_users(user, users).await?;
        let wanted: Vec<ObjectId> = found.iter().map(|u| u.id).collect();
        let followed = self.followed_among(user, &wanted).await?;
        let unfollowed: Vec<ObjectId> = wanted
            .iter()
            .filter(|id| !followed.contains(id))
            .copied()
            .collect();
        if !unfollowed.is_empty() {
            let connections: Vec<Connection> = self
                .store
                .connections
                .find(doc! {
                    "status": "accepted",
                    "$or": [
                        { "from": user.id, "to": { "$in": &unfollowed } },
                        { "to": user.id, "from": { "$in": &unfollowed } },
                    ],
                })
                .await?
                .try_collect()
                .await?;
            let stranger = unfollowed
                .iter()
                .find(|id| !connections.iter().any(|c| c.joins(&user.id, id)));
            if let Some(stranger) = stranger {
                return Err(Error::Forbidden(
                    format!(
                        "participant {} is neither followed by you nor connected with you",
                        stranger.to_hex()
                    )
                    .into(),
                ));
            }
        }
        Ok(found)
    }

    /// Every one of `users` exists and is not `user`; the users, in the order given, without
    /// repeats.
    pub async fn other_users(&self, user: &User, users: &[ObjectId]) -> Result<Vec<User>> {
        let mut wanted: Vec<ObjectId> = Vec::with_capacity(users.len());
        for id in users {
            if *id == user.id {
                return Err(Error::invalid("you cannot list yourself as a participant"));
            }
            if !wanted.contains(id) {
                wanted.push(*id);
            }
        }
        let found = self.users_by_id(&wanted).await?;
        if found.len() != wanted.len() {
            return Err(Error::NotFound("user"));
        }
        Ok(wanted
            .iter()
            .filter_map(|id| found.get(id).cloned())
            .collect())
    }
}
