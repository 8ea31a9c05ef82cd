//! Outbound HTTP for nodes: a client whose every connection (including each redirect hop) is
//! checked against a [`NetworkPolicy`] after DNS resolution.

use crate::NodeError;

/// Which addresses outbound requests may reach.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    /// Networks (CIDR, e.g. `127.0.0.1/32`, `10.0.0.0/8`) allowed even though they are
    /// loopback/private/link-local — for local development.
    pub allow: Vec<String>,
}

/// The shared outbound HTTP client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    policy: NetworkPolicy,
}

impl HttpClient {
    /// A client enforcing `policy`.
    pub fn new(policy: NetworkPolicy) -> Result<HttpClient, NodeError> {
        Ok(HttpClient { policy })
    }

    /// The policy in force.
    pub fn policy(&self) -> &NetworkPolicy {
        &self.policy
    }
}
