//! Chat requests: a one-to-one chat one user asks another for. While it is pending the asker
//! may write (a preview) and the other may accept, decline or answer (which accepts); once
//! declined the asker may not write, and the other may still accept. The request is the same
//! chat every dialect sees for the pair, and its status governs posting in it through all of
//! them. A pair that already has a chat (a DM, a session after a confirmed connection) has
//! nothing to ask: their chat is active.
//!
//! Also the totals a user's badges show: requests waiting for their answer, and what they have
//! not read.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use rooms::Present;

use super::direct::Opened;
use super::events::Totals;
use super::{ChatEvent, Core};
use crate::error::{Error, Result};
use crate::store::{Chat, Participant, RequestStatus, User, to_bson};

/// What connections that want a user's totals as they change count for in presence.
pub fn totals_watch(user: &ObjectId) -> Present {
    Present::Watch(format!("totals:{}", user.to_hex()))
}

impl Core {
    /// Ask `other` for a chat: the pair's one-to-one chat, created as a pending request if
    /// they have none (an existing one, asked for or not, is returned as it is).
    pub async fn request_chat(&self, user: &User, other: &User) -> Result<Opened> {
        let opened = self.open_direct_chat(user, other, None, true, None).await?;
        if let Opened::Created(_) = &opened {
            self.refresh_totals(vec![other.id]);
        }
        Ok(opened)
    }

    /// The one-to-one chat with this id, if `user` is one of its two.
    pub async fn direct_chat_of(&self, user: &User, id: ObjectId) -> Result<Chat> {
        let membership = self.member_view(user, id).await?;
        if membership.chat.is_group() {
            return Err(Error::NotFound("chat"));
        }
        Ok(membership.chat)
    }

    /// The asked user accepts (or declines) a request. Accepting a declined request is
    /// allowed; anything else already answered is a conflict.
    pub async fn answer_request(&self, user: &User, id: ObjectId, accept: bool) -> Result<Chat> {
        let chat = self.direct_chat_of(user, id).await?;
        let request = chat
            .request
            .as_ref()
            .ok_or_else(|| Error::Conflict("this chat was not asked for".into()))?;
        if request.to != user.id {
            return Err(Error::Forbidden(
                "only the user asked may answer a chat request".into(),
            ));
        }
        let answerable = match request.status {
            RequestStatus::Pending => true,
            RequestStatus::Declined => accept,
            RequestStatus::Active => false,
        };
        if !answerable {
            return Err(Error::Conflict(
                "this chat request was already answered".into(),
            ));
        }
        self.settle_request(&chat, user, accept).await
    }

    /// Record the answer (once: a concurrent answer wins), and tell both users.
    pub(super) async fn settle_request(
        &self,
        chat: &Chat,
        by: &User,
        accept: bool,
    ) -> Result<Chat> {
        let Some(request) = &chat.request else {
            return Ok(chat.clone());
        };
        let status = if accept {
            RequestStatus::Active
        } else {
            RequestStatus::Declined
        };
        let now = DateTime::now();
        let settled = self
            .store
            .chats
            .update_one(
                doc! { "_id": chat.id, "request.status": to_bson(&request.status)? },
                doc! { "$set": {
                    "request.status": to_bson(&status)?,
                    "request.answered_at": now,
                    "updated_at": now,
                } },
            )
            .await?;
        if settled.modified_count == 0 {
            return Err(Error::Conflict(
                "this chat request was already answered".into(),
            ));
        }
        self.forget_chat(chat).await;
        let mut answered = chat.clone();
        if let Some(request) = &mut answered.request {
            request.status = status;
            request.answered_at = Some(now);
        }
        answered.updated_at = Some(now);
        self.publish(ChatEvent::RequestAnswered {
            chat: answered.clone(),
            by: by.clone(),
            accepted: accept,
        })
        .await;
        self.refresh_totals(vec![request.from, request.to]);
        Ok(answered)
    }

    /// What the user's badges count, in three queries whatever their number of chats.
    pub async fn totals(&self, user: &User) -> Result<Totals> {
        let pending = doc! { "request.to": user.id, "request.status": "pending" };
        let pending_requests = self.store.chats.count_documents(pending);
        let unread = async {
            let chats = self.direct_chats_of(user).await?;
            let welcome = super::direct::pair_key(&user.id, &self.system_user().id);
            let ids: Vec<ObjectId> = chats
                .iter()
                .filter(|c| c.pair_key.as_deref() != Some(welcome.as_str()))
                .map(|c| c.id)
                .collect();
            let filter = doc! { "user_id": user.id, "chat_id": { "$in": ids } };
            let mine: Vec<Participant> = self.participants_where(filter).await?;
            self.unread_in(user, &mine).await
        };
        let (pending_requests, unread) =
            tokio::try_join!(async { Ok::<_, Error>(pending_requests.await?) }, unread)?;
        Ok(Totals {
            pending_requests,
            unread_messages: unread.values().sum(),
            unread_chats: unread.values().filter(|n| **n > 0).count() as u64,
        })
    }

    /// Tell each of `users` who watches their totals (on any node) what they are now. Done
    /// after answering: nobody waits on it, and users who watch nothing cost one query.
    pub(super) fn refresh_totals(&self, users: Vec<ObjectId>) {
        let Some(app) = self.app() else { return };
        tokio::spawn(async move {
            let keys: Vec<Present> = users.iter().map(totals_watch).collect();
            let watching = app.hub.present_among(&keys).await;
            let watchers = users.iter().filter(|u| watching.contains(&totals_watch(u)));
            for user in watchers {
                let computed = async {
                    let user = app.user_by_id(*user).await?;
                    let totals = app.totals(&user).await?;
                    Ok::<_, Error>((user.id, totals))
                };
                match computed.await {
                    Ok((user, totals)) => {
                        app.publish(ChatEvent::TotalsChanged { user, totals }).await;
                    }
                    Err(e) => tracing::warn!(%user, "could not count a user's totals: {e}"),
                }
            }
        });
    }
}
