//! [`FormStore`]: one partition per (organisation, workflow) holding its responses by id,
//! GSI1 for newest first, client keys as separate items written in the same transaction.

use crate::db::{Expr, Query, Tx};
use crate::item::{self, Builder, Item, Reader, json_text, s};
use crate::keys::{self, cursor};
use crate::{DynamoStore, GSI1};
use cm_store::{Created, FormResponse, FormStore, Page, Result, StoreError, check_limit};

fn response_key(org: &str, workflow_id: &str, id: &str) -> Item {
    item::key(keys::responses(org, workflow_id), keys::response_sk(id))
}

fn response_item(org: &str, r: &FormResponse) -> Result<Item> {
    Builder::new(
        keys::responses(org, &r.workflow_id),
        keys::response_sk(&r.id),
    )
    .s("gsi1pk", keys::responses(org, &r.workflow_id))
    .s("gsi1sk", keys::time_id(r.submitted_at_ms, &r.id))
    .s("id", &r.id)
    .s("workflowId", &r.workflow_id)
    .opt_s("clientKey", r.client_key.as_deref())
    .s("data", json_text(&r.data))
    .n("submittedAt", r.submitted_at_ms)
    .opt_s("runId", r.run_id.as_deref())
    .build("form response")
}

fn response_from(item: &Item) -> Result<FormResponse> {
    let r = Reader::new(item, "form response");
    Ok(FormResponse {
        id: r.s("id")?,
        workflow_id: r.s("workflowId")?,
        client_key: r.opt_s("clientKey")?,
        data: r.json("data")?,
        submitted_at_ms: r.n("submittedAt")?,
        run_id: r.opt_s("runId")?,
    })
}

fn response_exists(id: &str) -> StoreError {
    StoreError::Conflict(format!("response `{id}` exists already"))
}

impl FormStore for DynamoStore {
    async fn add_response(
        &self,
        org: &str,
        response: FormResponse,
    ) -> Result<Created<FormResponse>> {
        let item = response_item(org, &response)?;
        let not_exists = || ("attribute_not_exists(pk)", Expr::new());
        let Some(key) = response.client_key.as_deref() else {
            return if self.put(item, Some(not_exists())).await? {
                Ok(Created::New(response))
            } else {
                Err(response_exists(&response.id))
            };
        };
        let key_item = Builder::new(
            keys::response_key(org, &response.workflow_id, key),
            keys::KEY_SK,
        )
        .s("responseId", &response.id)
        .build("client key")?;
        let tx = vec![
            self.tx_put(item, Some(not_exists()))?,
            self.tx_put(key_item, Some(not_exists()))?,
        ];
        let outcome = self.transact(tx).await?;
        if let Tx::Done = outcome {
            return Ok(Created::New(response));
        }
        if outcome.failed(1, true) {
            let k = self
                .get(item::key(
                    keys::response_key(org, &response.workflow_id, key),
                    keys::KEY_SK,
                ))
                .await?;
            if let Some(k) = k {
                let id = Reader::new(&k, "client key").s("responseId")?;
                if let Some(r) = self
                    .get(response_key(org, &response.workflow_id, &id))
                    .await?
                {
                    return Ok(Created::Existing(response_from(&r)?));
                }
            }
        }
        Err(response_exists(&response.id))
    }

    async fn set_response_run(
        &self,
        org: &str,
        workflow_id: &str,
        response_id: &str,
        run_id: &str,
    ) -> Result<()> {
        let updated = self
            .update_returning(
                response_key(org, workflow_id, response_id),
                "SET #run = :run",
                Some("attribute_exists(pk)"),
                Expr::new().name("#run", "runId").value(":run", s(run_id)),
                aws_sdk_dynamodb::types::ReturnValue::None,
            )
            .await?;
        match updated {
            Some(_) => Ok(()),
            None => Err(StoreError::not_found("response", response_id)),
        }
    }

    async fn list_responses(
        &self,
        org: &str,
        workflow_id: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Page<FormResponse>> {
        let limit = check_limit(limit)?;
        let before = cursor::parse_response(cursor.as_deref())?;
        let q = Query::index(GSI1, keys::responses(org, workflow_id)).descending();
        let start = before.map(|(at, id)| {
            let mut k = response_key(org, workflow_id, &id);
            k.insert("gsi1pk".to_owned(), s(keys::responses(org, workflow_id)));
            k.insert("gsi1sk".to_owned(), s(keys::time_id(at, &id)));
            k
        });
        let (items, more) = self.query_page(&q, limit, start).await?;
        let items = items
            .iter()
            .map(response_from)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = more
            .then(|| {
                items
                    .last()
                    .map(|r| cursor::response(r.submitted_at_ms, &r.id))
            })
            .flatten();
        Ok(Page { items, next_cursor })
    }
}
