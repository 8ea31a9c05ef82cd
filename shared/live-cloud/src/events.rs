//! Live events from stored runs and node executions: what a stream record of the table means
//! ([`run_events`], [`node_events`]) and a run's replay from its stored state ([`replay`]).
//!
//! Event ids are times in milliseconds (see the crate documentation):
//!
//! | event | `eventId` = `atMs` | from |
//! |---|---|---|
//! | `run.started` | the run's `startedAt` | a run item inserted |
//! | `node.started` | the visit's `startedAt` | a node-execution item inserted, or put `running` again |
//! | `node.succeeded` / `node.failed` | the visit's `endedAt` | a node-execution item whose status became `succeeded` / `failed` |
//! | `run.finished` | the run's `endedAt` | a run item whose status became final |
//!
//! Events of one millisecond are ordered `run.started`, `node.started`, node ends,
//! `run.finished`.

use cm_api::live::{LiveEvent, PREVIEW_BYTES, preview};
use cm_store::{NodeExecution, RunRecord, RunStatus};

/// How a stream record says its item was written (`eventName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// `INSERT`: the item is new (no old image).
    Insert,
    /// `MODIFY`: the item was there before.
    Modify,
    /// `REMOVE`: the item was deleted (no new image; no live event).
    Remove,
}

impl Write {
    /// Parses `INSERT`, `MODIFY`, `REMOVE`.
    pub fn parse(event_name: &str) -> Option<Write> {
        match event_name {
            "INSERT" => Some(Write::Insert),
            "MODIFY" => Some(Write::Modify),
            "REMOVE" => Some(Write::Remove),
            _ => None,
        }
    }
}

/// An event id from a time (ms; times before the epoch are 0).
pub fn event_id(at_ms: i64) -> u64 {
    u64::try_from(at_ms).unwrap_or(0)
}

fn base(kind: &str, run_id: &str, workflow_id: &str, at_ms: i64) -> LiveEvent {
    LiveEvent {
        kind: kind.to_owned(),
        run_id: run_id.to_owned(),
        workflow_id: workflow_id.to_owned(),
        event_id: event_id(at_ms),
        at_ms,
        node_id: None,
        duration_ms: None,
        output_preview: None,
        error: None,
        cause: None,
        status: None,
    }
}

/// `run.started` of a run.
pub fn run_started(run: &RunRecord) -> LiveEvent {
    base("run.started", &run.id, &run.workflow_id, run.started_at_ms)
}

/// `run.finished` of an ended run (status, duration, output preview, error, cause).
pub fn run_finished(run: &RunRecord) -> LiveEvent {
    let at = run.ended_at_ms.unwrap_or(run.started_at_ms);
    let mut ev = base("run.finished", &run.id, &run.workflow_id, at);
    ev.status = Some(run.status.as_str().to_owned());
    ev.duration_ms = Some(at - run.started_at_ms);
    ev.output_preview = run.output.as_ref().map(|o| preview(o, PREVIEW_BYTES));
    ev.error = run.error.clone();
    ev.cause = run.cause.clone();
    ev
}

/// `node.started` of a visit.
pub fn node_started(workflow_id: &str, run_id: &str, node: &NodeExecution) -> LiveEvent {
    let mut ev = base("node.started", run_id, workflow_id, node.started_at_ms);
    ev.node_id = Some(node.node_id.clone());
    ev
}

/// `node.succeeded` / `node.failed` of a visit that ended (`None` while it runs).
pub fn node_ended(workflow_id: &str, run_id: &str, node: &NodeExecution) -> Option<LiveEvent> {
    let kind = match node.status.as_str() {
        "succeeded" => "node.succeeded",
        "failed" => "node.failed",
        _ => return None,
    };
    let at = node.ended_at_ms.unwrap_or(node.started_at_ms);
    let mut ev = base(kind, run_id, workflow_id, at);
    ev.node_id = Some(node.node_id.clone());
    ev.duration_ms = Some(at - node.started_at_ms);
    if kind == "node.succeeded" {
        ev.output_preview = node.output_preview.clone();
    } else {
        ev.error = node.error.clone();
    }
    Some(ev)
}

