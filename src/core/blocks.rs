//! Who blocked whom. Blocked users do not hear each other's one-to-one chat, and may not
//! post in it.

use bson::oid::ObjectId;
use bson::{DateTime, doc};

use super::direct::pair_key;
use super::{ChatEvent, Core};
use crate::error::{Error, Result, UniqueWrite};
use crate::store::{Block, InsertNew, User};

impl Core {
    /// `user` blocks `blocked`: neither hears the other's one-to-one chat any more.
    pub async fn block(&self, user: &User, blocked: ObjectId) -> Result<Block> {
        self.other_user(user, blocked, "block").await?;
        let block = Block {
            id: ObjectId::new(),
            blocker: user.id,
            blocked,
            created_at: DateTime::now(),
        };
        self.store
            .blocks
            .insert_new(&block, block.id)
            .await
            .unless_duplicate()?
            .ok_or_else(|| Error::Conflict("you already blocked this user".into()))?;
        self.forget_pair(pair_key(&user.id, &blocked)).await;
        if let Some(chat) = self.direct_chat_between(&user.id, &blocked).await? {
            self.publish(ChatEvent::Blocked {
                chat,
                blocker: user.id,
                blocked,
            })
            .await;
        }
        Ok(block)
    }

    /// The block is lifted: the chat is heard again.
    pub async fn unblock(&self, user: &User, blocked: ObjectId) -> Result<()> {
        let deleted = self
            .store
            .blocks
            .delete_one(doc! { "blocker": user.id, "blocked": blocked })
            .await?;
        if deleted.deleted_count == 0 {
            return Err(Error::NotFound("block"));
        }
        self.forget_pair(pair_key(&user.id, &blocked)).await;
        if let Some(chat) = self.direct_chat_between(&user.id, &blocked).await? {
            self.publish(ChatEvent::Unblocked {
                chat,
                blocker: user.id,
                blocked,
            })
            .await;
        }
        Ok(())
    }

    /// Whether either user blocked the other.
    pub async fn blocked_between(&self, a: &ObjectId, b: &ObjectId) -> Result<bool> {
        let pair = pair_key(a, b);
        if let Some(blocked) = self.blocked.get(&pair) {
            return Ok(blocked);
        }
        let filter = doc! { "$or": [
            { "blocker": a, "blocked": b },
            { "blocker": b, "blocked": a },
        ] };
        let blocked = self.store.blocks.find_one(filter).await?.is_some();
        self.blocked.insert(pair, blocked);
        Ok(blocked)
    }
}
