//! The rules of posting, checked by the core for every message whichever way it comes: over
//! the chats dialect's REST and the hooks dialect's `ws/chat/` here (channels Socket.IO in
//! `tests/js/posting.test.mjs`). A member only; no post between users who blocked each other;
//! in a group that allows no public posts, admins only; content present and bounded.

use crate::common::{self, Member, TestServer, ws_next, ws_open};
use futures::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn say(ts: &TestServer, who: &Member, chat: &str, content: &str) -> (StatusCode, Value) {
    let path = format!("/chats/{chat}/messages");
    let body = json!({ "content": content });
    ts.call(Method::POST, &path, &who.token, Some(body)).await
}

fn refused(reply: (StatusCode, Value), status: StatusCode) {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert!(reply.1["message"].is_string(), "{}", reply.1);
}

async fn follow(ts: &TestServer, who: &Member, whom: &Member) {
    let path = format!("/users/{}/follow", whom.id);
    let (status, body) = ts.call(Method::POST, &path, &who.token, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn chats_rest_posts_follow_the_rules() {
    let ts = TestServer::start().await;
    let max = ts.member("max").await;
    let neha = ts.member("neha").await;
    let stranger = ts.member("stranger").await;
    follow(&ts, &max, &neha).await;
    let group = json!({ "isGroup": true, "name": "Rules", "category": "Study",
                        "participants": [neha.id] });
    let (status, body) = ts
        .call(Method::POST, "/chats", &max.token, Some(group))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["chat"]["_id"].as_str().unwrap().to_owned();

    // Members post; the message comes back and is listed.
    let (status, body) = say(&ts, &neha, &id, "hello").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["message"]["content"], "hello");
    assert_eq!(body["message"]["user"]["_id"], neha.id);
    let path = format!("/chats/{id}/messages");
    let (_, listed) = ts.call(Method::GET, &path, &max.token, None).await;
    assert_eq!(listed["messages"][0]["_id"], body["message"]["_id"]);

    // Not a participant.
    refused(
        say(&ts, &stranger, &id, "let me in").await,
        StatusCode::FORBIDDEN,
    );

    // Content: present, not only control characters, at most 4000 characters.
    for content in ["   ", "\u{0}\u{1}", &"x".repeat(4001)] {
        refused(say(&ts, &neha, &id, content).await, StatusCode::BAD_REQUEST);
    }

    // No public posts: admins only, until it is allowed again.
    let closed = json!({ "allowPublicPost": false });
    let (status, body) = ts
        .call(
            Method::PUT,
            &format!("/chats/{id}"),
            &max.token,
            Some(closed),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    refused(say(&ts, &neha, &id, "may I?").await, StatusCode::FORBIDDEN);
    assert_eq!(
        say(&ts, &max, &id, "admins only").await.0,
        StatusCode::CREATED
    );
    let open = json!({ "allowPublicPost": true });
    ts.call(Method::PUT, &format!("/chats/{id}"), &max.token, Some(open))
        .await;
    assert_eq!(say(&ts, &neha, &id, "thanks").await.0, StatusCode::CREATED);

    // A one-to-one chat: after a block, neither side posts.
    let direct = json!({ "user": neha.id });
    let (_, body) = ts
        .call(Method::POST, "/chats", &max.token, Some(direct))
        .await;
    let direct = body["chat"]["_id"].as_str().unwrap().to_owned();
    assert_eq!(say(&ts, &neha, &direct, "hi").await.0, StatusCode::CREATED);
    let path = format!("/users/{}/block", neha.id);
    let (status, _) = ts.call(Method::POST, &path, &max.token, None).await;
    assert_eq!(status, StatusCode::CREATED);
    refused(say(&ts, &neha, &direct, "hi?").await, StatusCode::FORBIDDEN);
    refused(say(&ts, &max, &direct, "bye").await, StatusCode::FORBIDDEN);
    ts.stop().await;
}

#[tokio::test]
async fn an_open_chat_socket_is_refused_once_its_user_may_no_longer_post() {
    let ts = TestServer::start().await;
    let (saliu, rebecca) = ts.confirmed_pair().await;
    let mut socket = ws_open(&ts, &format!("/ws/chat/{}/", saliu.num), &rebecca.access).await;
    let send = async |socket: &mut common::WsClient, text: &str| {
        let frame = json!({ "message": text }).to_string();
        socket.send(Message::Text(frame.into())).await.unwrap();
    };

    // Content rules, on this socket only.
    for content in ["   ", "\u{0}", &"x".repeat(4001)] {
        send(&mut socket, content).await;
        assert!(ws_next(&mut socket).await["error"].is_string());
    }
    send(&mut socket, "hello").await;
    assert_eq!(ws_next(&mut socket).await["message"], "hello");

    // Saliu blocks Rebecca: her open socket is refused from the next frame on.
    let saliu_user = ts.user(&saliu.num.to_string()).await;
    let rebecca_user = ts.user(&rebecca.num.to_string()).await;
    ts.server
        .app
        .block(&saliu_user, rebecca_user.id)
        .await
        .unwrap();
    send(&mut socket, "still there?").await;
    let refused = ws_next(&mut socket).await;
    assert!(
        refused["error"].as_str().unwrap().contains("blocked"),
        "{refused}"
    );
    ts.stop().await;
}
