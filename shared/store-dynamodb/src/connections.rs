//! [`ConnectionStore`]: a connection's partition (`CONN#<id>`) holds the connection and a
//! back reference per subscription; each subscription is also an item in its topic's
//! partition (`ORG#<org>#TOPIC#<topic>`) carrying a copy of the connection, so that
//! `subscribers` is one Query. Both halves of a subscription are written in one transaction.

use crate::DynamoStore;
use crate::db::{Expr, Query, Tx};
use crate::item::{self, Builder, Item, Reader, n, s};
use crate::keys;
use cm_store::{Connection, ConnectionStore, Result, StoreError};

/// How often `subscribe` re-reads and retries when the connection changes under it.
const SUBSCRIBE_ATTEMPTS: u32 = 5;

fn connection_key(id: &str) -> Item {
    item::key(keys::connection(id), keys::CONN_SK)
}

fn connection_from(item: &Item) -> Result<Connection> {
    let r = Reader::new(item, "connection");
    Ok(Connection {
        id: r.s("id")?,
        org: r.s("org")?,
        subject: r.s("subject")?,
        connected_at_ms: r.n("connectedAt")?,
    })
}

/// The item of a subscriber under its topic: a copy of the connection.
fn subscriber_item(c: &Connection, topic: &str) -> Result<Item> {
    Builder::new(keys::topic(&c.org, topic), keys::subscriber_sk(&c.id))
        .s("id", &c.id)
        .s("org", &c.org)
        .s("subject", &c.subject)
        .n("connectedAt", c.connected_at_ms)
        .build("subscription")
}

/// A subscription back reference: (org, topic).
fn subscription_from(item: &Item) -> Result<(String, String)> {
    let r = Reader::new(item, "subscription");
    Ok((r.s("org")?, r.s("topic")?))
}

impl DynamoStore {
    /// A connection's subscriptions: (org, topic).
    async fn subscriptions(&self, id: &str) -> Result<Vec<(String, String)>> {
        self.query_all(&Query::table(keys::connection(id), Some(keys::SUB_PREFIX)))
            .await?
            .iter()
            .map(subscription_from)
            .collect()
    }

    /// Deletes both halves of each subscription (and `extra` keys).
    async fn drop_subscriptions(
        &self,
        id: &str,
        subs: &[(String, String)],
        extra: Vec<Item>,
    ) -> Result<()> {
        let mut doomed = extra;
        for (org, topic) in subs {
            doomed.push(item::key(keys::topic(org, topic), keys::subscriber_sk(id)));
            doomed.push(item::key(keys::connection(id), keys::sub_sk(topic)));
        }
        self.delete_keys(doomed).await
    }
}

impl ConnectionStore for DynamoStore {
    /// A consistent GetItem of `CONN#<id>`.
    async fn get_connection(&self, id: &str) -> Result<Option<Connection>> {
        self.get(connection_key(id))
            .await?
            .map(|i| connection_from(&i))
            .transpose()
    }

    async fn put_connection(&self, connection: Connection) -> Result<()> {
        let item = Builder::new(keys::connection(&connection.id), keys::CONN_SK)
            .s("id", &connection.id)
            .s("org", &connection.org)
            .s("subject", &connection.subject)
            .n("connectedAt", connection.connected_at_ms)
            .build("connection")?;
        let old = self.get_connection(&connection.id).await?;
        self.put(item, None).await?;
        let Some(old) = old else { return Ok(()) };
        if old == connection {
            return Ok(());
        }
        let subs = self.subscriptions(&connection.id).await?;
        if old.org != connection.org {
            // Subscriptions belong to the connection's organisation: moving drops them.
            return self
                .drop_subscriptions(&connection.id, &subs, Vec::new())
                .await;
        }
        // Same organisation: refresh the copies under the topics.
        for (_, topic) in &subs {
            self.put(subscriber_item(&connection, topic)?, None).await?;
        }
        Ok(())
    }

    async fn delete_connection(&self, id: &str) -> Result<()> {
        let subs = self.subscriptions(id).await?;
        self.drop_subscriptions(id, &subs, vec![connection_key(id)])
            .await
    }

    async fn subscribe(&self, id: &str, topic: &str) -> Result<()> {
        for _ in 0..SUBSCRIBE_ATTEMPTS {
            let Some(c) = self.get_connection(id).await? else {
                return Err(StoreError::not_found("connection", id));
            };
            let back = Builder::new(keys::connection(id), keys::sub_sk(topic))
                .s("org", &c.org)
                .s("topic", topic)
                .build("subscription")?;
            // Only while the connection is still the one read (its copy goes to the topic).
            let unchanged = Expr::new()
                .name("#org", "org")
                .name("#subject", "subject")
                .name("#at", "connectedAt")
                .value(":org", s(&c.org))
                .value(":subject", s(&c.subject))
                .value(":at", n(c.connected_at_ms));
            let tx = vec![
                self.tx_check(
                    connection_key(id),
                    "#org = :org AND #subject = :subject AND #at = :at",
                    unchanged,
                )?,
                self.tx_put(back, None)?,
                self.tx_put(subscriber_item(&c, topic)?, None)?,
            ];
            match self.transact(tx).await? {
                Tx::Done => return Ok(()),
                Tx::Failed(_) => continue,
            }
        }
        Err(StoreError::Conflict(format!(
            "connection `{id}` kept changing concurrently; retry"
        )))
    }

    async fn unsubscribe(&self, id: &str, topic: &str) -> Result<()> {
        let Some(back) = self
            .get(item::key(keys::connection(id), keys::sub_sk(topic)))
            .await?
        else {
            return Ok(());
        };
        let sub = subscription_from(&back)?;
        self.drop_subscriptions(id, &[sub], Vec::new()).await
    }

    async fn subscribers(&self, org: &str, topic: &str) -> Result<Vec<Connection>> {
        self.query_all(&Query::table(
            keys::topic(org, topic),
            Some(keys::SUBSCRIBER_PREFIX),
        ))
        .await?
        .iter()
        .map(connection_from)
        .collect()
    }
}
