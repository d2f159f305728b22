//! Devices that receive pushes when their user has no live connection.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use mongodb::options::ReturnDocument;

use super::Core;
use crate::error::{Error, Result};
use crate::store::{Device, Platform, User, to_bson};

/// FCM registration tokens are opaque; this bounds what we store.
pub const TOKEN_MAX_LEN: usize = 4096;

impl Core {
    /// Register (or move to this user) a device's push token, for an app of `dialect`.
    pub async fn register_device(
        &self,
        user: &User,
        token: &str,
        platform: Platform,
        dialect: &str,
    ) -> Result<Device> {
        let token = token.trim();
        if token.is_empty() || token.len() > TOKEN_MAX_LEN || token.chars().any(char::is_whitespace)
        {
            return Err(Error::invalid(
                "token must be a non-empty FCM registration token",
            ));
        }
        let platform = to_bson(&platform)?;
        let set = doc! {
            "user_id": user.id,
            "platform": platform,
            "dialect": dialect,
            "updated_at": DateTime::now(),
        };
        self.store
            .devices
            .find_one_and_update(
                doc! { "token": token },
                doc! { "$set": set, "$setOnInsert": { "_id": ObjectId::new() } },
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("device missing after upsert")))
    }

    /// Stop pushing to one of the user's devices.
    pub async fn remove_device(&self, user: &User, token: &str) -> Result<()> {
        let deleted = self
            .store
            .devices
            .delete_one(doc! { "token": token, "user_id": user.id })
            .await?;
        if deleted.deleted_count == 0 {
            return Err(Error::NotFound("device"));
        }
        Ok(())
    }
}
