//! The wire: a text frame `{"id", "payload", "type"}` is parsed into a command, and answers
//! are written back as frames of the same shape.

use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value, json};
use time::macros::format_description;

/// The requests this server acts on, by the prefix their answers share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    KeepAlive,
    RequestCode,
    SubmitCode,
    SignIn,
    CreateGroup,
    AddMember,
    LeaveGroup,
    Send,
    /// A receipt: a delivery reached the client. Never answered.
    Delivered,
}

impl Kind {
    fn of(frame_type: &str) -> Option<Self> {
        Some(match frame_type {
            "CONN_KEEP_ALIVE_REQUEST" => Self::KeepAlive,
            "VERIFICATION_REQUEST_CODE_REQUEST" => Self::RequestCode,
            "VERIFICATION_SUBMIT_CODE_REQUEST" => Self::SubmitCode,
            "AUTHORIZATION_SIGN_IN_REQUEST" => Self::SignIn,
            "GROUP_CREATE_REQUEST" => Self::CreateGroup,
            "GROUP_ADD_MEMBER_REQUEST" => Self::AddMember,
            "GROUP_LEAVE_REQUEST" => Self::LeaveGroup,
            "MESSAGING_SEND_REQUEST" => Self::Send,
            "MESSAGING_DELIVER_SUCCESS" => Self::Delivered,
            _ => return None,
        })
    }

    /// What answers to this request are called, less `_SUCCESS` or `_FAILURE`.
    fn answer(self) -> &'static str {
        match self {
            Self::KeepAlive => "CONN_KEEP_ALIVE",
            Self::RequestCode => "VERIFICATION_REQUEST_CODE",
            Self::SubmitCode => "VERIFICATION_SUBMIT_CODE",
            Self::SignIn => "AUTHORIZATION_SIGN_IN",
            Self::CreateGroup => "GROUP_CREATE",
            Self::AddMember => "GROUP_ADD_MEMBER",
            Self::LeaveGroup => "GROUP_LEAVE",
            Self::Send => "MESSAGING_SEND",
            Self::Delivered => "MESSAGING_DELIVER",
        }
    }

    /// Whether only a signed-in socket may ask this.
    pub fn needs_sign_in(self) -> bool {
        matches!(
            self,
            Self::CreateGroup | Self::AddMember | Self::LeaveGroup | Self::Send | Self::Delivered
        )
    }
}

/// A request, as its payload says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    KeepAlive,
    RequestCode {
        country_code: String,
        phone_number: String,
    },
    SubmitCode {
        code: String,
    },
    SignIn {
        country_code: String,
        phone_number: String,
        code: String,
    },
    CreateGroup {
        name: String,
        member_sids: Vec<String>,
    },
    AddMember {
        group_id: i64,
        member_sid: String,
    },
    LeaveGroup {
        group_id: i64,
    },
    Send {
        group_id: i64,
        content: String,
    },
    Delivered {
        message_id: i64,
    },
}

/// What a text frame is to this server.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a request it acts on: dropped without a word (the client sends back every frame it
    /// receives, and answering those would never end).
    Ignored,
    Request {
        id: String,
        kind: Kind,
        command: Command,
    },
    /// A request it cannot act on, and why, in the protocol's words.
    Refused {
        id: String,
        kind: Kind,
        error: String,
    },
}

pub const NO_ID: &str = "id not in action";

pub fn parse(text: &str) -> Parsed {
    let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
        return Parsed::Ignored;
    };
    let (Some(Value::String(frame_type)), Some(Value::Object(payload))) =
        (frame.get("type"), frame.get("payload"))
    else {
        return Parsed::Ignored;
    };
    let Some(kind) = Kind::of(frame_type) else {
        return Parsed::Ignored;
    };
    let id = frame
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty());
    // A receipt needs no id: nothing answers it.
    let Some(id) = id.or((kind == Kind::Delivered).then_some("")) else {
        return Parsed::Refused {
            id: String::new(),
            kind,
            error: NO_ID.into(),
        };
    };
    let id = id.to_owned();
    match command(kind, payload) {
        Ok(command) => Parsed::Request { id, kind, command },
        Err(_) if kind == Kind::Delivered => Parsed::Ignored,
        Err(field) => Parsed::Refused {
            id,
            kind,
            error: missing(field),
        },
    }
}

/// The failure for a field that is absent or of the wrong type.
pub fn missing(field: &str) -> String {
    format!("{field} not in payload")
}

fn command(kind: Kind, payload: &Map<String, Value>) -> Result<Command, &'static str> {
    let text = |field: &'static str| {
        payload
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(field)
    };
    // Ids are JSON numbers; a whole number written as a float (`3.0`) is one too.
    let id = |field: &'static str| {
        let value = payload.get(field).ok_or(field)?;
        value
            .as_i64()
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64)
            })
            .ok_or(field)
    };
    Ok(match kind {
        Kind::KeepAlive => Command::KeepAlive,
        Kind::RequestCode => Command::RequestCode {
            country_code: text("country_code")?,
            phone_number: text("phone_number")?,
        },
        Kind::SubmitCode => Command::SubmitCode {
            code: text("verification_code")?,
        },
        Kind::SignIn => Command::SignIn {
            country_code: text("country_code")?,
            phone_number: text("phone_number")?,
            code: text("verification_code")?,
        },
        Kind::CreateGroup => {
            let name = text("group_name")?;
            let sids = payload
                .get("member_sids")
                .and_then(Value::as_array)
                .ok_or("member_sids")?;
            let member_sids = sids
                .iter()
                .map(|sid| sid.as_str().map(str::to_owned).ok_or("member_sids"))
                .collect::<Result<_, _>>()?;
            Command::CreateGroup { name, member_sids }
        }
        Kind::AddMember => Command::AddMember {
            group_id: id("group_id")?,
            member_sid: text("member_sid")?,
        },
        Kind::LeaveGroup => Command::LeaveGroup {
            group_id: id("group_id")?,
        },
        Kind::Send => Command::Send {
            group_id: id("group_id")?,
            content: text("content")?,
        },
        Kind::Delivered => Command::Delivered {
            message_id: id("message_id")?,
        },
    })
}

