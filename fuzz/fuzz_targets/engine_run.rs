//! Any bytes → an ASL definition and an input → a run on the embedded engine (in memory,
//! virtual clock, small transition budget; see `fuzz/engine_case.rs`).
//!
//! Must never panic or hang: the engine either refuses the definition/input with a typed error
//! or the execution closes with a well-formed history. Three ways to read the bytes, by the
//! first byte:
//! - `{`: a case document `{"definition": …, "input": …, "type": …}` (the conformance cases in
//!   `tests/asl-conformance/cases/` are such documents and make a good corpus);
//! - another byte below 0x80: the rest is `DEFINITION \0 INPUT` (two JSON texts; input `{}`
//!   when missing or not JSON);
//! - 0x80 and above (structured): the rest picks a conformance case as a seed and drives
//!   mutations of its definition and input — values replaced by troublesome ones (huge
//!   numbers, deep paths, costly intrinsics and JSONata, Task states with callbacks and child
//!   executions), fields added and removed, subtrees spliced in from other seeds — so that
//!   inputs get past validation and reach the interpreter.
//!
//! Set `ENGINE_RUN_PRINT=1` to print the decoded case document (what a regression file in
//! `fuzz/regressions/engine-*.json` holds) to stderr before it runs.

#![no_main]

#[path = "../engine_case.rs"]
mod engine_case;

use engine_case::{Case, Outcome};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// One runtime for every input (building one per input costs a thread each time). Its
/// worker, where executions run, has tokio's default 2 MiB stack, as in a real deployment;
/// `engine_case::run` shuts its engine down, so nothing carries over from one input to the
/// next.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

/// Seeds for the structured mode: every conformance case, by file name.
static SEEDS: LazyLock<Vec<Case>> = LazyLock::new(|| {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/asl-conformance/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut seeds: Vec<Case> = files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter_map(|doc| Case::from_document(&doc))
        .collect();
    seeds.push(Case {
        definition: json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}),
        input: json!({}),
        express: false,
    });
    seeds
});

fuzz_target!(|data: &[u8]| {
    let Some(case) = decode(data) else {
        return;
    };
    let print = std::env::var_os("ENGINE_RUN_PRINT").is_some();
    if print {
        eprintln!("{}", case.to_document());
    }
    match RUNTIME.block_on(engine_case::run(&case)) {
        Ok(Outcome::Refused(e)) if print => eprintln!("refused: {e}"),
        Ok(Outcome::Closed(rec, events)) if print => eprintln!(
            "{} after {events} events: {:?} {:?}",
            rec.status.as_str(),
            rec.error,
            rec.cause
        ),
        Ok(_) => {}
        Err(broken) => panic!("{broken}\ncase: {}", case.to_document()),
    }
});

fn decode(data: &[u8]) -> Option<Case> {
    let (&first, rest) = data.split_first()?;
    if first == b'{' {
        let doc: Value = serde_json::from_slice(data).ok()?;
        return Case::from_document(&doc);
    }
    if first < 0x80 {
        let (def, input) = match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        return Some(Case {
            definition: serde_json::from_slice(def).ok()?,
            input: serde_json::from_slice(input).unwrap_or_else(|_| json!({})),
            express: first & 1 == 1,
        });
    }
    let mut bytes = Bytes(rest);
    let seeds = &*SEEDS;
    let mut case = seeds[bytes.below(seeds.len())].clone();
    case.express ^= first & 1 == 1;
    let rounds = 1 + bytes.below(6);
    for _ in 0..rounds {
        if bytes.0.is_empty() {
            break;
        }
        mutate(&mut case, &mut bytes, seeds);
    }
    Some(case)
}

/// Reads decisions from the fuzzer's bytes (zeros once they run out).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> usize {
        usize::from(self.byte()) << 8 | usize::from(self.byte())
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.u16() % n }
    }

    fn pick<'s, T>(&mut self, items: &'s [T]) -> &'s T {
        &items[self.below(items.len())]
    }

    /// A short string made of the next bytes.
    fn text(&mut self) -> String {
        let n = self.below(12);
        (0..n)
            .map(|_| char::from(b' ' + self.byte() % 95))
            .collect()
    }
}

