//! The handler interface and the runner that dispatches events to handlers.

use crate::breaker::Breakers;
use crate::event::{NodeEvent, NodeOutput};
use crate::http::{HttpClient, NetworkPolicy};
use crate::plugin::PluginExecutors;
use crate::ports::{Approvals, Clock, SystemClock};
use crate::secrets::{self, Redactor, Secrets};
use crate::{BoxFuture, NodeError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Runs one node type.
pub trait NodeHandler: Send + Sync {
    /// Runs the node: `config` has its templates evaluated and its secrets resolved; `input` is
    /// the upstream node's output. Returns the output and port, or a named error.
    fn run<'a>(
        &'a self,
        config: Value,
        input: Value,
        ctx: &'a NodeContext,
    ) -> BoxFuture<'a, Result<NodeOutput, NodeError>>;
}

/// Everything a handler may use besides its config and input.
pub struct NodeContext {
    /// The event (node identity and execution context) being run.
    pub event_node_id: String,
    /// The node type.
    pub node_type: String,
    /// The execution context from the event (run id, attempt, task token, …).
    pub execution: crate::event::EventContext,
    /// Shared services (HTTP client, breakers, approvals, clock).
    pub services: Arc<Services>,
}

impl NodeContext {
    /// The run id (execution ARN).
    pub fn run_id(&self) -> &str {
        &self.execution.execution_id
    }

    /// The node id.
    pub fn node_id(&self) -> &str {
        &self.event_node_id
    }

    /// The attempt number (0 first).
    pub fn attempt(&self) -> u32 {
        self.execution.attempt
    }

    /// Milliseconds since the epoch, from the services' clock.
    pub fn now_ms(&self) -> i64 {
        self.services.clock.now_ms()
    }
}

/// The shared services handlers use. Build once per process (a Lambda container, the embedded
/// server) and share: the HTTP client pools connections.
pub struct Services {
    /// Secret values for `{{ secrets.NAME }}`.
    pub secrets: Arc<dyn Secrets>,
    /// The outbound HTTP client, with its network policy.
    pub http: HttpClient,
    /// Per-target circuit breakers.
    pub breakers: Breakers,
    /// Where approval requests are recorded.
    pub approvals: Arc<dyn Approvals>,
    /// Base URL of approval links (`<base>/approvals/<id>`).
    pub approval_base_url: String,
    /// Plugin node types' HTTP executors (embedded engine).
    pub plugins: PluginExecutors,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
}

impl Services {
    /// Services with the given secrets, approvals and breaker store, the default network
    /// policy (public addresses only) and the system clock.
    pub fn new(
        secrets: Arc<dyn Secrets>,
        approvals: Arc<dyn Approvals>,
        breaker_store: Arc<dyn crate::breaker::BreakerStore>,
    ) -> Result<Services, NodeError> {
        Ok(Services {
            secrets,
            http: HttpClient::new(NetworkPolicy::default())?,
            breakers: Breakers::new(breaker_store, crate::breaker::BreakerConfig::default()),
            approvals,
            approval_base_url: "http://127.0.0.1:8080".into(),
            plugins: PluginExecutors::default(),
            clock: Arc::new(SystemClock),
        })
    }
}

/// Dispatches node events to handlers by node type.
#[derive(Clone)]
pub struct NodeRunner {
    handlers: HashMap<String, Arc<dyn NodeHandler>>,
    services: Arc<Services>,
}

impl std::fmt::Debug for NodeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut types: Vec<&String> = self.handlers.keys().collect();
        types.sort();
        f.debug_struct("NodeRunner").field("types", &types).finish()
    }
}

impl NodeRunner {
    /// A runner with every built-in handler.
    pub fn builtin(services: Services) -> NodeRunner {
        let mut r = NodeRunner {
            handlers: HashMap::new(),
            services: Arc::new(services),
        };
        for (ty, h) in crate::transform::handlers()
            .into_iter()
            .chain(crate::action::handlers())
            .chain(crate::approval::handlers())
        {
            r.handlers.insert(ty.to_owned(), h);
        }
        r
    }

    /// Adds (or replaces) the handler of a node type.
    pub fn with_handler(mut self, node_type: &str, handler: Arc<dyn NodeHandler>) -> Self {
        self.handlers.insert(node_type.to_owned(), handler);
        self
    }

    /// The shared services.
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// The node types this runner handles.
    pub fn node_types(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Runs one event: resolves secrets, dispatches to the type's handler (or a plugin's
    /// executor), and redacts secret values from the answer and from errors.
    pub async fn run(&self, event: NodeEvent) -> Result<NodeOutput, NodeError> {
        let NodeEvent {
            node,
            config,
            input,
            context,
        } = event;
        let handler = self.handlers.get(&node.node_type).cloned();
        let plugin = self.services.plugins.get(&node.node_type);
        if handler.is_none() && plugin.is_none() {
            return Err(NodeError::UnknownNodeType(format!(
                "node `{}`: no handler for node type `{}` (version {})",
                node.id, node.node_type, node.type_version
            )));
        }
        let mut redactor = Redactor::default();
        let config = secrets::resolve(config, &*self.services.secrets, &mut redactor)
            .await
            .map_err(|e| prefix(e, &node.id))?;
        let ctx = NodeContext {
            event_node_id: node.id.clone(),
            node_type: node.node_type.clone(),
            execution: context,
            services: self.services.clone(),
        };
        let result = match (handler, plugin) {
            (Some(h), _) => h.run(config, input, &ctx).await,
            (None, Some(p)) => p.invoke(&node, config, input, &ctx).await,
            (None, None) => unreachable_none(),
        };
        match result {
            Ok(out) => Ok(NodeOutput {
                output: redactor.redact_value(out.output),
                port: out.port,
            }),
            Err(e) => Err(prefix(e.redact(&redactor), &node.id)),
        }
    }
}

fn unreachable_none() -> Result<NodeOutput, NodeError> {
    Err(NodeError::Internal("no handler".into()))
}

/// Errors name the node they come from (plugins' own messages are left as they are).
fn prefix(e: NodeError, node_id: &str) -> NodeError {
    let p = |m: String| {
        if m.starts_with("node `") {
            m
        } else {
            format!("node `{node_id}`: {m}")
        }
    };
    match e {
        NodeError::InvalidConfig(m) => NodeError::InvalidConfig(p(m)),
        NodeError::InvalidInput(m) => NodeError::InvalidInput(p(m)),
        NodeError::Expression(m) => NodeError::Expression(p(m)),
        NodeError::SecretNotFound(m) => NodeError::SecretNotFound(p(m)),
        other => other,
    }
}

/// Deserialises a handler's config into its typed form; errors name the field
/// (`ConcertMaster.InvalidConfig: config/timeoutSeconds: invalid type …`).
pub fn parse_config<T: serde::de::DeserializeOwned>(config: Value) -> Result<T, NodeError> {
    serde_path_to_error::deserialize(config).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            "config".to_owned()
        } else {
            format!("config.{path}")
        };
        NodeError::InvalidConfig(format!("{at}: {}", e.inner()))
    })
}
