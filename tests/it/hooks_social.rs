//! The hooks dialect's profiles, follows, likes, notifications and chat sessions over REST,
//! with DRF's shapes and refusals.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{self, HooksAccount, RecordingPush, TestServer};
use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn server() -> (TestServer, Arc<RecordingPush>) {
    let push = Arc::new(RecordingPush::default());
    let database = common::new_database_name();
    let ts = TestServer::start_with(&common::mongodb_uri(), &database, push.clone()).await;
    (ts, push)
}

async fn get(ts: &TestServer, path: &str, who: &HooksAccount) -> (StatusCode, Value) {
    ts.hooks(Method::GET, path, Some(&who.access), None).await
}

async fn post(ts: &TestServer, path: &str, who: &HooksAccount, body: Value) -> (StatusCode, Value) {
    ts.hooks(Method::POST, path, Some(&who.access), Some(body))
        .await
}

async fn put(ts: &TestServer, path: &str, who: &HooksAccount, body: Value) -> (StatusCode, Value) {
    ts.hooks(Method::PUT, path, Some(&who.access), Some(body))
        .await
}

/// A cheap account (no password) that the hooks dialect accepts all the same.
async fn quick_account(ts: &TestServer, name: &str) -> HooksAccount {
    let (num, token) = ts.signup(name).await;
    HooksAccount {
        num: num.parse().unwrap(),
        access: token,
        refresh: String::new(),
    }
}

