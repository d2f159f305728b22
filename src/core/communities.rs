//! Communities to explore: groups found by name, with their reels, meetups and the caller's
//! pending join request.

use std::collections::HashSet;

use bson::doc;
use bson::oid::ObjectId;
use futures::TryStreamExt;
use futures::future::try_join_all;

use super::Core;
use super::chats::Membership;
use super::listing::{Listing, PAGE_MAX, SEARCH_MIN_CHARS, Window, bounded_search, contains};
use crate::error::{Error, Result};
use crate::store::{JoinRequest, Meetup, Reel, User};

/// A community as explore shows it.
#[derive(Debug, Clone)]
pub struct Community {
    pub membership: Membership,
    pub reels: Vec<Reel>,
    pub reels_count: u64,
    pub request: Option<JoinRequest>,
    pub meetup: Option<Meetup>,
    pub unread: u64,
}

impl Core {
    /// Groups whose name contains `search`, most recently active first, with their reels
    /// and the caller's pending join request.
    pub async fn explore_communities(
        &self,
        user: &User,
        search: &str,
        category: Option<&str>,
        reels_limit: u64,
        page: Window,
    ) -> Result<(Listing<Community>, HashSet<ObjectId>)> {
        let search = bounded_search(search)?;
        if search.chars().count() < SEARCH_MIN_CHARS {
            return Err(Error::invalid(format!(
                "search is required, with at least {SEARCH_MIN_CHARS} characters"
            )));
        }
        if reels_limit > PAGE_MAX {
            return Err(Error::invalid(format!(
                "reelsLimit must be at most {PAGE_MAX}"
            )));
        }
        let mut query = doc! { "kind": "group", "group.name": contains(search) };
        if let Some(category) = category.filter(|c| !c.is_empty()) {
            query.insert("group.category", category);
        }
        let (count, chats) = self.chats_page(query, page).await?;
        let ids: Vec<ObjectId> = chats.iter().map(|m| m.chat.id).collect();
        let requests: Vec<JoinRequest> = self
            .store
            .join_requests
            .find(doc! { "chat_id": { "$in": &ids }, "user_id": user.id, "status": "pending" })
            .await?
            .try_collect()
            .await?;
        let meetups: Vec<Meetup> = self
            .store
            .meetups
            .find(doc! { "chat_id": { "$in": &ids } })
            .await?
            .try_collect()
            .await?;
        let items = try_join_all(chats.into_iter().map(|membership| {
            let chat_id = membership.chat.id;
            let request = requests.iter().find(|r| r.chat_id == chat_id).cloned();
            let meetup = meetups.iter().find(|e| e.chat_id == chat_id).cloned();
            async move {
                let filter = doc! { "chat_id": chat_id };
                let reels_count = self.store.reels.count_documents(filter.clone()).await?;
                let reels: Vec<Reel> = self
                    .store
                    .reels
                    .find(filter)
                    .sort(doc! { "chat_id": 1, "created_at": -1, "_id": -1 })
                    .limit(reels_limit as i64)
                    .await?
                    .try_collect()
                    .await?;
                let unread = self.unread(user, &membership).await?;
                Ok::<_, Error>(Community {
                    membership,
                    unread,
                    reels,
                    reels_count,
                    request,
                    meetup,
                })
            }
        }))
        .await?;
        let mut user_ids: HashSet<ObjectId> = HashSet::new();
        for community in &items {
            user_ids.extend(community.membership.chat.created_by);
            user_ids.extend(community.reels.iter().map(|r| r.user_id));
        }
        let user_ids: Vec<ObjectId> = user_ids.into_iter().collect();
        let users = self.users_by_id(&user_ids).await?;
        let followed = self.followed_among(user, &user_ids).await?;
        Ok((
            Listing {
                items,
                users,
                count,
            },
            followed,
        ))
    }
}
