//! The community fixtures, loaded through the core, read back through the chats dialect:
//! exploring communities with their reels and join requests, and browsing a chat's files.

use crate::common::{Member, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/community/community.json"
);

async fn loaded() -> (TestServer, Vec<Member>) {
    let ts = TestServer::start().await;
    let users = palaver::fixtures::load(&ts.server.app, FIXTURES.as_ref())
        .await
        .unwrap();
    assert_eq!(users.len(), 6);
    let members = users
        .into_iter()
        .map(|user| Member {
            id: user.id.to_hex(),
            token: ts
                .server
                .app
                .tokens
                .issue(&user, std::time::Duration::from_secs(600))
                .unwrap(),
            user,
        })
        .collect();
    (ts, members)
}

fn named<'a>(members: &'a [Member], username: &str) -> &'a Member {
    members
        .iter()
        .find(|m| m.user.username == username)
        .unwrap()
}

async fn get(ts: &TestServer, path: &str, who: &Member) -> (StatusCode, Value) {
    ts.call(Method::GET, path, &who.token, None).await
}

#[tokio::test]
async fn communities_are_explored_with_reels_and_pending_requests() {
    let (ts, members) = loaded().await;
    let max = named(&members, "Max_R");
    let amy = named(&members, "amy.jackson");

    let (status, body) = get(&ts, "/chats/explore/communities?search=po", max).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("at least 3"));
    let (status, body) = get(&ts, "/chats/explore/communities", max).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = get(
        &ts,
        "/chats/explore/communities?search=POOL&reelsLimit=2",
        max,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 1);
    let pool = &body["chats"][0];
    assert_eq!(pool["name"], "Pool Party");
    assert_eq!(pool["isGroup"], true);
    assert_eq!(pool["restricted"], true);
    assert_eq!(pool["creator"]["username"], "amy.jackson");
    assert_eq!(
        pool["creator"]["photo"],
        "https://cdn.example.org/users/amy.jpg"
    );
    assert_eq!(pool["participants"][0]["user"].as_str().unwrap().len(), 24);
    assert_eq!(pool["event"].as_str().unwrap().len(), 24);
    assert_eq!(pool["reelsCount"], 3);
    assert_eq!(pool["unread"], 0);
    assert_eq!(pool["isJoined"], false);
    assert_eq!(pool["areYouAdmin"], false);
    assert_eq!(pool["participantsCount"], 3);
    assert!(pool.get("request").is_none());
    let reels = pool["reels"].as_array().unwrap();
    assert_eq!(reels.len(), 2);
    // Newest first; the anonymous one names nobody.
    assert_eq!(reels[0]["description"], "Sunset by the pool");
    assert_eq!(reels[0]["user"], Value::Null);
    assert_eq!(reels[1]["user"]["username"], "leo.park");
    assert_eq!(reels[1]["user"]["isFollowed"], false);
    assert_eq!(reels[1]["chat"], pool["_id"]);
    assert_eq!(reels[1]["isLiked"], false);

    // Category filters; a restricted group is asked to join, once.
    let (_, none) = get(
        &ts,
        "/chats/explore/communities?search=pool&category=Study",
        max,
    )
    .await;
    assert_eq!(none["count"], 0);
    // A member sees what is unread: Neha's message in Max's study group.
    let (_, study) = get(&ts, "/chats/explore/communities?search=future", max).await;
    assert_eq!(study["chats"][0]["isJoined"], true);
    assert_eq!(study["chats"][0]["areYouAdmin"], true);
    assert_eq!(study["chats"][0]["unread"], 1);
    let pool_path = format!("/chats/{}", pool["_id"].as_str().unwrap());
    let (status, body) = ts
        .call(
            Method::POST,
            &format!("{pool_path}/participants"),
            &max.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = ts
        .call(
            Method::POST,
            &format!("{pool_path}/requests"),
            &max.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let request = body["request"]["_id"].as_str().unwrap().to_owned();
    let (status, _) = ts
        .call(
            Method::POST,
            &format!("{pool_path}/requests"),
            &max.token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, body) = get(&ts, "/chats/explore/communities?search=pool", max).await;
    let shown = &body["chats"][0]["request"];
    assert_eq!(shown["_id"], request.as_str());
    assert_eq!(shown["user"], max.id.as_str());
    assert_eq!(shown["status"], "pending");
    assert_eq!(body["chats"][0]["reels"].as_array().unwrap().len(), 3);

    // Only an admin answers; accepted, the user is in.
    let answer = format!("{pool_path}/requests/{request}");
    let (status, _) = ts
        .call(
            Method::POST,
            &answer,
            &max.token,
            Some(json!({ "status": "accepted" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = ts
        .call(
            Method::POST,
            &answer,
            &amy.token,
            Some(json!({ "status": "accepted" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = ts
        .call(
            Method::POST,
            &answer,
            &amy.token,
            Some(json!({ "status": "accepted" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = get(&ts, "/chats/explore/communities?search=pool", max).await;
    assert_eq!(body["chats"][0]["isJoined"], true);
    assert!(body["chats"][0].get("request").is_none());
    ts.stop().await;
}

#[tokio::test]
async fn a_chats_files_are_browsed_by_type_and_tag() {
    let (ts, members) = loaded().await;
    let max = named(&members, "Max_R");
    let amy = named(&members, "amy.jackson");
    let (_, list) = get(&ts, "/chats?search=Future", max).await;
    let chat = &list["chats"][0];
    assert_eq!(chat["lastMessage"]["content"], "Past exam papers");
    assert_eq!(
        chat["lastMessage"]["files"][0]["meta"]["fileName"],
        "exam-2024.pdf"
    );
    let files = format!("/chats/{}/files", chat["_id"].as_str().unwrap());

    // The spec's defaults: videos tagged "others".
    let (status, body) = get(&ts, &files, max).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 1);
    let file = &body["files"][0];
    assert_eq!(file["chat"], chat["_id"]);
    assert_eq!(file["user"].as_str().unwrap().len(), 24);
    assert_eq!(file["message"].as_str().unwrap().len(), 24);
    assert!(
        file["file"]["url"]
            .as_str()
            .unwrap()
            .ends_with("lecture-3.mp4")
    );
    assert!(file["file"]["cover"].as_str().unwrap().ends_with(".jpg"));
    assert_eq!(file["file"]["meta"]["duration"], 42327);
    assert_eq!(file["file"]["_id"], file["_id"]);

    let (_, body) = get(&ts, &format!("{files}?type=document&tag=exams"), max).await;
    assert_eq!(body["count"], 1);
    let (_, body) = get(&ts, &format!("{files}?type=image"), max).await;
    assert_eq!(body["count"], 1);
    let (_, body) = get(
        &ts,
        &format!("{files}?type=video&tag=lectures&limit=1&page=2"),
        max,
    )
    .await;
    assert_eq!(body["count"], 1);
    assert_eq!(body["files"].as_array().unwrap().len(), 0);
    let (status, _) = get(&ts, &format!("{files}?type=hologram"), max).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(&ts, &files, amy).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The meet-me chat from the accepted connection, and a second load that changes nothing.
    let (_, meet) = get(&ts, "/chats?group=false&meetMeOnly=true", max).await;
    assert_eq!(meet["count"], 1);
    assert_eq!(meet["chats"][0]["user"]["username"], "Maneesha_1997");
    let again = palaver::fixtures::load(&ts.server.app, FIXTURES.as_ref())
        .await
        .unwrap();
    assert!(again.is_empty());
    ts.stop().await;
}

#[tokio::test]
async fn the_fixture_requests_stand_as_loaded() {
    let (ts, members) = loaded().await;
    let as_requests = async |path: &str, who: &Member| {
        let response = ts
            .http
            .get(ts.url(path))
            .header("authorization", &who.token)
            .send()
            .await
            .unwrap();
        response.json::<Value>().await.unwrap()
    };
    let max = named(&members, "Max_R");
    let pending = as_requests("/chat/pending", max).await;
    assert_eq!(pending[0]["user"]["username"], "sofia_m");
    assert_eq!(
        pending[0]["message"]["text"],
        "Hi Max, loved your titration reel!"
    );
    let maneesha = named(&members, "Maneesha_1997");
    let active = as_requests("/chat", maneesha).await;
    let statuses: Vec<&str> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "active"], "{active}");
    let neha = named(&members, "Neha_Sharma45");
    let rejected = as_requests("/chat/rejected", neha).await;
    assert_eq!(rejected[0]["user"]["username"], "amy.jackson");
    ts.stop().await;
}