/// `<X>_SUCCESS`, echoing the request's id.
pub fn success(kind: Kind, id: &str, payload: Value) -> String {
    frame(id, payload, &format!("{}_SUCCESS", kind.answer()))
}

/// `<X>_FAILURE` with one error; a keep-alive's failure says nothing.
pub fn failure(kind: Kind, id: &str, error: &str) -> String {
    let payload = match kind {
        Kind::KeepAlive => json!({}),
        _ => json!({ "errors": [error] }),
    };
    frame(id, payload, &format!("{}_FAILURE", kind.answer()))
}

/// A request the server starts (a delivery), with a fresh id of 8 letters and digits.
pub fn delivery(frame_type: &str, payload: Value) -> Value {
    let id: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(8)
        .map(char::from)
        .collect();
    json!({ "id": id, "payload": payload, "type": frame_type })
}

fn frame(id: &str, payload: Value, frame_type: &str) -> String {
    json!({ "id": id, "payload": payload, "type": frame_type }).to_string()
}

/// `YYYY-MM-DD HH:MM:SS`, in UTC.
pub fn date(at: bson::DateTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    at.to_time_0_3().format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_that_need_no_action_are_ignored() {
        for text in [
            "not json",
            "[]",
            r#"{"id":"1","type":"CONN_KEEP_ALIVE_REQUEST"}"#,
            r#"{"id":"1","payload":{}}"#,
            r#"{"id":"1","payload":[],"type":"CONN_KEEP_ALIVE_REQUEST"}"#,
            r#"{"payload":{},"type":"SIGN_IN"}"#,
            r#"{"payload":{"host":"x"},"type":"WEBSOCKET_OPEN"}"#,
            r#"{"id":"1","payload":{},"type":"AUTHORIZATION_SIGN_IN_SUCCESS"}"#,
            r#"{"id":"1","payload":{"errors":["x"]},"type":"GROUP_CREATE_FAILURE"}"#,
            r#"{"id":"ab12CD34","payload":{"group_id":1},"type":"GROUP_DELIVER_REQUEST"}"#,
            r#"{"id":"1","payload":{},"type":"MESSAGING_DELIVER_SUCCESS"}"#,
        ] {
            assert_eq!(parse(text), Parsed::Ignored, "{text}");
        }
    }

    #[test]
    fn requests_are_parsed_into_commands() {
        let text = r#"{"id":"1700000000000","payload":{"group_id":7,"content":"hi"},"type":"MESSAGING_SEND_REQUEST"}"#;
        assert_eq!(
            parse(text),
            Parsed::Request {
                id: "1700000000000".into(),
                kind: Kind::Send,
                command: Command::Send {
                    group_id: 7,
                    content: "hi".into()
                },
            }
        );
        let receipt = r#"{"payload":{"message_id":9.0},"type":"MESSAGING_DELIVER_SUCCESS"}"#;
        assert!(matches!(
            parse(receipt),
            Parsed::Request {
                command: Command::Delivered { message_id: 9 },
                ..
            }
        ));
    }

    #[test]
    fn requests_without_an_id_or_a_field_are_refused() {
        let no_id = r#"{"payload":{},"type":"GROUP_LEAVE_REQUEST"}"#;
        assert_eq!(
            parse(no_id),
            Parsed::Refused {
                id: String::new(),
                kind: Kind::LeaveGroup,
                error: NO_ID.into()
            }
        );
        let wrong_type = r#"{"id":"5","payload":{"group_id":"7"},"type":"GROUP_LEAVE_REQUEST"}"#;
        assert_eq!(
            parse(wrong_type),
            Parsed::Refused {
                id: "5".into(),
                kind: Kind::LeaveGroup,
                error: "group_id not in payload".into()
            }
        );
        let bad_sids = r#"{"id":"5","payload":{"group_name":"g","member_sids":[1]},"type":"GROUP_CREATE_REQUEST"}"#;
        assert!(
            matches!(parse(bad_sids), Parsed::Refused { error, .. } if error == "member_sids not in payload")
        );
    }

    #[test]
    fn answers_echo_the_id() {
        let ok: Value = serde_json::from_str(&success(Kind::KeepAlive, "42", json!({}))).unwrap();
        assert_eq!(
            ok,
            json!({"id": "42", "payload": {}, "type": "CONN_KEEP_ALIVE_SUCCESS"})
        );
        let no: Value = serde_json::from_str(&failure(Kind::SignIn, "42", "not verified")).unwrap();
        assert_eq!(no["payload"], json!({"errors": ["not verified"]}));
        assert_eq!(no["type"], "AUTHORIZATION_SIGN_IN_FAILURE");
        let quiet: Value = serde_json::from_str(&failure(Kind::KeepAlive, "", NO_ID)).unwrap();
        assert_eq!(quiet["payload"], json!({}));
        let sent = delivery("GROUP_DELIVER_REQUEST", json!({}));
        let id = sent["id"].as_str().unwrap();
        assert_eq!(id.len(), 8);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn dates_are_utc_seconds() {
        let at = bson::DateTime::from_millis(1_700_000_000_123);
        assert_eq!(date(at), "2023-11-14 22:13:20");
    }
}
