//! The channels REST endpoints against a real MongoDB-compatible server: every status code the
//! spec lists, the exact response shapes, and the rules behind them.

use crate::common::{self, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn is_numeric_id(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
}

#[tokio::test]
async fn new_creates_an_account_then_logs_it_in() {
    let s = TestServer::start().await;
    let (status, body) = s.post("/new", None, json!({ "username": "ada" })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(is_numeric_id(&body["id"]), "{body}");
    assert_eq!(body["dms"], json!([]));
    assert!(body["token"].as_str().is_some_and(|t| t.len() > 20));
    assert_eq!(
        body.as_object().unwrap().len(),
        3,
        "only id, dms, token: {body}"
    );
    let id = body["id"].as_str().unwrap();

    // Login with the id as a string (the spec's form) and as a number.
    let (status, login) = s
        .post("/new", None, json!({ "accountID": id, "username": "ada" }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(login["id"], body["id"]);
    let numeric: i64 = id.parse().unwrap();
    let (status, _) = s
        .post(
            "/new",
            None,
            json!({ "accountID": numeric, "username": "ada" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // The login token works.
    let (status, _) = s
        .get(&format!("/users?users={id}"), login["token"].as_str())
        .await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn new_refuses_wrong_login_details_with_401_and_a_null_body() {
    let s = TestServer::start().await;
    let (id, _) = s.signup("ada").await;
    for body in [
        json!({ "accountID": id, "username": "eve" }),
        json!({ "accountID": "999999", "username": "ada" }),
        json!({ "accountID": "not-a-number", "username": "ada" }),
        // Nobody logs in as the system user that sends welcome messages.
        json!({ "accountID": "1", "username": "Dancing Lizard" }),
    ] {
        let (status, response) = s.post("/new", None, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(response, Value::Null);
    }
    s.stop().await;
}

#[tokio::test]
async fn new_validates_the_username() {
    let s = TestServer::start().await;
    for body in [
        json!({}),
        json!({ "username": "  " }),
        json!({ "username": "x".repeat(33) }),
    ] {
        let (status, _) = s.post("/new", None, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let response = s
        .http
        .post(s.url("/new"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().contains_key("x-palaver-error"));
    s.stop().await;
}

#[tokio::test]
async fn new_accepts_a_url_encoded_form() {
    let s = TestServer::start().await;
    let response = s
        .http
        .post(s.url("/new"))
        .form(&[("username", "ada")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    let response = s
        .http
        .post(s.url("/new"))
        .form(&[("accountID", id), ("username", "ada")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    s.stop().await;
}

#[tokio::test]
async fn update_account_covers_every_listed_status() {
    let s = TestServer::start().await;
    let (id, token) = s.signup("ada").await;
    let avatar = "https://example.org/ada.png";

    let (status, body) = s
        .post(
            "/update-account",
            Some(&token),
            json!({ "avatarURL": avatar, "username": "Ada L" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        body,
        json!({ "id": id, "username": "Ada L", "avatarURL": avatar })
    );

    // Same details again: nothing to update.
    let (status, body) = s
        .post(
            "/update-account",
            Some(&token),
            json!({ "avatarURL": avatar, "username": "Ada L" }),
        )
        .await;
    assert_eq!((status, body), (StatusCode::NOT_ACCEPTABLE, Value::Null));

    for missing in [
        json!({ "username": "x" }),
        json!({ "avatarURL": avatar }),
        json!({ "avatarURL": "ftp://x", "username": "x" }),
    ] {
        let (status, _) = s
            .post("/update-account", Some(&token), missing.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{missing}");
    }
    s.assert_token_required(
        "/update-account",
        Some(json!({ "avatarURL": avatar, "username": "y" })),
        "garbage",
    )
    .await;

    // The change is stored: login needs the new username.
    let (status, _) = s
        .post(
            "/new",
            None,
            json!({ "accountID": id, "username": "Ada L" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    s.stop().await;
}

#[tokio::test]
async fn create_channel_covers_every_listed_status() {
    let s = TestServer::start().await;
    let (ada, ada_token) = s.signup("ada").await;
    let (bob, bob_token) = s.signup("bob").await;

    let (status, body) = s
        .post(
            "/create-channel",
            Some(&ada_token),
            json!({ "to": bob, "type": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(is_numeric_id(&body["channel_id"]));
    assert_eq!(body.as_object().unwrap().len(), 1);
    let channel = body["channel_id"].clone();

    // The same pair from either side is a conflict.
    let (status, body) = s
        .post(
            "/create-channel",
            Some(&ada_token),
            json!({ "to": bob, "type": 1 }),
        )
        .await;
    assert_eq!((status, body), (StatusCode::CONFLICT, Value::Null));
    let (status, _) = s
        .post(
            "/create-channel",
            Some(&bob_token),
            json!({ "to": ada, "type": "1" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    for bad in [
        json!({ "type": 1 }),
        json!({ "to": bob }),
        json!({ "to": bob, "type": 2 }),
        json!({ "to": ada, "type": 1 }),
    ] {
        let (status, _) = s
            .post("/create-channel", Some(&ada_token), bad.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    s.assert_token_required(
        "/create-channel",
        Some(json!({ "to": bob, "type": 1 })),
        "Bearer nope",
    )
    .await;
    let (status, _) = s
        .post(
            "/create-channel",
            Some(&ada_token),
            json!({ "to": "987654321", "type": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Both users now list the channel in their dms at login.
    let (_, login) = s
        .post("/new", None, json!({ "accountID": bob, "username": "bob" }))
        .await;
    assert_eq!(login["dms"], json!([channel]));
    s.stop().await;
}

#[tokio::test]
async fn users_covers_every_listed_status_and_array_form() {
    let s = TestServer::start().await;
    let (ada, token) = s.signup("ada").await;
    let (bob, _) = s.signup("bob").await;

    for query in [
        format!("users={ada}&users={bob}"),
        format!("users[]={ada}&users[]={bob}"),
        format!("users={ada},{bob}"),
        format!("users=%5B%22{ada}%22%2C%22{bob}%22%5D"),
    ] {
        let (status, body) = s.get(&format!("/users?{query}"), Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        let mut names: Vec<&str> = body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ada", "bob"], "{query}");
    }
    let (_, body) = s.get(&format!("/users?users={bob}"), Some(&token)).await;
    assert_eq!(
        body,
        json!({ "users": [{ "avatarURL": "", "id": bob, "username": "bob" }] })
    );

    let (status, body) = s.get("/users?users=424242", Some(&token)).await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({ "users": [] }))
    );
    for query in ["/users", "/users?users=", "/users?users=abc"] {
        let (status, _) = s.get(query, Some(&token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }
    s.assert_token_required(&format!("/users?users={ada}"), None, "x.y.z")
        .await;
    s.stop().await;
}

#[tokio::test]
async fn messages_null_creates_the_welcome_channel() {
    let s = TestServer::start().await;
    let (ada, token) = s.signup("Starman").await;
    let (status, body) = s.get("/messages?channel_id=null", Some(&token)).await;
    assert_eq!(status, StatusCode::CREATED);
    let channel = body["channel"]["id"].clone();
    assert!(is_numeric_id(&channel));
    assert_eq!(body["channel"]["name"], "Dancing Lizard");
    assert_eq!(body["other_user"], "1");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], "0");
    assert_eq!(messages[0]["channel_id"], channel);
    assert_eq!(messages[0]["author"]["id"], "1");
    assert_eq!(messages[0]["author"]["username"], "Dancing Lizard");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("Hello! Welcome Starman!!!")
    );

    // Asking again returns the same channel; it now shows in the user's dms.
    let (_, again) = s.get("/messages?channel_id=undefined", Some(&token)).await;
    assert_eq!(again["channel"]["id"], channel);
    let (_, login) = s
        .post(
            "/new",
            None,
            json!({ "accountID": ada, "username": "Starman" }),
        )
        .await;
    assert_eq!(login["dms"], json!([channel]));
    let (status, by_id) = s
        .get(
            &format!("/messages?channel_id={}", channel.as_str().unwrap()),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["messages"][0]["id"], "0");
    s.stop().await;
}

#[tokio::test]
async fn messages_returns_the_last_fifty_oldest_first_with_authors() {
    let s = TestServer::start().await;
    let (ada, ada_token) = s.signup("ada").await;
    let (bob, _) = s.signup("bob").await;
    let channel = s.create_channel(&ada_token, &bob).await;

    let app = &s.server.app;
    let ada_user = s.user(&ada).await;
    let bob_user = s.user(&bob).await;
    let chat = app
        .member_chat(&ada_user, channel.parse().unwrap())
        .await
        .unwrap();
    for i in 0..55 {
        let author = if i % 2 == 0 { &ada_user } else { &bob_user };
        app.post_message(author, &chat, &format!("m{i}"))
            .await
            .unwrap();
    }

    let (status, body) = s
        .get(&format!("/messages?channel_id={channel}"), Some(&ada_token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 50);
    assert_eq!(messages[0]["content"], "m5");
    assert_eq!(messages[49]["content"], "m54");
    assert_eq!(
        messages[49]["author"],
        json!({ "avatarURL": "", "username": "ada", "id": ada })
    );
    assert_eq!(messages[48]["author"]["id"], bob);
    assert_eq!(messages[0]["channel_id"], channel);
    assert_eq!(body["channel"], json!({ "name": "bob", "id": channel }));
    assert_eq!(body["other_user"], bob);

    // Paging back before the oldest one shown returns the rest.
    let oldest = messages[0]["id"].as_str().unwrap();
    let (_, older) = s
        .get(
            &format!("/messages?channel_id={channel}&before={oldest}"),
            Some(&ada_token),
        )
        .await;
    let contents: Vec<&str> = older["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["m0", "m1", "m2", "m3", "m4"]);
    // Catching up after a known message returns only newer ones.
    let known = messages[47]["id"].as_str().unwrap();
    let (_, newer) = s
        .get(
            &format!("/messages?channel_id={channel}&after={known}"),
            Some(&ada_token),
        )
        .await;
    let contents: Vec<&str> = newer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["m53", "m54"]);
    s.stop().await;
}

#[tokio::test]
async fn messages_refuses_outsiders_and_bad_requests() {
    let s = TestServer::start().await;
    let (_, ada_token) = s.signup("ada").await;
    let (bob, _) = s.signup("bob").await;
    let (_, eve_token) = s.signup("eve").await;
    let channel = s.create_channel(&ada_token, &bob).await;

    let (status, body) = s
        .get(&format!("/messages?channel_id={channel}"), Some(&eve_token))
        .await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, Value::Null));
    let (status, _) = s.get("/messages?channel_id=777777", Some(&ada_token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for query in [
        "channel_id=abc",
        &format!("channel_id={channel}&limit=0"),
        &format!("channel_id={channel}&limit=101"),
    ] {
        let (status, _) = s.get(&format!("/messages?{query}"), Some(&ada_token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }
    s.assert_token_required(&format!("/messages?channel_id={channel}"), None, "nope")
        .await;
    s.stop().await;
}

#[tokio::test]
async fn dmchannels_covers_every_listed_status() {
    let s = TestServer::start().await;
    let (ada, ada_token) = s.signup("ada").await;
    let (bob, bob_token) = s.signup("bob").await;
    let (_, eve_token) = s.signup("eve").await;
    let channel = s.create_channel(&ada_token, &bob).await;

    let (status, body) = s
        .get(&format!("/dmchannels?channels={channel}"), Some(&bob_token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "dmchannels": [{ "channel_id": channel, "user": { "avatarURL": "", "id": ada, "username": "ada" } }] })
    );
    let (_, body) = s
        .get(
            &format!("/dmchannels?channels[]={channel}"),
            Some(&ada_token),
        )
        .await;
    assert_eq!(body["dmchannels"][0]["user"]["id"], bob);

    // Someone else's channel is not found, as is one that does not exist.
    let (status, body) = s
        .get(&format!("/dmchannels?channels={channel}"), Some(&eve_token))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({ "dmchannels": [] }))
    );
    let (status, _) = s
        .get("/dmchannels?channels=5555555", Some(&ada_token))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.get("/dmchannels", Some(&ada_token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    s.assert_token_required(&format!("/dmchannels?channels={channel}"), None, "bad")
        .await;
    s.stop().await;
}

#[tokio::test]
async fn tokens_are_accepted_in_every_header_form_and_revocable() {
    let s = TestServer::start().await;
    let (ada, token) = s.signup("ada").await;
    let path = s.url(&format!("/users?users={ada}"));
    for (name, value) in [
        ("Authorisation", token.clone()),
        ("Authorization", token.clone()),
        ("Authorization", format!("Bearer {token}")),
    ] {
        let response = s.http.get(&path).header(name, value).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
    }
    // Revoking the user's sessions makes every token issued before fail at once.
    let app = &s.server.app;
    let user = s.user(&ada).await;
    app.revoke_sessions(&user).await.unwrap();
    let (status, _) = s.get(&format!("/users?users={ada}"), Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Logging in again issues a token that works.
    let (_, login) = s
        .post("/new", None, json!({ "accountID": ada, "username": "ada" }))
        .await;
    let (status, _) = s
        .get(&format!("/users?users={ada}"), login["token"].as_str())
        .await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn data_survives_a_server_restart() {
    let first = TestServer::start().await;
    let (ada, ada_token) = first.signup("ada").await;
    let (bob, _) = first.signup("bob").await;
    let channel = first.create_channel(&ada_token, &bob).await;
    let database = first.database.clone();
    first.stop().await;

    let second = TestServer::start_on(&database).await;
    let (status, login) = second
        .post("/new", None, json!({ "accountID": ada, "username": "ada" }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(login["dms"], json!([channel]));
    // New ids never reuse old ones.
    let (carol, _) = second.signup("carol").await;
    assert!(carol.parse::<i64>().unwrap() > bob.parse::<i64>().unwrap());
    second.stop().await;
}

#[tokio::test]
async fn history_reads_use_the_index() {
    let s = TestServer::start().await;
    let store = palaver::store::Store::connect(&common::mongodb_uri(), &s.database)
        .await
        .unwrap();
    let explain = store
        .db
        .run_command(bson::doc! {
            "explain": { "find": "messages", "filter": { "chat_id": bson::oid::ObjectId::new(), "seq": { "$lt": 10_i64 } }, "sort": { "chat_id": 1, "seq": -1 }, "limit": 50 },
            "verbosity": "queryPlanner",
        })
        .await
        .unwrap();
    let plan = explain
        .get_document("queryPlanner")
        .unwrap()
        .get_document("winningPlan")
        .unwrap()
        .to_string();
    assert!(plan.contains("IXSCAN"), "{plan}");
    assert!(!plan.contains("COLLSCAN"), "{plan}");
    s.stop().await;
}

/// The same fields with the same JSON types, recursively (array elements against the first
/// element of the example).
fn assert_same_shape(actual: &Value, example: &Value, path: &str) {
    match (actual, example) {
        (Value::Object(a), Value::Object(e)) => {
            let mut a_keys: Vec<_> = a.keys().collect();
            let mut e_keys: Vec<_> = e.keys().collect();
            a_keys.sort();
            e_keys.sort();
            assert_eq!(a_keys, e_keys, "fields at {path}");
            for (key, value) in a {
                assert_same_shape(value, &e[key], &format!("{path}.{key}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let Some(example) = e.first() {
                for (i, item) in a.iter().enumerate() {
                    assert_same_shape(item, example, &format!("{path}[{i}]"));
                }
            }
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        _ => panic!("type at {path}: {actual} vs example {example}"),
    }
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/fixtures/channels/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn every_response_matches_the_spec_examples() {
    let s = TestServer::start().await;
    let (ada, ada_token) = s.signup("Starman").await;
    let (bob, bob_token) = s.signup("bob").await;

    let (_, body) = s
        .post(
            "/create-channel",
            Some(&ada_token),
            json!({ "to": bob, "type": 1 }),
        )
        .await;
    assert_same_shape(&body, &fixture("create-channel"), "create-channel");
    let channel = body["channel_id"].as_str().unwrap().to_owned();

    let (_, body) = s
        .post(
            "/new",
            None,
            json!({ "accountID": ada, "username": "Starman" }),
        )
        .await;
    assert_same_shape(&body, &fixture("new-session"), "new");
    let (_, body) = s
        .post(
            "/update-account",
            Some(&ada_token),
            json!({ "avatarURL": "https://example.org/a.png", "username": "Starman" }),
        )
        .await;
    assert_same_shape(&body, &fixture("update-account"), "update-account");
    let (_, body) = s
        .get(&format!("/users?users={ada}&users={bob}"), Some(&bob_token))
        .await;
    assert_same_shape(&body, &fixture("users"), "users");
    let (_, body) = s
        .get(&format!("/dmchannels?channels={channel}"), Some(&bob_token))
        .await;
    assert_same_shape(&body, &fixture("dmchannels"), "dmchannels");

    let app = &s.server.app;
    let user = s.user(&ada).await;
    let chat = app
        .member_chat(&user, channel.parse().unwrap())
        .await
        .unwrap();
    app.post_message(&user, &chat, "hi").await.unwrap();
    let (_, body) = s
        .get(&format!("/messages?channel_id={channel}"), Some(&bob_token))
        .await;
    assert_same_shape(&body, &fixture("messages"), "messages");
    let (_, body) = s.get("/messages?channel_id=null", Some(&bob_token)).await;
    assert_same_shape(&body, &fixture("messages"), "welcome");
    s.stop().await;
}
