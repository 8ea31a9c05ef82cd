//! [`AuditStore`]: one partition per organisation; events are keyed by a per-organisation
//! sequence number (an atomic counter item in the same partition), so a descending Query
//! lists them newest first in append order, whatever `at_ms` the callers gave.

use crate::DynamoStore;
use crate::db::{Expr, Query};
use crate::item::{self, Builder, Item, Reader, json_text, n};
use crate::keys::{self, cursor};
use aws_sdk_dynamodb::types::ReturnValue;
use cm_store::{AuditEvent, AuditStore, Page, Result, StoreError, check_limit};

fn event_from(item: &Item) -> Result<(i64, AuditEvent)> {
    let r = Reader::new(item, "audit event");
    Ok((
        r.n("seq")?,
        AuditEvent {
            at_ms: r.n("atMs")?,
            actor: r.s("actor")?,
            action: r.s("action")?,
            target: r.s("target")?,
            details: r.json("details")?,
        },
    ))
}

impl AuditStore for DynamoStore {
    async fn append(&self, org: &str, event: AuditEvent) -> Result<()> {
        let pk = keys::audit(org);
        // Check the size before taking a sequence number.
        let probe = Builder::new(pk.clone(), keys::audit_sk(0))
            .n("seq", i64::MAX)
            .n("atMs", event.at_ms)
            .s("actor", &event.actor)
            .s("action", &event.action)
            .s("target", &event.target)
            .s("details", json_text(&event.details))
            .build("audit event")?;
        let counter = self
            .update_returning(
                item::key(pk.clone(), keys::AUDIT_SEQ_SK),
                "ADD #seq :one",
                None,
                Expr::new().name("#seq", "seq").value(":one", n(1)),
                ReturnValue::UpdatedNew,
            )
            .await?
            .ok_or_else(|| StoreError::Backend("the audit counter did not answer".into()))?;
        let seq: i64 = Reader::new(&counter, "audit counter").n("seq")?;
        let mut item = probe;
        item.insert("sk".to_owned(), item::s(keys::audit_sk(seq)));
        item.insert("seq".to_owned(), n(seq));
        self.put(item, None).await?;
        Ok(())
    }

    async fn list_audit(
        &self,
        org: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Page<AuditEvent>> {
        let limit = check_limit(limit)?;
        let before = cursor::parse_audit(cursor.as_deref())?;
        let q = Query::table(keys::audit(org), Some(keys::AUDIT_PREFIX)).descending();
        let start = before.map(|seq| item::key(keys::audit(org), keys::audit_sk(seq)));
        let (items, more) = self.query_page(&q, limit, start).await?;
        let found = items.iter().map(event_from).collect::<Result<Vec<_>>>()?;
        let next_cursor = more
            .then(|| found.last().map(|(seq, _)| cursor::audit(*seq)))
            .flatten();
        Ok(Page {
            items: found.into_iter().map(|(_, e)| e).collect(),
            next_cursor,
        })
    }
}