async fn confirm_like(ts: &TestServer, from: &HooksAccount, to: &HooksAccount) -> i64 {
    let (status, body) = post(ts, "/follow/like/", from, json!({ "like": to.num })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let like = body["id"].as_i64().unwrap();
    let answer = json!({ "like_instance": like, "action": "accept" });
    let (status, body) = post(ts, "/follow/like/respond/", to, answer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    like
}

fn messages_of(notifications: &Value) -> Vec<&str> {
    notifications
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["message"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn profiles_change_any_subset_and_check_every_field() {
    let (ts, _) = server().await;
    let fan = ts.hooks_account("saliu@example.org", "Fan").await;
    let creator = ts.hooks_account("rebecca@example.org", "Creator").await;

    let (status, body) = ts.hooks(Method::GET, "/profile/", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({ "detail": "Authentication credentials were not provided." })
    );

    // A new profile: nothing filled in yet.
    let (status, body) = get(&ts, "/profile/", &fan).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "id": fan.num, "full_name": "N/A", "display_pic": null, "age": 0, "bio": "N/A",
            "gender": "N/A", "state": "N/A", "city": "N/A", "interests": [],
            "monthly_sub_keys": null,
        })
    );

    let change = json!({
        "full_name": "Saliu Opeyemi Abdul Azeez", "gender": "Male",
        "bio": "A skilled backend developer and innovation specialist.",
        "state": "Ogun", "city": "Ijebu Ode", "interests": ["dancing"],
    });
    let (status, updated) = put(&ts, "/profile/update/", &fan, change).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["full_name"], "Saliu Opeyemi Abdul Azeez");
    assert_eq!(updated["interests"], json!(["dancing"]));
    // Any subset: one field changes, the others stay.
    let (_, updated) = put(&ts, "/profile/update/", &fan, json!({ "city": "Lagos" })).await;
    assert_eq!(updated["city"], "Lagos");
    assert_eq!(updated["state"], "Ogun");
    let (_, read) = get(&ts, "/profile/", &fan).await;
    assert_eq!(read, updated);
    // Others read it with ?user_id=.
    let (status, read) = get(&ts, &format!("/profile/?user_id={}", fan.num), &creator).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, updated);
    let (status, body) = get(&ts, "/profile/?user_id=999999", &creator).await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({ "detail": "Not found." }))
    );

    // Every invalid field is reported at once; nothing is saved.
    let bad = json!({
        "interests": ["dancing", "knitting"], "monthly_sub_keys": "price_123",
        "bio": "x".repeat(501),
    });
    let (status, body) = put(&ts, "/profile/update/", &fan, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["interests"],
        json!(["\"knitting\" is not a valid choice."])
    );
    assert_eq!(
        body["monthly_sub_keys"],
        json!(["Only Creators can set monthly_sub_keys."])
    );
    assert!(body["bio"][0].as_str().unwrap().contains("500"), "{body}");
    let (_, read) = get(&ts, "/profile/", &fan).await;
    assert_eq!(read, updated);

    // Creators keep subscription keys; Fans' are always null.
    let (status, body) = put(
        &ts,
        "/profile/update/",
        &creator,
        json!({ "monthly_sub_keys": "price_123", "interests": ["Social", "sports"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["monthly_sub_keys"], "price_123");
    assert_eq!(body["interests"], json!(["social", "sports"]));
    let (_, read) = get(&ts, &format!("/profile/?user_id={}", creator.num), &fan).await;
    assert_eq!(read["monthly_sub_keys"], "price_123");
    assert_eq!(updated["monthly_sub_keys"], Value::Null);

    // A form body works as JSON does.
    let response = ts
        .http
        .put(ts.url("/profile/update/"))
        .bearer_auth(&fan.access)
        .form(&[("gender", "Female")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["gender"], "Female");
    ts.stop().await;
}

#[tokio::test]
async fn follows_are_once_per_pair_counted_and_notified() {
    let (ts, push) = server().await;
    let saliu = ts.hooks_account("saliu@example.org", "Fan").await;
    let balogun = ts.hooks_account("balogun@example.org", "Creator").await;
    put(
        &ts,
        "/profile/update/",
        &saliu,
        json!({ "full_name": "Saliu Opeyemi" }),
    )
    .await;

    let (status, body) = post(&ts, "/follow/", &saliu, json!({ "follow": balogun.num })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["follower"]["id"], saliu.num);
    assert_eq!(body["follower"]["full_name"], "Saliu Opeyemi");
    assert_eq!(
        body["following"],
        json!({ "id": balogun.num, "full_name": "N/A", "gender": "N/A", "bio": "N/A" })
    );
    assert_eq!(body["message"], "Following");
    assert!(body["id"].as_i64().unwrap() > 0);

    // Once per pair; not oneself; not a user who does not exist; ids as text work too.
    for (follow, expected) in [
        (
            json!(balogun.num.to_string()),
            "You already follow this user.",
        ),
        (json!(saliu.num), "You cannot follow yourself."),
        (json!(999_999), "Invalid pk - object does not exist."),
        (json!("abc"), "A valid integer is required."),
    ] {
        let (status, body) = post(&ts, "/follow/", &saliu, json!({ "follow": follow })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({ "follow": [expected] }));
    }
    let (status, body) = post(&ts, "/follow/", &saliu, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({ "follow": ["This field is required."] }));

    let (_, body) = get(&ts, "/follow/followings/", &saliu).await;
    assert_eq!(
        body,
        json!([{ "following": { "id": balogun.num, "full_name": "N/A", "gender": "N/A", "bio": "N/A" } }])
    );
    let (_, body) = get(&ts, "/follow/followers/", &balogun).await;
    assert_eq!(body[0]["followers"]["id"], saliu.num);
    let (_, body) = get(&ts, "/follow/followers/?count", &balogun).await;
    assert_eq!(body, json!({ "count": 1 }));
    let (_, body) = get(&ts, "/follow/followings/?count=true", &balogun).await;
    assert_eq!(body, json!({ "count": 0 }));

    // Balogun was offline: the follow is stored, and pushed.
    let (_, notifications) = get(&ts, "/communication/notifications/", &balogun).await;
    assert_eq!(
        messages_of(&notifications),
        ["Saliu Opeyemi just followed you."]
    );
    let pushed = push.take();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].texts["hooks"].title, "New follower");
    assert_eq!(pushed[0].texts["hooks"].data["event"], "notification");

    let (status, body) = post(
        &ts,
        "/follow/unfollow/",
        &saliu,
        json!({ "unfollow": balogun.num }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["message"], "Unfollowed");
    assert_eq!(body["user"]["id"], balogun.num);
    let (status, body) = post(
        &ts,
        "/follow/unfollow/",
        &saliu,
        json!({ "unfollow": balogun.num }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({ "unfollow": ["You do not follow this user."] })
    );
    let (status, _) = post(
        &ts,
        "/follow/unfollow/",
        &saliu,
        json!({ "unfollow": saliu.num }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, body) = get(&ts, "/follow/followers/?count", &balogun).await;
    assert_eq!(body, json!({ "count": 0 }));
    ts.stop().await;
}

#[tokio::test]
async fn recommendations_rank_shared_interests_then_followers() {
    let (ts, _) = server().await;
    let me = ts.hooks_account("me@example.org", "Fan").await;
    put(
        &ts,
        "/profile/update/",
        &me,
        json!({ "interests": ["dancing", "nature", "sports"] }),
    )
    .await;
    let two_shared = quick_account(&ts, "two_shared").await;
    put(
        &ts,
        "/profile/update/",
        &two_shared,
        json!({ "interests": ["nature", "sports"], "city": "Ijebu Ode", "state": "Ogun" }),
    )
    .await;
    let one_shared = quick_account(&ts, "one_shared").await;
    put(
        &ts,
        "/profile/update/",
        &one_shared,
        json!({ "interests": ["dancing"] }),
    )
    .await;
    let popular = quick_account(&ts, "popular").await;
    let plain = quick_account(&ts, "plain").await;
    let followed = quick_account(&ts, "followed").await;
    put(
        &ts,
        "/profile/update/",
        &followed,
        json!({ "interests": ["dancing", "nature", "sports"] }),
    )
    .await;
    post(&ts, "/follow/", &plain, json!({ "follow": popular.num })).await;
    post(&ts, "/follow/", &me, json!({ "follow": followed.num })).await;

    let (status, body) = get(&ts, "/follow/recommended/", &me).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    // Followed users and oneself are left out; interests first, then followers, then newest.
    assert_eq!(
        ids,
        [two_shared.num, one_shared.num, popular.num, plain.num]
    );
    let first = &body[0];
    assert_eq!(first["location"], "Ijebu Ode, Ogun");
    assert_eq!(first["subscribers"], "Not Available");
    assert_eq!(first["active"], false);
    assert_eq!(body[2]["followers"], 1);
    assert_eq!(body[2]["location"], "N/A");
    ts.stop().await;
}

#[tokio::test]
async fn likes_are_asked_listed_by_status_and_answered_once_by_the_addressee() {
    let (ts, push) = server().await;
    let saliu = ts.hooks_account("saliu@example.org", "Fan").await;
    let rebecca = ts.hooks_account("rebecca@example.org", "Creator").await;
    put(
        &ts,
        "/profile/update/",
        &rebecca,
        json!({ "full_name": "Rebecca Omotoke", "gender": "Female" }),
    )
    .await;

    let (status, body) = post(&ts, "/follow/like/", &rebecca, json!({ "like": saliu.num })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["like"]["id"], saliu.num);
    let like = body["id"].as_i64().unwrap();
    // Not twice, not while the other way is pending, not oneself.
    for (who, whom) in [(&rebecca, &saliu), (&saliu, &rebecca), (&saliu, &saliu)] {
        let (status, body) = post(&ts, "/follow/like/", who, json!({ "like": whom.num })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["like"][0].is_string(), "{body}");
    }

    let (status, body) = get(&ts, "/follow/like/?status=requested", &saliu).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "count": 1, "next": null, "previous": null,
            "results": [{ "id": like, "like": { "id": rebecca.num, "full_name": "Rebecca Omotoke", "gender": "Female", "bio": "N/A" } }],
        })
    );
    let (_, body) = get(&ts, "/follow/like/?status=pending", &rebecca).await;
    assert_eq!(body["results"][0]["like"]["id"], saliu.num);
    let (_, body) = get(&ts, "/follow/like/?status=confirmed", &saliu).await;
    assert_eq!(body["count"], 0);
    let (status, body) = get(&ts, "/follow/like/", &saliu).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({ "status": ["This field is required."] })
        )
    );
    let (status, body) = get(&ts, "/follow/like/?status=maybe", &saliu).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({ "status": ["\"maybe\" is not a valid choice."] })
        )
    );

    // Only the addressee answers, once.
    let answer = json!({ "like_instance": like, "action": "accept" });
    let (status, body) = post(&ts, "/follow/like/respond/", &rebecca, answer.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].is_string());
    let (status, body) = post(
        &ts,
        "/follow/like/respond/",
        &saliu,
        json!({ "like_instance": like, "action": "maybe" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post(&ts, "/follow/like/respond/", &saliu, answer.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["like_id"], like);
    assert_eq!(body["like"]["id"], rebecca.num);
    assert_eq!(body["action"], "Accepted");
    let (status, body) = post(&ts, "/follow/like/respond/", &saliu, answer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({ "like_instance": ["This like request has already been answered."] })
    );
    let (status, _) = post(
        &ts,
        "/follow/like/respond/",
        &saliu,
        json!({ "like_instance": 999_999, "action": "accept" }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for who in [&saliu, &rebecca] {
        let (_, body) = get(&ts, "/follow/like/?status=confirmed", who).await;
        assert_eq!(body["count"], 1);
    }
    // A confirmed like is the chats dialect's accepted connection: it cannot be asked again.
    let (status, _) = post(&ts, "/follow/like/", &saliu, json!({ "like": rebecca.num })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A like can be answered by naming the user who sent it, as the listed likes show users.
    let carl = quick_account(&ts, "carl").await;
    post(&ts, "/follow/like/", &carl, json!({ "like": saliu.num })).await;
    let (status, body) = post(
        &ts,
        "/follow/like/respond/",
        &saliu,
        json!({ "like_instance": carl.num, "action": "reject" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["action"], "Rejected");

    let (_, notifications) = get(&ts, "/communication/notifications/", &saliu).await;
    assert_eq!(
        messages_of(&notifications),
        [
            "carl sent you a like request.",
            "Rebecca Omotoke sent you a like request."
        ]
    );
    let (_, notifications) = get(&ts, "/communication/notifications/", &rebecca).await;
    assert_eq!(
        messages_of(&notifications),
        ["saliu accepted your like request."]
    );
    assert_eq!(
        push.take().len(),
        4,
        "every notification of an offline user is pushed"
    );
    ts.stop().await;
}

#[tokio::test]
async fn likes_are_paginated_as_drf_does() {
    let (ts, _) = server().await;
    let star = quick_account(&ts, "star").await;
    // More fans than one address may sign up a minute: as if each came from its own.
    for n in 0..23 {
        let app = &ts.server.app;
        let user = app.create_user(&format!("fan{n}"), None).await.unwrap();
        let fan = HooksAccount {
            num: user.num,
            access: app.tokens.issue(&user, Duration::from_secs(60)).unwrap(),
            refresh: String::new(),
        };
        post(&ts, "/follow/like/", &fan, json!({ "like": star.num })).await;
    }
    let (_, first) = get(&ts, "/follow/like/?status=requested", &star).await;
    assert_eq!(first["count"], 23);
    assert_eq!(first["results"].as_array().unwrap().len(), 20);
    assert_eq!(first["previous"], Value::Null);
    let next = first["next"].as_str().unwrap();
    assert!(
        next.ends_with("/follow/like/?page=2&status=requested"),
        "{next}"
    );
    let response = ts
        .http
        .get(next)
        .bearer_auth(&star.access)
        .send()
        .await
        .unwrap();
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["results"].as_array().unwrap().len(), 3);
    assert_eq!(second["next"], Value::Null);
    assert!(second["previous"].as_str().unwrap().contains("page=1"));
    let (status, body) = get(&ts, "/follow/like/?status=requested&page=3", &star).await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({ "detail": "Not found." }))
    );
    ts.stop().await;
}

#[tokio::test]
async fn chat_sessions_need_a_confirmed_like_and_list_their_messages() {
    let (ts, _) = server().await;
    let saliu = ts.hooks_account("saliu@example.org", "Fan").await;
    let rebecca = ts.hooks_account("rebecca@example.org", "Creator").await;
    let stranger = quick_account(&ts, "stranger").await;
    put(
        &ts,
        "/profile/update/",
        &rebecca,
        json!({ "full_name": "Rebecca Omotoke" }),
    )
    .await;

    let initiate = "/communication/chat/session/initiate/";
    let (status, body) = post(&ts, initiate, &saliu, json!({ "user": rebecca.num })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("like"));
    let (status, body) = post(&ts, initiate, &saliu, json!({ "user": saliu.num })).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({ "user": ["You cannot chat with yourself."] })
        )
    );
    let (status, _) = post(&ts, initiate, &saliu, json!({ "user": 999_999 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    confirm_like(&ts, &rebecca, &saliu).await;
    let (status, session) = post(&ts, initiate, &saliu, json!({ "user": rebecca.num })).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(
        session["recipient"],
        json!({ "id": rebecca.num, "full_name": "Rebecca Omotoke", "display_pic": null })
    );
    // The existing session, from either side.
    let (_, again) = post(&ts, initiate, &rebecca, json!({ "user": saliu.num })).await;
    assert_eq!(again["id"], session["id"]);
    assert_eq!(again["recipient"]["id"], saliu.num);
    let (_, listed) = get(&ts, "/communication/chat/sessions/", &saliu).await;
    assert_eq!(listed, json!([session]));

    let id = session["id"].as_i64().unwrap();
    let app = &ts.server.app;
    let chat = app
        .member_chat(&ts.user(&saliu.num.to_string()).await, id)
        .await
        .unwrap();
    let saliu_user = ts.user(&saliu.num.to_string()).await;
    let rebecca_user = ts.user(&rebecca.num.to_string()).await;
    app.post_message(&saliu_user, &chat, "res").await.unwrap();
    app.post_message(&rebecca_user, &chat, "true")
        .await
        .unwrap();

    let path = format!("/communication/chats/?session_id={id}");
    let (status, body) = get(&ts, &path, &rebecca).await;
    assert_eq!(status, StatusCode::OK);
    let listed = body.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["message"], "res");
    assert_eq!(listed[0]["actor"]["id"], saliu.num);
    assert_eq!(listed[1]["actor"]["full_name"], "Rebecca Omotoke");
    assert!(listed[0]["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        listed[0]["timestamp"].as_str().unwrap().len(),
        27,
        "microseconds"
    );
    let before = format!("{path}&before={}", listed[1]["id"]);
    let (_, earlier) = get(&ts, &before, &rebecca).await;
    assert_eq!(earlier.as_array().unwrap().len(), 1);

    // Not a participant; no session id.
    let (status, _) = get(&ts, &path, &stranger).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = get(&ts, "/communication/chats/", &rebecca).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({ "session_id": ["This field is required."] })
        )
    );

    // Both were offline: each message left the other a notification, pushed with the message.
    // It is written after the sender's answer, so it may take a moment.
    let mut found = false;
    for _ in 0..50 {
        let (_, notifications) = get(&ts, "/communication/notifications/", &rebecca).await;
        found = messages_of(&notifications).contains(&"saliu sent you a message.");
        if found {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(found, "the message-while-offline notification was stored");
    let (status, body) = ts
        .hooks(
            Method::DELETE,
            "/communication/notifications/",
            Some(&rebecca.access),
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (_, notifications) = get(&ts, "/communication/notifications/", &rebecca).await;
    assert_eq!(notifications, json!([]));
    let (_, notifications) = get(&ts, "/communication/notifications/", &saliu).await;
    assert!(
        !notifications.as_array().unwrap().is_empty(),
        "only the caller's are cleared"
    );
    ts.stop().await;
}

#[tokio::test]
async fn devices_register_in_fcm_djangos_shape() {
    let (ts, _) = server().await;
    let saliu = quick_account(&ts, "saliu").await;
    let (status, body) = post(
        &ts,
        "/devices/",
        &saliu,
        json!({ "registration_id": "fcm-token-1", "type": "android" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["registration_id"], "fcm-token-1");
    assert_eq!(body["type"], "android");
    let (status, body) = post(
        &ts,
        "/devices/",
        &saliu,
        json!({ "registration_id": "x", "type": "pager" }),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({ "type": ["\"pager\" is not a valid choice."] })
        )
    );
    let (status, _) = ts
        .hooks(
            Method::DELETE,
            "/devices/fcm-token-1/",
            Some(&saliu.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    ts.stop().await;
}
