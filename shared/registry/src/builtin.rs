//! Descriptors of the built-in node types.
//!
//! Config conventions shared by every type:
//! - a string of the form `{{ expression }}` is a *template*, evaluated against the run document
//!   before the node runs (`{{ $.nodes.fetch.output.items }}`); text around templates is allowed
//!   in string fields (`"Hello {{ $.nodes.form.output.name }}"`);
//! - a plain string field documented as an *item expression* (filter `condition`, aggregate
//!   `field`) is a JSONata expression the node evaluates per item, with `$` bound to the item;
//! - rule `field`s of conditions are JSONPath references into the run document (`$.nodes.x...`).

use crate::descriptor::{
    Category, Execution, NativeState, NodeTypeDescriptor, PortRule, PortSpec, ServiceIntegration,
};
use cm_model::{Jitter, RetryRule};
use serde_json::{Value, json};

/// Error names the node-runner raises for transient failures, retried by default.
pub const RETRYABLE_ERRORS: [&str; 2] = ["ConcertMaster.Retryable", "ConcertMaster.Timeout"];

/// Lambda service errors AWS recommends retrying for every `lambda:invoke` task.
pub const LAMBDA_TRANSIENT_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

fn retry(errors: &[&str], attempts: u32) -> Vec<RetryRule> {
    vec![RetryRule {
        errors: errors.iter().map(|s| (*s).to_owned()).collect(),
        interval_seconds: 1,
        max_attempts: attempts,
        backoff_rate: 2.0,
        max_delay_seconds: Some(30),
        jitter: Some(Jitter::Full),
    }]
}

fn runner_retry() -> Vec<RetryRule> {
    let errors: Vec<&str> = RETRYABLE_ERRORS
        .iter()
        .chain(LAMBDA_TRANSIENT_ERRORS.iter())
        .copied()
        .collect();
    retry(&errors, 3)
}

/// A string that is one `{{ }}` template.
fn template() -> Value {
    json!({"type": "string", "pattern": "^\\{\\{.*\\}\\}$", "description": "Template: {{ expression }}"})
}

/// `schema` or a template producing the value at run time.
fn or_template(schema: Value) -> Value {
    json!({"anyOf": [schema, template()]})
}

fn object_schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The rule language of `condition.if` and `condition.switch` (a `$defs` entry).
pub fn rule_schema() -> Value {
    json!({
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "field": {"type": "string", "pattern": "^\\$", "description": "JSONPath into the run document, e.g. $.nodes.score.output.value"},
                    "op": {"enum": [
                        "equals", "notEquals", "gt", "gte", "lt", "lte",
                        "contains", "startsWith", "endsWith", "matches",
                        "before", "after",
                        "exists", "notExists", "isNull", "isNotNull", "isEmpty", "isNotEmpty",
                        "isString", "isNumber", "isBoolean", "isTimestamp", "regex"
                    ]},
                    "value": {"description": "Literal to compare with (type decides string/number/boolean comparison)"},
                    "valueField": {"type": "string", "pattern": "^\\$", "description": "Compare with another field instead of a literal"}
                },
                "required": ["field", "op"],
                "additionalProperties": false
            },
            {"type": "object", "properties": {"all": {"type": "array", "items": {"$ref": "#/$defs/rule"}, "minItems": 1}}, "required": ["all"], "additionalProperties": false},
            {"type": "object", "properties": {"any": {"type": "array", "items": {"$ref": "#/$defs/rule"}, "minItems": 1}}, "required": ["any"], "additionalProperties": false},
            {"type": "object", "properties": {"not": {"$ref": "#/$defs/rule"}}, "required": ["not"], "additionalProperties": false}
        ]
    })
}

fn with_rule_defs(mut schema: Value) -> Value {
    schema["$defs"] = json!({"rule": rule_schema()});
    schema
}

fn d(
    type_id: &str,
    category: Category,
    title: &str,
    icon: &str,
    description: &str,
    config_schema: Value,
    execution: Execution,
) -> NodeTypeDescriptor {
    NodeTypeDescriptor {
        type_id: type_id.into(),
        version: 1,
        category,
        title: title.into(),
        description: description.into(),
        icon: icon.into(),
        config_schema,
        output_ports: vec![PortSpec::new("out", "")],
        port_rules: vec![],
        execution,
        default_retry: vec![],
        default_timeout_seconds: None,
    }
}

const RUNNER: Execution = Execution::NodeRunner { callback: false };