fn is_final(run: &RunRecord) -> bool {
    run.status != RunStatus::Running
}

/// The events of a run item's write. With the old image (`NEW_AND_OLD_IMAGES` streams) only
/// a change of status counts; without it, any write of a finished run is `run.finished` again
/// (same id). A run made running again (redrive) gives no event, as in the embedded server.
pub fn run_events(write: Write, new: &RunRecord, old: Option<&RunRecord>) -> Vec<LiveEvent> {
    match (write, old) {
        (Write::Remove, _) => Vec::new(),
        (Write::Insert, _) => {
            let mut out = vec![run_started(new)];
            if is_final(new) {
                out.push(run_finished(new));
            }
            out
        }
        (Write::Modify, Some(old)) if !is_final(old) && is_final(new) => vec![run_finished(new)],
        (Write::Modify, Some(_)) => Vec::new(),
        (Write::Modify, None) if is_final(new) => vec![run_finished(new)],
        (Write::Modify, None) => Vec::new(),
    }
}

/// The events of a node-execution item's write (`workflow_id` is the run's: node items do
/// not carry it). A first write is `node.started` (and the end, if the visit was first written
/// when it had ended); later writes are the visit's end, or `node.started` if it runs again.
/// With the old image, a write that changes neither status nor times gives nothing.
pub fn node_events(
    write: Write,
    workflow_id: &str,
    run_id: &str,
    new: &NodeExecution,
    old: Option<&NodeExecution>,
) -> Vec<LiveEvent> {
    let ended = node_ended(workflow_id, run_id, new);
    match write {
        Write::Remove => Vec::new(),
        Write::Insert => std::iter::once(node_started(workflow_id, run_id, new))
            .chain(ended)
            .collect(),
        Write::Modify => {
            if let Some(old) = old
                && old.status == new.status
                && old.started_at_ms == new.started_at_ms
                && old.ended_at_ms == new.ended_at_ms
            {
                return Vec::new();
            }
            match ended {
                Some(ev) => vec![ev],
                None => vec![node_started(workflow_id, run_id, new)],
            }
        }
    }
}

fn rank(kind: &str) -> u8 {
    match kind {
        "run.started" => 0,
        "node.started" => 1,
        "run.finished" => 3,
        _ => 2,
    }
}