const ASL_FIELDS: &[&str] = &[
    "Type",
    "Next",
    "End",
    "Default",
    "StartAt",
    "States",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Result",
    "ItemsPath",
    "ItemSelector",
    "ItemProcessor",
    "Iterator",
    "MaxConcurrency",
    "MaxConcurrencyPath",
    "Retry",
    "Catch",
    "ErrorEquals",
    "MaxAttempts",
    "IntervalSeconds",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
    "TimeoutSeconds",
    "TimeoutSecondsPath",
    "HeartbeatSeconds",
    "HeartbeatSecondsPath",
    "Assign",
    "Output",
    "Arguments",
    "Items",
    "Condition",
    "QueryLanguage",
    "Branches",
    "Choices",
    "Variable",
    "ToleratedFailureCount",
    "ToleratedFailurePercentage",
    "ToleratedFailureCountPath",
    "ItemBatcher",
    "MaxItemsPerBatch",
    "MaxInputBytesPerBatch",
    "BatchInput",
    "Error",
    "Cause",
    "ErrorPath",
    "CausePath",
    "Resource",
    "Comment",
    "And",
    "Or",
    "Not",
    "StringEquals",
    "NumericLessThan",
    "NumericEqualsPath",
    "IsPresent",
    "StringMatches",
    "TimestampEquals",
    "FuzzError",
    "StateMachineArn",
    "Input",
    "FunctionName",
    "Payload",
];

const STRINGS: &[&str] = &[
    "$",
    "$$",
    "$.a",
    "$.a.b.c",
    "$..a",
    "$.*",
    "$[*]",
    "$.a[0]",
    "$.a[-1:]",
    "$.a[0:100000:1]",
    "$.a[?(@.b > 1)]",
    "$$.Execution.Input",
    "$$.Map.Item.Value",
    "$$.State.RetryCount",
    "$$.Task.Token",
    "$.a.length()",
    "$[0]",
    "$['a']['b']",
    "$.",
    "$..",
    "$[",
    "$.a[999999999]",
    "States.ArrayRange(0, 999, 1)",
    "States.ArrayRange(0, 1000000000, 1)",
    "States.ArrayRange(-2147483648, 2147483647, 1)",
    "States.ArrayRange(0, 10, 0)",
    "States.StringSplit($.s, '')",
    "States.StringSplit('a,b,,c', ',')",
    "States.ArrayPartition(States.ArrayRange(0, 999, 1), 1)",
    "States.ArrayUnique($.a)",
    "States.ArrayContains($.a, $.b)",
    "States.ArrayGetItem($.a, 999999999999)",
    "States.ArrayLength($)",
    "States.Array($, $, $, $)",
    "States.JsonMerge($, $, true)",
    "States.JsonMerge($.a, $.b, false)",
    "States.StringToJson($.s)",
    "States.JsonToString($)",
    "States.Format('{}{}{}{}', $, $, $, $)",
    "States.Format('\\{}')",
    "States.Hash($, 'SHA-512')",
    "States.Base64Encode(States.JsonToString($))",
    "States.Base64Decode($.s)",
    "States.MathRandom(0, 2147483647)",
    "States.MathRandom(5, 1)",
    "States.MathAdd(2147483647, 1)",
    "States.MathAdd($.n, -9007199254740993)",
    "States.UUID()",
    "States.Array(States.Array(States.Array(States.Array(States.Array(States.Array(1))))))",
    "{% $states.input %}",
    "{% $states.context %}",
    "{% $states.result %}",
    "{% $states.errorOutput %}",
    "{% [1..1000000] %}",
    "{% [1..100000000] %}",
    "{% $range(0, 999, 1) %}",
    "{% $range(0, 1e9, 1) %}",
    "{% $partition([1..1000], 1) %}",
    "{% $f := function($x){ $f($x + 1) }; $f(0) %}",
    "{% $f := function($x){ $x > 0 ? $f($x - 1) : 0 }; $f(100000) %}",
    "{% $reduce([1..100000], function($a, $b){ $a & $b }) %}",
    "{% $join($map([1..100000], $string)) %}",
    "{% $pad('', 100000000) %}",
    "{% $string($states) %}",
    "{% $parse('[[[[[[[[[[1]]]]]]]]]]') %}",
    "{% $hash('a', 'MD5') %}",
    "{% ($f := function($n){ $n = 0 ? 1 : {'a': $f($n - 1)} }; $f(900)) %}",
    "{% ($f := function($n){ $n = 0 ? [] : [$f($n - 1)] }; $f(5000)) %}",
    "{% $uuid() %}",
    "{% $count($states.input) %}",
    "{% $x := 1 %}",
    "{% %}",
    "{% $nope() %}",
    "{% $states.input.a.b.c %}",
    "{% $boolean($states.input) %}",
    "{% 1/0 %}",
    "{% $sum([1..100000]) %}",
    "{% ($a := [1..1000]; $a.$a) %}",
    "{% $eval('1+1') %}",
    "{% $now() %}",
    "{% $millis() %}",
    "{% $sort([1..100000], function($a,$b){$a<$b}) %}",
    "{% '' & $states.input %}",
    "{% $match('aaaaaaaaaaaaaaaaaaaaaaaaaaaa!', /(a+)+$/) %}",
    "{% $replace($string([1..10000]), /\\d/, '') %}",
    "{% $states.input ~> $each(function($v,$k){$k}) %}",
    "JSONata",
    "JSONPath",
    "Pass",
    "Task",
    "Choice",
    "Wait",
    "Succeed",
    "Fail",
    "Parallel",
    "Map",
    "States.ALL",
    "States.TaskFailed",
    "States.Timeout",
    "States.Runtime",
    "FULL",
    "NONE",
    "INLINE",
    "DISTRIBUTED",
    "",
    "2026-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "2026-13-45T99:99:99Z",
    "arn:aws:states:::lambda:invoke",
    "arn:aws:states:::lambda:invoke.waitForTaskToken",
    "arn:aws:lambda:us-east-1:000000000000:function:echo",
    "arn:aws:states:::states:startExecution",
    "arn:aws:states:::states:startExecution.sync",
    "arn:aws:states:::states:startExecution.sync:2",
    "arn:aws:states:us-east-1:000000000000:stateMachine:fuzz",
    "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
    "arn:aws:states:::dynamodb:getItem",
    "arn:aws:states:::batch:submitJob.sync",
];

