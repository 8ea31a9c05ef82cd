//! Opaque page cursors: base64url of a small JSON array of the last item's sort key.

use crate::{Result, StoreError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// A decoded cursor: the sort key of the last item of the previous page.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor(pub Vec<Value>);

impl Cursor {
    /// Encodes the key of the last item.
    pub fn encode(key: Vec<Value>) -> String {
        URL_SAFE_NO_PAD.encode(Value::Array(key).to_string())
    }

    /// Decodes a cursor given back by a client; anything else is `Invalid`.
    pub fn decode(s: &str) -> Result<Cursor> {
        let bad = || StoreError::Invalid(format!("cursor `{s}` is not one this API returned"));
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        match serde_json::from_slice(&bytes).map_err(|_| bad())? {
            Value::Array(items) => Ok(Cursor(items)),
            _ => Err(bad()),
        }
    }

    /// The `i`th key part as a string.
    pub fn str(&self, i: usize) -> Result<&str> {
        self.0
            .get(i)
            .and_then(Value::as_str)
            .ok_or_else(|| StoreError::Invalid("cursor does not fit this list".into()))
    }

    /// The `i`th key part as an integer.
    pub fn int(&self, i: usize) -> Result<i64> {
        self.0
            .get(i)
            .and_then(Value::as_i64)
            .ok_or_else(|| StoreError::Invalid("cursor does not fit this list".into()))
    }
}

/// The cursor of a dataset record list after record `key` (every [`crate::DatasetStore`]
/// adapter uses it, so a cursor means the same on each).
pub fn record_cursor(key: &str) -> String {
    Cursor::encode(vec![Value::from("d"), Value::from(key)])
}

/// The key a [`record_cursor`] continues after; a cursor of another list is `Invalid`.
pub fn parse_record_cursor(cursor: Option<&str>) -> Result<Option<String>> {
    cursor
        .map(|c| {
            let c = Cursor::decode(c)?;
            if c.0.len() != 2 || c.str(0)? != "d" {
                return Err(StoreError::Invalid("cursor does not fit this list".into()));
            }
            Ok(c.str(1)?.to_owned())
        })
        .transpose()
}
