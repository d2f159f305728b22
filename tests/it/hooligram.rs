//! The hooligram dialect at `/v2` with a real WebSocket client: every frame's success and
//! failure string, verification against the Twilio Verify stand-in, groups, messages and
//! delivery receipts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::common::{self, TestServer, WsClient, sms_fake_url};
use bson::doc;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// One app's socket: it sends requests with millisecond-timestamp ids, as the client does, and
/// keeps the deliveries it hears while waiting for an answer.
struct App {
    socket: WsClient,
    heard: VecDeque<Value>,
    country_code: String,
    phone_number: String,
    code: String,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1_700_000_000_000);

/// A phone number nobody else in this run has.
fn fresh_number() -> String {
    format!("9{:09}", rand_u32() % 1_000_000_000)
}

fn rand_u32() -> u32 {
    let id = bson::oid::ObjectId::new().bytes();
    u32::from_be_bytes([id[8], id[9], id[10], id[11]]) ^ (std::process::id() << 7)
}

impl App {
    async fn connect(ts: &TestServer) -> Self {
        let url = format!("ws://{}/v2", ts.server.addr);
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self {
            socket,
            heard: VecDeque::new(),
            country_code: "65".into(),
            phone_number: fresh_number(),
            code: String::new(),
        }
    }

    fn sid(&self) -> String {
        format!("{}.{}", self.country_code, self.phone_number)
    }

    async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    async fn send_text(&mut self, text: String) {
        self.socket.send(Message::Text(text.into())).await.unwrap();
    }

    async fn next_frame(&mut self, within: Duration) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(within, self.socket.next())
                .await
                .ok()?;
            match frame.expect("the socket is open").unwrap() {
                Message::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
                Message::Close(close) => panic!("closed: {close:?}"),
                _ => continue,
            }
        }
    }

    /// Send a request and wait for its answer (the frame echoing its id).
    async fn ask(&mut self, frame_type: &str, payload: Value) -> Value {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed).to_string();
        self.send(json!({ "id": id, "payload": payload, "type": frame_type }))
            .await;
        self.answer_to(&id).await
    }

    async fn answer_to(&mut self, id: &str) -> Value {
        loop {
            let frame = self
                .next_frame(Duration::from_secs(10))
                .await
                .expect("an answer within 10 s");
            if frame["id"] == id {
                return frame;
            }
            self.heard.push_back(frame);
        }
    }

    /// The payload of a success, or a panic with the failure.
    async fn ok(&mut self, frame_type: &str, payload: Value) -> Value {
        let answer = self.ask(frame_type, payload).await;
        let expected = answer_type(frame_type, "SUCCESS");
        assert_eq!(answer["type"], expected, "{answer}");
        answer["payload"].clone()
    }

    /// The one error of a failure.
    async fn fails(&mut self, frame_type: &str, payload: Value) -> String {
        let answer = self.ask(frame_type, payload).await;
        let expected = answer_type(frame_type, "FAILURE");
        assert_eq!(answer["type"], expected, "{answer}");
        let errors = answer["payload"]["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1);
        errors[0].as_str().unwrap().to_owned()
    }

    /// The next delivery of this type, heard before or now.
    async fn delivery(&mut self, frame_type: &str) -> Value {
        if let Some(at) = self.heard.iter().position(|f| f["type"] == frame_type) {
            return self.heard.remove(at).unwrap();
        }
        loop {
            let frame = self
                .next_frame(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("a {frame_type} within 10 s"));
            if frame["type"] == frame_type {
                return frame;
            }
            self.heard.push_back(frame);
        }
    }

    /// Nothing arrives: checked with a keep-alive, whose answer must be the next frame.
    async fn hears_nothing(&mut self) {
        assert!(self.heard.is_empty(), "heard {:?}", self.heard);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed).to_string();
        self.send(json!({ "id": id, "payload": {}, "type": "CONN_KEEP_ALIVE_REQUEST" }))
            .await;
        let next = self.next_frame(Duration::from_secs(5)).await.unwrap();
        assert_eq!(next["id"], id, "nothing else came first: {next}");
    }

    fn phone(&self) -> Value {
        json!({ "country_code": self.country_code, "phone_number": self.phone_number })
    }

    async fn request_code(&mut self) -> Value {
        self.ask("VERIFICATION_REQUEST_CODE_REQUEST", self.phone())
            .await
    }

    async fn sign_in_payload(&self, code: &str) -> Value {
        let mut payload = self.phone();
        payload["verification_code"] = code.into();
        payload
    }

    /// Fresh install: ask a code, submit what the SMS said, and sign in with it.
    async fn verified(ts: &TestServer) -> Self {
        let mut app = Self::connect(ts).await;
        app.verify().await;
        app.sign_in().await;
        app
    }

    async fn verify(&mut self) {
        let answer = self.request_code().await;
        assert_eq!(
            answer["type"], "VERIFICATION_REQUEST_CODE_SUCCESS",
            "{answer}"
        );
        self.code = last_code(&self.sid()).await;
        let code = self.code.clone();
        self.ok(
            "VERIFICATION_SUBMIT_CODE_REQUEST",
            json!({ "verification_code": code }),
        )
        .await;
    }

    async fn sign_in(&mut self) {
        let payload = self.sign_in_payload(&self.code).await;
        self.ok("AUTHORIZATION_SIGN_IN_REQUEST", payload).await;
    }

    /// The same phone, on a new socket, signed in.
    async fn reconnect(&self, ts: &TestServer) -> Self {
        let mut app = Self::connect(ts).await;
        app.country_code = self.country_code.clone();
        app.phone_number = self.phone_number.clone();
        app.code = self.code.clone();
        app.sign_in().await;
        app
    }

    async fn ack(&mut self, message_id: &Value) {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed).to_string();
        self.send(json!({
            "id": id,
            "payload": { "message_id": message_id },
            "type": "MESSAGING_DELIVER_SUCCESS",
        }))
        .await;
    }
}