/// Every built-in descriptor.
pub fn descriptors() -> Vec<NodeTypeDescriptor> {
    let mut v = Vec::new();

    // ---- Triggers
    v.push(d(
        "trigger.manual",
        Category::Trigger,
        "Manual",
        "play",
        "Start a run by hand or through the API, with an input checked against an optional schema.",
        object_schema(json!({"inputSchema": {"type": "object", "description": "JSON Schema the run input must satisfy"}}), &[]),
        Execution::Trigger,
    ));
    v.push(d(
        "trigger.webhook",
        Category::Trigger,
        "Webhook",
        "webhook",
        "Start a run when an HTTP request arrives at the workflow's hook URL; optionally checks an HMAC-SHA256 signature.",
        object_schema(
            json!({
                "secret": {"type": "string", "minLength": 1, "description": "Name of the secret holding the HMAC key"},
                "signatureHeader": {"type": "string", "default": "X-Signature-256"},
                "accept": {"type": "array", "items": {"enum": ["json", "form"]}, "uniqueItems": true, "default": ["json", "form"]}
            }),
            &[],
        ),
        Execution::Trigger,
    ));
    v.push(d(
        "trigger.form",
        Category::Trigger,
        "Form submission",
        "form",
        "Publish a form rendered from a JSON Schema; each valid submission is stored and starts a run.",
        object_schema(
            json!({
                "title": {"type": "string", "minLength": 1},
                "description": {"type": "string"},
                "schema": {"type": "object", "description": "JSON Schema of the form's fields"},
                "uiSchema": {"type": "object"},
                "submitLabel": {"type": "string"},
                "successMessage": {"type": "string"}
            }),
            &["title", "schema"],
        ),
        Execution::Trigger,
    ));
    v.push(d(
        "trigger.schedule",
        Category::Trigger,
        "Schedule",
        "clock",
        "Start a run on a schedule: EventBridge Scheduler cron(...), rate(...) or at(...) expressions.",
        object_schema(
            json!({
                "expression": {"type": "string", "pattern": "^(cron\\(.+\\)|rate\\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\\)|at\\(\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\))$"},
                "timezone": {"type": "string", "default": "UTC"},
                "input": {"description": "Input of each scheduled run"}
            }),
            &["expression"],
        ),
        Execution::Trigger,
    ));
    v.push(d(
        "trigger.queue",
        Category::Trigger,
        "Queue message",
        "inbox",
        "Start a run for each message received on a queue (SQS in the cloud, a local queue embedded).",
        object_schema(
            json!({
                "queue": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,80}$"},
                "batchSize": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1}
            }),
            &["queue"],
        ),
        Execution::Trigger,
    ));

    // ---- Transforms
    v.push(d(
        "transform.set",
        Category::Transform,
        "Set fields",
        "edit",
        "Build a new object from literals and templates. Runs as a native Pass state.",
        object_schema(
            json!({"fields": {"type": "object", "description": "Output field name -> literal or template"}}),
            &["fields"],
        ),
        Execution::Native { state: NativeState::Pass },
    ));
    let mut filter = d(
        "transform.filter",
        Category::Transform,
        "Filter items",
        "filter",
        "Keep the items of an array for which an item expression is true.",
        object_schema(
            json!({
                "items": template(),
                "condition": {"type": "string", "minLength": 1, "description": "Item expression (JSONata, $ = item)"}
            }),
            &["items", "condition"],
        ),
        RUNNER,
    );
    filter.default_retry = runner_retry();
    v.push(filter);
    let mut aggregate = d(
        "transform.aggregate",
        Category::Transform,
        "Aggregate",
        "sigma",
        "Group an array and compute count, sum, avg, min, max or collect per group.",
        object_schema(
            json!({
                "items": template(),
                "groupBy": {"type": "string", "minLength": 1, "description": "Item expression giving the group key"},
                "operations": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "properties": {
                        "op": {"enum": ["count", "sum", "avg", "min", "max", "collect"]},
                        "field": {"type": "string", "minLength": 1, "description": "Item expression"},
                        "as": {"type": "string", "minLength": 1}
                    },
                    "required": ["op", "as"],
                    "additionalProperties": false
                }}
            }),
            &["items", "operations"],
        ),
        RUNNER,
    );
    aggregate.default_retry = runner_retry();
    v.push(aggregate);
    let mut validate = d(
        "transform.validate",
        Category::Transform,
        "Validate",
        "check",
        "Check data against a JSON Schema: fail with ConcertMaster.ValidationFailed, or route to an `invalid` port.",
        object_schema(
            json!({
                "data": {"description": "Literal or template to validate"},
                "schema": {"type": "object"},
                "onInvalid": {"enum": ["fail", "route"], "default": "fail"}
            }),
            &["data", "schema"],
        ),
        RUNNER,
    );
    validate.port_rules = vec![PortRule::WhenConfigEquals {
        pointer: "/onInvalid".into(),
        equals: json!("route"),
        ports: vec![
            PortSpec::required("valid", "Valid"),
            PortSpec::new("invalid", "Invalid"),
        ],
    }];
    validate.default_retry = runner_retry();
    v.push(validate);
    let mut merge = d(
        "transform.merge",
        Category::Transform,
        "Merge",
        "merge",
        "Merge objects (shallow or deep) or concatenate arrays from several sources. Shallow object merges of plain references run natively.",
        object_schema(
            json!({
                "sources": {"type": "array", "minItems": 1, "items": {}},
                "mode": {"enum": ["object", "array"], "default": "object"},
                "deep": {"type": "boolean", "default": false}
            }),
            &["sources"],
        ),
        RUNNER,
    );
    merge.default_retry = runner_retry();
    v.push(merge);

    // ---- Conditions
    let mut iff = d(
        "condition.if",
        Category::Condition,
        "If",
        "split",
        "Take the `true` or `false` port depending on rules over fields. Runs as a native Choice state.",
        with_rule_defs(object_schema(
            json!({
                "match": {"enum": ["all", "any"], "default": "all"},
                "rules": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/rule"}}
            }),
            &["rules"],
        )),
        Execution::Native {
            state: NativeState::Choice,
        },
    );
    iff.output_ports = vec![
        PortSpec::required("true", "True"),
        PortSpec::new("false", "False"),
    ];
    v.push(iff);
    let mut switch = d(
        "condition.switch",
        Category::Condition,
        "Switch",
        "switch",
        "Take the port of the first case whose rules match, or `default`. Runs as a native Choice state.",
        with_rule_defs(object_schema(
            json!({
                "cases": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "properties": {
                        "port": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$", "not": {"const": "default"}},
                        "match": {"enum": ["all", "any"], "default": "all"},
                        "rules": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/rule"}}
                    },
                    "required": ["port", "rules"],
                    "additionalProperties": false
                }}
            }),
            &["cases"],
        )),
        Execution::Native {
            state: NativeState::Choice,
        },
    );
    switch.output_ports = vec![PortSpec::new("default", "Default")];
    switch.port_rules = vec![PortRule::FromConfigArray {
        pointer: "/cases".into(),
        name_field: "port".into(),
        required: true,
        append: vec![PortSpec::new("default", "Default")],
    }];
    v.push(switch);

    // ---- Actions
    let mut http = d(
        "action.http",
        Category::Action,
        "HTTP request",
        "globe",
        "Call an HTTP API. Retries 5xx and 429 (honouring Retry-After); private and loopback addresses are refused by default.",
        object_schema(
            json!({
                "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], "default": "GET"},
                "url": {"type": "string", "minLength": 1},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "query": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
                "body": {},
                "bodyType": {"enum": ["json", "form", "text"], "default": "json"},
                "auth": {
                    "type": "object",
                    "properties": {
                        "type": {"enum": ["bearer", "basic", "header"]},
                        "secret": {"type": "string", "minLength": 1},
                        "header": {"type": "string"}
                    },
                    "required": ["type", "secret"],
                    "additionalProperties": false
                },
                "timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 900, "default": 30},
                "maxResponseBytes": {"type": "integer", "minimum": 1, "maximum": 262144, "default": 131072, "description": "Larger bodies fail with ConcertMaster.Http.ResponseTooLarge; Step Functions caps a state's data at 256 KiB"},
                "failOnStatus": {"type": "boolean", "default": true}
            }),
            &["url"],
        ),
        RUNNER,
    );
    http.default_retry = {
        let mut errors: Vec<&str> = vec!["ConcertMaster.Http.5xx", "ConcertMaster.Http.429"];
        errors.extend(RETRYABLE_ERRORS);
        errors.extend(LAMBDA_TRANSIENT_ERRORS);
        retry(&errors, 3)
    };
    http.default_timeout_seconds = Some(60);
    v.push(http);
    let mut store = d(
        "action.store",
        Category::Action,
        "Store record",
        "database",
        "Write a record into a named dataset (DynamoDB in the cloud via a direct service integration, SQLite embedded).",
        object_schema(
            json!({
                "dataset": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}$"},
                "key": {"type": "string", "minLength": 1, "description": "Record key (literal or template); defaults to the run id"},
                "record": {"description": "Literal or template"}
            }),
            &["dataset", "record"],
        ),
        Execution::Service {
            integration: ServiceIntegration::DynamodbPutItem,
        },
    );
    store.default_retry = retry(
        &[
            "DynamoDB.ProvisionedThroughputExceededException",
            "DynamoDB.ThrottlingException",
            "DynamoDB.InternalServerErrorException",
            "DynamoDB.RequestLimitExceeded",
        ],
        4,
    );
    v.push(store);
    let mut queue = d(
        "action.queue",
        Category::Action,
        "Send to queue",
        "send",
        "Send a message to a queue (SQS through a direct service integration in the cloud, a local queue embedded).",
        object_schema(
            json!({
                "queue": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,80}(\\.fifo)?$"},
                "message": {"description": "Literal or template; sent as JSON"},
                "groupId": {"type": "string", "minLength": 1, "description": "FIFO queues: message group (literal or template)"},
                "deduplicationId": {"type": "string", "minLength": 1, "description": "FIFO queues: deduplication id (literal or template)"},
                "delaySeconds": {"type": "integer", "minimum": 0, "maximum": 900}
            }),
            &["queue", "message"],
        ),
        Execution::Service {
            integration: ServiceIntegration::SqsSendMessage,
        },
    );
    queue.default_retry = retry(&["SQS.SdkClientException", "SQS.AmazonSQSException"], 3);
    v.push(queue);
    let mut notify = d(
        "action.notify",
        Category::Action,
        "Notify",
        "bell",
        "POST a Slack-compatible JSON message to a webhook URL (given directly or as a secret).",
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "url": {"type": "string", "minLength": 1},
                "secret": {"type": "string", "minLength": 1, "description": "Name of the secret holding the webhook URL"},
                "text": {"type": "string", "minLength": 1},
                "blocks": {"type": "array"},
                "username": {"type": "string"}
            },
            "required": ["text"],
            "oneOf": [{"required": ["url"]}, {"required": ["secret"]}],
            "additionalProperties": false
        }),
        RUNNER,
    );
    notify.default_retry = {
        let mut errors: Vec<&str> = vec!["ConcertMaster.Http.5xx", "ConcertMaster.Http.429"];
        errors.extend(RETRYABLE_ERRORS);
        errors.extend(LAMBDA_TRANSIENT_ERRORS);
        retry(&errors, 3)
    };
    v.push(notify);

    // ---- Flow
    v.push(d(
        "flow.wait",
        Category::Flow,
        "Wait",
        "hourglass",
        "Pause for a number of seconds or until a timestamp. Runs as a native Wait state.",
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "seconds": or_template(json!({"type": "integer", "minimum": 0, "maximum": 31536000})),
                "until": {"type": "string", "minLength": 1, "description": "RFC 3339 timestamp or template"}
            },
            "oneOf": [{"required": ["seconds"]}, {"required": ["until"]}],
            "additionalProperties": false
        }),
        Execution::Native { state: NativeState::Wait },
    ));
    let mut approval = d(
        "flow.approval",
        Category::Flow,
        "Approval",
        "user-check",
        "Pause until a person approves or rejects on the approval page; takes the `approved` or `rejected` port.",
        object_schema(
            json!({
                "title": {"type": "string", "minLength": 1},
                "message": {"type": "string"},
                "approvers": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "timeoutSeconds": {"type": "integer", "minimum": 60, "maximum": 31536000}
            }),
            &["title"],
        ),
        Execution::NodeRunner { callback: true },
    );
    approval.output_ports = vec![
        PortSpec::required("approved", "Approved"),
        PortSpec::new("rejected", "Rejected"),
    ];
    approval.default_retry = retry(&LAMBDA_TRANSIENT_ERRORS, 3);
    v.push(approval);
    let mut foreach = d(
        "flow.foreach",
        Category::Flow,
        "For each",
        "repeat",
        "Run the nodes connected to the `each` port once per item (a Map state); `done` continues with the array of results.",
        object_schema(
            json!({
                "items": template(),
                "maxConcurrency": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 10}
            }),
            &["items"],
        ),
        Execution::Native {
            state: NativeState::Map,
        },
    );
    foreach.output_ports = vec![
        PortSpec::required("each", "Each item"),
        PortSpec::new("done", "Done"),
    ];
    v.push(foreach);
    v.push(d(
        "flow.subworkflow",
        Category::Flow,
        "Sub-workflow",
        "workflow",
        "Run another published workflow; waits for its result unless `wait` is false.",
        object_schema(
            json!({
                "workflowId": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                "input": {"description": "Literal or template"},
                "wait": {"type": "boolean", "default": true}
            }),
            &["workflowId"],
        ),
        Execution::Service {
            integration: ServiceIntegration::StartExecution,
        },
    ));
    v
}
