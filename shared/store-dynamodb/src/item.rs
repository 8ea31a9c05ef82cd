//! Items as attribute maps: building them, reading them back, and their size.
//!
//! JSON values (definitions, run inputs and outputs, form data, audit details) are stored as
//! their JSON text in a string attribute: exact (numbers, `null`, key order) and cheap to
//! size. Numbers are `N`, flags `BOOL`; an absent `Option` is an absent attribute.

use crate::MAX_ITEM_BYTES;
use aws_sdk_dynamodb::types::AttributeValue;
use cm_store::{Result, StoreError};
use serde_json::Value;
use std::collections::HashMap;
use std::str::FromStr;

/// One item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A JSON value's text.
pub(crate) fn json_text(v: &Value) -> String {
    v.to_string()
}

/// Builds an item attribute by attribute.
#[derive(Debug, Default)]
pub(crate) struct Builder(Item);

impl Builder {
    /// An item with its table key.
    pub(crate) fn new(pk: String, sk: impl Into<String>) -> Builder {
        Builder(Item::from([
            ("pk".to_owned(), s(pk)),
            ("sk".to_owned(), s(sk)),
        ]))
    }

    /// Sets a string.
    pub(crate) fn s(mut self, name: &str, v: impl Into<String>) -> Builder {
        self.0.insert(name.to_owned(), s(v));
        self
    }

    /// Sets a string if there is one.
    pub(crate) fn opt_s(self, name: &str, v: Option<impl Into<String>>) -> Builder {
        match v {
            Some(v) => self.s(name, v),
            None => self,
        }
    }

    /// Sets a number.
    pub(crate) fn n(mut self, name: &str, v: impl ToString) -> Builder {
        self.0.insert(name.to_owned(), n(v));
        self
    }

    /// Sets a number if there is one.
    pub(crate) fn opt_n(self, name: &str, v: Option<impl ToString>) -> Builder {
        match v {
            Some(v) => self.n(name, v),
            None => self,
        }
    }

    /// Sets a flag.
    pub(crate) fn b(mut self, name: &str, v: bool) -> Builder {
        self.0.insert(name.to_owned(), AttributeValue::Bool(v));
        self
    }

    /// The item, if it fits DynamoDB's item size limit (`Invalid` naming `what` otherwise).
    pub(crate) fn build(self, what: &str) -> Result<Item> {
        check_item_size(&self.0, what)?;
        Ok(self.0)
    }
}

/// The key of an item (`pk`, `sk`).
pub(crate) fn key(pk: String, sk: impl Into<String>) -> Item {
    Item::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// DynamoDB's size of an attribute value (UTF-8 bytes of strings, about the digits of numbers).
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, x)| 1 + k.len() + value_size(x))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// `Invalid` if an item is over DynamoDB's 400 KB limit.
pub(crate) fn check_item_size(item: &Item, what: &str) -> Result<()> {
    let size: usize = item.iter().map(|(k, v)| k.len() + value_size(v)).sum();
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::Invalid(format!(
            "the {what} is {size} bytes as a DynamoDB item; the limit is {MAX_ITEM_BYTES} bytes"
        )));
    }
    Ok(())
}

/// `Invalid` if a JSON text is over `limit` bytes.
pub(crate) fn check_json_size(text: &str, what: &str, limit: usize) -> Result<()> {
    if text.len() > limit {
        return Err(StoreError::Invalid(format!(
            "the {what} is {} bytes of JSON; the DynamoDB store takes at most {limit} bytes \
             (the 400 KB item limit)",
            text.len()
        )));
    }
    Ok(())
}

/// Reads attributes of a stored item; a missing or mistyped attribute is a `Backend` error
/// (the table holds something this store did not write).
pub(crate) struct Reader<'a> {
    item: &'a Item,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `item`, a `what` (for errors).
    pub(crate) fn new(item: &'a Item, what: &'static str) -> Reader<'a> {
        Reader { item, what }
    }

    fn bad(&self, name: &str) -> StoreError {
        let at = match self.item.get("pk") {
            Some(AttributeValue::S(pk)) => pk.as_str(),
            _ => "?",
        };
        StoreError::Backend(format!(
            "stored {} item `{at}` has no valid attribute `{name}`",
            self.what
        ))
    }

    /// An optional string.
    pub(crate) fn opt_s(&self, name: &str) -> Result<Option<String>> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.bad(name)),
        }
    }

    /// A string.
    pub(crate) fn s(&self, name: &str) -> Result<String> {
        self.opt_s(name)?.ok_or_else(|| self.bad(name))
    }

    /// An optional number.
    pub(crate) fn opt_n<T: FromStr>(&self, name: &str) -> Result<Option<T>> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| self.bad(name)),
            Some(_) => Err(self.bad(name)),
        }
    }

    /// A number.
    pub(crate) fn n<T: FromStr>(&self, name: &str) -> Result<T> {
        self.opt_n(name)?.ok_or_else(|| self.bad(name))
    }

    /// A flag (absent is `false`).
    pub(crate) fn b(&self, name: &str) -> Result<bool> {
        match self.item.get(name) {
            None => Ok(false),
            Some(AttributeValue::Bool(v)) => Ok(*v),
            Some(_) => Err(self.bad(name)),
        }
    }

    /// An optional JSON value (stored as its text).
    pub(crate) fn opt_json(&self, name: &str) -> Result<Option<Value>> {
        self.opt_s(name)?
            .map(|t| serde_json::from_str(&t).map_err(|_| self.bad(name)))
            .transpose()
    }

    /// A JSON value.
    pub(crate) fn json(&self, name: &str) -> Result<Value> {
        self.opt_json(name)?.ok_or_else(|| self.bad(name))
    }
}

/// The string value of attribute `name`, if it is one.
pub(crate) fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// The search text of a workflow: lowercased id, name and description separated by U+001F
/// (as the reference store: a needle cannot match across two fields).
pub(crate) fn search_text(id: &str, name: &str, description: &str) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        id.to_lowercase(),
        name.to_lowercase(),
        description.to_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    #[test]
    fn oversized_items_are_invalid() {
        let big = "x".repeat(MAX_ITEM_BYTES);
        let err = Builder::new(keys::audit("o"), "E#1")
            .s("details", big)
            .build("audit event");
        match err {
            Err(StoreError::Invalid(m)) => assert!(m.contains("limit is 409600"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
