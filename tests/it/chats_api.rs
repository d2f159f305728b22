//! The chats dialect over REST (`community-chats.txt`): every endpoint, every rule the spec
//! states with the refusal it gets, and who would be pushed.

use std::sync::Arc;

use crate::common::{Member, RecordingPush, TestServer, mongodb_uri, new_database_name};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn server() -> (TestServer, Arc<RecordingPush>) {
    let push = Arc::new(RecordingPush::default());
    let ts = TestServer::start_with(&mongodb_uri(), &new_database_name(), push.clone()).await;
    (ts, push)
}

async fn get(ts: &TestServer, path: &str, who: &Member) -> (StatusCode, Value) {
    ts.call(Method::GET, path, &who.token, None).await
}

async fn post(ts: &TestServer, path: &str, who: &Member, body: Value) -> (StatusCode, Value) {
    ts.call(Method::POST, path, &who.token, Some(body)).await
}

async fn put(ts: &TestServer, path: &str, who: &Member, body: Value) -> (StatusCode, Value) {
    ts.call(Method::PUT, path, &who.token, Some(body)).await
}

async fn delete(ts: &TestServer, path: &str, who: &Member) -> (StatusCode, Value) {
    ts.call(Method::DELETE, path, &who.token, None).await
}

/// A refusal: the status, and a JSON `message` that says why.
fn refused(reply: (StatusCode, Value), status: StatusCode, says: &str) {
    assert_eq!(reply.0, status, "{}", reply.1);
    let message = reply.1["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(says),
        "expected a message containing {says:?}, got {:?}",
        reply.1
    );
}

