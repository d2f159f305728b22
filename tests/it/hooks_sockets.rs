//! The hooks dialect's plain WebSockets with a real WebSocket client: `ws/notification/`
//! streams notifications, `ws/chat/<user_id>/` carries a chat session's messages, and both
//! close with a code that says why when they cannot serve.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{self, HooksAccount, RecordingPush, TestServer, ws_next, ws_open};
use futures::{SinkExt, StreamExt};
use palaver::core::HubUser;
use palaver::realtime::websocket::code::{
    FORBIDDEN as CLOSE_FORBIDDEN, NOT_FOUND as CLOSE_UNKNOWN_USER,
    UNAUTHORIZED as CLOSE_UNAUTHORIZED,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket = common::WsClient;

/// The close code the server ends the socket with.
async fn close_code(mut socket: Socket) -> u16 {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("closed within 5 s");
        match frame {
            Some(Ok(Message::Close(Some(close)))) => return close.code.into(),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    }
}

async fn say(socket: &mut Socket, text: Value) {
    socket
        .send(Message::Text(text.to_string().into()))
        .await
        .unwrap();
}

/// Wait until the server counts the user as online (the socket task has started).
async fn until_online(ts: &TestServer, account: &HooksAccount) {
    let user = ts.user(&account.num.to_string()).await;
    for _ in 0..100 {
        let id = user.id.hub_user();
        if !ts.server.app.hub.online_among(&[id]).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the user never came online");
}

#[tokio::test]
async fn notifications_stream_live_and_only_offline_users_are_pushed() {
    let push = Arc::new(RecordingPush::default());
    let ts = TestServer::start_with(
        &common::mongodb_uri(),
        &common::new_database_name(),
        push.clone(),
    )
    .await;
    let saliu = ts.hooks_account("saliu@example.org", "Fan").await;
    let balogun = ts.hooks_account("balogun@example.org", "Fan").await;

    for token in ["", "not-a-token", &saliu.refresh] {
        let socket = ws_open(&ts, "/ws/notification/", token).await;
        assert_eq!(
            close_code(socket).await,
            CLOSE_UNAUTHORIZED,
            "token {token:?}"
        );
    }

    let mut socket = ws_open(&ts, "/ws/notification/", &balogun.access).await;
    until_online(&ts, &balogun).await;
    push.take();
    ts.hooks(
        Method::POST,
        "/follow/",
        Some(&saliu.access),
        Some(json!({ "follow": balogun.num })),
    )
    .await;
    let frame = ws_next(&mut socket).await;
    assert_eq!(frame["message"], "saliu just followed you.");
    assert!(frame["id"].as_i64().is_some());
    assert!(frame["timestamp"].as_str().unwrap().ends_with('Z'));
    // The same notification is stored.
    let (_, stored) = ts
        .hooks(
            Method::GET,
            "/communication/notifications/",
            Some(&balogun.access),
            None,
        )
        .await;
    assert_eq!(stored, json!([frame]));
    assert!(
        push.take().is_empty(),
        "a user with a live connection is not pushed"
    );

    // Once the socket is gone, the next one is pushed.
    socket.close(None).await.unwrap();
    drop(socket);
    tokio::time::sleep(Duration::from_millis(200)).await;
    ts.hooks(
        Method::POST,
        "/follow/like/",
        Some(&saliu.access),
        Some(json!({ "like": balogun.num })),
    )
    .await;
    let pushed = push.take();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(
        pushed[0].texts["hooks"].body,
        "saliu sent you a like request."
    );
    ts.stop().await;
}

#[tokio::test]
async fn a_chat_socket_refuses_with_a_code_that_says_why() {
    let ts = TestServer::start().await;
    let (saliu, rebecca) = ts.confirmed_pair().await;
    let stranger = ts.hooks_account("stranger@example.org", "Fan").await;
    let cases = [
        (
            format!("/ws/chat/{}/", rebecca.num),
            "bad".to_owned(),
            CLOSE_UNAUTHORIZED,
        ),
        (
            "/ws/chat/999999/".to_owned(),
            saliu.access.clone(),
            CLOSE_UNKNOWN_USER,
        ),
        (
            "/ws/chat/abc/".to_owned(),
            saliu.access.clone(),
            CLOSE_UNKNOWN_USER,
        ),
        (
            format!("/ws/chat/{}/", rebecca.num),
            stranger.access.clone(),
            CLOSE_FORBIDDEN,
        ),
        (
            format!("/ws/chat/{}/", saliu.num),
            saliu.access.clone(),
            CLOSE_FORBIDDEN,
        ),
    ];
    for (path, token, expected) in cases {
        let socket = ws_open(&ts, &path, &token).await;
        assert_eq!(close_code(socket).await, expected, "{path}");
    }
    ts.stop().await;
}

#[tokio::test]
async fn chat_socket_messages_are_stored_once_and_reach_both_users() {
    let ts = TestServer::start().await;
    let (saliu, rebecca) = ts.confirmed_pair().await;
    let mut saliu_socket = ws_open(&ts, &format!("/ws/chat/{}/", rebecca.num), &saliu.access).await;
    let mut rebecca_socket =
        ws_open(&ts, &format!("/ws/chat/{}/", saliu.num), &rebecca.access).await;
    until_online(&ts, &saliu).await;
    until_online(&ts, &rebecca).await;

    say(&mut saliu_socket, json!({ "message": "res" })).await;
    let heard = ws_next(&mut rebecca_socket).await;
    let echoed = ws_next(&mut saliu_socket).await;
    assert_eq!(
        heard, echoed,
        "the sender hears it too, as with a Channels group send"
    );
    assert_eq!(heard["message"], "res");
    assert_eq!(heard["actor"]["id"], saliu.num);
    say(&mut rebecca_socket, json!({ "message": "true" })).await;
    assert_eq!(ws_next(&mut saliu_socket).await["message"], "true");
    assert_eq!(ws_next(&mut rebecca_socket).await["message"], "true");

    // A frame several times the server's read buffer arrives whole.
    let long = "é".repeat(4000);
    say(&mut saliu_socket, json!({ "message": long })).await;
    assert_eq!(ws_next(&mut rebecca_socket).await["message"], long);
    assert_eq!(ws_next(&mut saliu_socket).await["message"], long);

    // What is not a message is answered with an error on that socket only.
    say(&mut saliu_socket, json!({ "text": "wrong key" })).await;
    assert!(ws_next(&mut saliu_socket).await["error"].is_string());
    say(&mut saliu_socket, json!({ "message": "   " })).await;
    assert!(ws_next(&mut saliu_socket).await["error"].is_string());

    // Each message is stored once; the session is the one initiate returns.
    let (_, session) = ts
        .hooks(
            Method::POST,
            "/communication/chat/session/initiate/",
            Some(&saliu.access),
            Some(json!({ "user": rebecca.num })),
        )
        .await;
    assert_eq!(heard["session_id"], session["id"]);
    let path = format!("/communication/chats/?session_id={}", session["id"]);
    let (_, stored) = ts
        .hooks(Method::GET, &path, Some(&rebecca.access), None)
        .await;
    let texts: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["res", "true", long.as_str()]);
    let mut listed = stored[0].clone();
    listed["session_id"] = session["id"].clone();
    assert_eq!(
        listed, heard,
        "a frame is a listed message with its session id"
    );

    // Both were online: no message-while-offline notifications.
    let (_, notifications) = ts
        .hooks(
            Method::GET,
            "/communication/notifications/",
            Some(&rebecca.access),
            None,
        )
        .await;
    assert!(
        !notifications.to_string().contains("sent you a message"),
        "{notifications}"
    );

    // Stopping the server closes the sockets with "going away".
    ts.stop().await;
    assert_eq!(close_code(saliu_socket).await, 1001);
}

#[tokio::test]
async fn a_chat_socket_that_says_what_it_saw_last_is_sent_what_it_missed() {
    let ts = TestServer::start().await;
    let (saliu, rebecca) = ts.confirmed_pair().await;
    let mut saliu_socket = ws_open(&ts, &format!("/ws/chat/{}/", rebecca.num), &saliu.access).await;
    until_online(&ts, &saliu).await;
    let mut seen = Vec::new();
    for text in ["one", "two", "three", "four"] {
        say(&mut saliu_socket, json!({ "message": text })).await;
        seen.push(ws_next(&mut saliu_socket).await);
    }

    // Rebecca saw "two" last: she is sent "three" and "four", in order, then hears live.
    let path = format!(
        "/ws/chat/{}/?token={}&last_seen={}",
        saliu.num, rebecca.access, seen[1]["id"]
    );
    let url = format!("ws://{}{path}", ts.server.addr);
    let (mut rebecca_socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(ws_next(&mut rebecca_socket).await, seen[2]);
    assert_eq!(ws_next(&mut rebecca_socket).await, seen[3]);
    until_online(&ts, &rebecca).await;
    say(&mut saliu_socket, json!({ "message": "five" })).await;
    assert_eq!(ws_next(&mut rebecca_socket).await["message"], "five");

    // A last_seen that is not a message id is refused like any bad request.
    let bad = format!(
        "ws://{}/ws/chat/{}/?token={}&last_seen=x",
        ts.server.addr, saliu.num, rebecca.access
    );
    let (refused, _) = tokio_tungstenite::connect_async(bad).await.unwrap();
    assert_eq!(close_code(refused).await, CLOSE_FORBIDDEN);
    ts.stop().await;
}

#[tokio::test]
async fn what_is_said_during_a_replay_is_sent_once_and_in_order() {
    const SINCE: usize = 300;
    const DURING: usize = 40;
    let ts = TestServer::start().await;
    let (saliu, rebecca) = ts.confirmed_pair().await;
    let mut saliu_socket = ws_open(&ts, &format!("/ws/chat/{}/", rebecca.num), &saliu.access).await;
    until_online(&ts, &saliu).await;
    say(&mut saliu_socket, json!({ "message": "before" })).await;
    let before = ws_next(&mut saliu_socket).await;

    // Saliu said a lot since, and keeps talking while Rebecca comes back saying she saw
    // "before": her replay and his new messages overlap.
    let (author, other) = (
        ts.user(&saliu.num.to_string()).await,
        ts.user(&rebecca.num.to_string()).await,
    );
    let app = ts.server.app.clone();
    let chat = app.open_chat_session(&author, &other).await.unwrap();
    for i in 0..SINCE {
        app.post_message(&author, &chat, &format!("since {i}"))
            .await
            .unwrap();
    }
    let url = format!(
        "ws://{}/ws/chat/{}/?token={}&last_seen={}",
        ts.server.addr, saliu.num, rebecca.access, before["id"]
    );
    let (mut rebecca_socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let talking = tokio::spawn(async move {
        for i in 0..DURING {
            app.post_message(&author, &chat, &format!("during {i}"))
                .await
                .unwrap();
        }
    });
    talking.await.unwrap();

    // She hears every message after "before" exactly once, in the order Saliu's socket did.
    let mut said = Vec::new();
    let mut heard = Vec::new();
    for _ in 0..SINCE + DURING {
        said.push(ws_next(&mut saliu_socket).await["id"].clone());
        heard.push(ws_next(&mut rebecca_socket).await["id"].clone());
    }
    assert_eq!(heard, said);
    say(&mut saliu_socket, json!({ "message": "after" })).await;
    assert_eq!(ws_next(&mut rebecca_socket).await["message"], "after");
    ts.stop().await;
}

#[tokio::test]
async fn a_client_close_is_answered() {
    let ts = TestServer::start().await;
    let ada = ts.hooks_account("ada@example.org", "Fan").await;
    let mut socket = ws_open(&ts, "/ws/notification/", &ada.access).await;
    until_online(&ts, &ada).await;
    socket.close(None).await.unwrap();
    // The server's Close comes back (RFC 6455 §5.5.1), not a dropped connection.
    let answer = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("an answer within 5 s");
    assert!(matches!(answer, Some(Ok(Message::Close(_)))), "{answer:?}");
    ts.stop().await;
}
