//! Key values of the single table (see `docs/dynamodb.md`) and the page cursors.
//!
//! Every partition key of organisation data starts with `ORG#<org>`. `#` separates the parts
//! of a key; a part that is not the last is escaped (`%` → `%25`, `#` → `%23`) so that two
//! different tuples never give the same key. The last part is written as it is, so that keys
//! sort by it exactly as the reference store sorts ids (by bytes).

use cm_store::{Cursor, Result, StoreError};
use serde_json::Value;
use std::borrow::Cow;

/// Sort key of a workflow summary.
pub(crate) const SUMMARY_PREFIX: &str = "W#";
/// Sort key of a deleted workflow's tombstone.
pub(crate) const TOMBSTONE_PREFIX: &str = "X#";
/// Sort key prefix of a version.
pub(crate) const VERSION_PREFIX: &str = "V#";
/// Sort key of a run (and of single-item partitions: idempotency keys, routes, connections).
pub(crate) const RUN_SK: &str = "RUN";
/// Sort key prefix of a node execution.
pub(crate) const NODE_PREFIX: &str = "N#";
/// Sort key of an idempotency key item.
pub(crate) const KEY_SK: &str = "KEY";
/// Sort key prefix of a form response.
pub(crate) const RESPONSE_PREFIX: &str = "R#";
/// Sort key of a route.
pub(crate) const ROUTE_SK: &str = "ROUTE";
/// Sort key of a connection.
pub(crate) const CONN_SK: &str = "CONN";
/// Sort key prefix of a connection's subscription (back reference).
pub(crate) const SUB_PREFIX: &str = "SUB#";
/// Sort key prefix of a subscriber under a topic.
pub(crate) const SUBSCRIBER_PREFIX: &str = "CONN#";
/// Sort key prefix of an audit event.
pub(crate) const AUDIT_PREFIX: &str = "E#";
/// Sort key of an organisation's audit sequence counter.
pub(crate) const AUDIT_SEQ_SK: &str = "SEQ";

/// Escapes a key part that is followed by another.
pub(crate) fn esc(part: &str) -> Cow<'_, str> {
    if part.contains(['#', '%']) {
        Cow::Owned(part.replace('%', "%25").replace('#', "%23"))
    } else {
        Cow::Borrowed(part)
    }
}

fn org(org: &str) -> String {
    format!("ORG#{}", esc(org))
}

/// An `i64` as 20 digits that sort like the numbers (the sign bit flipped).
pub(crate) fn sortable(at: i64) -> String {
    format!("{:020}", (at as u64) ^ (1 << 63))
}

/// `<sortable time>#<id>`: a GSI sort key, newest last.
pub(crate) fn time_id(at: i64, id: &str) -> String {
    format!("{}#{id}", sortable(at))
}

/// The partition of an organisation's workflow summaries and tombstones.
pub(crate) fn workflows(o: &str) -> String {
    format!("{}#WF", org(o))
}

/// A workflow summary's sort key.
pub(crate) fn summary_sk(id: &str) -> String {
    format!("{SUMMARY_PREFIX}{id}")
}

/// A tombstone's sort key.
pub(crate) fn tombstone_sk(id: &str) -> String {
    format!("{TOMBSTONE_PREFIX}{id}")
}

/// The partition of a workflow's versions.
pub(crate) fn versions(o: &str, id: &str) -> String {
    format!("{}#WFV#{id}", org(o))
}

/// A version's sort key (zero-padded so that versions sort by number).
pub(crate) fn version_sk(v: u32) -> String {
    format!("{VERSION_PREFIX}{v:010}")
}

/// The partition of a run and its node executions.
pub(crate) fn run(o: &str, id: &str) -> String {
    format!("{}#RUN#{id}", org(o))
}

/// A node execution's sort key.
pub(crate) fn node_sk(node_id: &str, step: &str) -> String {
    format!("{NODE_PREFIX}{}#{step}", esc(node_id))
}