/// `X_REQUEST`'s answer `X_SUCCESS` or `X_FAILURE`.
fn answer_type(request: &str, outcome: &str) -> String {
    format!("{}_{outcome}", request.strip_suffix("_REQUEST").unwrap())
}

/// A phone's number as the SMS service writes it: `+`, then the country code and the number.
fn e164(sid: &str) -> String {
    format!("+{}", sid.replace('.', ""))
}

/// A phone's number as the SMS stand-in's query string takes it, the `+` escaped.
fn sms_to(sid: &str) -> String {
    e164(sid).replacen('+', "%2B", 1)
}

/// Codes the SMS stand-in sent to this phone, oldest first.
async fn codes_sent(sid: &str) -> Vec<String> {
    let sent: Vec<Value> = reqwest::get(format!("{}/sent?to={}", sms_fake_url(), sms_to(sid)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sent.iter()
        .map(|s| s["code"].as_str().unwrap().to_owned())
        .collect()
}

async fn last_code(sid: &str) -> String {
    codes_sent(sid).await.pop().expect("a code was sent")
}

fn is_date(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    let shape = "dddd-dd-dd dd:dd:dd";
    text.len() == shape.len()
        && text
            .chars()
            .zip(shape.chars())
            .all(|(c, s)| if s == 'd' { c.is_ascii_digit() } else { c == s })
}

#[tokio::test]
async fn keep_alive_and_frames_that_need_no_answer() {
    let ts = TestServer::with_sms().await;
    let mut app = App::connect(&ts).await;

    let ok = app.ask("CONN_KEEP_ALIVE_REQUEST", json!({})).await;
    assert_eq!(ok["type"], "CONN_KEEP_ALIVE_SUCCESS");
    assert_eq!(ok["payload"], json!({}));
    app.send(json!({ "payload": {}, "type": "CONN_KEEP_ALIVE_REQUEST" }))
        .await;
    let no_id = app.next_frame(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        no_id,
        json!({ "id": "", "payload": {}, "type": "CONN_KEEP_ALIVE_FAILURE" })
    );

    // What the real client sends back or sends for its own UI, and garbage: no answer.
    for text in [
        "{not json".to_owned(),
        json!({ "id": "1", "type": "GROUP_CREATE_REQUEST" }).to_string(),
        json!({ "id": "1", "payload": {} }).to_string(),
        json!({ "payload": {}, "type": "SIGN_IN" }).to_string(),
        json!({ "payload": { "host": "example.org" }, "type": "WEBSOCKET_OPEN" }).to_string(),
        json!({ "payload": {}, "type": "GO_TO_HOME" }).to_string(),
        json!({ "id": "2", "payload": {}, "type": "CONN_KEEP_ALIVE_SUCCESS" }).to_string(),
        json!({ "id": "3", "payload": { "errors": ["x"] }, "type": "AUTHORIZATION_SIGN_IN_FAILURE" }).to_string(),
        json!({ "id": "ab12CD34", "payload": { "group_id": 1 }, "type": "GROUP_DELIVER_REQUEST" }).to_string(),
        json!({ "id": "4", "payload": { "message_id": 1 }, "type": "MESSAGING_DELIVER_SUCCESS" }).to_string(),
    ] {
        app.send_text(text).await;
    }
    app.hears_nothing().await;
    ts.stop().await;
}

#[tokio::test]
async fn every_request_names_what_it_lacks() {
    let ts = TestServer::with_sms().await;
    let mut app = App::connect(&ts).await;

    for frame_type in [
        "VERIFICATION_REQUEST_CODE_REQUEST",
        "VERIFICATION_SUBMIT_CODE_REQUEST",
        "AUTHORIZATION_SIGN_IN_REQUEST",
        "GROUP_CREATE_REQUEST",
        "GROUP_ADD_MEMBER_REQUEST",
        "GROUP_LEAVE_REQUEST",
        "MESSAGING_SEND_REQUEST",
    ] {
        app.send(json!({ "payload": {}, "type": frame_type })).await;
        let answer = app.next_frame(Duration::from_secs(5)).await.unwrap();
        let failure = answer_type(frame_type, "FAILURE");
        assert_eq!(
            answer,
            json!({ "id": "", "payload": { "errors": ["id not in action"] }, "type": failure })
        );
    }

    let cases = [
        (
            "VERIFICATION_REQUEST_CODE_REQUEST",
            json!({ "phone_number": "91234567" }),
            "country_code not in payload",
        ),
        (
            "VERIFICATION_REQUEST_CODE_REQUEST",
            json!({ "country_code": 65 }),
            "country_code not in payload",
        ),
        (
            "VERIFICATION_REQUEST_CODE_REQUEST",
            json!({ "country_code": "65" }),
            "phone_number not in payload",
        ),
        (
            "VERIFICATION_REQUEST_CODE_REQUEST",
            json!({ "country_code": "+65", "phone_number": "91234567" }),
            "country_code not in payload",
        ),
        (
            "VERIFICATION_REQUEST_CODE_REQUEST",
            json!({ "country_code": "65", "phone_number": "9123-4567" }),
            "phone_number not in payload",
        ),
        (
            "VERIFICATION_SUBMIT_CODE_REQUEST",
            json!({ "verification_code": 123456 }),
            "verification_code not in payload",
        ),
        (
            "AUTHORIZATION_SIGN_IN_REQUEST",
            json!({ "country_code": "65", "phone_number": "91234567" }),
            "verification_code not in payload",
        ),
        // Before signing in, the rest is refused for that first.
        (
            "GROUP_CREATE_REQUEST",
            json!({ "group_name": "g", "member_sids": [] }),
            "not signed in",
        ),
        ("GROUP_CREATE_REQUEST", json!({}), "not signed in"),
        (
            "GROUP_ADD_MEMBER_REQUEST",
            json!({ "group_id": 1, "member_sid": "65.1" }),
            "not signed in",
        ),
        (
            "GROUP_LEAVE_REQUEST",
            json!({ "group_id": 1 }),
            "not signed in",
        ),
        (
            "MESSAGING_SEND_REQUEST",
            json!({ "group_id": 1, "content": "hi" }),
            "not signed in",
        ),
    ];
    for (frame_type, payload, error) in cases {
        assert_eq!(
            app.fails(frame_type, payload.clone()).await,
            error,
            "{frame_type} {payload}"
        );
    }

    app.verify().await;
    app.sign_in().await;
    let cases = [
        (
            "GROUP_CREATE_REQUEST",
            json!({ "member_sids": [] }),
            "group_name not in payload",
        ),
        (
            "GROUP_CREATE_REQUEST",
            json!({ "group_name": "g" }),
            "member_sids not in payload",
        ),
        (
            "GROUP_CREATE_REQUEST",
            json!({ "group_name": "g", "member_sids": "65.1" }),
            "member_sids not in payload",
        ),
        (
            "GROUP_CREATE_REQUEST",
            json!({ "group_name": "g", "member_sids": [65] }),
            "member_sids not in payload",
        ),
        (
            "GROUP_ADD_MEMBER_REQUEST",
            json!({ "member_sid": "65.1" }),
            "group_id not in payload",
        ),
        (
            "GROUP_ADD_MEMBER_REQUEST",
            json!({ "group_id": "1", "member_sid": "65.1" }),
            "group_id not in payload",
        ),
        (
            "GROUP_ADD_MEMBER_REQUEST",
            json!({ "group_id": 1 }),
            "member_sid not in payload",
        ),
        ("GROUP_LEAVE_REQUEST", json!({}), "group_id not in payload"),
        (
            "GROUP_LEAVE_REQUEST",
            json!({ "group_id": 1.5 }),
            "group_id not in payload",
        ),
        (
            "MESSAGING_SEND_REQUEST",
            json!({ "content": "hi" }),
            "group_id not in payload",
        ),
        (
            "MESSAGING_SEND_REQUEST",
            json!({ "group_id": 1 }),
            "content not in payload",
        ),
    ];
    for (frame_type, payload, error) in cases {
        assert_eq!(
            app.fails(frame_type, payload.clone()).await,
            error,
            "{frame_type} {payload}"
        );
    }
    ts.stop().await;
}

#[tokio::test]
async fn a_code_proves_the_phone_and_becomes_its_credential() {
    let ts = TestServer::with_sms().await;
    let mut app = App::connect(&ts).await;
    let answer = app.request_code().await;
    assert_eq!(answer["type"], "VERIFICATION_REQUEST_CODE_SUCCESS");
    assert_eq!(answer["payload"], json!({}));
    let code = last_code(&app.sid()).await;
    assert_eq!(code.len(), 6);

    // Not verified yet: no sign-in, whatever the code.
    let payload = app.sign_in_payload(&code).await;
    assert_eq!(
        app.fails("AUTHORIZATION_SIGN_IN_REQUEST", payload).await,
        "not verified"
    );
    for wrong in ["", "000000x"] {
        let submitted = json!({ "verification_code": wrong });
        let error = app
            .fails("VERIFICATION_SUBMIT_CODE_REQUEST", submitted)
            .await;
        assert_eq!(error, "incorrect verification code");
    }
    let submitted = json!({ "verification_code": code });
    let payload = app.ok("VERIFICATION_SUBMIT_CODE_REQUEST", submitted).await;
    assert_eq!(payload, json!({}));
    // Submitting does not sign in.
    let not_yet = json!({ "group_name": "g", "member_sids": [app.sid(), "65.81234567"] });
    assert_eq!(
        app.fails("GROUP_CREATE_REQUEST", not_yet).await,
        "not signed in"
    );

    // Any socket signs in with the code; an empty, wrong or other phone's code does not.
    let mut other = App::connect(&ts).await;
    other.phone_number = app.phone_number.clone();
    for wrong in ["", "999999", "0000000"] {
        let payload = other.sign_in_payload(wrong).await;
        assert_eq!(
            other.fails("AUTHORIZATION_SIGN_IN_REQUEST", payload).await,
            "not verified"
        );
    }
    let mut stranger = App::connect(&ts).await;
    let payload = stranger.sign_in_payload(&code).await;
    assert_eq!(
        stranger
            .fails("AUTHORIZATION_SIGN_IN_REQUEST", payload)
            .await,
        "not verified"
    );
    let payload = other.sign_in_payload(&code).await;
    assert_eq!(
        other.ok("AUTHORIZATION_SIGN_IN_REQUEST", payload).await,
        json!({})
    );
    ts.stop().await;
}

#[tokio::test]
async fn asking_for_a_code_signs_nobody_out_until_it_is_submitted() {
    let ts = TestServer::with_sms().await;
    let owner = App::verified(&ts).await;
    let first = owner.code.clone();

    // Someone else asks a code for the owner's number (after the resend pause).
    let store = palaver::store::Store::connect(&common::mongodb_uri(), &ts.database)
        .await
        .unwrap();
    let long_ago = bson::DateTime::from_millis(0);
    store
        .verifications
        .update_one(
            doc! { "_id": owner.sid() },
            doc! { "$set": { "last_sent": long_ago } },
        )
        .await
        .unwrap();
    let mut someone = App::connect(&ts).await;
    someone.phone_number = owner.phone_number.clone();
    let asked = someone.request_code().await;
    assert_eq!(asked["type"], "VERIFICATION_REQUEST_CODE_SUCCESS");
    let second = last_code(&owner.sid()).await;
    assert_ne!(first, second);

    // The owner still signs in with the first code.
    let again = owner.reconnect(&ts).await;
    drop(again);

    // Once the new code is submitted, it is the credential, and the old one is not.
    let submitted = json!({ "verification_code": second });
    someone
        .ok("VERIFICATION_SUBMIT_CODE_REQUEST", submitted)
        .await;
    let mut late = App::connect(&ts).await;
    late.phone_number = owner.phone_number.clone();
    let payload = late.sign_in_payload(&first).await;
    assert_eq!(
        late.fails("AUTHORIZATION_SIGN_IN_REQUEST", payload).await,
        "not verified"
    );
    let payload = late.sign_in_payload(&second).await;
    late.ok("AUTHORIZATION_SIGN_IN_REQUEST", payload).await;
    ts.stop().await;
}

#[tokio::test]
async fn codes_expire_and_allow_five_attempts() {
    let ts = TestServer::with_sms().await;
    let store = palaver::store::Store::connect(&common::mongodb_uri(), &ts.database)
        .await
        .unwrap();

    // Five wrong codes end it: the right one is refused after them.
    let mut app = App::connect(&ts).await;
    app.request_code().await;
    let code = last_code(&app.sid()).await;
    for _ in 0..5 {
        let wrong = json!({ "verification_code": "1234567" });
        let error = app.fails("VERIFICATION_SUBMIT_CODE_REQUEST", wrong).await;
        assert_eq!(error, "incorrect verification code");
    }
    let right = json!({ "verification_code": code });
    let error = app.fails("VERIFICATION_SUBMIT_CODE_REQUEST", right).await;
    assert_eq!(error, "incorrect verification code");

    // Ten minutes on, the code is refused.
    let mut late = App::connect(&ts).await;
    late.request_code().await;
    let code = last_code(&late.sid()).await;
    let past = bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis() - 1);
    store
        .verifications
        .update_one(
            doc! { "_id": late.sid() },
            doc! { "$set": { "expires_at": past } },
        )
        .await
        .unwrap();
    let right = json!({ "verification_code": code });
    let error = late.fails("VERIFICATION_SUBMIT_CODE_REQUEST", right).await;
    assert_eq!(error, "incorrect verification code");
    let payload = late.sign_in_payload(&code).await;
    assert_eq!(
        late.fails("AUTHORIZATION_SIGN_IN_REQUEST", payload).await,
        "not verified"
    );
    ts.stop().await;
}

#[tokio::test]
async fn codes_are_rate_limited_per_phone_and_per_socket() {
    let ts = TestServer::with_sms().await;
    let store = palaver::store::Store::connect(&common::mongodb_uri(), &ts.database)
        .await
        .unwrap();

    // Per phone: not again within 30 s, from any socket...
    let mut app = App::connect(&ts).await;
    app.request_code().await;
    let mut twin = App::connect(&ts).await;
    twin.phone_number = app.phone_number.clone();
    let error = twin
        .fails("VERIFICATION_REQUEST_CODE_REQUEST", twin.phone())
        .await;
    assert_eq!(error, "too many requests");
    assert_eq!(codes_sent(&app.sid()).await.len(), 1, "one SMS only");
    // ...and five an hour.
    for sent in 2..=6 {
        let long_ago = bson::DateTime::from_millis(0);
        store
            .verifications
            .update_one(
                doc! { "_id": app.sid() },
                doc! { "$set": { "last_sent": long_ago } },
            )
            .await
            .unwrap();
        let mut fresh = App::connect(&ts).await;
        fresh.phone_number = app.phone_number.clone();
        let answer = fresh.request_code().await;
        let expected = if sent <= 5 { "SUCCESS" } else { "FAILURE" };
        assert_eq!(
            answer["type"],
            format!("VERIFICATION_REQUEST_CODE_{expected}"),
            "code {sent}: {answer}"
        );
    }
    assert_eq!(codes_sent(&app.sid()).await.len(), 5);

    // Per socket: a few requests at once, whatever the phones.
    let mut busy = App::connect(&ts).await;
    let mut refused = 0;
    for _ in 0..7 {
        busy.phone_number = fresh_number();
        if busy.request_code().await["type"] == "VERIFICATION_REQUEST_CODE_FAILURE" {
            refused += 1;
        }
    }
    assert_eq!(refused, 2, "five at once, then one every ten seconds");

    // An SMS outage is a server error. The outage falls on this number only: other tests share
    // the stand-in, and a failure meant for one must not fall on another's send.
    let mut unlucky = App::connect(&ts).await;
    reqwest::Client::new()
        .post(format!(
            "{}/fail?to={}",
            sms_fake_url(),
            sms_to(&unlucky.sid())
        ))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let error = unlucky
        .fails("VERIFICATION_REQUEST_CODE_REQUEST", unlucky.phone())
        .await;
    assert_eq!(error, "server error");
    ts.stop().await;
}

#[tokio::test]
async fn direct_messages_and_groups_are_delivered_to_every_member() {
    let ts = TestServer::with_sms().await;
    let mut ann = App::verified(&ts).await;
    let mut bob = App::verified(&ts).await;
    let mut cat = App::verified(&ts).await;

    assert_eq!(
        ann.fails(
            "GROUP_CREATE_REQUEST",
            json!({ "group_name": "x", "member_sids": [ann.sid()] })
        )
        .await,
        "need at least two members"
    );
    assert_eq!(
        ann.fails(
            "GROUP_CREATE_REQUEST",
            json!({ "group_name": "x", "member_sids": [ann.sid(), ann.sid()] })
        )
        .await,
        "need at least two members"
    );
    assert_eq!(
        ann.fails(
            "GROUP_CREATE_REQUEST",
            json!({ "group_name": "x", "member_sids": [bob.sid(), cat.sid()] })
        )
        .await,
        "include group creator in member_sids"
    );

    // Two members: a direct message, the same one when asked again.
    let dm = json!({ "group_name": "", "member_sids": [ann.sid(), bob.sid()] });
    let created = ann.ok("GROUP_CREATE_REQUEST", dm.clone()).await;
    let dm_id = created["group_id"].clone();
    assert!(dm_id.is_i64(), "{created}");
    let mut expected = vec![ann.sid(), bob.sid()];
    expected.sort();
    for app in [&mut ann, &mut bob] {
        let delivery = app.delivery("GROUP_DELIVER_REQUEST").await;
        let id = delivery["id"].as_str().unwrap();
        assert!(
            id.len() == 8 && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{id}"
        );
        let group = &delivery["payload"];
        assert_eq!(group["group_id"], dm_id);
        assert_eq!(group["group_type"], 1);
        assert!(is_date(&group["date_created"]), "{group}");
        let mut sids: Vec<&str> = group["member_sids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        sids.sort();
        assert_eq!(sids, expected);
    }
    let again = json!({ "group_name": "", "member_sids": [bob.sid(), ann.sid()] });
    assert_eq!(
        bob.ok("GROUP_CREATE_REQUEST", again).await["group_id"],
        dm_id
    );
    bob.delivery("GROUP_DELIVER_REQUEST").await;

    // Three: a group; an unknown number becomes a user who sees it on signing in.
    let mut dan = App::connect(&ts).await;
    let sids = json!([ann.sid(), bob.sid(), dan.sid()]);
    let created = ann
        .ok(
            "GROUP_CREATE_REQUEST",
            json!({ "group_name": "Trip", "member_sids": sids }),
        )
        .await;
    let group_id = created["group_id"].clone();
    for app in [&mut ann, &mut bob] {
        let group = app.delivery("GROUP_DELIVER_REQUEST").await["payload"].clone();
        assert_eq!(group["group_id"], group_id);
        assert_eq!(group["group_type"], 0);
        assert_eq!(group["group_name"], "Trip");
        assert_eq!(group["member_sids"].as_array().unwrap().len(), 3);
    }
    cat.hears_nothing().await;

    // Members add anyone who exists; outsiders and unknown numbers are refused.
    let add = |sid: String| json!({ "group_id": group_id, "member_sid": sid });
    assert_eq!(
        cat.fails("GROUP_ADD_MEMBER_REQUEST", add(cat.sid())).await,
        "not allowed"
    );
    let nobody = format!("65.{}", fresh_number());
    assert_eq!(
        bob.fails("GROUP_ADD_MEMBER_REQUEST", add(nobody)).await,
        "new member not found"
    );
    bob.ok("GROUP_ADD_MEMBER_REQUEST", add(ann.sid())).await;
    bob.ok("GROUP_ADD_MEMBER_REQUEST", add(cat.sid())).await;
    for app in [&mut ann, &mut bob, &mut cat] {
        let group = app.delivery("GROUP_DELIVER_REQUEST").await["payload"].clone();
        assert_eq!(group["group_id"], group_id);
        assert_eq!(group["member_sids"].as_array().unwrap().len(), 4);
    }

    // A message reaches every signed-in socket of every member, the sender's included.
    let mut ann_again = ann.reconnect(&ts).await;
    for _ in 0..2 {
        ann_again.delivery("GROUP_DELIVER_REQUEST").await;
    }
    let sent = ann
        .ok(
            "MESSAGING_SEND_REQUEST",
            json!({ "group_id": group_id, "content": "hello" }),
        )
        .await;
    let message_id = sent["message_id"].clone();
    assert!(message_id.is_i64());
    for app in [&mut ann, &mut ann_again, &mut bob, &mut cat] {
        let message = app.delivery("MESSAGING_DELIVER_REQUEST").await["payload"].clone();
        assert_eq!(message["message_id"], message_id);
        assert_eq!(message["group_id"], group_id);
        assert_eq!(message["content"], "hello");
        assert!(is_date(&message["date_created"]));
    }
    let message = json!({ "group_id": dm_id, "content": "psst" });
    assert_eq!(
        cat.fails("MESSAGING_SEND_REQUEST", message).await,
        "sender doesn't belong to message group"
    );
    let empty = json!({ "group_id": group_id, "content": "  " });
    assert_eq!(
        cat.fails("MESSAGING_SEND_REQUEST", empty).await,
        "content not in payload"
    );

    // Dan signs in later: he hears of the group, then the message.
    dan.verify().await;
    dan.sign_in().await;
    let group = dan.delivery("GROUP_DELIVER_REQUEST").await["payload"].clone();
    assert_eq!(group["group_id"], group_id);
    let message = dan.delivery("MESSAGING_DELIVER_REQUEST").await["payload"].clone();
    assert_eq!(message["message_id"], message_id);
    assert_eq!(message["sender_sid"], ann.sid());
    ts.stop().await;
}

#[tokio::test]
async fn leaving_updates_the_others_and_the_last_two_end_the_group() {
    let ts = TestServer::with_sms().await;
    let mut ann = App::verified(&ts).await;
    let mut bob = App::verified(&ts).await;
    let mut cat = App::verified(&ts).await;
    let sids = json!([ann.sid(), bob.sid(), cat.sid()]);
    let created = ann
        .ok(
            "GROUP_CREATE_REQUEST",
            json!({ "group_name": "Three", "member_sids": sids }),
        )
        .await;
    let group_id = created["group_id"].clone();
    for app in [&mut ann, &mut bob, &mut cat] {
        app.delivery("GROUP_DELIVER_REQUEST").await;
    }
    let leave = json!({ "group_id": group_id });
    ann.ok(
        "MESSAGING_SEND_REQUEST",
        json!({ "group_id": group_id, "content": "bye" }),
    )
    .await;
    for app in [&mut ann, &mut bob, &mut cat] {
        app.delivery("MESSAGING_DELIVER_REQUEST").await;
    }

    assert_eq!(
        ann.ok("GROUP_LEAVE_REQUEST", leave.clone()).await,
        json!({})
    );
    for app in [&mut bob, &mut cat] {
        let group = app.delivery("GROUP_DELIVER_REQUEST").await["payload"].clone();
        let sids = group["member_sids"].as_array().unwrap();
        assert_eq!(sids.len(), 2);
        assert!(!sids.contains(&json!(ann.sid())));
    }
    ann.hears_nothing().await;
    assert_eq!(
        ann.fails("GROUP_LEAVE_REQUEST", leave.clone()).await,
        "not in group"
    );
    let message = json!({ "group_id": group_id, "content": "back?" });
    assert_eq!(
        ann.fails("MESSAGING_SEND_REQUEST", message).await,
        "sender doesn't belong to message group"
    );

    // One left: the one who remains is told the group as it now stands (as the original
    // server does), then the group is gone, with its messages.
    bob.ok("GROUP_LEAVE_REQUEST", leave.clone()).await;
    let group = cat.delivery("GROUP_DELIVER_REQUEST").await["payload"].clone();
    assert_eq!(group["group_id"], group_id);
    assert_eq!(group["member_sids"], json!([cat.sid()]));
    bob.hears_nothing().await;
    let store = palaver::store::Store::connect(&common::mongodb_uri(), &ts.database)
        .await
        .unwrap();
    let num = group_id.as_i64().unwrap();
    assert!(
        store
            .chats
            .find_one(doc! { "num": num })
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.messages.count_documents(doc! {}).await.unwrap(), 0);
    assert_eq!(
        cat.fails("GROUP_LEAVE_REQUEST", leave).await,
        "not in group"
    );

    // Leaving a direct message ends it too, once the other is told they are alone in it.
    let dm = json!({ "group_name": "", "member_sids": [bob.sid(), cat.sid()] });
    let dm_id = bob.ok("GROUP_CREATE_REQUEST", dm).await["group_id"].clone();
    bob.delivery("GROUP_DELIVER_REQUEST").await;
    cat.delivery("GROUP_DELIVER_REQUEST").await;
    cat.ok("GROUP_LEAVE_REQUEST", json!({ "group_id": dm_id }))
        .await;
    let alone = bob.delivery("GROUP_DELIVER_REQUEST").await["payload"].clone();
    assert_eq!(alone["group_id"], dm_id);
    assert_eq!(alone["group_type"], 1);
    assert_eq!(alone["member_sids"], json!([bob.sid()]));
    cat.hears_nothing().await;
    let message = json!({ "group_id": dm_id, "content": "hello?" });
    assert_eq!(
        bob.fails("MESSAGING_SEND_REQUEST", message).await,
        "sender doesn't belong to message group"
    );
    ts.stop().await;
}

#[tokio::test]
async fn what_was_not_acknowledged_comes_again_at_sign_in_exactly_once() {
    let ts = TestServer::with_sms().await;
    let mut ann = App::verified(&ts).await;
    let mut bob = App::verified(&ts).await;
    let dm = json!({ "group_name": "", "member_sids": [ann.sid(), bob.sid()] });
    let dm_id = ann.ok("GROUP_CREATE_REQUEST", dm).await["group_id"].clone();
    bob.delivery("GROUP_DELIVER_REQUEST").await;
    bob.socket.close(None).await.unwrap();

    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        let sent = ann
            .ok(
                "MESSAGING_SEND_REQUEST",
                json!({ "group_id": dm_id, "content": text }),
            )
            .await;
        ids.push(sent["message_id"].clone());
        // Ann's own device acknowledges what it hears.
        let heard = ann.delivery("MESSAGING_DELIVER_REQUEST").await;
        ann.ack(&heard["payload"]["message_id"]).await;
    }

    // Bob signs in: the DM, then the three messages, oldest first. He acknowledges one.
    let mut first = bob.reconnect(&ts).await;
    let group = first.delivery("GROUP_DELIVER_REQUEST").await;
    assert_eq!(group["payload"]["group_id"], dm_id);
    let mut heard = Vec::new();
    for _ in 0..3 {
        let message = first.delivery("MESSAGING_DELIVER_REQUEST").await["payload"].clone();
        assert_eq!(message["sender_sid"], ann.sid());
        heard.push(message["message_id"].clone());
    }
    assert_eq!(heard, ids);
    first.ack(&ids[1]).await;
    first.hears_nothing().await;
    first.socket.close(None).await.unwrap();

    // Next time, only the two unacknowledged, in order; he acknowledges both.
    let mut second = bob.reconnect(&ts).await;
    second.delivery("GROUP_DELIVER_REQUEST").await;
    let again: Vec<Value> = [
        second.delivery("MESSAGING_DELIVER_REQUEST").await,
        second.delivery("MESSAGING_DELIVER_REQUEST").await,
    ]
    .iter()
    .map(|m| m["payload"]["message_id"].clone())
    .collect();
    assert_eq!(again, vec![ids[0].clone(), ids[2].clone()]);
    for id in &again {
        second.ack(id).await;
    }
    second.hears_nothing().await;
    second.socket.close(None).await.unwrap();

    // Then nothing is owed: the DM only. Ann acknowledged hers live, so she is owed nothing.
    let mut third = bob.reconnect(&ts).await;
    third.delivery("GROUP_DELIVER_REQUEST").await;
    third.hears_nothing().await;
    let mut ann_later = ann.reconnect(&ts).await;
    ann_later.delivery("GROUP_DELIVER_REQUEST").await;
    ann_later.hears_nothing().await;

    // Live: a message to a signed-in socket, acknowledged, is not owed either.
    let sent = third
        .ok(
            "MESSAGING_SEND_REQUEST",
            json!({ "group_id": dm_id, "content": "four" }),
        )
        .await;
    let live = ann_later.delivery("MESSAGING_DELIVER_REQUEST").await;
    assert_eq!(live["payload"]["message_id"], sent["message_id"]);
    assert_eq!(live["payload"]["sender_sid"], bob.sid());
    ann_later.ack(&sent["message_id"]).await;
    ann_later.hears_nothing().await;
    let mut ann_last = ann.reconnect(&ts).await;
    ann_last.delivery("GROUP_DELIVER_REQUEST").await;
    ann_last.hears_nothing().await;
    ts.stop().await;
}

/// The log lines written while it is set as this thread's subscriber (a `#[tokio::test]`
/// runs the server's tasks on its one thread).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn without_an_sms_service_codes_are_logged_and_work_the_same() {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let ts = TestServer::start().await;
    assert!(log.text().contains("development mode"), "{}", log.text());

    let mut app = App::connect(&ts).await;
    let answer = app.request_code().await;
    assert_eq!(answer["type"], "VERIFICATION_REQUEST_CODE_SUCCESS");
    let to = e164(&app.sid());
    let line = log
        .text()
        .lines()
        .find(|l| l.contains(&to) && l.contains("code="))
        .map(str::to_owned)
        .expect("the code is logged");
    let code: String = line
        .split("code=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(code.len(), 6, "{line}");

    // Kept hashed only.
    let store = palaver::store::Store::connect(&common::mongodb_uri(), &ts.database)
        .await
        .unwrap();
    let kept = store
        .verifications
        .find_one(doc! { "_id": app.sid() })
        .await
        .unwrap()
        .expect("a verification is kept");
    let hash = kept.code_hash.expect("the code's hash");
    assert!(!hash.contains(&code));

    for wrong in ["", "000000x"] {
        let submitted = json!({ "verification_code": wrong });
        assert_eq!(
            app.fails("VERIFICATION_SUBMIT_CODE_REQUEST", submitted)
                .await,
            "incorrect verification code"
        );
    }
    app.ok(
        "VERIFICATION_SUBMIT_CODE_REQUEST",
        json!({ "verification_code": code }),
    )
    .await;
    app.code = code;
    app.sign_in().await;
    ts.stop().await;
}
