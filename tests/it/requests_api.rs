//! The requests dialect over REST: asking, the pending and rejected lists, answering, messages,
//! read marks and totals, with every refusal's status and code, and the pushes of each event.

use std::sync::Arc;

use crate::common::{RecordingPush, TestServer, mongodb_uri, new_database_name};
use palaver::core::HubUser;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Person {
    num: i64,
    token: String,
    user: palaver::store::User,
}

async fn server() -> (TestServer, Arc<RecordingPush>) {
    let push = Arc::new(RecordingPush::default());
    let ts = TestServer::start_with(&mongodb_uri(), &new_database_name(), push.clone()).await;
    (ts, push)
}

async fn person(ts: &TestServer, name: &str) -> Person {
    let (num, token) = ts.signup(name).await;
    let user = ts.user(&num).await;
    Person {
        num: num.parse().unwrap(),
        token,
        user,
    }
}

/// A request as the client makes it: the raw JWT in `Authorization`, JSON in and out.
async fn call(
    ts: &TestServer,
    method: Method,
    path: &str,
    who: &Person,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = ts
        .http
        .request(method, ts.url(path))
        .header("authorization", &who.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, body)
}

async fn get(ts: &TestServer, path: &str, who: &Person) -> (StatusCode, Value) {
    call(ts, Method::GET, path, who, None).await
}

async fn post(ts: &TestServer, path: &str, who: &Person, body: Value) -> (StatusCode, Value) {
    call(ts, Method::POST, path, who, Some(body)).await
}