/// GSI1 partition of an organisation's runs.
pub(crate) fn runs_of_org(o: &str) -> String {
    format!("{}#RUNS", org(o))
}

/// GSI2 partition of a workflow's runs.
pub(crate) fn runs_of_workflow(o: &str, workflow_id: &str) -> String {
    format!("{}#WFRUNS#{workflow_id}", org(o))
}

/// A run idempotency key's item.
pub(crate) fn run_key(o: &str, workflow_id: &str, key: &str) -> String {
    format!("{}#RUNKEY#{}#{key}", org(o), esc(workflow_id))
}

/// The partition of a workflow's form responses (also their GSI1 partition).
pub(crate) fn responses(o: &str, workflow_id: &str) -> String {
    format!("{}#FORM#{workflow_id}", org(o))
}

/// A form response's sort key.
pub(crate) fn response_sk(id: &str) -> String {
    format!("{RESPONSE_PREFIX}{id}")
}

/// A form response client key's item.
pub(crate) fn response_key(o: &str, workflow_id: &str, key: &str) -> String {
    format!("{}#FORMKEY#{}#{key}", org(o), esc(workflow_id))
}

/// A route's item (routes are global: the public key finds the organisation).
pub(crate) fn route(kind: &str, key: &str) -> String {
    format!("ROUTE#{}#{key}", esc(kind))
}

/// GSI2 partition of every route of a kind (`RouteIndex::list_routes`: the cloud's trigger
/// consumer finds the workflows a queue message is for).
pub(crate) fn routes_of_kind(kind: &str) -> String {
    format!("ROUTES#{}", esc(kind))
}

/// The partition of a workflow's route references.
pub(crate) fn workflow_routes(o: &str, workflow_id: &str) -> String {
    format!("{}#WFROUTES#{workflow_id}", org(o))
}

/// A route reference's sort key.
pub(crate) fn route_ref_sk(kind: &str, key: &str) -> String {
    format!("{}#{key}", esc(kind))
}

/// Sort key of a breaker state item.
pub(crate) const BREAKER_SK: &str = "BREAKER";
/// Sort key of an approval item.
pub(crate) const APPROVAL_SK: &str = "APPROVAL";
/// GSI2 partition of every organisation's approvals (the API's org-less approval list).
pub(crate) const ALL_APPROVALS: &str = "APPROVALS";

/// A circuit breaker's state item (breakers are global: a target is a host, whoever calls it).
pub(crate) fn breaker(target: &str) -> String {
    format!("BREAKER#{target}")
}

/// An approval's item (global: the approval page and the API find it by id alone).
pub(crate) fn approval(id: &str) -> String {
    format!("APPROVAL#{id}")
}

/// GSI1 partition of an organisation's approvals.
pub(crate) fn approvals_of_org(o: &str) -> String {
    format!("{}#APPROVALS", org(o))
}

/// The partition of a connection and its subscriptions.
pub(crate) fn connection(id: &str) -> String {
    format!("CONN#{id}")
}

/// A subscription's sort key under its connection.
pub(crate) fn sub_sk(topic: &str) -> String {
    format!("{SUB_PREFIX}{topic}")
}

/// The partition of a topic's subscribers.
pub(crate) fn topic(o: &str, topic: &str) -> String {
    format!("{}#TOPIC#{topic}", org(o))
}

/// A subscriber's sort key under its topic.
pub(crate) fn subscriber_sk(connection_id: &str) -> String {
    format!("{SUBSCRIBER_PREFIX}{connection_id}")
}

/// The partition of an organisation's audit log.
pub(crate) fn audit(o: &str) -> String {
    format!("{}#AUDIT", org(o))
}

/// An audit event's sort key: its sequence number, zero-padded.
pub(crate) fn audit_sk(seq: i64) -> String {
    format!("{AUDIT_PREFIX}{}", sortable(seq))
}

// ---------------------------------------------------------------- cursors

