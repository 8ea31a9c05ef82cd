//! Task resources: what a Task state's `Resource` runs in the embedded engine.
//!
//! Resolution order for a state's resource (after removing `.waitForTaskToken` / `.sync` /
//! `.sync:2`):
//! 1. a handler registered for that exact resource ([`Resources::resource`]),
//! 2. `arn:aws:states:::lambda:invoke` → the local function named by `FunctionName`
//!    (a name, or the last part of a function ARN), result shaped like Lambda's
//!    (`{ExecutedVersion, Payload, StatusCode}`); a Lambda ARN as the resource → that function,
//!    result = its payload,
//! 3. `arn:aws:states:::states:startExecution` → a child execution in this engine,
//! 4. the fallback handler if one is set,
//! 5. otherwise the state fails with `States.Runtime`, naming the resource and saying how to
//!    provide it.

use cm_asl::AslError;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, sendable future (what handlers return).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One invocation of a Task resource.
#[derive(Debug, Clone)]
pub struct TaskCall {
    /// The state's `Resource`, as written.
    pub resource: String,
    /// The effective input (`Parameters` / `Arguments`); for a local function the Lambda
    /// payload.
    pub input: Value,
    /// The context object (`$$`), with `Task.Token` for callback resources.
    pub context: Value,
    /// The task token when the resource ends in `.waitForTaskToken`.
    pub task_token: Option<String>,
    /// The execution's ARN.
    pub execution_arn: String,
    /// The Task state's name.
    pub state_name: String,
    /// 0 for the first attempt, then 1, 2, … as Retry re-runs the state.
    pub attempt: u32,
    /// Identifies this attempt across restarts: a task re-invoked after a crash
    /// (at-least-once) gets the same id, so handlers can use it as an idempotency key.
    pub invocation_id: String,
}

/// Runs a Task resource (or a local Lambda function). Errors carry the name Retry/Catch match:
/// for a function that is its `errorType`.
pub trait TaskHandler: Send + Sync + 'static {
    /// Invokes the resource.
    fn call(&self, call: TaskCall) -> BoxFuture<Result<Value, AslError>>;
}

/// A handler from a plain synchronous function (handy for tests and simple resources).
pub struct FnHandler<F>(pub F);

impl<F> TaskHandler for FnHandler<F>
where
    F: Fn(&TaskCall) -> Result<Value, AslError> + Send + Sync + 'static,
{
    fn call(&self, call: TaskCall) -> BoxFuture<Result<Value, AslError>> {
        let r = (self.0)(&call);
        Box::pin(async move { r })
    }
}