async fn follow(ts: &TestServer, who: &Member, whom: &Member) {
    let (status, body) = post(ts, &format!("/users/{}/follow", whom.id), who, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// `owner` follows each of `others` and creates a group with them.
async fn group(ts: &TestServer, owner: &Member, others: &[&Member], category: &str) -> Value {
    for other in others {
        follow(ts, owner, other).await;
    }
    let ids: Vec<&str> = others.iter().map(|m| m.id.as_str()).collect();
    let (status, body) = post(
        ts,
        "/chats",
        owner,
        json!({ "isGroup": true, "name": "Future Scientists", "category": category,
                "participants": ids, "restricted": true }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["chat"].clone()
}

/// The chat events pushed since the last look. Follows and connections also push a
/// notification (the hooks dialect's, tested there); those are left out here.
fn events(push: &RecordingPush) -> Vec<(String, String)> {
    push.take()
        .into_iter()
        .map(|p| {
            let text = p.text_for(Some("chats")).unwrap();
            (p.user.to_string(), text.data["event"].clone())
        })
        .filter(|(_, event)| event != "notification")
        .collect()
}

#[tokio::test]
async fn requests_need_a_bearer_token() {
    let (ts, _) = server().await;
    let (status, body) = read(ts.http.get(ts.url("/chats")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "authentication required");
    let (status, _) = ts.call(Method::GET, "/chats", "not-a-token", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    ts.stop().await;
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn one_to_one_chats_are_opened_once_and_respect_blocks_and_connections() {
    let (ts, push) = server().await;
    let max = ts.member("Max_R").await;
    let neha = ts.member("Neha_Sharma45").await;
    let amy = ts.member("amy.jackson").await;

    refused(
        post(&ts, "/chats", &max, json!({ "user": max.id })).await,
        StatusCode::BAD_REQUEST,
        "yourself",
    );
    refused(
        post(&ts, "/chats", &max, json!({})).await,
        StatusCode::BAD_REQUEST,
        "user is required",
    );
    refused(
        post(
            &ts,
            "/chats",
            &max,
            json!({ "user": "68914287e4c3076d9436523c" }),
        )
        .await,
        StatusCode::NOT_FOUND,
        "user not found",
    );
    refused(
        post(&ts, "/chats", &max, json!({ "user": "nope" })).await,
        StatusCode::BAD_REQUEST,
        "24-hex",
    );
    refused(
        post(
            &ts,
            "/chats",
            &max,
            json!({ "user": neha.id, "socket": "not a socket id!" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "socket",
    );

    let (status, first) = post(
        &ts,
        "/chats",
        &max,
        json!({ "user": neha.id, "socket": "u3C2x9asfB9vE5y8A6AD" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let chat = &first["chat"];
    assert_eq!(chat["creator"], max.id);
    assert_eq!(chat["isGroup"], false);
    assert_eq!(chat["user"], neha.id);
    let participants = chat["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 2);
    assert_eq!(participants[0]["user"], max.id);
    assert_eq!(participants[0]["isAdmin"], true);
    assert!(participants[1].get("isAdmin").is_none());
    assert_eq!(participants[1]["lastReadAt"].as_str().unwrap().len(), 24);
    assert_eq!(
        events(&push),
        vec![(neha.id.clone(), "chat-created".into())]
    );

    // Either side asking again gets the same chat with 200, and nobody is told twice.
    let (status, again) = post(&ts, "/chats", &neha, json!({ "user": max.id })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["chat"]["_id"], chat["_id"]);
    assert!(events(&push).is_empty());

    // Blocking either way stops a new one-to-one chat.
    let (status, _) = post(&ts, &format!("/users/{}/block", max.id), &amy, json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    refused(
        post(&ts, &format!("/users/{}/block", max.id), &amy, json!({})).await,
        StatusCode::CONFLICT,
        "already blocked",
    );
    refused(
        post(&ts, "/chats", &max, json!({ "user": amy.id })).await,
        StatusCode::FORBIDDEN,
        "cannot open a chat",
    );
    // Nor can either follow the other, which would notify them.
    for (who, whom) in [(&max, &amy), (&amy, &max)] {
        refused(
            post(&ts, &format!("/users/{}/follow", whom.id), who, json!({})).await,
            StatusCode::FORBIDDEN,
            "cannot follow",
        );
    }
    let (status, _) = delete(&ts, &format!("/users/{}/block", max.id), &amy).await;
    assert_eq!(status, StatusCode::OK);

    // meetMe: a connection between these two users, and accepted.
    let (status, body) = post(&ts, "/connections", &max, json!({ "user": amy.id })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let connection = body["connection"]["_id"].as_str().unwrap().to_owned();
    refused(
        post(&ts, "/connections", &amy, json!({ "user": max.id })).await,
        StatusCode::CONFLICT,
        "already pending",
    );
    refused(
        post(
            &ts,
            "/chats",
            &max,
            json!({ "user": amy.id, "meetMe": connection }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not been accepted",
    );
    refused(
        post(
            &ts,
            &format!("/connections/{connection}"),
            &max,
            json!({ "status": "accepted" }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "only the user asked",
    );
    let (status, _) = post(
        &ts,
        &format!("/connections/{connection}"),
        &amy,
        json!({ "status": "accepted" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    refused(
        post(
            &ts,
            &format!("/connections/{connection}"),
            &amy,
            json!({ "status": "rejected" }),
        )
        .await,
        StatusCode::CONFLICT,
        "already answered",
    );
    refused(
        post(
            &ts,
            "/chats",
            &neha,
            json!({ "user": amy.id, "meetMe": connection }),
        )
        .await,
        StatusCode::NOT_FOUND,
        "connection not found",
    );
    let (status, body) = post(
        &ts,
        "/chats",
        &max,
        json!({ "user": amy.id, "meetMe": connection }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["chat"]["meetMe"], connection.as_str());

    // Max now has the welcome-free list: two one-to-one chats, one of them meet-me.
    let (_, list) = get(&ts, "/chats?group=false&meetMeOnly=true", &max).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["chats"][0]["user"]["_id"], amy.id);
    assert_eq!(list["chats"][0]["name"], "amy.jackson");
    let (_, list) = get(&ts, "/chats?group=false", &max).await;
    assert_eq!(list["count"], 2);
    ts.stop().await;
}

#[tokio::test]
async fn groups_are_created_from_people_you_follow_or_are_connected_with() {
    let (ts, push) = server().await;
    let max = ts.member("Max_R").await;
    let neha = ts.member("Neha_Sharma45").await;
    let amy = ts.member("amy.jackson").await;

    refused(
        post(
            &ts,
            "/chats",
            &max,
            json!({ "isGroup": true, "name": "Math 101" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "name, category and participants are required",
    );
    refused(
        post(
            &ts,
            "/chats",
            &max,
            json!({ "isGroup": true, "name": "Math 101", "category": "Study", "participants": [neha.id] }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "neither followed by you nor connected",
    );
    refused(
        post(
            &ts,
            "/chats",
            &max,
            json!({ "isGroup": true, "name": "  ", "category": "Study", "participants": [] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "name must not be empty",
    );

    let chat = group(&ts, &max, &[&neha], "Event").await;
    assert_eq!(chat["creator"], max.id);
    assert_eq!(chat["isGroup"], true);
    assert_eq!(chat["category"], "Event");
    assert_eq!(chat["name"], "Future Scientists");
    assert_eq!(chat["allowPublicPost"], true);
    assert_eq!(chat["restricted"], true);
    assert_eq!(chat["tags"][1]["label"], "Lectures & Summaries");
    let participants = chat["participants"].as_array().unwrap();
    assert_eq!(participants[0]["user"], neha.id);
    assert_eq!(participants[1]["user"], max.id);
    assert_eq!(participants[1]["isAdmin"], true);
    // Every participant but the creator is pushed, once.
    assert_eq!(
        events(&push),
        vec![(neha.id.clone(), "chat-created".into())]
    );

    // A connection (without a follow) is enough too; Courses are never restricted.
    let (_, body) = post(&ts, "/connections", &amy, json!({ "user": max.id })).await;
    let connection = body["connection"]["_id"].as_str().unwrap();
    post(
        &ts,
        &format!("/connections/{connection}"),
        &max,
        json!({ "status": "accepted" }),
    )
    .await;
    let (status, body) = post(
        &ts,
        "/chats",
        &max,
        json!({ "isGroup": true, "name": "Algebra", "category": "Courses",
                "participants": [amy.id], "restricted": true }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["chat"]["restricted"], false);
    ts.stop().await;
}

#[tokio::test]
async fn chat_lists_page_search_filter_and_count_unread() {
    let (ts, _) = server().await;
    let max = ts.member("Max_R").await;
    let neha = ts.member("Neha_Sharma45").await;
    let amy = ts.member("amy.jackson").await;
    let science = group(&ts, &max, &[&neha], "Study").await;
    let (status, _) = post(&ts, "/chats", &max, json!({ "user": amy.id })).await;
    assert_eq!(status, StatusCode::CREATED);

    // Neha writes twice in the group: Max has two unread messages there.
    let app = &ts.server.app;
    let id = bson::oid::ObjectId::parse_str(science["_id"].as_str().unwrap()).unwrap();
    let chat = app.chat_by_id(id).await.unwrap();
    let neha_user = neha.user.clone();
    app.post_message(&neha_user, &chat, "first").await.unwrap();
    app.post_message(&neha_user, &chat, "second").await.unwrap();

    let (status, list) = get(&ts, "/chats", &max).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["count"], 2);
    // The group has the newest message, so it comes first.
    let first = &list["chats"][0];
    assert_eq!(first["_id"], science["_id"]);
    assert_eq!(first["unread"], 2);
    assert_eq!(first["lastMessage"]["content"], "second");
    assert_eq!(first["lastMessage"]["user"]["username"], "Neha_Sharma45");
    assert_eq!(first["lastMessage"]["chat"], science["_id"]);
    assert_eq!(first["isJoined"], true);
    assert_eq!(first["areYouAdmin"], true);
    assert_eq!(first["participantsCount"], 2);
    assert_eq!(first["creator"]["username"], "Max_R");
    assert_eq!(first["participants"][0]["user"]["isOnline"], false);
    let second = &list["chats"][1];
    assert_eq!(second["lastMessage"], Value::Null);
    assert_eq!(second["user"]["username"], "amy.jackson");

    // Pages, filters and search.
    let (_, page) = get(&ts, "/chats?limit=1&page=2", &max).await;
    assert_eq!(page["count"], 2);
    assert_eq!(page["chats"].as_array().unwrap().len(), 1);
    assert_eq!(page["chats"][0]["_id"], second["_id"]);
    let (_, groups) = get(&ts, "/chats?group=true", &max).await;
    assert_eq!(groups["count"], 1);
    let (_, found) = get(&ts, "/chats?search=scien", &max).await;
    assert_eq!(found["count"], 1);
    let (_, found) = get(&ts, "/chats?search=AMY", &max).await;
    assert_eq!(found["chats"][0]["_id"], second["_id"]);
    let (_, found) = get(&ts, "/chats?search=.*", &max).await;
    assert_eq!(found["count"], 0);
    refused(
        get(&ts, "/chats?limit=1000", &max).await,
        StatusCode::BAD_REQUEST,
        "limit",
    );

    // Reading marks everything read; one chat on its own has the same shape.
    let path = format!("/chats/{}", science["_id"].as_str().unwrap());
    let (status, body) = post(&ts, &format!("{path}/read"), &max, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["participant"]["user"], max.id);
    let (status, one) = get(&ts, &path, &max).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["chat"]["unread"], 0);
    assert_eq!(one["chat"]["lastMessage"]["content"], "second");
    // Neha has not read her own messages, but they do not count as unread for her.
    let (_, hers) = get(&ts, &path, &neha).await;
    assert_eq!(hers["chat"]["unread"], 0);
    assert_eq!(hers["chat"]["areYouAdmin"], false);

    // Only participants read a chat.
    refused(
        get(&ts, &path, &amy).await,
        StatusCode::FORBIDDEN,
        "not a participant",
    );
    refused(
        post(&ts, &format!("{path}/read"), &amy, json!({})).await,
        StatusCode::FORBIDDEN,
        "not a participant",
    );
    refused(
        get(&ts, "/chats/68d51a529caa6111e7e801c7", &max).await,
        StatusCode::NOT_FOUND,
        "chat not found",
    );
    refused(
        get(&ts, "/chats/zzz", &max).await,
        StatusCode::BAD_REQUEST,
        "24-hex",
    );
    ts.stop().await;
}

#[tokio::test]
async fn only_admins_change_a_group_and_courses_stay_open() {
    let (ts, _) = server().await;
    let max = ts.member("Max_R").await;
    let neha = ts.member("Neha_Sharma45").await;
    let chat = group(&ts, &max, &[&neha], "Study").await;
    let path = format!("/chats/{}", chat["_id"].as_str().unwrap());

    refused(
        put(&ts, &path, &neha, json!({ "name": "Mine now" })).await,
        StatusCode::FORBIDDEN,
        "only an admin",
    );
    let (status, body) = put(
        &ts,
        &path,
        &max,
        json!({ "name": "Study group", "allowPublicPost": "false" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["chat"]["name"], "Study group");
    assert_eq!(body["chat"]["allowPublicPost"], false);
    assert_eq!(body["chat"]["restricted"], true);

    // Form data, as the spec sends it: Courses force restricted off whatever is asked.
    let form = reqwest::multipart::Form::new()
        .text("category", "Courses")
        .text("restricted", "true");
    let response = ts
        .http
        .put(ts.url(&path))
        .bearer_auth(&max.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["chat"]["category"], "Courses");
    assert_eq!(body["chat"]["restricted"], false);
    refused(
        put(&ts, &path, &max, json!({ "restricted": "maybe" })).await,
        StatusCode::BAD_REQUEST,
        "'true' or 'false'",
    );

    // One-to-one chats are not groups.
    let (_, direct) = post(&ts, "/chats", &max, json!({ "user": neha.id })).await;
    let direct = format!("/chats/{}", direct["chat"]["_id"].as_str().unwrap());
    refused(
        put(&ts, &direct, &max, json!({ "name": "x" })).await,
        StatusCode::BAD_REQUEST,
        "not a group chat",
    );
    refused(
        delete(&ts, &direct, &max).await,
        StatusCode::BAD_REQUEST,
        "not a group chat",
    );
    refused(
        post(&ts, &format!("{direct}/participants"), &neha, json!({})).await,
        StatusCode::BAD_REQUEST,
        "not a group chat",
    );
    refused(
        post(
            &ts,
            &format!("{direct}/participants/multiple"),
            &max,
            json!({ "participants": [neha.id] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "not a group chat",
    );
    refused(
        post(
            &ts,
            &format!("{direct}/participants/{}/admin", neha.id),
            &max,
            json!({}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "not a group chat",
    );
    // Without S3 configured a photo cannot be kept: said plainly.
    let form = reqwest::multipart::Form::new().part(
        "photo",
        reqwest::multipart::Part::bytes(
            include_bytes!("../../fixtures/images/gradient.png").to_vec(),
        )
        .file_name("tree.png"),
    );
    let response = ts
        .http
        .put(ts.url(&path))
        .bearer_auth(&max.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    ts.stop().await;
}

#[tokio::test]
async fn joining_adding_and_removing_participants_follow_the_rules() {
    let (ts, push) = server().await;
    let max = ts.member("Max_R").await;
    let neha = ts.member("Neha_Sharma45").await;
    let amy = ts.member("amy.jackson").await;
    let bob = ts.member("bob").await;
    let restricted = group(&ts, &max, &[&neha], "Study").await;
    push.take();
    let path = format!("/chats/{}", restricted["_id"].as_str().unwrap());

    // A restricted group cannot be joined directly.
    refused(
        post(&ts, &format!("{path}/participants"), &amy, json!({})).await,
        StatusCode::FORBIDDEN,
        "restricted",
    );
    let (status, _) = put(&ts, &path, &max, json!({ "restricted": false })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post(
        &ts,
        &format!("{path}/participants"),
        &amy,
        json!({ "socket": "u3C2x9asfB9vE5y8A6AD" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["participant"]["user"], amy.id);
    refused(
        post(&ts, &format!("{path}/participants"), &amy, json!({})).await,
        StatusCode::CONFLICT,
        "already a participant",
    );
    // Joining by oneself earns join-group-chat points, and nobody is pushed.
    let (_, score) = get(&ts, "/score", &amy).await;
    assert_eq!(score["score"]["total"], 10);
    assert_eq!(score["score"]["actions"]["join-group-chat"], 10);
    assert!(events(&push).is_empty());

    // Adding several: admins only, only people they follow or are connected with, and only
    // those not in yet.
    refused(
        post(
            &ts,
            &format!("{path}/participants/multiple"),
            &neha,
            json!({ "participants": [bob.id] }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "only an admin",
    );
    refused(
        post(
            &ts,
            &format!("{path}/participants/multiple"),
            &max,
            json!({ "participants": [bob.id] }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "neither followed",
    );
    follow(&ts, &max, &bob).await;
    let (status, body) = post(
        &ts,
        &format!("{path}/participants/multiple"),
        &max,
        json!({ "participants": [bob.id, neha.id] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let added = body["participants"].as_array().unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["user"], bob.id);
    assert_eq!(events(&push), vec![(bob.id.clone(), "chat-joined".into())]);

    // Removing: others only by an admin; an admin always remains.
    let participant_path = |m: &Member| format!("{path}/participants/{}", m.id);
    refused(
        delete(&ts, &participant_path(&bob), &neha).await,
        StatusCode::FORBIDDEN,
        "only an admin may remove",
    );
    refused(
        delete(&ts, &participant_path(&max), &max).await,
        StatusCode::CONFLICT,
        "at least one admin",
    );
    refused(
        delete(
            &ts,
            &format!("{path}/participants/68d51a529caa6111e7e801c7"),
            &max,
        )
        .await,
        StatusCode::NOT_FOUND,
        "participant not found",
    );
    let (status, body) = delete(&ts, &participant_path(&bob), &max).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        events(&push),
        vec![(bob.id.clone(), "chat-access-removed".into())]
    );
    refused(
        delete(&ts, &participant_path(&bob), &max).await,
        StatusCode::NOT_FOUND,
        "participant not found",
    );
    // Leaving by oneself needs no admin and pushes nobody; a participant id works as well.
    let (_, chat) = get(&ts, &path, &amy).await;
    let amys = chat["chat"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user"]["_id"] == amy.id.as_str())
        .unwrap()["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = delete(&ts, &format!("{path}/participants/{amys}"), &amy).await;
    assert_eq!(status, StatusCode::OK);
    assert!(events(&push).is_empty());
    refused(
        delete(&ts, &participant_path(&neha), &amy).await,
        StatusCode::FORBIDDEN,
        "not a participant",
    );
    ts.stop().await;
}

#[tokio::test]
async fn admin_access_is_granted_and_removed_by_admins_only() {
    let (ts, push) = server().await;
    let max = ts.member("Max_R").await;
    let neha = ts.member("Neha_Sharma45").await;
    let amy = ts.member("amy.jackson").await;
    let chat = group(&ts, &max, &[&neha], "Study").await;
    push.take();
    let admin = |m: &Member| {
        format!(
            "/chats/{}/participants/{}/admin",
            chat["_id"].as_str().unwrap(),
            m.id
        )
    };

    refused(
        post(&ts, &admin(&neha), &neha, json!({})).await,
        StatusCode::FORBIDDEN,
        "only an admin",
    );
    refused(
        post(&ts, &admin(&amy), &max, json!({})).await,
        StatusCode::NOT_FOUND,
        "participant not found",
    );
    let (status, body) = post(&ts, &admin(&neha), &max, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["participant"]["isAdmin"], true);
    assert_eq!(
        events(&push),
        vec![(neha.id.clone(), "chat-admin-access-granted".into())]
    );
    refused(
        post(&ts, &admin(&neha), &max, json!({})).await,
        StatusCode::CONFLICT,
        "already an admin",
    );
    refused(
        delete(&ts, &admin(&max), &max).await,
        StatusCode::FORBIDDEN,
        "your own admin access",
    );
    let (status, body) = delete(&ts, &admin(&max), &neha).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["participant"].get("isAdmin").is_none());
    assert_eq!(
        events(&push),
        vec![(max.id.clone(), "chat-admin-access-removed".into())]
    );
    refused(
        delete(&ts, &admin(&max), &neha).await,
        StatusCode::CONFLICT,
        "not an admin",
    );
    ts.stop().await;
}

#[tokio::test]
async fn event_participants_are_answered_by_admins_while_the_event_is_active() {
    let (ts, push) = server().await;
    let max = ts.member("Max_R").await;
    let neha = ts.member("Neha_Sharma45").await;
    let amy = ts.member("amy.jackson").await;
    let chat = group(&ts, &max, &[&neha], "Event").await;
    let path = format!("/chats/{}", chat["_id"].as_str().unwrap());
    let status_of = |m: &Member| format!("{path}/participants/{}/status", m.id);

    refused(
        post(
            &ts,
            &status_of(&neha),
            &max,
            json!({ "status": "accepted" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "no event",
    );
    refused(
        post(
            &ts,
            &format!("{path}/event"),
            &neha,
            json!({ "name": "Pool Party", "startsAt": "2026-01-01T10:00:00Z", "endsAt": "2099-01-01T10:00:00Z" }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "only an admin",
    );
    let (status, body) = post(
        &ts,
        &format!("{path}/event"),
        &max,
        json!({ "name": "Pool Party", "startsAt": "2026-01-01T10:00:00Z", "endsAt": "2099-01-01T10:00:00Z" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["event"]["active"], true);

    // Joining an event's chat waits for an admin's answer.
    put(&ts, &path, &max, json!({ "restricted": false })).await;
    let (_, joined) = post(&ts, &format!("{path}/participants"), &amy, json!({})).await;
    assert_eq!(joined["participant"]["status"], "pending");
    push.take();

    refused(
        post(
            &ts,
            &status_of(&amy),
            &neha,
            json!({ "status": "accepted" }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "only an admin",
    );
    refused(
        post(&ts, &status_of(&amy), &max, json!({ "status": "maybe" })).await,
        StatusCode::BAD_REQUEST,
        "status",
    );
    refused(
        post(
            &ts,
            &format!("{path}/participants/68d51a529caa6111e7e801c7/status"),
            &max,
            json!({ "status": "accepted" }),
        )
        .await,
        StatusCode::NOT_FOUND,
        "participant not found",
    );
    let (status, body) = post(&ts, &status_of(&amy), &max, json!({ "status": "accepted" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["participant"]["status"], "accepted");
    assert_eq!(
        events(&push),
        vec![(amy.id.clone(), "chat-participant-status-updated".into())]
    );

    // Once the event is over, answers are refused.
    ts.server
        .app
        .store
        .meetups
        .update_many(
            bson::doc! {},
            bson::doc! { "$set": { "ends_at": bson::DateTime::from_millis(0) } },
        )
        .await
        .unwrap();
    refused(
        post(&ts, &status_of(&amy), &max, json!({ "status": "rejected" })).await,
        StatusCode::BAD_REQUEST,
        "the event is over",
    );
    ts.stop().await;
}

#[tokio::test]
async fn deleting_a_group_takes_its_messages_files_and_event_along() {
    let (ts, _) = server().await;
    let max = ts.member("Max_R").await;
    let neha = ts.member("Neha_Sharma45").await;
    let chat = group(&ts, &max, &[&neha], "Event").await;
    let path = format!("/chats/{}", chat["_id"].as_str().unwrap());
    let id = bson::oid::ObjectId::parse_str(chat["_id"].as_str().unwrap()).unwrap();
    let app = &ts.server.app;
    let stored = app.chat_by_id(id).await.unwrap();
    app.post_message(&neha.user, &stored, "hello")
        .await
        .unwrap();
    post(
        &ts,
        &format!("{path}/event"),
        &max,
        json!({ "name": "Pool Party", "startsAt": "2026-01-01T10:00:00Z", "endsAt": "2099-01-01T10:00:00Z" }),
    )
    .await;

    refused(
        delete(&ts, &path, &neha).await,
        StatusCode::FORBIDDEN,
        "only an admin",
    );
    let (status, body) = delete(&ts, &path, &max).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["chat"]["_id"], chat["_id"]);
    refused(
        get(&ts, &path, &max).await,
        StatusCode::NOT_FOUND,
        "chat not found",
    );
    let left = |collection: &'static str| {
        let db = app.store.db.clone();
        async move {
            db.collection::<bson::Document>(collection)
                .count_documents(bson::doc! { "chat_id": id })
                .await
                .unwrap()
        }
    };
    for collection in ["messages", "events", "participants", "files"] {
        assert_eq!(left(collection).await, 0, "{collection} left behind");
    }
    let (_, list) = get(&ts, "/chats?group=true", &max).await;
    assert_eq!(list["count"], 0);
    ts.stop().await;
}

#[tokio::test]
async fn follows_are_once_per_pair_and_never_of_oneself() {
    let (ts, _) = server().await;
    let max = ts.member("Max_R").await;
    let neha = ts.member("Neha_Sharma45").await;
    follow(&ts, &max, &neha).await;
    refused(
        post(&ts, &format!("/users/{}/follow", neha.id), &max, json!({})).await,
        StatusCode::CONFLICT,
        "already follow",
    );
    refused(
        post(&ts, &format!("/users/{}/follow", max.id), &max, json!({})).await,
        StatusCode::BAD_REQUEST,
        "yourself",
    );
    let (status, _) = delete(&ts, &format!("/users/{}/follow", neha.id), &max).await;
    assert_eq!(status, StatusCode::OK);
    refused(
        delete(&ts, &format!("/users/{}/follow", neha.id), &max).await,
        StatusCode::NOT_FOUND,
        "follow not found",
    );
    ts.stop().await;
}