/// Page cursors: a tag naming the list, then the key of the last item on the page (the parts
/// of its `LastEvaluatedKey` that are not fixed by the request), through [`Cursor`]. The
/// partition parts (the organisation above all) are rebuilt from the request, so a cursor can
/// never reach into another organisation.
pub(crate) mod cursor {
    use super::*;

    fn invalid() -> StoreError {
        StoreError::Invalid("cursor does not fit this list".into())
    }

    fn decode(cursor: &str, tag: &str, len: usize) -> Result<Cursor> {
        let c = Cursor::decode(cursor)?;
        if c.0.len() != len || c.str(0)? != tag {
            return Err(invalid());
        }
        Ok(c)
    }

    /// After workflow `id`.
    pub(crate) fn workflow(id: &str) -> String {
        Cursor::encode(vec![Value::from("w"), Value::from(id)])
    }

    /// The id a workflow cursor continues after.
    pub(crate) fn parse_workflow(cursor: Option<&str>) -> Result<Option<String>> {
        cursor
            .map(|c| Ok(decode(c, "w", 2)?.str(1)?.to_owned()))
            .transpose()
    }

    /// Before version `v`.
    pub(crate) fn version(v: u32) -> String {
        Cursor::encode(vec![Value::from("v"), Value::from(v)])
    }

    /// The version a version cursor continues before.
    pub(crate) fn parse_version(cursor: Option<&str>) -> Result<Option<u32>> {
        cursor
            .map(|c| u32::try_from(decode(c, "v", 2)?.int(1)?).map_err(|_| invalid()))
            .transpose()
    }

    /// Before the run started at `at` with id `id`.
    pub(crate) fn run(at: i64, id: &str) -> String {
        Cursor::encode(vec![Value::from("r"), Value::from(at), Value::from(id)])
    }

    /// The (started, id) a run cursor continues before.
    pub(crate) fn parse_run(cursor: Option<&str>) -> Result<Option<(i64, String)>> {
        cursor
            .map(|c| {
                let c = decode(c, "r", 3)?;
                Ok((c.int(1)?, c.str(2)?.to_owned()))
            })
            .transpose()
    }

    /// Before the response submitted at `at` with id `id`.
    pub(crate) fn response(at: i64, id: &str) -> String {
        Cursor::encode(vec![Value::from("f"), Value::from(at), Value::from(id)])
    }

    /// The (submitted, id) a response cursor continues before.
    pub(crate) fn parse_response(cursor: Option<&str>) -> Result<Option<(i64, String)>> {
        cursor
            .map(|c| {
                let c = decode(c, "f", 3)?;
                Ok((c.int(1)?, c.str(2)?.to_owned()))
            })
            .transpose()
    }

    /// Before audit event `seq`.
    pub(crate) fn audit(seq: i64) -> String {
        Cursor::encode(vec![Value::from("a"), Value::from(seq)])
    }

    /// The sequence number an audit cursor continues before.
    pub(crate) fn parse_audit(cursor: Option<&str>) -> Result<Option<i64>> {
        cursor.map(|c| decode(c, "a", 2)?.int(1)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_times_sort_like_numbers() {
        let times = [i64::MIN, -5, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        let keys: Vec<String> = times.iter().map(|t| sortable(*t)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(keys.iter().all(|k| k.len() == 20));
    }

    #[test]
    fn escaped_parts_do_not_collide() {
        assert_ne!(run_key("o", "a#b", "c"), run_key("o", "a", "b#c"));
        assert_ne!(run_key("o", "a%23b", "c"), run_key("o", "a#b", "c"));
        assert_eq!(esc("plain"), "plain");
        assert_eq!(esc("a#b%c"), "a%23b%25c");
    }

    #[test]
    fn cursors_name_their_list() {
        let c = cursor::run(5, "r1");
        assert_eq!(
            cursor::parse_run(Some(&c)).ok(),
            Some(Some((5, "r1".into())))
        );
        assert!(cursor::parse_response(Some(&c)).is_err());
        assert!(cursor::parse_audit(Some("not a cursor")).is_err());
    }
}