/// The Task resources an engine can run.
#[derive(Default, Clone)]
pub struct Resources {
    functions: HashMap<String, Arc<dyn TaskHandler>>,
    resources: HashMap<String, Arc<dyn TaskHandler>>,
    fallback: Option<Arc<dyn TaskHandler>>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("resources", &self.resources.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

/// Strips the integration pattern suffix of a resource ARN.
pub fn base_resource(resource: &str) -> &str {
    for suffix in [".waitForTaskToken", ".sync:2", ".sync"] {
        if let Some(b) = resource.strip_suffix(suffix) {
            return b;
        }
    }
    resource
}

/// `arn:aws:states:::lambda:invoke`.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
/// `arn:aws:states:::states:startExecution`.
pub const START_EXECUTION: &str = "arn:aws:states:::states:startExecution";

impl Resources {
    /// No resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a local Lambda function under `name` (what `FunctionName` says, or the last
    /// part of a function ARN).
    pub fn function(mut self, name: impl Into<String>, handler: impl TaskHandler) -> Self {
        self.functions.insert(name.into(), Arc::new(handler));
        self
    }

    /// Registers a handler for one resource ARN (without `.waitForTaskToken` / `.sync`).
    pub fn resource(mut self, arn: impl Into<String>, handler: impl TaskHandler) -> Self {
        self.resources.insert(arn.into(), Arc::new(handler));
        self
    }

    /// A handler for every resource nothing else claims.
    pub fn fallback(mut self, handler: impl TaskHandler) -> Self {
        self.fallback = Some(Arc::new(handler));
        self
    }

    /// Names of the registered functions.
    pub fn function_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.functions.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Resolves and starts a call. `Err` hands the call back: the engine itself must handle it
    /// (`states:startExecution`).
    pub(crate) fn invoke(
        &self,
        call: TaskCall,
    ) -> Result<BoxFuture<Result<Value, AslError>>, Box<TaskCall>> {
        let base = base_resource(&call.resource);
        if let Some(h) = self.resources.get(base) {
            return Ok(h.call(call));
        }
        if base == LAMBDA_INVOKE {
            return Ok(self.lambda_invoke(call));
        }
        if let Some(name) = lambda_arn_function(base) {
            let Some(h) = self.functions.get(name) else {
                return Ok(Box::pin(not_found(name.to_owned())));
            };
            let fut = h.call(call);
            return Ok(Box::pin(async move { fut.await.map_err(lambda_error) }));
        }
        if base == START_EXECUTION {
            return Err(Box::new(call));
        }
        if let Some(h) = &self.fallback {
            return Ok(h.call(call));
        }
        let known = self.function_names().join(", ");
        let message = format!(
            "The embedded engine has no handler for the Task resource '{}' (state '{}'). Local Lambda functions run through '{LAMBDA_INVOKE}' ({}); other resources need a handler registered with the engine.",
            call.resource,
            call.state_name,
            if known.is_empty() {
                "none registered".to_owned()
            } else {
                format!("registered: {known}")
            }
        );
        Ok(Box::pin(async move { Err(AslError::runtime(message)) }))
    }

    fn lambda_invoke(&self, mut call: TaskCall) -> BoxFuture<Result<Value, AslError>> {
        let Some(name) = call.input.get("FunctionName").and_then(Value::as_str) else {
            return Box::pin(async {
                Err(AslError::new(
                    "States.Runtime",
                    "The field 'FunctionName' is required by lambda:invoke.",
                ))
            });
        };
        let name = lambda_arn_function(name)
            .unwrap_or(name)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let Some(h) = self.functions.get(&name) else {
            return Box::pin(not_found(name));
        };
        call.input = call.input.get("Payload").cloned().unwrap_or(Value::Null);
        let fut = h.call(call);
        Box::pin(async move {
            let payload = fut.await.map_err(lambda_error)?;
            // Built by hand: `json!` would convert the payload with `to_value` (a deep copy).
            let mut out = serde_json::Map::new();
            out.insert("ExecutedVersion".into(), json!("$LATEST"));
            out.insert("Payload".into(), payload);
            out.insert("StatusCode".into(), json!(200));
            Ok(Value::Object(out))
        })
    }
}

/// The function name in `arn:aws:lambda:region:account:function:name[:qualifier]`.
fn lambda_arn_function(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:lambda:")?;
    let after = rest.split_once(":function:")?.1;
    Some(after.split(':').next().unwrap_or(after))
}

async fn not_found(name: String) -> Result<Value, AslError> {
    Err(AslError::new(
        "Lambda.ResourceNotFoundException",
        format!(
            "Function not found: {name} (no local function of that name is registered with the engine)"
        ),
    ))
}

/// A function error as Step Functions reports it: the error type as the name, and the
/// function's JSON error document as the cause — what the Rust Lambda runtime posts for the
/// node-runner (`{"errorType", "errorMessage"}`, in that order), so a caught error's cause is
/// the same text embedded and in the cloud.
fn lambda_error(e: AslError) -> AslError {
    let cause = json!({"errorType": e.error, "errorMessage": e.cause});
    AslError::new(e.error, cm_asl::payload::compact(&cause))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn call(resource: &str, input: Value) -> TaskCall {
        TaskCall {
            resource: resource.into(),
            input,
            context: json!({}),
            task_token: None,
            execution_arn: "arn".into(),
            state_name: "S".into(),
            attempt: 0,
            invocation_id: "arn/0#0".into(),
        }
    }

    fn echo() -> Resources {
        Resources::new()
            .function("echo", FnHandler(|c: &TaskCall| Ok(c.input.clone())))
            .function(
                "boom",
                FnHandler(|_: &TaskCall| Err(AslError::new("Custom.Error", "it broke"))),
            )
    }

    #[tokio::test]
    async fn lambda_invoke_wraps_the_payload() {
        let r = echo();
        let out = r
            .invoke(call(
                LAMBDA_INVOKE,
                json!({"FunctionName": "arn:aws:lambda:us-east-1:1:function:echo:$LATEST", "Payload": {"a": 1}}),
            ))
            .unwrap()
            .await
            .unwrap();
        assert_eq!(out["Payload"], json!({"a": 1}));
        assert_eq!(out["StatusCode"], 200);
        let direct = r
            .invoke(call("arn:aws:lambda:us-east-1:1:function:echo", json!(5)))
            .unwrap()
            .await
            .unwrap();
        assert_eq!(direct, json!(5));
    }

    #[tokio::test]
    async fn function_errors_carry_their_type_and_lambdas_cause_document() {
        let e = echo()
            .invoke(call(
                LAMBDA_INVOKE,
                json!({"FunctionName": "boom", "Payload": {}}),
            ))
            .unwrap()
            .await
            .unwrap_err();
        assert_eq!(e.error, "Custom.Error");
        let cause: Value = serde_json::from_str(&e.cause).unwrap();
        assert_eq!(cause["errorMessage"], "it broke");
    }

    #[tokio::test]
    async fn unknown_functions_and_resources_are_named() {
        let e = echo()
            .invoke(call(LAMBDA_INVOKE, json!({"FunctionName": "nope"})))
            .unwrap()
            .await
            .unwrap_err();
        assert_eq!(e.error, "Lambda.ResourceNotFoundException");
        assert!(e.cause.contains("nope"));
        let e = echo()
            .invoke(call("arn:aws:states:::sns:publish", json!({})))
            .unwrap()
            .await
            .unwrap_err();
        assert_eq!(e.error, "States.Runtime");
        assert!(e.cause.contains("sns:publish") && e.cause.contains("echo"));
        assert!(
            echo()
                .invoke(call(
                    "arn:aws:states:::states:startExecution.sync:2",
                    json!({})
                ))
                .is_err()
        );
    }
}
