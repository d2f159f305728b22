//! The hooks dialect's shapes: integer ids, snake_case, "N/A" for details not filled in, and
//! Django's timestamps with microseconds.

use bson::DateTime;
use serde_json::{Value, json};

use crate::core::profiles::Recommendation;
use crate::store::{Answer, Message, Notification, NotificationKind, User};

/// What Django's serializers showed for a detail never filled in.
const NOT_SET: &str = "N/A";

/// `2025-09-22T01:36:33.911316Z`, as Django REST Framework writes datetimes.
pub fn timestamp(at: DateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    at.to_time_0_3().format(&format).unwrap_or_default()
}

fn or_not_set(value: &Option<String>) -> &str {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or(NOT_SET)
}

fn full_name(user: &User) -> &str {
    or_not_set(&user.profile.full_name)
}

/// `{id, full_name, gender, bio}`: a user in follows and likes.
pub fn brief(user: &User) -> Value {
    json!({
        "id": user.num,
        "full_name": full_name(user),
        "gender": or_not_set(&user.profile.gender),
        "bio": or_not_set(&user.profile.bio),
    })
}

/// `{id, full_name, display_pic}`: a user in chat sessions and messages.
pub fn card(user: &User) -> Value {
    json!({
        "id": user.num,
        "full_name": full_name(user),
        "display_pic": user.profile.display_pic,
    })
}

/// The whole profile. Fans' `monthly_sub_keys` are always null.
pub fn profile(user: &User) -> Value {
    let profile = &user.profile;
    json!({
        "id": user.num,
        "full_name": full_name(user),
        "display_pic": profile.display_pic,
        "age": 0,
        "bio": or_not_set(&profile.bio),
        "gender": or_not_set(&profile.gender),
        "state": or_not_set(&profile.state),
        "city": or_not_set(&profile.city),
        "interests": profile.interests,
        "monthly_sub_keys": profile.monthly_sub_keys.as_ref().filter(|_| user.is_creator()),
    })
}

/// A recommended user; `active` is whether they have a live connection now.
pub fn recommended(recommendation: &Recommendation, active: bool) -> Value {
    let user = &recommendation.user;
    let place: Vec<&str> = [&user.profile.city, &user.profile.state]
        .into_iter()
        .filter_map(|p| p.as_deref().filter(|p| !p.is_empty()))
        .collect();
    let location = if place.is_empty() {
        NOT_SET.to_owned()
    } else {
        place.join(", ")
    };
    json!({
        "id": user.num,
        "full_name": full_name(user),
        "display_pic": user.profile.display_pic,
        "age": 0,
        "location": location,
        "followers": recommendation.followers,
        "subscribers": "Not Available",
        "interests": user.profile.interests,
        "active": active,
    })
}

/// A notification as listed and as sent over `ws/notification/`; `actor` is who caused it.
pub fn notification(notification: &Notification, actor: Option<&User>) -> Value {
    json!({
        "id": notification.num,
        "message": notification_text(notification, actor),
        "timestamp": timestamp(notification.created_at),
    })
}

/// What a notification says: "X just followed you.", with X the full name or the username.
pub fn notification_text(notification: &Notification, actor: Option<&User>) -> String {
    if let Some(stored) = &notification.message {
        return stored.clone();
    }
    let who = actor.map_or("Someone", User::display_name);
    match notification.kind {
        NotificationKind::Followed => format!("{who} just followed you."),
        NotificationKind::LikeRequested => format!("{who} sent you a like request."),
        NotificationKind::LikeAnswered => {
            let verdict = match notification.answer {
                Some(Answer::Accepted) => "accepted",
                _ => "declined",
            };
            format!("{who} {verdict} your like request.")
        }
        NotificationKind::MessageWhileOffline => format!("{who} sent you a message."),
    }
}

/// A message of a chat session, as listed and as sent over `ws/chat/`.
pub fn message(message: &Message, actor: &User) -> Value {
    json!({
        "id": message.num,
        "actor": card(actor),
        "message": message.content,
        "timestamp": timestamp(message.created_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_microseconds() {
        let at = DateTime::from_millis(1_758_505_000_123);
        assert_eq!(timestamp(at), "2025-09-22T01:36:40.123000Z");
    }
}
