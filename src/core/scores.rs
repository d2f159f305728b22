//! The social ("vibe") score: points for actions, kept per action and in total.

use bson::doc;
use mongodb::options::ReturnDocument;

use super::{ChatEvent, Core};
use crate::error::{Error, Result};
use crate::store::{Score, User};

/// Joining a group chat by oneself.
pub const JOIN_GROUP_CHAT: &str = "join-group-chat";

/// Points each action is worth.
pub fn points_for(action: &str) -> i64 {
    match action {
        JOIN_GROUP_CHAT => 10,
        _ => 0,
    }
}

impl Core {
    /// Credit `action` to the user's score and tell their devices.
    pub async fn award(&self, user: &User, action: &'static str) -> Result<Score> {
        let points = points_for(action);
        let score = self
            .store
            .scores
            .find_one_and_update(
                doc! { "_id": user.id },
                doc! { "$inc": { "total": points, format!("actions.{action}"): points } },
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("score missing after upsert")))?;
        self.publish(ChatEvent::ScoreUpdated {
            user: user.id,
            score: score.clone(),
            action,
            points,
        })
        .await;
        Ok(score)
    }

    pub async fn score_of(&self, user: &User) -> Result<Score> {
        let score = self.store.scores.find_one(doc! { "_id": user.id }).await?;
        Ok(score.unwrap_or(Score {
            user_id: user.id,
            total: 0,
            actions: Default::default(),
        }))
    }
}