fn numbers() -> Vec<Value> {
    vec![
        json!(0),
        json!(1),
        json!(-1),
        json!(2),
        json!(15),
        json!(1000),
        json!(1001),
        json!(99_999_999),
        json!(2_147_483_647),
        json!(-2_147_483_648_i64),
        json!(9_007_199_254_740_993_i64),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(0.5),
        json!(-0.0),
        json!(1e308),
        json!(-1e308),
        json!(1e-308),
        json!(100.0),
        json!(2.5),
        json!(true),
        json!(false),
        Value::Null,
    ]
}

/// Snippets that reach code the conformance cases do not: Task resources, callbacks, child
/// executions, retries and catchers, big Maps.
fn snippets() -> Vec<Value> {
    let machine = format!(
        "arn:aws:states:us-east-1:000000000000:stateMachine:{}",
        engine_case::MACHINE
    );
    vec![
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
               "Parameters": {"FunctionName": "echo", "Payload.$": "$"}, "End": true}),
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
               "Parameters": {"FunctionName": "echo", "Payload": {"token.$": "$$.Task.Token"}},
               "HeartbeatSeconds": 1, "TimeoutSeconds": 2, "End": true}),
        json!({"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
               "Parameters": {"MessageBody.$": "$"}, "End": true}),
        json!({"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
               "Parameters": {"StateMachineArn": machine, "Input.$": "$"}, "End": true}),
        json!({"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
               "Parameters": {"StateMachineArn": machine}, "End": true}),
        json!({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
               "Parameters": {"FuzzError": "Custom.Error"},
               "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 99_999_999,
                          "IntervalSeconds": 0, "BackoffRate": 1}],
               "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "A"}],
               "End": true}),
        json!({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
               "Parameters": {"FuzzError": "Custom.Error"},
               "Retry": [{"ErrorEquals": ["Custom.Error"], "MaxAttempts": 3,
                          "IntervalSeconds": 1, "BackoffRate": 2.0, "JitterStrategy": "FULL",
                          "MaxDelaySeconds": 5}], "End": true}),
        json!({"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 0,
               "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}},
               "End": true}),
        json!({"Type": "Map", "ItemsPath": "$.items", "ToleratedFailurePercentage": 50,
               "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Fail", "Error": "E"}}},
               "End": true}),
        json!({"Type": "Parallel", "Branches": [
                 {"StartAt": "P", "States": {"P": {"Type": "Wait", "Seconds": 99_999_999, "End": true}}},
                 {"StartAt": "Q", "States": {"Q": {"Type": "Fail", "Error": "E"}}}],
               "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "A"}], "End": true}),
        json!({"Type": "Wait", "Timestamp": "9999-12-31T23:59:59Z", "End": true}),
        json!({"Type": "Pass", "Parameters": {"a.$": "States.ArrayRange(0, 999, 1)"},
               "ResultPath": "$.items", "Next": "A"}),
        json!({"Type": "Pass", "ResultPath": "$.a", "Next": "A"}),
        json!({"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 1000000,
               "Next": "A"}], "Default": "A"}),
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}),
        json!({"StartAt": "A", "QueryLanguage": "JSONata",
               "States": {"A": {"Type": "Pass", "Output": "{% $states.input %}", "End": true}}}),
    ]
}

