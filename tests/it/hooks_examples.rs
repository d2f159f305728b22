//! The hooks spec's examples, replayed in the spec's order against a fresh server: each
//! response has the status and the shape of the spec's example (every field the example has,
//! with the same JSON type; lists hold items of the example item's shape). Steps the spec
//! leaves implicit (other users, sign-in again after sign-out) are marked as setup.

use std::time::Duration;

use crate::common::{HOOKS_PASSWORD, HooksAccount, TestServer, fixture, ws_next, ws_open};
use futures::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct Examples(Vec<Value>);

impl Examples {
    fn load() -> Self {
        let path = format!(
            "{}/fixtures/hooks/examples.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        Self(all["examples"].as_array().unwrap().clone())
    }

    fn get(&self, title: &str) -> &Value {
        self.0
            .iter()
            .find(|e| e["title"] == title)
            .unwrap_or_else(|| panic!("no example {title}"))
    }

    /// Check a response against the example called `title`.
    fn check(&self, title: &str, status: StatusCode, body: &Value) {
        let example = self.get(title);
        assert_eq!(
            status.as_u16(),
            example["status"].as_u64().unwrap() as u16,
            "{title}: {body}"
        );
        if let Err(problem) = same_shape(&example["response"], body, "") {
            panic!(
                "{title}: {problem}\nexample: {}\nactual: {body}",
                example["response"]
            );
        }
    }
}

/// Whether `actual` has every field of `example`, each of the same JSON type.
fn same_shape(example: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (example, actual) {
        (Value::Object(wanted), Value::Object(got)) => {
            for (key, value) in wanted {
                let field = got
                    .get(key)
                    .ok_or_else(|| format!("{at}.{key} is missing"))?;
                same_shape(value, field, &format!("{at}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(wanted), Value::Array(got)) => {
            let Some(item) = wanted.first() else {
                return Ok(());
            };
            if got.is_empty() {
                return Err(format!("{at} is empty; the example lists items"));
            }
            for (i, value) in got.iter().enumerate() {
                same_shape(item, value, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Null, Value::Null)
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_)) => Ok(()),
        _ => Err(format!(
            "{at}: {actual} is not of the example's type ({example})"
        )),
    }
}

async fn sign_in(ts: &TestServer, email: &str) -> (StatusCode, Value) {
    let body = json!({ "email": email, "password": HOOKS_PASSWORD });
    ts.hooks(Method::POST, "/user/signin/", None, Some(body))
        .await
}

async fn upload_profile(
    ts: &TestServer,
    who: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = reqwest::multipart::Form::new().part(
        "display_pic",
        reqwest::multipart::Part::bytes(fixture("gradient.png")).file_name("default_pp.png"),
    );
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    let response = ts
        .http
        .put(ts.url("/profile/update/"))
        .bearer_auth(who)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_specs_examples_replayed_in_order() {
    let examples = Examples::load();
    let ts = TestServer::with_s3().await;
    let call = |method: Method, path: &'static str, token: Option<String>, body: Option<Value>| {
        let ts = &ts;
        async move { ts.hooks(method, path, token.as_deref(), body).await }
    };

    // User Signup: a Fan unless told otherwise.
    let signup = json!({
        "email": "saliuoazeez@gmail.com", "password": HOOKS_PASSWORD, "password2": HOOKS_PASSWORD,
    });
    let (status, body) = call(Method::POST, "/user/signup/", None, Some(signup)).await;
    examples.check("User Signup", status, &body);
    assert_eq!(
        body,
        json!({ "email": "saliuoazeez@gmail.com", "user_type": "Fan" })
    );
    // Setup: the other users of the examples.
    let balogun = ts.hooks_account("balogun@example.org", "Creator").await;
    let rebecca = ts.hooks_account("rebecca@example.org", "Creator").await;
    let amy = ts.hooks_account("amy@example.org", "Fan").await;

    // User Signin.
    let (status, body) = sign_in(&ts, "saliuoazeez@gmail.com").await;
    examples.check("User Signin", status, &body);
    let saliu = HooksAccount {
        num: body["user"]["user_id"].as_i64().unwrap(),
        access: body["access"].as_str().unwrap().to_owned(),
        refresh: body["refresh"].as_str().unwrap().to_owned(),
    };

    // Profile Update, as form data with a picture.
    let fields = [
        ("full_name", "Saliu Opeyemi Abdul Azeez"),
        ("gender", "Male"),
        (
            "bio",
            "A skilled backend developer and innovation specialist.",
        ),
        ("state", "Ogun"),
        ("city", "Ijebu Ode"),
        ("interests", "dancing"),
    ];
    let (status, body) = upload_profile(&ts, &saliu.access, &fields).await;
    examples.check("Profile Update", status, &body);
    // Setup: the others' profiles, pictures included (the recommendation example shows them).
    upload_profile(
        &ts,
        &balogun.access,
        &[
            ("full_name", "Balogun Abiola"),
            ("gender", "Male"),
            ("interests", "nature"),
            ("interests", "sports"),
        ],
    )
    .await;
    upload_profile(
        &ts,
        &rebecca.access,
        &[
            ("full_name", "Rebecca Omotoke"),
            ("gender", "Female"),
            ("interests", "dancing"),
        ],
    )
    .await;

    // Profile Retrieve.
    let (status, body) = call(Method::GET, "/profile/", Some(saliu.access.clone()), None).await;
    examples.check("Profile Retrieve", status, &body);

    // Signout User; setup: sign in again.
    let (status, body) = call(
        Method::POST,
        "/user/signout/",
        Some(saliu.access.clone()),
        None,
    )
    .await;
    examples.check("Signout User", status, &body);
    let (status, _) = call(Method::GET, "/profile/", Some(saliu.access.clone()), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, body) = sign_in(&ts, "saliuoazeez@gmail.com").await;
    let saliu_token = body["access"].as_str().unwrap().to_owned();
    let me = || Some(saliu_token.clone());

    // Follow User, Unfollow User; setup: follow again, so the lists below have someone.
    let (status, body) = call(
        Method::POST,
        "/follow/",
        me(),
        Some(json!({ "follow": balogun.num })),
    )
    .await;
    examples.check("Follow User", status, &body);
    let (status, body) = call(
        Method::POST,
        "/follow/unfollow/",
        me(),
        Some(json!({ "unfollow": balogun.num })),
    )
    .await;
    examples.check("Unfollow User", status, &body);
    call(
        Method::POST,
        "/follow/",
        me(),
        Some(json!({ "follow": balogun.num })),
    )
    .await;

    // Get Followings; Get Followers (of Balogun, whom Saliu follows).
    let (status, body) = call(Method::GET, "/follow/followings/", me(), None).await;
    examples.check("Get Followings", status, &body);
    let (status, body) = call(
        Method::GET,
        "/follow/followers/",
        Some(balogun.access.clone()),
        None,
    )
    .await;
    examples.check("Get Followers", status, &body);

    // User Recommendation, for a newcomer.
    let (status, body) = call(
        Method::GET,
        "/follow/recommended/",
        Some(amy.access.clone()),
        None,
    )
    .await;
    examples.check("User Recommendation", status, &body);

    // Like Request (Rebecca likes Saliu); Retrieve Likes (Saliu's requested);
    // Like Request Response (Saliu accepts).
    let (status, body) = call(
        Method::POST,
        "/follow/like/",
        Some(rebecca.access.clone()),
        Some(json!({ "like": saliu.num })),
    )
    .await;
    examples.check("Like Request", status, &body);
    let (status, likes) = call(Method::GET, "/follow/like/?status=requested", me(), None).await;
    examples.check("Retrieve Likes", status, &likes);
    let like = likes["results"][0]["id"].clone();
    let answer = json!({ "like_instance": like, "action": "accept" });
    let (status, body) = call(Method::POST, "/follow/like/respond/", me(), Some(answer)).await;
    examples.check("Like Request Response", status, &body);

    // Retrieve Notifications.
    let (status, notifications) =
        call(Method::GET, "/communication/notifications/", me(), None).await;
    examples.check("Retrieve Notifications", status, &notifications);

    // Notification Connect: a new notification arrives live, shaped as the stored ones.
    let mut socket = ws_open(&ts, "/ws/notification/", &saliu_token).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    call(
        Method::POST,
        "/follow/",
        Some(amy.access.clone()),
        Some(json!({ "follow": saliu.num })),
    )
    .await;
    let frame = ws_next(&mut socket).await;
    let item = &examples.get("Retrieve Notifications")["response"][0];
    same_shape(item, &frame, "frame").unwrap();
    drop(socket);

    // Clear Notifications.
    let (status, body) = call(Method::DELETE, "/communication/notifications/", me(), None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));

    // Retrieve Chat Sessions; setup: Rebecca opened the session.
    let initiate = "/communication/chat/session/initiate/";
    call(
        Method::POST,
        initiate,
        Some(rebecca.access.clone()),
        Some(json!({ "user": saliu.num })),
    )
    .await;
    let (status, sessions) = call(Method::GET, "/communication/chat/sessions/", me(), None).await;
    examples.check("Retrieve Chat Sessions", status, &sessions);

    // Connecting to Chat Websocket: the example conversation.
    let mut saliu_socket = ws_open(&ts, &format!("/ws/chat/{}/", rebecca.num), &saliu_token).await;
    let mut rebecca_socket =
        ws_open(&ts, &format!("/ws/chat/{}/", saliu.num), &rebecca.access).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut sockets = [&mut saliu_socket, &mut rebecca_socket];
    for (i, text) in ["res", "true", "You be error", "Say God"]
        .into_iter()
        .enumerate()
    {
        let frame = json!({ "message": text }).to_string();
        sockets[i % 2]
            .send(Message::Text(frame.into()))
            .await
            .unwrap();
        for socket in sockets.iter_mut() {
            assert_eq!(ws_next(socket).await["message"], text, "both hear it");
        }
    }

    // Retrieve Chats.
    let path = format!("/communication/chats/?session_id={}", sessions[0]["id"]);
    let (status, body) = ts.hooks(Method::GET, &path, Some(&saliu_token), None).await;
    examples.check("Retrieve Chats", status, &body);
    assert_eq!(body.as_array().unwrap().len(), 4);

    // Initiate Chat Session: the existing one.
    let (status, body) = call(
        Method::POST,
        initiate,
        me(),
        Some(json!({ "user": rebecca.num })),
    )
    .await;
    examples.check("Initiate Chat Session", status, &body);
    assert_eq!(body["id"], sessions[0]["id"]);
    ts.stop().await;
}