/// A run's events rebuilt from its stored state (the run and its node executions), in order,
/// from event id `after` on (**inclusive**: events of the millisecond the client saw last come
/// again; it drops those it has). Each visit gives `node.started` and, if it ended, its end.
pub fn replay(run: &RunRecord, nodes: &[NodeExecution], after: u64) -> Vec<LiveEvent> {
    let mut out = vec![run_started(run)];
    for n in nodes {
        out.push(node_started(&run.workflow_id, &run.id, n));
        out.extend(node_ended(&run.workflow_id, &run.id, n));
    }
    if is_final(run) {
        out.push(run_finished(run));
    }
    out.retain(|e| e.event_id >= after);
    out.sort_by_key(|e| (e.event_id, rank(&e.kind)));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn run(status: RunStatus) -> RunRecord {
        RunRecord {
            id: "r1".into(),
            workflow_id: "wf".into(),
            workflow_version: 1,
            execution_arn: "arn".into(),
            status,
            trigger: "trigger.manual".into(),
            input: json!({}),
            output: (status == RunStatus::Succeeded).then(|| json!({"x": "y".repeat(3000)})),
            error: None,
            cause: None,
            idempotency_key: None,
            started_by: "ada".into(),
            started_at_ms: 100,
            ended_at_ms: (status != RunStatus::Running).then_some(150),
            retry_of: None,
        }
    }

    fn node(id: &str, status: &str, started: i64, ended: Option<i64>) -> NodeExecution {
        NodeExecution {
            node_id: id.into(),
            step: format!("{id}#1"),
            status: status.into(),
            started_at_ms: started,
            ended_at_ms: ended,
            output_preview: (status == "succeeded").then(|| "{\"ok\":true}".into()),
            error: (status == "failed").then(|| "Boom".into()),
        }
    }

    fn kinds(evs: &[LiveEvent]) -> Vec<(String, u64, Option<String>)> {
        evs.iter()
            .map(|e| (e.kind.clone(), e.event_id, e.node_id.clone()))
            .collect()
    }

    #[test]
    fn run_writes() {
        let running = run(RunStatus::Running);
        let done = run(RunStatus::Succeeded);
        assert_eq!(
            kinds(&run_events(Write::Insert, &running, None)),
            [("run.started".into(), 100, None)]
        );
        // A counter bump of a running run, with or without the old image.
        assert!(run_events(Write::Modify, &running, None).is_empty());
        assert!(run_events(Write::Modify, &running, Some(&running)).is_empty());
        let fin = run_events(Write::Modify, &done, Some(&running));
        assert_eq!(kinds(&fin), [("run.finished".into(), 150, None)]);
        assert_eq!(fin[0].status.as_deref(), Some("SUCCEEDED"));
        assert_eq!(fin[0].duration_ms, Some(50));
        assert!(fin[0].output_preview.as_ref().unwrap().ends_with('…'));
        // A later write of a finished run: nothing with the old image, again without.
        assert!(run_events(Write::Modify, &done, Some(&done)).is_empty());
        assert_eq!(run_events(Write::Modify, &done, None).len(), 1);
        // Redrive: running again.
        assert!(run_events(Write::Modify, &running, Some(&done)).is_empty());
        assert!(run_events(Write::Remove, &done, None).is_empty());
    }

    #[test]
    fn node_writes() {
        let started = node("a", "running", 110, None);
        let ok = node("a", "succeeded", 110, Some(120));
        let bad = node("a", "failed", 110, Some(125));
        assert_eq!(
            kinds(&node_events(Write::Insert, "wf", "r1", &started, None)),
            [("node.started".into(), 110, Some("a".into()))]
        );
        // First written when it had ended: both.
        assert_eq!(
            kinds(&node_events(Write::Insert, "wf", "r1", &ok, None)),
            [
                ("node.started".into(), 110, Some("a".into())),
                ("node.succeeded".into(), 120, Some("a".into()))
            ]
        );
        let end = node_events(Write::Modify, "wf", "r1", &bad, Some(&started));
        assert_eq!(kinds(&end), [("node.failed".into(), 125, Some("a".into()))]);
        assert_eq!(end[0].error.as_deref(), Some("Boom"));
        assert_eq!(end[0].duration_ms, Some(15));
        assert_eq!(end[0].workflow_id, "wf");
        assert!(node_events(Write::Modify, "wf", "r1", &ok, Some(&ok)).is_empty());
        assert_eq!(
            node_events(Write::Modify, "wf", "r1", &ok, None)[0].output_preview,
            ok.output_preview
        );
    }

    #[test]
    fn replay_rebuilds_the_stored_state_from_after_inclusive() {
        let done = run(RunStatus::Succeeded);
        let nodes = [
            node("a", "succeeded", 110, Some(120)),
            node("b", "running", 120, None),
            node("c", "failed", 100, Some(150)),
        ];
        let all = replay(&done, &nodes, 0);
        assert_eq!(
            kinds(&all),
            [
                ("run.started".into(), 100, None),
                ("node.started".into(), 100, Some("c".into())),
                ("node.started".into(), 110, Some("a".into())),
                ("node.started".into(), 120, Some("b".into())),
                ("node.succeeded".into(), 120, Some("a".into())),
                ("node.failed".into(), 150, Some("c".into())),
                ("run.finished".into(), 150, None),
            ]
        );
        let later = replay(&done, &nodes, 120);
        assert_eq!(later.len(), 4);
        assert_eq!(later[0].event_id, 120);
        assert!(replay(&done, &nodes, 151).is_empty());
    }
}