/// Every node of a JSON tree, pre-order, as JSON Pointers.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    if out.len() > 4096 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn random_node<'v>(v: &'v mut Value, b: &mut Bytes<'_>) -> &'v mut Value {
    let mut all = Vec::new();
    pointers(v, String::new(), &mut all);
    let p = b.pick(&all).clone();
    if v.pointer(&p).is_none() {
        return v;
    }
    v.pointer_mut(&p).expect("a pointer into this very tree")
}

fn interesting(b: &mut Bytes<'_>, seeds: &[Case]) -> Value {
    match b.byte() % 9 {
        0 | 1 => json!(b.pick(STRINGS)),
        2 => b.pick(&numbers()).clone(),
        3 => b.pick(&snippets()).clone(),
        4 => json!(b.text()),
        5 => {
            // A subtree of another seed.
            let mut other = b.pick(seeds).definition.clone();
            random_node(&mut other, b).clone()
        }
        6 => {
            // Below serde_json's parse depth limit (128), so that the case document of a
            // finding can be read back.
            let depth = b.below(100);
            let mut v = json!(1);
            for _ in 0..depth {
                v = json!({"a": v});
            }
            v
        }
        7 => json!((0..b.below(2000)).collect::<Vec<_>>()),
        _ => json!({ b.pick(ASL_FIELDS).to_string(): b.pick(STRINGS).to_string() }),
    }
}

fn mutate(case: &mut Case, b: &mut Bytes<'_>, seeds: &[Case]) {
    let on_input = b.byte().is_multiple_of(5);
    let target = if on_input {
        &mut case.input
    } else {
        &mut case.definition
    };
    match b.byte() % 6 {
        0 | 1 => *random_node(target, b) = interesting(b, seeds),
        2 => {
            // Add (or overwrite) a field.
            let key = b.pick(ASL_FIELDS).to_string();
            let value = interesting(b, seeds);
            if let Value::Object(m) = random_object(target, b) {
                m.insert(key, value);
            }
        }
        3 => {
            // Drop a field.
            if let Value::Object(m) = random_object(target, b)
                && !m.is_empty()
            {
                let i = b.below(m.len());
                if let Some(k) = m.keys().nth(i).cloned() {
                    m.remove(&k);
                }
            }
        }
        4 => {
            // Replace a state with a snippet, keeping its transition.
            let snippet = b.pick(&snippets()).clone();
            if let Some(Value::Object(states)) = target.get_mut("States")
                && !states.is_empty()
            {
                let i = b.below(states.len());
                let name = states.keys().nth(i).cloned().unwrap_or_default();
                if let Some(state) = states.get_mut(&name) {
                    let keep: Map<String, Value> = state
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| *k == "Next" || *k == "End")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    *state = snippet;
                    if let Value::Object(s) = state
                        && !keep.is_empty()
                    {
                        s.remove("End");
                        s.remove("Next");
                        s.extend(keep);
                    }
                }
            }
        }
        _ => {
            // Input: numbers, strings and arrays the snippets read.
            if let Value::Object(m) = &mut case.input {
                m.insert("n".into(), b.pick(&numbers()).clone());
                m.insert("s".into(), json!(b.text().repeat(1 + b.below(5000))));
                m.insert(
                    "items".into(),
                    json!((0..b.below(1200)).collect::<Vec<_>>()),
                );
            } else {
                case.input = json!({"a": case.input.take()});
            }
        }
    }
}

fn random_object<'v>(v: &'v mut Value, b: &mut Bytes<'_>) -> &'v mut Value {
    let mut all = Vec::new();
    objects(v, String::new(), &mut all);
    if all.is_empty() {
        return v;
    }
    let p = b.pick(&all).clone();
    if v.pointer(&p).is_none() {
        return v;
    }
    v.pointer_mut(&p).expect("a pointer into this very tree")
}

fn objects(v: &Value, at: String, out: &mut Vec<String>) {
    if out.len() > 4096 {
        return;
    }
    match v {
        Value::Object(m) => {
            out.push(at.clone());
            for (k, c) in m {
                objects(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                objects(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}
