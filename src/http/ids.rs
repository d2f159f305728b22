//! Ids as clients send them: numbers (as JSON numbers or text) and 24-hex ObjectIds.

use bson::oid::ObjectId;
use serde::{Deserialize, Deserializer};

use crate::error::Error;

/// An id as it arrives: a JSON number, or text (form fields and query parameters always are).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IdValue {
    Number(i64),
    Text(String),
}

/// Why an [`IdValue`] is not an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadId {
    Blank,
    NotAnInteger,
}

impl IdValue {
    pub fn integer(&self) -> Result<i64, BadId> {
        match self {
            Self::Number(n) => Ok(*n),
            Self::Text(t) if t.trim().is_empty() => Err(BadId::Blank),
            Self::Text(t) => t.trim().parse().map_err(|_| BadId::NotAnInteger),
        }
    }
}

/// A numeric id that must be one: a non-negative integer, as a JSON string or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericId(pub i64);

impl<'de> Deserialize<'de> for NumericId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = IdValue::deserialize(deserializer)?;
        let id = match &raw {
            IdValue::Number(n) if *n >= 0 => Ok(*n),
            IdValue::Text(text) => parse_id(text),
            IdValue::Number(n) => Err(format!("{n} is not a numeric id")),
        };
        id.map(Self).map_err(serde::de::Error::custom)
    }
}

/// A non-negative integer id written as text.
pub fn parse_id(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("{text:?} is not a numeric id"))
}

/// A 24-hex ObjectId from a path, a query or a body.
pub fn object_id(raw: &str, what: &str) -> Result<ObjectId, Error> {
    ObjectId::parse_str(raw.trim())
        .map_err(|_| Error::invalid(format!("{what} must be a 24-hex id")))
}

pub fn object_ids(raw: &[String], what: &str) -> Result<Vec<ObjectId>, Error> {
    raw.iter().map(|id| object_id(id, what)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_come_as_strings_or_numbers() {
        let id: NumericId = serde_json::from_str("\"1596544373547\"").unwrap();
        assert_eq!(id, NumericId(1596544373547));
        let id: NumericId = serde_json::from_str("42").unwrap();
        assert_eq!(id, NumericId(42));
        assert!(serde_json::from_str::<NumericId>("\"-1\"").is_err());
        assert!(serde_json::from_str::<NumericId>("-1").is_err());
        assert!(serde_json::from_str::<NumericId>("\"x\"").is_err());
    }

    #[test]
    fn id_values_say_why_they_are_not_integers() {
        assert_eq!(IdValue::Text(" 7 ".into()).integer(), Ok(7));
        assert_eq!(IdValue::Number(-3).integer(), Ok(-3));
        assert_eq!(IdValue::Text(" ".into()).integer(), Err(BadId::Blank));
        assert_eq!(
            IdValue::Text("x".into()).integer(),
            Err(BadId::NotAnInteger)
        );
    }

    #[test]
    fn object_ids_are_24_hex() {
        assert!(object_id("68dceda44d3ce8d31c0468b7", "id").is_ok());
        assert!(object_id("nope", "id").is_err());
    }
}