/// A refusal in the dialect's shape.
fn refused(reply: (StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert_eq!(reply.1["code"], code, "{}", reply.1);
    assert!(reply.1["error"].is_string(), "{}", reply.1);
    assert_eq!(reply.1["payload"], Value::Null);
}

fn user_view(who: &Person, name: &str) -> Value {
    json!({ "id": who.num, "userId": who.num, "username": name, "displayName": name,
            "profilePictureKey": null })
}

#[tokio::test]
async fn a_request_from_asking_to_talking() {
    let (ts, push) = server().await;
    let ada = person(&ts, "ada").await;
    let bob = person(&ts, "bob").await;

    // Asking creates a pending chat; asking again answers the same one.
    let (status, chat) = post(&ts, "/chat", &ada, json!({ "userId": bob.num })).await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    assert_eq!(chat["status"], "pending");
    assert_eq!(
        chat["users"],
        json!([user_view(&ada, "ada"), user_view(&bob, "bob")])
    );
    assert_eq!(chat["lastMessage"], Value::Null);
    assert_eq!(chat["isPinned"], false);
    let id = chat["id"].as_str().unwrap().to_owned();
    let (status, again) = post(&ts, "/chat/", &ada, json!({ "userId": bob.num })).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &chat["id"]));

    // Bob is asked: one push, with this dialect's words and routing data.
    let pushed = push.take();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    let text = &pushed[0].texts["requests"];
    assert_eq!(pushed[0].user, bob.user.id.hub_user());
    assert_eq!(text.body, "ada wants to chat with you");
    assert_eq!(text.data["chatId"], id);
    assert_eq!(text.data["type"], "chat_request");

    // Received, not sent, requests are pending; a request is not an active chat.
    let (_, pending) = get(&ts, "/chat/pending?skip=0&limit=15&updateCache=true", &bob).await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending[0]["chatId"], id);
    assert_eq!(pending[0]["user"], user_view(&ada, "ada"));
    assert!(
        pending[0]["message"]["text"].is_string(),
        "never null: the client reads it"
    );
    assert_eq!(get(&ts, "/chat/pending", &ada).await.1, json!([]));
    assert_eq!(get(&ts, "/chat", &bob).await.1, json!([]));

    // While pending, the asker writes a preview.
    let said = json!({ "text": "hi bob", "id": "1700000000000", "chatId": id, "user": {} });
    let (status, message) = post(&ts, &format!("/chat/{id}"), &ada, said).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["text"], "hi bob");
    assert_eq!(message["matchId"], "1700000000000");
    assert_eq!(message["userId"], ada.num);
    assert_eq!(message["chatId"], id);
    assert_eq!(message["user"], user_view(&ada, "ada"));
    assert_eq!(message["attachments"], json!([]));
    let (_, pending) = get(&ts, "/chat/pending/", &bob).await;
    assert_eq!(pending[0]["message"]["text"], "hi bob");
    assert_eq!(pending[0]["totalUnreadMessages"], 1);
    let (_, totals) = get(&ts, "/chat/totals", &bob).await;
    assert_eq!(
        totals,
        json!({ "totalPendingRequest": 1, "totalPendingRequests": 1,
                "totalUnreadMessages": 1, "totalUnreadChats": 1 })
    );
    assert_eq!(
        get(&ts, "/chat/unread", &bob).await.1,
        json!({ "totalUnreadMessages": 1 })
    );
    push.take();

    // Only the asked answers; declining twice is a conflict; the asker may no longer write.
    refused(
        post(&ts, &format!("/chat/{id}/accept"), &ada, json!({})).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    let (status, declined) = post(&ts, &format!("/chat/{id}/reject"), &bob, json!({})).await;
    assert_eq!(
        (status, &declined["status"]),
        (StatusCode::OK, &json!("declined"))
    );
    refused(
        post(&ts, &format!("/chat/{id}/reject/"), &bob, json!({})).await,
        StatusCode::CONFLICT,
        "CONFLICT",
    );
    refused(
        post(
            &ts,
            &format!("/chat/{id}"),
            &ada,
            json!({ "text": "please?" }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    let (_, rejected) = get(&ts, "/chat/rejected", &bob).await;
    assert_eq!(rejected[0]["chatId"], id);
    assert_eq!(get(&ts, "/chat/pending", &bob).await.1, json!([]));

    // A declined request may still be accepted; then it is an active chat for both.
    let (status, accepted) = post(&ts, &format!("/chat/{id}/accept"), &bob, json!({})).await;
    assert_eq!(
        (status, &accepted["status"]),
        (StatusCode::OK, &json!("active"))
    );
    refused(
        post(&ts, &format!("/chat/{id}/accept"), &bob, json!({})).await,
        StatusCode::CONFLICT,
        "CONFLICT",
    );
    let pushed = push.take();
    assert_eq!(pushed.len(), 1, "the asker is told, once: {pushed:?}");
    assert_eq!(pushed[0].user, ada.user.id.hub_user());
    assert_eq!(
        pushed[0].texts["requests"].data["type"],
        "chat_request_accepted"
    );
    let (_, active) = get(&ts, "/chat?skip=0&limit=15", &ada).await;
    assert_eq!(active[0]["id"], id);
    assert_eq!(active[0]["status"], "active");
    assert_eq!(active[0]["lastMessage"]["text"], "hi bob");
    assert_eq!(
        post(&ts, "/chat", &ada, json!({ "userId": bob.num }))
            .await
            .1["status"],
        "active"
    );

    // Messages, newest first; an image without text; a link; neither text nor image is 400.
    let image = json!({ "imageUrl": "https://cdn.example.org/cat.jpg",
                        "linkPreviewUrl": "https://example.org" });
    let (status, photo) = post(&ts, &format!("/chat/{id}"), &bob, image).await;
    assert_eq!(status, StatusCode::CREATED, "{photo}");
    assert_eq!(photo["text"], "");
    assert_eq!(photo["linkPreviewUrl"], "https://example.org");
    assert_eq!(photo["attachments"][0]["type"], "image");
    assert_eq!(
        photo["attachments"][0]["value"],
        "https://cdn.example.org/cat.jpg"
    );
    assert_eq!(
        photo["attachments"][0]["meta"]["url"],
        "https://cdn.example.org/cat.jpg"
    );
    refused(
        post(&ts, &format!("/chat/{id}"), &bob, json!({ "text": " " })).await,
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
    );
    let (_, messages) = get(&ts, &format!("/chat/{id}/messages"), &ada).await;
    let texts: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["", "hi bob"]);
    let (_, older) = get(&ts, &format!("/chat/{id}/messages?skip=1&limit=1"), &ada).await;
    assert_eq!(older[0]["text"], "hi bob");
    refused(
        get(&ts, &format!("/chat/{id}/messages?limit=101"), &ada).await,
        StatusCode::BAD_REQUEST,
        "RESULT_LIMIT",
    );

    // Read marks: nothing unread after; the time of the read is shown.
    assert_eq!(
        get(&ts, "/chat/unread", &ada).await.1["totalUnreadMessages"],
        1
    );
    let (status, read) = post(&ts, &format!("/chat/{id}/read"), &ada, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        read,
        json!({ "success": true, "message": "All messages have been marked as read." })
    );
    assert_eq!(
        get(&ts, "/chat/unread/", &ada).await.1["totalUnreadMessages"],
        0
    );
    let (_, shown) = get(&ts, &format!("/chat/{id}"), &ada).await;
    assert!(shown["lastMessageReadAt"].is_string(), "{shown}");
    assert_eq!(shown["totalUnreadMessages"], 0);
    ts.stop().await;
}

#[tokio::test]
async fn answering_a_request_accepts_it_and_refusals_say_why() {
    let (ts, _) = server().await;
    let ada = person(&ts, "ada").await;
    let bob = person(&ts, "bob").await;
    let eve = person(&ts, "eve").await;
    let (_, chat) = post(&ts, "/chat", &ada, json!({ "userId": bob.num })).await;
    let id = chat["id"].as_str().unwrap().to_owned();

    // The asked user's reply accepts the request.
    let (status, _) = post(&ts, &format!("/chat/{id}"), &bob, json!({ "text": "sure" })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        get(&ts, &format!("/chat/{id}"), &ada).await.1["status"],
        "active"
    );

    // Not one of the two, no such chat, a malformed id, no or a bad token, no such user.
    refused(
        get(&ts, &format!("/chat/{id}"), &eve).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    let unknown = bson::oid::ObjectId::new().to_hex();
    refused(
        get(&ts, &format!("/chat/{unknown}/messages"), &ada).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    refused(
        get(&ts, "/chat/nope", &ada).await,
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
    );
    let anonymous = ts.http.get(ts.url("/chat")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["code"], "UNAUTHORIZED");
    let bearer = ts
        .http
        .get(ts.url("/chat/totals"))
        .header("authorization", format!("Bearer {}", ada.token))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK, "Bearer is accepted too");
    refused(
        post(&ts, "/chat", &ada, json!({ "userId": 987_654 })).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    refused(
        post(&ts, "/chat", &ada, json!({ "userId": ada.num })).await,
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
    );
    refused(
        post(&ts, "/chat", &ada, json!({ "user": bob.num })).await,
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
    );
    refused(
        get(&ts, "/chat?limit=500", &ada).await,
        StatusCode::BAD_REQUEST,
        "RESULT_LIMIT",
    );
    ts.stop().await;
}

#[tokio::test]
async fn a_declined_request_governs_posting_even_after_a_confirmed_like() {
    let (ts, _) = server().await;
    let saliu = ts.hooks_account("saliu@example.org", "Fan").await;
    let rebecca = ts.hooks_account("rebecca@example.org", "Fan").await;
    let saliu_user = ts.user(&saliu.num.to_string()).await;
    let rebecca_user = ts.user(&rebecca.num.to_string()).await;
    let app = &ts.server.app;
    let opened = app.request_chat(&saliu_user, &rebecca_user).await.unwrap();
    let chat = opened.chat().clone();
    app.answer_request(&rebecca_user, chat.id, false)
        .await
        .unwrap();
    // A like confirmed afterwards does not lift the decline: the request's status governs.
    let connection = app
        .request_connection(&saliu_user, rebecca_user.id)
        .await
        .unwrap();
    app.answer_connection(
        &rebecca_user,
        connection.id,
        palaver::store::Answer::Accepted,
    )
    .await
    .unwrap();
    let session = app
        .open_chat_session(&saliu_user, &rebecca_user)
        .await
        .unwrap();
    assert_eq!(
        session.id, chat.id,
        "one chat per pair, whichever dialect opened it"
    );
    let refused = app.post_message(&saliu_user, &session, "hello?").await;
    assert!(matches!(refused, Err(palaver::error::Error::Forbidden(_))));
    ts.stop().await;
}
