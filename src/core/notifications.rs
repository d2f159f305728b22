//! Notifications: what a user is told about new followers, connections asked of them and the
//! answers to theirs, and messages that reached them while they had no live connection.
//! Stored until cleared; each dialect that shows them says them in its own words.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use super::{ChatEvent, Core};
use crate::error::Result;
use crate::store::{Answer, InsertNew, Notification, NotificationKind, User};

/// The most notifications one read returns, newest first.
pub const NOTIFICATIONS_MAX: i64 = 100;

impl Core {
    /// Store a notification and send it to the user's live connections; a user with none also
    /// gets a push, unless `push` is false (the event itself was already pushed). A failure is
    /// logged, not returned: the action it reports has already happened.
    pub(super) async fn notify(
        &self,
        user: ObjectId,
        kind: NotificationKind,
        actor: &User,
        answer: Option<Answer>,
        push: bool,
    ) {
        let stored = async {
            let notification = Notification {
                id: ObjectId::new(),
                num: self.store.ids.next("notifications").await?,
                user_id: user,
                kind,
                actor: Some(actor.id),
                answer,
                message: None,
                created_at: DateTime::now(),
            };
            self.store
                .notifications
                .insert_new(&notification, notification.id)
                .await?;
            Ok::<_, crate::error::Error>(notification)
        }
        .await;
        match stored {
            Ok(notification) => {
                let actor = actor.clone();
                let event = ChatEvent::Notified {
                    notification,
                    actor,
                    push,
                };
                self.publish(event).await;
            }
            Err(e) => tracing::warn!(%user, ?kind, "could not store a notification: {e}"),
        }
    }

    /// The user's latest notifications, newest first.
    pub async fn notifications_of(&self, user: &User) -> Result<Vec<Notification>> {
        let cursor = self
            .store
            .notifications
            .find(doc! { "user_id": user.id })
            .sort(doc! { "user_id": 1, "num": -1 })
            .limit(NOTIFICATIONS_MAX)
            .await?;
        Ok(cursor.try_collect().await?)
    }

    pub async fn clear_notifications(&self, user: &User) -> Result<u64> {
        let deleted = self
            .store
            .notifications
            .delete_many(doc! { "user_id": user.id })
            .await?;
        Ok(deleted.deleted_count)
    }
}
