//! Reading the table's DynamoDB Streams images: what a stream consumer (the cloud's
//! status-pusher function) gets for each write, decoded with the same readers the store uses.
//!
//! Only run items (`ORG#<org>#RUN#<id>` / `RUN`) and node-execution items
//! (`ORG#<org>#RUN#<run>` / `N#<node>#<step>`) are [`Change`]s; every other item of the table
//! (workflows, connections, audit, …) is `Ok(None)`. The organisation is read from the
//! partition key (run items do not carry it as an attribute), undoing the key escaping of
//! `docs/dynamodb.md`.
//!
//! The image is `HashMap<String, AttributeValue>` of `aws-sdk-dynamodb`: a Lambda event
//! (`aws_lambda_events`, whose images are `serde_dynamo` items) or the DynamoDB Streams API
//! converts to it attribute by attribute.
//!
//! A run write through [`RunStore`](cm_store::RunStore) shows up as follows (one stream record
//! per item written):
//!
//! | call | records |
//! |---|---|
//! | `create_run` | `INSERT` of the run (status `RUNNING`) |
//! | `put_node_execution` | `MODIFY` of the run (its `nodeSeq` counter), then `INSERT` (first put of a visit) or `MODIFY` of the node execution |
//! | `finish_run` | `MODIFY` of the run (final status, end, output/error/cause) |
//! | `reopen_run` | `MODIFY` of the run (`RUNNING` again) |

use crate::item::{Item, str_attr};
use crate::keys;
use crate::runs::{node_from, run_from};
use cm_store::{NodeExecution, Result, RunRecord};

/// What a stream image of the table is, for live status.
// One short-lived value per stream record: not worth boxing the run.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A run item: the run as it is after the write.
    Run {
        /// The run's organisation.
        org: String,
        /// The run.
        run: RunRecord,
    },
    /// A node-execution item: the visit as it is after the write.
    Node {
        /// The run's organisation.
        org: String,
        /// The run the visit belongs to.
        run_id: String,
        /// The visit.
        node: NodeExecution,
    },
}

impl Change {
    /// The organisation.
    pub fn org(&self) -> &str {
        match self {
            Change::Run { org, .. } | Change::Node { org, .. } => org,
        }
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        match self {
            Change::Run { run, .. } => &run.id,
            Change::Node { run_id, .. } => run_id,
        }
    }
}

/// Decodes one stream image (`NewImage` or `OldImage`) of the table.
///
/// `Ok(None)` for an empty image (a `KEYS_ONLY` stream, the new image of a `REMOVE`), an image
/// of the key alone (moto records one for an UpdateItem that creates an item, before the
/// update's attributes; DynamoDB does not) and for items that are neither runs nor node
/// executions; `Err` (`Backend`, naming the attribute) for a run or node-execution item this
/// store cannot read back.
pub fn decode(image: &Item) -> Result<Option<Change>> {
    let (Some(pk), Some(sk)) = (str_attr(image, "pk"), str_attr(image, "sk")) else {
        return Ok(None);
    };
    if image.len() == 2 {
        return Ok(None);
    }
    let Some((org, run_id)) = parse_run_partition(pk) else {
        return Ok(None);
    };
    if sk == keys::RUN_SK {
        let run = run_from(image)?;
        return Ok(Some(Change::Run { org, run }));
    }
    if sk.starts_with(keys::NODE_PREFIX) {
        let (_, node) = node_from(image)?;
        return Ok(Some(Change::Node { org, run_id, node }));
    }
    Ok(None)
}

/// `(org, run id)` of a run partition key `ORG#<escaped org>#RUN#<run id>`.
fn parse_run_partition(pk: &str) -> Option<(String, String)> {
    let rest = pk.strip_prefix("ORG#")?;
    // The organisation is escaped (it is followed by other parts): it has no raw `#`.
    let (org, rest) = rest.split_once('#')?;
    let run_id = rest.strip_prefix("RUN#")?;
    Some((unescape(org)?, run_id.to_owned()))
}

/// Undoes `keys::esc` (`%25` → `%`, `%23` → `#`); `None` for text `esc` never writes.
fn unescape(part: &str) -> Option<String> {
    let mut out = String::with_capacity(part.len());
    let mut rest = part;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i..i + 3)?;
        out.push(match code {
            "%25" => '%',
            "%23" => '#',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::item::{self, Builder, s};
    use crate::runs::run_item;
    use cm_store::RunStatus;
    use serde_json::json;

    fn run(id: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            workflow_id: "wf#1".into(),
            workflow_version: 3,
            execution_arn: "arn:aws:states:eu-west-1:1:execution:o.wf:r".into(),
            status: RunStatus::Failed,
            trigger: "trigger.manual".into(),
            input: json!({"a": [1, 2.5, null]}),
            output: None,
            error: Some("Boom".into()),
            cause: Some("it broke".into()),
            idempotency_key: Some("k".into()),
            started_by: "ada".into(),
            started_at_ms: 10,
            ended_at_ms: Some(20),
            retry_of: None,
        }
    }

    #[test]
    fn run_partitions_round_trip_through_the_key_escaping() {
        for org in ["acme", "a#b", "a%23b", "%#%", "", "x%25"] {
            for id in ["r1", "r#2", "r%3"] {
                let pk = keys::run(org, id);
                assert_eq!(
                    parse_run_partition(&pk),
                    Some((org.to_owned(), id.to_owned())),
                    "{pk}"
                );
            }
        }
        assert_eq!(parse_run_partition(&keys::run_key("o", "wf", "k")), None);
        assert_eq!(parse_run_partition(&keys::workflows("o")), None);
        assert_eq!(parse_run_partition("ORG#a%2#RUN#r"), None);
    }

    #[test]
    fn run_items_decode_to_the_run_written() {
        let r = run("r#1");
        let item = run_item("o#g", &r).unwrap();
        assert_eq!(
            decode(&item).unwrap(),
            Some(Change::Run {
                org: "o#g".into(),
                run: r
            })
        );
    }

    #[test]
    fn node_items_decode_and_other_items_are_none() {
        let item = Builder::new(keys::run("o", "r"), keys::node_sk("n#1", "s1"))
            .s("nodeId", "n#1")
            .s("step", "s1")
            .s("status", "succeeded")
            .n("startedAt", 5)
            .n("endedAt", 7)
            .s("outputPreview", "{}")
            .n("firstSeq", 2)
            .build("node")
            .unwrap();
        let change = decode(&item).unwrap().unwrap();
        assert_eq!(change.org(), "o");
        assert_eq!(change.run_id(), "r");
        let Change::Node { node, .. } = change else {
            panic!("{change:?}")
        };
        assert_eq!(node.node_id, "n#1");
        assert_eq!(node.ended_at_ms, Some(7));
        assert_eq!(node.error, None);

        let key_only = item::key(keys::run("o", "r"), keys::node_sk("n", "s"));
        assert_eq!(decode(&key_only).unwrap(), None);
        let conn = Builder::new(keys::connection("c"), keys::CONN_SK)
            .build("c")
            .unwrap();
        assert_eq!(decode(&conn).unwrap(), None);
        assert_eq!(decode(&Item::new()).unwrap(), None);
        let mut bad = run_item("o", &run("r")).unwrap();
        bad.insert("status".into(), s("SLEEPING"));
        assert!(decode(&bad).is_err());
    }
}
