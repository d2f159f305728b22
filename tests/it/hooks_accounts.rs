//! The hooks dialect's accounts (`hooks-backend.md`): sign-up, sign-in, sign-out on every
//! device and token refresh, with DRF's error shapes.

use crate::common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post(
    ts: &TestServer,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = ts.http.post(ts.url(path)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

const PASSWORD: &str = "correct horse battery";

async fn sign_up(ts: &TestServer, email: &str) {
    let body = json!({ "email": email, "password": PASSWORD, "password2": PASSWORD });
    let (status, body) = post(ts, "/user/signup/", None, body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn sign_in(ts: &TestServer, email: &str) -> Value {
    let body = json!({ "email": email, "password": PASSWORD });
    let (status, body) = post(ts, "/user/signin/", None, body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn sign_up_checks_every_field_and_answers_as_drf() {
    let ts = TestServer::start().await;
    let (status, body) = post(&ts, "/user/signup/", None, json!({ "email": "" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({
            "email": ["This field may not be blank."],
            "password": ["This field is required."],
            "password2": ["This field is required."],
        })
    );
    let (status, body) = post(
        &ts,
        "/user/signup/",
        None,
        json!({ "email": "saliu@example.org", "password": PASSWORD, "password2": "other" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({ "password": ["Password fields didn't match."] })
    );
    let (status, body) = post(
        &ts,
        "/user/signup/",
        None,
        json!({ "email": "not-an-email", "password": "1234", "password2": "1234", "user_type": "Admin" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["email"], json!(["Enter a valid email address."]));
    assert_eq!(
        body["user_type"],
        json!(["\"Admin\" is not a valid choice."])
    );
    assert_eq!(body["password"].as_array().unwrap().len(), 2, "{body}");

    // The spec's example: a Fan unless told otherwise; emails are case-insensitive and unique.
    let (status, body) = post(
        &ts,
        "/user/signup/",
        None,
        json!({ "email": "SaliuOAzeez@example.org", "password": PASSWORD, "password2": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body,
        json!({ "email": "saliuoazeez@example.org", "user_type": "Fan" })
    );
    let (status, body) = post(
        &ts,
        "/user/signup/",
        None,
        json!({ "email": "saliuoazeez@example.org", "password": PASSWORD, "password2": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({ "email": ["user with this email already exists."] })
    );

    // Form bodies too, as DRF parses them.
    let response = ts
        .http
        .post(ts.url("/user/signup/"))
        .form(&[
            ("email", "creator@example.org"),
            ("password", PASSWORD),
            ("password2", PASSWORD),
            ("user_type", "Creator"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_type"], "Creator");
    ts.stop().await;
}

#[tokio::test]
async fn sign_in_gives_simplejwt_tokens_that_every_dialect_accepts() {
    let ts = TestServer::start().await;
    sign_up(&ts, "ada@example.org").await;
    let (status, body) = post(
        &ts,
        "/user/signin/",
        None,
        json!({ "email": "ada@example.org", "password": "wrong password" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({ "detail": "No active account found with the given credentials" })
    );

    let tokens = sign_in(&ts, "Ada@Example.org").await;
    assert_eq!(tokens["user"]["email"], "ada@example.org");
    assert!(tokens["user"]["user_id"].is_i64());
    let access = tokens["access"].as_str().unwrap();
    let refresh = tokens["refresh"].as_str().unwrap();

    // The access token opens the chats dialect; the refresh token opens nothing but refresh.
    let chats = |token: &str| {
        ts.http
            .get(ts.url("/chats"))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(chats(access).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        chats(refresh).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = post(
        &ts,
        "/user/token/refresh/",
        None,
        json!({ "refresh": refresh }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        chats(body["access"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, body) = post(
        &ts,
        "/user/token/refresh/",
        None,
        json!({ "refresh": access }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "token_not_valid");
    ts.stop().await;
}

#[tokio::test]
async fn signing_out_ends_every_session_on_every_device_at_once() {
    let ts = TestServer::start().await;
    sign_up(&ts, "ada@example.org").await;
    let phone = sign_in(&ts, "ada@example.org").await;
    let laptop = sign_in(&ts, "ada@example.org").await;

    let (status, body) = post(&ts, "/user/signout/", None, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({ "detail": "Authentication credentials were not provided." })
    );
    let (status, body) = post(&ts, "/user/signout/", phone["access"].as_str(), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "message": "Logged Out from all devices" }));

    for device in [&phone, &laptop] {
        let (status, _) = post(&ts, "/user/signout/", device["access"].as_str(), json!({})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = post(
            &ts,
            "/user/token/refresh/",
            None,
            json!({ "refresh": device["refresh"] }),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Signing in again works, with new tokens.
    let again = sign_in(&ts, "ada@example.org").await;
    let (status, _) = post(&ts, "/user/signout/", again["access"].as_str(), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    ts.stop().await;
}

#[tokio::test]
async fn password_guessing_is_slowed_per_account() {
    let ts = TestServer::start().await;
    sign_up(&ts, "ada@example.org").await;
    let guess = json!({ "email": "ada@example.org", "password": "guess" });
    for _ in 0..5 {
        let (status, _) = post(&ts, "/user/signin/", None, guess.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = post(&ts, "/user/signin/", None, guess).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body, json!({ "detail": "Request was throttled." }));
    // Even the right password waits: the limit is on attempts, not on failures.
    let right = json!({ "email": "ada@example.org", "password": PASSWORD });
    let (status, _) = post(&ts, "/user/signin/", None, right).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another account is not slowed by this one.
    sign_up(&ts, "bob@example.org").await;
    sign_in(&ts, "bob@example.org").await;
    ts.stop().await;
}
