//! [`RouteStore`]: a route is a global item by (kind, key), with a reference item in its
//! workflow's partition so that `delete_routes` finds a workflow's routes with a Query. Both
//! are written in one transaction.

use crate::db::{Expr, Query, Tx};
use crate::item::{self, Builder, Item, Reader, s};
use crate::keys;
use crate::{DynamoStore, GSI2};
use cm_store::{Result, Route, RouteIndex, RouteStore, StoreError};

/// How often `put_route` re-reads and retries when the route changes under it.
const PUT_ATTEMPTS: u32 = 5;

fn route_key(kind: &str, key: &str) -> Item {
    item::key(keys::route(kind, key), keys::ROUTE_SK)
}

fn ref_key(org: &str, workflow_id: &str, kind: &str, key: &str) -> Item {
    item::key(
        keys::workflow_routes(org, workflow_id),
        keys::route_ref_sk(kind, key),
    )
}

fn route_from(item: &Item) -> Result<Route> {
    let r = Reader::new(item, "route");
    Ok(Route {
        kind: r.s("kind")?,
        key: r.s("key")?,
        org: r.s("org")?,
        workflow_id: r.s("workflowId")?,
    })
}

fn route_taken(kind: &str, key: &str) -> StoreError {
    StoreError::Conflict(format!(
        "{kind} route `{key}` belongs to another organisation"
    ))
}

fn owned_by(org: &str, workflow_id: &str) -> Expr {
    Expr::new()
        .name("#org", "org")
        .name("#wf", "workflowId")
        .value(":org", s(org))
        .value(":wf", s(workflow_id))
}

impl RouteStore for DynamoStore {
    async fn put_route(&self, route: Route) -> Result<()> {
        let item = Builder::new(keys::route(&route.kind, &route.key), keys::ROUTE_SK)
            .s("kind", &route.kind)
            .s("key", &route.key)
            .s("org", &route.org)
            .s("workflowId", &route.workflow_id)
            .s("gsi2pk", keys::routes_of_kind(&route.kind))
            .s("gsi2sk", &route.key)
            .build("route")?;
        let reference = Builder::new(
            keys::workflow_routes(&route.org, &route.workflow_id),
            keys::route_ref_sk(&route.kind, &route.key),
        )
        .s("kind", &route.kind)
        .s("key", &route.key)
        .build("route reference")?;
        for _ in 0..PUT_ATTEMPTS {
            let old = self
                .get(route_key(&route.kind, &route.key))
                .await?
                .map(|i| route_from(&i))
                .transpose()?;
            let mut tx = Vec::new();
            match &old {
                Some(old) if old.org != route.org => {
                    return Err(route_taken(&route.kind, &route.key));
                }
                Some(old) => {
                    // Only if it still belongs to what was read.
                    tx.push(self.tx_put(
                        item.clone(),
                        Some((
                            "#org = :org AND #wf = :wf",
                            owned_by(&old.org, &old.workflow_id),
                        )),
                    )?);
                    if old.workflow_id != route.workflow_id {
                        tx.push(self.tx_delete(
                            ref_key(&old.org, &old.workflow_id, &old.kind, &old.key),
                            None,
                        )?);
                    }
                }
                None => tx.push(self.tx_put(
                    item.clone(),
                    Some(("attribute_not_exists(pk)", Expr::new())),
                )?),
            }
            tx.push(self.tx_put(reference.clone(), None)?);
            match self.transact(tx).await? {
                Tx::Done => return Ok(()),
                Tx::Failed(_) => continue,
            }
        }
        Err(StoreError::Conflict(format!(
            "{} route `{}` kept changing concurrently; retry",
            route.kind, route.key
        )))
    }

    async fn get_route(&self, kind: &str, key: &str) -> Result<Route> {
        match self.get(route_key(kind, key)).await? {
            Some(item) => route_from(&item),
            None => Err(StoreError::not_found("route", format!("{kind}/{key}"))),
        }
    }

    async fn delete_routes(&self, org: &str, workflow_id: &str) -> Result<()> {
        let refs = self
            .query_all(&Query::table(keys::workflow_routes(org, workflow_id), None))
            .await?;
        let mut ref_keys = Vec::with_capacity(refs.len());
        for r in &refs {
            let reader = Reader::new(r, "route reference");
            let (kind, key) = (reader.s("kind")?, reader.s("key")?);
            // Only while it is still this workflow's (a later put may have moved it).
            self.delete(
                route_key(&kind, &key),
                Some(("#org = :org AND #wf = :wf", owned_by(org, workflow_id))),
            )
            .await?;
            ref_keys.push(ref_key(org, workflow_id, &kind, &key));
        }
        self.delete_keys(ref_keys).await
    }
}

impl RouteIndex for DynamoStore {
    /// One Query of gsi2 (`ROUTES#<kind>`, by key; eventually consistent: a route put a
    /// moment ago may be missing from the list for a moment).
    async fn list_routes(&self, kind: &str) -> Result<Vec<Route>> {
        self.query_all(&Query::index(GSI2, keys::routes_of_kind(kind)))
            .await?
            .iter()
            .map(route_from)
            .collect()
    }
}
