//! Compares the Rust JSONata engines on crates.io as the evaluator of ASL's JSONata mode:
//! correctness first, then speed.
//!
//! Engines: `jsonata-core` (what `cm_asl::jsonata` uses), `jlens-core`, `async_jsonata_rust`,
//! `seuil` and `jsonata-rs`. (`jsonata` 0.0.0 is the abandoned original of `jsonata-rs` and is
//! left out.) Each one is driven the way the engine would drive it: `$states` and the ASL
//! variables bound from `serde_json` values, the Step Functions functions (`$partition`,
//! `$range`, `$parse`, `$hash`, `$uuid`) registered as host functions, the result converted back
//! to `serde_json` with whole numbers made integers. Those conversions are part of every timing.
//!
//! Correctness, two sets:
//! 1. **Corpus**: every `{% … %}` expression of the cases recorded on AWS whose name has
//!    `jsonata` in it (`tests/asl-conformance/cases`). A tiny ASL walker (Pass, Choice, Fail,
//!    Succeed, Wait, and Map with a trivial processor, which is all these cases use) runs each
//!    case with `cm_asl::jsonata::evaluate` (jsonata-core, which matches AWS on these cases) and
//!    records each expression with the `$states` and variables it was evaluated with; every
//!    engine then evaluates the same recorded expressions and is compared with jsonata-core. The
//!    walk's own final outcome is checked against the recorded AWS outcome, so the bindings are
//!    known to be the right ones.
//! 2. **Probes**: 108 expressions covering the JSONata language and function library, with the
//!    results of the reference implementation, jsonata-js 2.2.2, embedded below (`PROBES`).
//!
//! Speed: representative expressions on a 3.9 KB `$states` (a 100-number array, 20 items, and
//! the context object, which holds a copy of the execution input as in the engine), in three
//! modes: parsed and bound on every evaluation (what `cm_asl::jsonata::evaluate` does today),
//! parsed once, and parsed once with the bindings made once (as the engine could for all the
//! expressions of one state). Then `cm_asl::jsonata::evaluate` itself against the same steps
//! with each cache. Medians per evaluation; the samples of the engines compared in one row are
//! interleaved, so that load from elsewhere on the machine falls on all of them alike.
//!
//! Run: `cargo bench --manifest-path tools/jsonata-compare/Cargo.toml` (15–30 s after the build).
//! Test mode (each measurement once, a few seconds):
//! `cargo test --manifest-path tools/jsonata-compare/Cargo.toml --benches`.
//! `JSONATA_COMPARE_VERBOSE=1` lists every difference instead of the first few per engine.
//!
//! The probes' expected results were made with jsonata-js 2.2.2 (npm `jsonata`) on node 20:
//! `jsonata(expr).evaluate(undefined, {states: {input: PROBE_INPUT, context: PROBE_CONTEXT}})`,
//! written as `JSON.stringify(result)`, `undefined`, or `error:` and the error's code.

use serde_json::{Map, Number, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------------ outcomes

/// What one evaluation gave, in the engine's terms.
#[derive(Debug, Clone)]
enum Outcome {
    /// A JSON result (whole numbers as integers, as the engine writes them).
    Value(Value),
    /// JSONata's *undefined* (the engine fails with "returned nothing").
    Undefined,
    /// A function, regex or other non-JSON result ("unsupported result type").
    Function,
    /// An evaluation error: its JSONata code (`T1006`) and its text.
    Error { code: String, text: String },
    /// The engine panicked.
    Panic(String),
}

impl Outcome {
    fn short(&self) -> String {
        let text = match self {
            Outcome::Value(v) => v.to_string(),
            Outcome::Undefined => "undefined".to_owned(),
            Outcome::Function => "<function>".to_owned(),
            Outcome::Error { text, .. } => format!("error {text}"),
            Outcome::Panic(m) => format!("panic {m}"),
        };
        if text.chars().count() > 110 {
            format!("{}…", text.chars().take(110).collect::<String>())
        } else {
            text
        }
    }
}

fn error(code: &str, text: String) -> Outcome {
    Outcome::Error {
        code: code.to_owned(),
        text,
    }
}

/// `CODE: message` from texts shaped `CODE @ position: message` or `CODE: message`.
fn code_text(code: &str, display: &str) -> String {
    match display.split_once(": ") {
        Some((_, message)) => format!("{code}: {message}"),
        None => format!("{code}: {display}"),
    }
}

/// JSONata numbers are doubles; AWS prints whole numbers without a fraction (as `cm_asl` does).
fn integral(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Value::Number(Number::from(f as i64))
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, integral(v))).collect()),
        other => other,
    }
}

fn f64_value(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// JSON equality with numbers compared as doubles; `ordered` also compares object key order.
fn same_json(a: &Value, b: &Value, ordered: bool) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b, ordered))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && if ordered {
                    x.iter()
                        .zip(y)
                        .all(|((ka, va), (kb, vb))| ka == kb && same_json(va, vb, ordered))
                } else {
                    x.iter()
                        .all(|(k, va)| y.get(k).is_some_and(|vb| same_json(va, vb, ordered)))
                }
        }
        _ => a == b,
    }
}

/// `None` when `got` matches `want`, else the kind of difference.
fn difference(want: &Outcome, got: &Outcome) -> Option<&'static str> {
    use Outcome as O;
    match (want, got) {
        (_, O::Panic(_)) => Some("panics"),
        (O::Value(a), O::Value(b)) if same_json(a, b, true) => None,
        (O::Value(a), O::Value(b)) if same_json(a, b, false) => Some("object key order differs"),
        (O::Value(Value::String(_)), O::Value(Value::String(_))) => {
            Some("different string (formatting)")
        }
        (O::Value(Value::Number(_)), O::Value(Value::Number(_))) => Some("different number"),
        (O::Value(_), O::Value(Value::Null)) => Some("null instead of a value"),
        (O::Value(_), O::Value(_)) => Some("different value"),
        (O::Undefined, O::Undefined) | (O::Function, O::Function) => None,
        (O::Undefined, O::Value(Value::Null)) => Some("null instead of undefined"),
        (O::Undefined, _) => Some("value or error instead of undefined"),
        (O::Function, _) => Some("function result not reported as such"),
        (O::Error { code: a, .. }, O::Error { code: b, .. }) if a == b => None,
        (O::Error { .. }, O::Error { .. }) => Some("different error code"),
        (O::Error { .. }, _) => Some("no error where one is due"),
        (O::Value(_), O::Error { code, .. }) if code == "T1006" => Some("missing function (T1006)"),
        (O::Value(_), O::Error { .. }) => Some("error instead of a value"),
        (O::Value(_), O::Undefined) => Some("undefined instead of a value"),
        (O::Value(_), O::Function) => Some("function instead of a value"),
        (O::Panic(_), _) => Some("reference panicked"),
    }
}

// ------------------------------------------------------- Step Functions' extra functions

// The same functions the engine registers with jsonata-core, given to every candidate.
use cm_asl::jsonata::{
    STEP_FUNCTIONS_FUNCTIONS as SFN_FUNCTIONS, step_functions_function as sfn_function,
};

// -------------------------------------------------------------------------------- engines

/// One JSONata engine, driven with the engine's bindings.
trait Candidate {
    fn name(&self) -> &'static str;
    /// Parses and evaluates once; `Err` is a parse error.
    fn run(&self, expr: &str, states: &Value, vars: &Map<String, Value>)
    -> Result<Outcome, String>;
    /// Times `iters` evaluations of an expression parsed once (`cached`) or on each evaluation.
    fn time(
        &self,
        expr: &str,
        states: &Value,
        vars: &Map<String, Value>,
        iters: u64,
        cached: bool,
    ) -> Duration;
    /// Times `iters` evaluations parsed once, with the bindings made once beforehand (as for
    /// all the expressions of one state). Zero where the API converts them on each evaluation.
    fn time_prepared(
        &self,
        _expr: &str,
        _states: &Value,
        _vars: &Map<String, Value>,
        _iters: u64,
    ) -> Duration {
        Duration::ZERO
    }
}

/// Times `iters` runs of `eval(&parsed)`, parsing once or every time.
fn time_with<P, O>(
    expr: &str,
    iters: u64,
    cached: bool,
    parse: impl Fn(&str) -> Option<P>,
    eval: impl Fn(&P) -> O,
) -> Duration {
    if cached {
        let Some(parsed) = parse(expr) else {
            return Duration::ZERO;
        };
        let start = Instant::now();
        for _ in 0..iters {
            black_box(eval(&parsed));
        }
        start.elapsed()
    } else {
        let start = Instant::now();
        for _ in 0..iters {
            if let Some(parsed) = parse(black_box(expr)) {
                black_box(eval(&parsed));
            }
        }
        start.elapsed()
    }
}

// ---- jsonata-core

mod core_engine {
    use super::*;
    use jsonata_core::ast::AstNode;
    use jsonata_core::evaluator::{
        Context, Evaluator, EvaluatorError, EvaluatorOptions, HostFnResult,
    };
    use jsonata_core::value::JValue;

    pub struct JsonataCore;

    /// The evaluation limits `cm_asl::jsonata` sets (a wall-clock timeout costs a clock read
    /// now and then).
    fn options() -> EvaluatorOptions {
        EvaluatorOptions {
            timeout_ms: Some(2_000),
            max_stack_depth: Some(3_000),
            max_sequence_length: Some(1_000_000),
            ..EvaluatorOptions::default()
        }
    }

    pub fn parse(expr: &str) -> Option<AstNode> {
        jsonata_core::parser::parse(expr).ok()
    }

    fn host(name: &'static str) -> impl Fn(&[JValue]) -> HostFnResult {
        move |args: &[JValue]| {
            let values: Vec<Value> = args.iter().map(Value::from).collect();
            sfn_function(name, &values)
                .map(JValue::from)
                .map_err(EvaluatorError::EvaluationError)
        }
    }

    /// What `cm_asl::jsonata::evaluate` does after parsing.
    pub fn eval(ast: &AstNode, states: &Value, vars: &Map<String, Value>) -> Outcome {
        let vars: Vec<(String, JValue)> = vars
            .iter()
            .map(|(name, value)| (name.clone(), JValue::from(value.clone())))
            .collect();
        eval_bound(ast, &JValue::from(states.clone()), &vars)
    }

    /// `eval` with the bindings converted beforehand (a `JValue` clone is a reference count).
    pub fn eval_bound(ast: &AstNode, states: &JValue, vars: &[(String, JValue)]) -> Outcome {
        let mut context = Context::new();
        context.bind("states".into(), states.clone());
        for (name, value) in vars {
            context.bind(name.clone(), value.clone());
        }
        let mut evaluator = Evaluator::with_options(context, options());
        for (name, _) in SFN_FUNCTIONS {
            let _ = evaluator.register_fn(name, host(name));
        }
        match evaluator.evaluate(ast, &JValue::Null) {
            Ok(JValue::Undefined) => Outcome::Undefined,
            Ok(JValue::Lambda(_) | JValue::Builtin { .. } | JValue::Regex { .. }) => {
                Outcome::Function
            }
            Ok(v) => Outcome::Value(integral(Value::from(&v))),
            Err(e) => {
                let text = e.to_string();
                let mut text = text.as_str();
                for prefix in ["Type error: ", "Reference error: ", "Evaluation error: "] {
                    text = text.strip_prefix(prefix).unwrap_or(text);
                }
                let code = text.get(..5).unwrap_or("?????");
                // As the engine does: jsonata-js (what AWS runs) does not name the callee.
                const NOT_A_FUNCTION: &str = "T1006: Attempted to invoke a non-function";
                if text.starts_with(NOT_A_FUNCTION) {
                    text = NOT_A_FUNCTION;
                }
                error(code, text.to_owned())
            }
        }
    }

    /// Times `iters` evaluations with the bindings converted once, as the engine could do for
    /// all the expressions of one state; the AST parsed once (`cached`) or every time.
    pub fn time_bound(
        expr: &str,
        states: &Value,
        vars: &Map<String, Value>,
        iters: u64,
        cached: bool,
    ) -> Duration {
        let states = JValue::from(states.clone());
        let vars: Vec<(String, JValue)> = vars
            .iter()
            .map(|(name, value)| (name.clone(), JValue::from(value.clone())))
            .collect();
        time_with(expr, iters, cached, parse, |ast| {
            eval_bound(ast, &states, &vars)
        })
    }

    /// The per-evaluation set-up without the evaluation: bindings converted, host functions
    /// registered.
    pub fn setup_only(states: &Value, vars: &Map<String, Value>) -> Evaluator {
        let mut context = Context::new();
        context.bind("states".into(), JValue::from(states.clone()));
        for (name, value) in vars {
            context.bind(name.clone(), JValue::from(value.clone()));
        }
        let mut evaluator = Evaluator::with_options(context, options());
        for (name, _) in SFN_FUNCTIONS {
            let _ = evaluator.register_fn(name, host(name));
        }
        evaluator
    }

    pub fn convert_only(states: &Value) -> JValue {
        JValue::from(states.clone())
    }

    impl Candidate for JsonataCore {
        fn name(&self) -> &'static str {
            "jsonata-core"
        }
        fn run(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
        ) -> Result<Outcome, String> {
            let ast = jsonata_core::parser::parse(expr).map_err(|e| e.to_string())?;
            Ok(eval(&ast, states, vars))
        }
        fn time(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
            iters: u64,
            cached: bool,
        ) -> Duration {
            time_with(expr, iters, cached, parse, |ast| eval(ast, states, vars))
        }
        fn time_prepared(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
            iters: u64,
        ) -> Duration {
            time_bound(expr, states, vars, iters, true)
        }
    }
}

// ---- jlens-core

mod jlens {
    use super::*;
    use jlens_core::{Bindings, Expression, HostCall, HostFunction};

    pub struct Jlens {
        functions: Bindings,
    }

    impl Jlens {
        pub fn new() -> Self {
            let mut functions = Bindings::new();
            for (name, arity) in SFN_FUNCTIONS {
                functions = functions.function(
                    name,
                    HostFunction::new(
                        arity,
                        move |args: &[Option<Value>], _call: &HostCall<'_>| {
                            let values: Vec<Value> = args
                                .iter()
                                .map(|a| a.clone().unwrap_or(Value::Null))
                                .collect();
                            sfn_function(name, &values)
                                .map(Some)
                                .map_err(|m| jlens_core::Error::new("D3137").with("message", m))
                        },
                    ),
                );
            }
            Jlens { functions }
        }

        fn bindings(&self, states: &Value, vars: &Map<String, Value>) -> Bindings {
            let mut bindings = self.functions.clone().var("states", states.clone());
            for (name, value) in vars {
                bindings = bindings.var(name.clone(), value.clone());
            }
            bindings
        }

        fn eval(&self, expr: &Expression, states: &Value, vars: &Map<String, Value>) -> Outcome {
            eval_bound(expr, &self.bindings(states, vars))
        }
    }

    /// jlens reads bindings lazily: a value is converted only where the expression reaches it.
    fn eval_bound(expr: &Expression, bindings: &Bindings) -> Outcome {
        match expr.evaluate(None, bindings) {
            Ok(Some(v)) => Outcome::Value(integral(v)),
            Ok(None) => Outcome::Undefined,
            Err(e) => error(e.code(), format!("{}: {}", e.code(), e.message())),
        }
    }

    impl Candidate for Jlens {
        fn name(&self) -> &'static str {
            "jlens-core"
        }
        fn run(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
        ) -> Result<Outcome, String> {
            let compiled = Expression::compile(expr).map_err(|e| e.to_string())?;
            Ok(self.eval(&compiled, states, vars))
        }
        fn time(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
            iters: u64,
            cached: bool,
        ) -> Duration {
            time_with(
                expr,
                iters,
                cached,
                |e| Expression::compile(e).ok(),
                |c| self.eval(c, states, vars),
            )
        }
        fn time_prepared(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
            iters: u64,
        ) -> Duration {
            let bindings = self.bindings(states, vars);
            time_with(
                expr,
                iters,
                true,
                |e| Expression::compile(e).ok(),
                |c| eval_bound(c, &bindings),
            )
        }
    }
}

// ---- async_jsonata_rust

mod async_jsonata {
    use super::*;
    use async_jsonata_rust::types::FunctionContext;
    use async_jsonata_rust::{
        Evaluator, Expression, FunctionRegistry, JsonCallable, JsonError, JsonFunction, JsonValue,
    };
    use std::any::Any;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Poll, Waker};

    type BoxFuture = Pin<Box<dyn Future<Output = Result<JsonValue, JsonError>> + Send>>;

    struct Sfn(&'static str, usize);

    impl JsonCallable for Sfn {
        fn call(&self, _ctx: FunctionContext, args: Vec<JsonValue>) -> BoxFuture {
            let values: Vec<Value> = args
                .iter()
                .map(|a| a.to_serde_json().unwrap_or(Value::Null))
                .collect();
            let result = sfn_function(self.0, &values)
                .map(|v| JsonValue::from_serde_json(&v))
                .map_err(|m| JsonError::new("D3137", m));
            Box::pin(async move { result })
        }
        fn arity(&self) -> Option<usize> {
            Some(self.1)
        }
        fn as_any(&self) -> &(dyn Any + Send + Sync) {
            self
        }
    }

    /// Drives a future that never waits on anything outside (no async host function here).
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::yield_now();
        }
    }

    pub struct AsyncJsonata {
        evaluator: Evaluator,
        /// The synchronous API (a thread per evaluation) instead of polling on this thread.
        sync_api: bool,
    }

    impl AsyncJsonata {
        pub fn new(sync_api: bool) -> Self {
            let mut registry = FunctionRegistry::with_builtins();
            for (name, arity) in SFN_FUNCTIONS {
                registry.insert(name, JsonFunction::new(Arc::new(Sfn(name, arity))));
            }
            AsyncJsonata {
                evaluator: Evaluator::new(registry),
                sync_api,
            }
        }

        fn bindings(states: &Value, vars: &Map<String, Value>) -> HashMap<String, JsonValue> {
            let mut bindings = HashMap::with_capacity(vars.len() + 1);
            bindings.insert("states".to_owned(), JsonValue::from_serde_json(states));
            for (name, value) in vars {
                bindings.insert(name.clone(), JsonValue::from_serde_json(value));
            }
            bindings
        }

        fn eval(&self, expr: &Expression, states: &Value, vars: &Map<String, Value>) -> Outcome {
            self.eval_bound(expr, &Self::bindings(states, vars))
        }

        fn eval_bound(&self, expr: &Expression, bindings: &HashMap<String, JsonValue>) -> Outcome {
            let result = if self.sync_api {
                self.evaluator
                    .evaluate_with_bindings(expr, &JsonValue::Undefined, bindings)
            } else {
                block_on(self.evaluator.evaluate_with_bindings_async(
                    expr,
                    &JsonValue::Undefined,
                    bindings,
                ))
            };
            match result {
                Ok(JsonValue::Undefined) => Outcome::Undefined,
                Ok(JsonValue::Function(_)) => Outcome::Function,
                Ok(v) => match v.to_serde_json() {
                    Some(v) => Outcome::Value(integral(v)),
                    None => Outcome::Undefined,
                },
                Err(e) => error(e.code(), format!("{}: {}", e.code(), e.message())),
            }
        }
    }

    impl Candidate for AsyncJsonata {
        fn name(&self) -> &'static str {
            if self.sync_api {
                "async_jsonata_rust (sync API)"
            } else {
                "async_jsonata_rust"
            }
        }
        fn run(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
        ) -> Result<Outcome, String> {
            let parsed = self.evaluator.parse(expr).map_err(|e| e.to_string())?;
            Ok(self.eval(&parsed, states, vars))
        }
        fn time(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
            iters: u64,
            cached: bool,
        ) -> Duration {
            time_with(
                expr,
                iters,
                cached,
                |e| self.evaluator.parse(e).ok(),
                |p| self.eval(p, states, vars),
            )
        }
        fn time_prepared(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
            iters: u64,
        ) -> Duration {
            let bindings = Self::bindings(states, vars);
            time_with(
                expr,
                iters,
                true,
                |e| self.evaluator.parse(e).ok(),
                |p| self.eval_bound(p, &bindings),
            )
        }
    }
}

// ---- seuil

mod seuil_engine {
    use super::*;
    use bumpalo::Bump;
    use seuil::clock::RealEnvironment;
    use seuil::evaluator::Value as SValue;
    use seuil::evaluator::engine::Evaluator;
    use seuil::evaluator::value::FnContext;
    use seuil::parser::ast::Ast;

    static ENVIRONMENT: RealEnvironment = RealEnvironment::new_const();

    pub struct Seuil;

    /// `None` for undefined; functions inside structures become null.
    fn to_json(v: &SValue<'_>) -> Option<Value> {
        Some(match v {
            SValue::Undefined => return None,
            SValue::Null => Value::Null,
            SValue::Bool(b) => Value::Bool(*b),
            SValue::Number(n) => f64_value(*n),
            SValue::String(s) => Value::String(s.to_string()),
            SValue::Array(items, _) => {
                Value::Array(items.iter().filter_map(|i| to_json(i)).collect())
            }
            SValue::Object(m) => Value::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), to_json(v)?)))
                    .collect(),
            ),
            SValue::Range(r) => Value::Array((r.start()..=r.end()).map(Value::from).collect()),
            _ => Value::Null,
        })
    }

    fn native<'a>(
        name: &str,
        ctx: &FnContext<'a, '_>,
        args: &[&'a SValue<'a>],
    ) -> seuil::Result<&'a SValue<'a>> {
        let values: Vec<Value> = args
            .iter()
            .map(|a| to_json(a).unwrap_or(Value::Null))
            .collect();
        sfn_function(name, &values)
            .map(|v| &*SValue::from_json(ctx.arena, &v))
            .map_err(seuil::Error::D3137Error)
    }

    fn partition<'a>(
        ctx: FnContext<'a, '_>,
        args: &[&'a SValue<'a>],
    ) -> seuil::Result<&'a SValue<'a>> {
        native("partition", &ctx, args)
    }
    fn range<'a>(ctx: FnContext<'a, '_>, args: &[&'a SValue<'a>]) -> seuil::Result<&'a SValue<'a>> {
        native("range", &ctx, args)
    }
    fn parse_fn<'a>(
        ctx: FnContext<'a, '_>,
        args: &[&'a SValue<'a>],
    ) -> seuil::Result<&'a SValue<'a>> {
        native("parse", &ctx, args)
    }
    fn hash<'a>(ctx: FnContext<'a, '_>, args: &[&'a SValue<'a>]) -> seuil::Result<&'a SValue<'a>> {
        native("hash", &ctx, args)
    }
    fn uuid<'a>(ctx: FnContext<'a, '_>, args: &[&'a SValue<'a>]) -> seuil::Result<&'a SValue<'a>> {
        native("uuid", &ctx, args)
    }

    type Native =
        for<'a, 'e> fn(FnContext<'a, 'e>, &[&'a SValue<'a>]) -> seuil::Result<&'a SValue<'a>>;

    const NATIVES: [(&str, usize, Native); 5] = [
        ("partition", 2, partition),
        ("range", 3, range),
        ("parse", 1, parse_fn),
        ("hash", 2, hash),
        ("uuid", 0, uuid),
    ];

    /// The crate's public `Seuil::evaluate*` turns undefined into null and takes no host
    /// functions, so this drives its (public) evaluator the way `Seuil` does, plus both.
    pub fn eval(ast: &Ast, states: &Value, vars: &Map<String, Value>) -> Outcome {
        let arena = Bump::new();
        let evaluator = Evaluator::new(&arena, &ENVIRONMENT, None, 1000, Some(5000));
        evaluator.bind_natives();
        for (name, arity, func) in NATIVES {
            evaluator.bind(
                name,
                arena.alloc(SValue::NativeFn {
                    name: name.to_owned(),
                    arity,
                    func,
                }),
            );
        }
        evaluator.bind("states", SValue::from_json(&arena, states));
        for (name, value) in vars {
            evaluator.bind(arena.alloc_str(name), SValue::from_json(&arena, value));
        }
        let input = SValue::undefined(&arena);
        evaluator.bind("$", input);
        match evaluator.evaluate(ast, input) {
            Ok(v) if v.is_function() || matches!(v, SValue::Regex(_)) => Outcome::Function,
            Ok(v) => match to_json(v) {
                Some(v) => Outcome::Value(integral(v)),
                None => Outcome::Undefined,
            },
            Err(e) => error(e.code(), code_text(e.code(), &e.to_string())),
        }
    }

    impl Candidate for Seuil {
        fn name(&self) -> &'static str {
            "seuil"
        }
        fn run(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
        ) -> Result<Outcome, String> {
            let ast = seuil::parser::parse(expr).map_err(|e| e.to_string())?;
            Ok(eval(&ast, states, vars))
        }
        fn time(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
            iters: u64,
            cached: bool,
        ) -> Duration {
            time_with(
                expr,
                iters,
                cached,
                |e| seuil::parser::parse(e).ok(),
                |ast| eval(ast, states, vars),
            )
        }
    }
}

// ---- jsonata-rs

mod jsonata_rs_engine {
    use super::*;
    use bumpalo::Bump;
    use jsonata_rs::{FunctionContext, JsonAta, Value as RValue};

    pub struct JsonataRs;

    /// `None` for undefined; functions inside structures become null.
    fn to_json(v: &RValue<'_>) -> Option<Value> {
        Some(match v {
            RValue::Undefined => return None,
            RValue::Null => Value::Null,
            RValue::Bool(b) => Value::Bool(*b),
            RValue::Number(n) => f64_value(*n),
            RValue::String(s) => Value::String(s.to_string()),
            RValue::Array(items, _) => {
                Value::Array(items.iter().filter_map(|i| to_json(i)).collect())
            }
            RValue::Object(m) => Value::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.to_string(), to_json(v)?)))
                    .collect(),
            ),
            RValue::Range(r) => Value::Array((r.start()..=r.end()).map(Value::from).collect()),
            _ => Value::Null,
        })
    }

    fn json_to_value<'a>(arena: &'a Bump, v: &Value) -> &'a RValue<'a> {
        // The crate's own serde_json conversion is private: JSON text is a JSONata expression
        // that evaluates to that value.
        match JsonAta::new(&v.to_string(), arena) {
            Ok(j) => j
                .evaluate(None, None)
                .unwrap_or_else(|_| RValue::undefined()),
            Err(_) => RValue::undefined(),
        }
    }

    fn native<'a>(
        name: &str,
        ctx: &FunctionContext<'a, '_>,
        args: &[&'a RValue<'a>],
    ) -> jsonata_rs::Result<&'a RValue<'a>> {
        let values: Vec<Value> = args
            .iter()
            .map(|a| to_json(a).unwrap_or(Value::Null))
            .collect();
        sfn_function(name, &values)
            .map(|v| json_to_value(ctx.arena, &v))
            .map_err(jsonata_rs::Error::D3137Error)
    }

    fn partition<'a>(
        ctx: FunctionContext<'a, '_>,
        args: &[&'a RValue<'a>],
    ) -> jsonata_rs::Result<&'a RValue<'a>> {
        native("partition", &ctx, args)
    }
    fn range<'a>(
        ctx: FunctionContext<'a, '_>,
        args: &[&'a RValue<'a>],
    ) -> jsonata_rs::Result<&'a RValue<'a>> {
        native("range", &ctx, args)
    }
    fn parse_fn<'a>(
        ctx: FunctionContext<'a, '_>,
        args: &[&'a RValue<'a>],
    ) -> jsonata_rs::Result<&'a RValue<'a>> {
        native("parse", &ctx, args)
    }
    fn hash<'a>(
        ctx: FunctionContext<'a, '_>,
        args: &[&'a RValue<'a>],
    ) -> jsonata_rs::Result<&'a RValue<'a>> {
        native("hash", &ctx, args)
    }
    fn uuid<'a>(
        ctx: FunctionContext<'a, '_>,
        args: &[&'a RValue<'a>],
    ) -> jsonata_rs::Result<&'a RValue<'a>> {
        native("uuid", &ctx, args)
    }

    fn compile<'a>(expr: &str, arena: &'a Bump) -> jsonata_rs::Result<JsonAta<'a>> {
        let jsonata = JsonAta::new(expr, arena)?;
        jsonata.register_function("partition", 2, partition);
        jsonata.register_function("range", 3, range);
        jsonata.register_function("parse", 1, parse_fn);
        jsonata.register_function("hash", 2, hash);
        jsonata.register_function("uuid", 0, uuid);
        Ok(jsonata)
    }

    fn eval(jsonata: &JsonAta<'_>, states: &Value, vars: &Map<String, Value>) -> Outcome {
        let mut bindings: HashMap<&str, &Value> = HashMap::with_capacity(vars.len() + 1);
        bindings.insert("states", states);
        for (name, value) in vars {
            bindings.insert(name, value);
        }
        match jsonata.evaluate(None, Some(&bindings)) {
            Ok(v) if v.is_function() || matches!(v, RValue::Regex(_)) => Outcome::Function,
            Ok(v) => match to_json(v) {
                Some(v) => Outcome::Value(integral(v)),
                None => Outcome::Undefined,
            },
            Err(e) => error(e.code(), code_text(e.code(), &e.to_string())),
        }
    }

    impl Candidate for JsonataRs {
        fn name(&self) -> &'static str {
            "jsonata-rs"
        }
        fn run(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
        ) -> Result<Outcome, String> {
            let arena = Bump::new();
            let jsonata = compile(expr, &arena).map_err(|e| e.to_string())?;
            Ok(eval(&jsonata, states, vars))
        }
        /// Values live in an arena borrowed by the compiled expression, so "cached" keeps one
        /// arena for the whole batch (it grows with each evaluation).
        fn time(
            &self,
            expr: &str,
            states: &Value,
            vars: &Map<String, Value>,
            iters: u64,
            cached: bool,
        ) -> Duration {
            if cached {
                let arena = Bump::new();
                let Ok(jsonata) = compile(expr, &arena) else {
                    return Duration::ZERO;
                };
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(eval(&jsonata, states, vars));
                }
                start.elapsed()
            } else {
                let start = Instant::now();
                for _ in 0..iters {
                    let arena = Bump::new();
                    if let Ok(jsonata) = compile(black_box(expr), &arena) {
                        black_box(eval(&jsonata, states, vars));
                    }
                }
                start.elapsed()
            }
        }
    }
}

/// Runs `f`, turning a panic into `Outcome::Panic` (the panic message is not printed).
fn guarded(f: impl FnOnce() -> Result<Outcome, String>) -> Result<Outcome, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        Ok(Outcome::Panic(message))
    })
}

// ------------------------------------------------------------------- corpus: a tiny walker

/// One expression as the engine evaluated it.
struct Site {
    case: String,
    field: String,
    expr: String,
    states: Value,
    vars: Map<String, Value>,
    /// What `cm_asl::jsonata::evaluate` gave.
    engine: Result<Value, String>,
}

/// How a run failed: error and cause.
type Failure = (Option<String>, Option<String>);

/// How a run ended: output, or error and cause.
type Ending = Result<Value, Failure>;

fn context(input: &Value, state: &str) -> Value {
    // The shape AWS gives `$states.context`, with the values the recorded cases mask.
    json!({
        "Execution": {
            "Id": "arn:<partition>:states:<region>:111111111111:execution:<ArnPart_0idx>:<ExecArnPart_0idx>",
            "Input": input,
            "StartTime": "date",
            "Name": "<ExecArnPart_0idx>",
            "RoleArn": "snf_role_arn",
            "RedriveCount": 0
        },
        "StateMachine": {
            "Id": "arn:<partition>:states:<region>:111111111111:stateMachine:<ArnPart_0idx>",
            "Name": "<ArnPart_0idx>"
        },
        "State": {"Name": state, "EnteredTime": "date"}
    })
}

struct Walk<'a> {
    case: &'a str,
    sites: Vec<Site>,
}

impl Walk<'_> {
    /// Evaluates the `{% %}` strings of a JSONata-mode field, recording each one.
    fn template(
        &mut self,
        tpl: &Value,
        states: &Value,
        vars: &Map<String, Value>,
        field: &str,
    ) -> Result<Value, Failure> {
        match tpl {
            Value::String(s) => match cm_asl::jsonata::expression(s) {
                Some(expr) => {
                    let engine = cm_asl::jsonata::evaluate(expr, states, vars, field);
                    self.sites.push(Site {
                        case: self.case.to_owned(),
                        field: field.to_owned(),
                        expr: expr.to_owned(),
                        states: states.clone(),
                        vars: vars.clone(),
                        engine: engine.clone().map_err(|e| e.cause.clone()),
                    });
                    engine.map_err(|e| (Some(e.error), Some(e.cause)))
                }
                None => Ok(tpl.clone()),
            },
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.template(item, states, vars, &format!("{field}[{i}]")))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Object(m) => {
                let mut out = Map::with_capacity(m.len());
                for (k, v) in m {
                    out.insert(
                        k.clone(),
                        self.template(v, states, vars, &format!("{field}/{k}"))?,
                    );
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Runs a case's state machine far enough to evaluate every expression it reaches.
    fn run(&mut self, definition: &Value, input: &Value) -> Ending {
        fn aslerr(e: cm_asl::AslError) -> Failure {
            (Some(e.error), Some(e.cause))
        }
        let top_ql = definition["QueryLanguage"].as_str().unwrap_or("JSONPath");
        let mut vars = Map::new();
        let mut data = input.clone();
        let mut name = definition["StartAt"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for _ in 0..100 {
            let state = &definition["States"][&name];
            let jsonata = state["QueryLanguage"].as_str().unwrap_or(top_ql) == "JSONata";
            let ctx = context(input, &name);
            let states = json!({"input": data, "context": ctx});
            let env = cm_asl::Env {
                context: &ctx,
                vars: &vars,
            };
            let mut next = state["Next"].as_str().map(str::to_owned);
            let mut output = data.clone();
            let mut assign = None;
            match state["Type"].as_str().unwrap_or_default() {
                "Pass" if jsonata => {
                    if let Some(a) = state.get("Assign") {
                        assign = Some(self.template(a, &states, &vars, "Assign")?);
                    }
                    if let Some(o) = state.get("Output") {
                        output = self.template(o, &states, &vars, "Output")?;
                    }
                }
                "Pass" => {
                    if let Some(p) = state.get("Parameters") {
                        output = cm_asl::payload::template(p, &data, &env).map_err(aslerr)?;
                    }
                    if let Some(r) = state.get("Result") {
                        output = r.clone();
                    }
                    if let Some(a) = state.get("Assign") {
                        assign = Some(cm_asl::payload::template(a, &data, &env).map_err(aslerr)?);
                    }
                }
                "Choice" => {
                    next = state["Default"].as_str().map(str::to_owned);
                    for (i, choice) in state["Choices"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        let matched = if jsonata {
                            let field = format!("Choices[{i}]/Condition");
                            self.template(&choice["Condition"], &states, &vars, &field)?
                                == Value::Bool(true)
                        } else {
                            cm_asl::choice::evaluate(choice, &data, &env).map_err(aslerr)?
                        };
                        if matched {
                            next = choice["Next"].as_str().map(str::to_owned);
                            break;
                        }
                    }
                    if next.is_none() {
                        return Err((Some("States.NoChoiceMatched".into()), None));
                    }
                }
                "Fail" => {
                    let mut field = |f: &str| -> Result<Option<String>, Failure> {
                        Ok(match state.get(f) {
                            Some(v) if jsonata => self
                                .template(v, &states, &vars, f)?
                                .as_str()
                                .map(str::to_owned),
                            Some(v) => v.as_str().map(str::to_owned),
                            None => None,
                        })
                    };
                    return Err((field("Error")?, field("Cause")?));
                }
                "Succeed" => return Ok(data),
                "Wait" if jsonata => {
                    if let Some(s) = state.get("Seconds") {
                        self.template(s, &states, &vars, "Seconds")?;
                    }
                    if let Some(t) = state.get("Timestamp") {
                        let t = self.template(t, &states, &vars, "Timestamp")?;
                        let text = t.as_str().unwrap_or_default();
                        if cm_asl::choice::timestamp(text).is_none() {
                            return Err((
                                Some("States.QueryEvaluationError".into()),
                                Some(format!(
                                    "The Timestamp field cannot be parsed as an ISO-8601 \
                                     extended offset date-time format string: {text}"
                                )),
                            ));
                        }
                    }
                }
                "Map" if jsonata => {
                    for f in [
                        "MaxConcurrency",
                        "ToleratedFailureCount",
                        "ToleratedFailurePercentage",
                    ] {
                        if let Some(v) = state.get(f) {
                            self.template(v, &states, &vars, f)?;
                        }
                    }
                    let items = match state.get("Items") {
                        Some(i) => self.template(i, &states, &vars, "Items")?,
                        None => data.clone(),
                    };
                    if !items.is_array() {
                        let kind = match &items {
                            Value::Null => "null",
                            Value::Bool(_) => "boolean",
                            Value::Number(_) => "number",
                            Value::String(_) => "string",
                            _ => "object",
                        };
                        let expr = state["Items"]
                            .as_str()
                            .and_then(cm_asl::jsonata::expression);
                        return Err((
                            Some("States.QueryEvaluationError".into()),
                            Some(format!(
                                "The JSONata expression '{}' specified for the field 'Items' \
                                 returned an unexpected result type. Expected 'array', but was \
                                 '{kind}' for value: {}",
                                expr.unwrap_or_default(),
                                cm_asl::payload::compact(&items)
                            )),
                        ));
                    }
                    // Every Map here has a single Pass as its item processor.
                    output = items;
                }
                other => {
                    return Err((
                        Some(format!("walker: unsupported state type {other}")),
                        None,
                    ));
                }
            }
            if let Some(Value::Object(a)) = assign {
                vars.extend(a);
            }
            data = output;
            match next {
                Some(n) if state["End"] != Value::Bool(true) => name = n,
                _ => return Ok(data),
            }
        }
        Err((Some("walker: too many steps".into()), None))
    }
}

/// Whether the walk ended as AWS recorded the case.
fn matches_recorded(ending: &Ending, expected: &Value) -> bool {
    match (expected["status"].as_str(), ending) {
        (Some("SUCCEEDED"), Ok(output)) => same_json(output, &expected["output"], true),
        (Some("FAILED"), Err((error, cause))) => {
            let want_error = expected["error"].as_str();
            let want_cause = expected["cause"].as_str();
            want_error == error.as_deref()
                && match (want_cause, cause) {
                    (None, None) => true,
                    // AWS prefixes "An error occurred while executing the state …".
                    (Some(w), Some(c)) => w.ends_with(c.as_str()),
                    _ => false,
                }
        }
        _ => false,
    }
}

fn corpus() -> (Vec<Site>, usize, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/asl-conformance/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("jsonata") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    let mut sites = Vec::new();
    let mut mismatched = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{e}"));
        let case: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let name = case["name"].as_str().unwrap_or_default().to_owned();
        let mut walk = Walk {
            case: &name,
            sites: Vec::new(),
        };
        let ending = walk.run(&case["definition"], &case["input"]);
        if !matches_recorded(&ending, &case["expected"]) {
            mismatched.push(format!("{name}: walk ended {ending:?}"));
        }
        sites.extend(walk.sites);
    }
    (sites, files.len(), mismatched)
}

// ----------------------------------------------------------------------------------- probes

/// The probes' `$states.input` (jsonata-js was run with exactly this).
fn probe_input() -> Value {
    json!({"a": {"b": "hello", "c": 3}, "n": 7, "s": "Step Functions", "flag": true,
           "tags": ["x", "y", "z"], "nums": [3, 1, 4, 1, 5, 9, 2, 6],
           "items": [{"name": "pen", "price": 1.5, "category": "office"},
                     {"name": "book", "price": 12.5, "category": "media"},
                     {"name": "lamp", "price": 30, "category": "home"},
                     {"name": "cd", "price": 10, "category": "media"}],
           "big": 9007199254740993_u64, "when": "2024-03-15T12:30:00.000Z"})
}

fn probe_states() -> Value {
    json!({
        "input": probe_input(),
        "context": {"Execution": {
            "Name": "exec-1",
            "Id": "arn:aws:states:us-east-1:111111111111:execution:sm:exec-1"
        }}
    })
}

/// Expression and jsonata-js 2.2.2's result: JSON text, `undefined` or `error:CODE`.
const PROBES: &[(&str, &str)] = &[
    (r##"$states.input.a.b"##, r##""hello""##),
    (r##"$states.input.n * 2 + 1"##, r##"15"##),
    (r##"$states.input.n / 2"##, r##"3.5"##),
    (r##"$states.input.n % 3"##, r##"1"##),
    (r##"$sum($states.input.nums)"##, r##"31"##),
    (r##"$max($states.input.nums)"##, r##"9"##),
    (r##"$average($states.input.nums)"##, r##"3.875"##),
    (r##"$count($states.input.items)"##, r##"4"##),
    (
        r##"$map($states.input.nums, function($v) { $v * 2 })"##,
        r##"[6,2,8,2,10,18,4,12]"##,
    ),
    (
        r##"$map($states.input.nums, function($v, $i) { $v + $i })"##,
        r##"[3,2,6,4,9,14,8,13]"##,
    ),
    (
        r##"$filter($states.input.items, function($v) { $v.price < 10 }).name"##,
        r##""pen""##,
    ),
    (
        r##"$reduce($states.input.nums, function($acc, $v) { $acc + $v }, 100)"##,
        r##"131"##,
    ),
    (r##"$sort($states.input.nums)"##, r##"[1,1,2,3,4,5,6,9]"##),
    (
        r##"$sort($states.input.items, function($l, $r) { $l.price < $r.price }).name"##,
        r##"["lamp","book","cd","pen"]"##,
    ),
    (
        r##"$states.input.items[price > 10]"##,
        r##"[{"name":"book","price":12.5,"category":"media"},{"name":"lamp","price":30,"category":"home"}]"##,
    ),
    (
        r##"$states.input.items[price > 10].name"##,
        r##"["book","lamp"]"##,
    ),
    (
        r##"$states.input.items[category = "media"].price"##,
        r##"[12.5,10]"##,
    ),
    (r##"$states.input.items.price"##, r##"[1.5,12.5,30,10]"##),
    (r##"$states.input.items[0].name"##, r##""pen""##),
    (r##"$states.input.items[-1].name"##, r##""cd""##),
    (r##"$states.input.nums[$ > 4]"##, r##"[5,9,6]"##),
    (
        r##"$states.input.items^(>price).name"##,
        r##"["lamp","book","cd","pen"]"##,
    ),
    (
        r##"$states.input.items{category: $sum(price)}"##,
        r##"{"office":1.5,"media":22.5,"home":30}"##,
    ),
    (
        r##"$states.input.items#$i[$i < 2].name"##,
        r##"["pen","book"]"##,
    ),
    (
        r##"$states.input.items@$it.($it.name & ":" & $string($it.price))"##,
        r##"["pen:1.5","book:12.5","lamp:30","cd:10"]"##,
    ),
    (
        r##"{"x": $states.input.a, "y": $count($states.input.items), "z": $states.input.flag}"##,
        r##"{"x":{"b":"hello","c":3},"y":4,"z":true}"##,
    ),
    (
        r##"{"total": $sum($states.input.items.price), "names": $states.input.items.name}"##,
        r##"{"total":54,"names":["pen","book","lamp","cd"]}"##,
    ),
    (r##"[1..5]"##, r##"[1,2,3,4,5]"##),
    (
        r##"[$states.input.n, "a", null, true]"##,
        r##"[7,"a",null,true]"##,
    ),
    (r##"$states.input.flag ? "yes" : "no""##, r##""yes""##),
    (r##"$exists($states.input.missing)"##, r##"false"##),
    (r##"$states.input.missing"##, r##"undefined"##),
    (r##"$states.input.a.missing.deeper"##, r##"undefined"##),
    (r##"($x := 5; $y := $x * 2; $y + 1)"##, r##"11"##),
    (
        r##"(function($n) { $n < 2 ? $n : $n * 2 })(21)"##,
        r##"42"##,
    ),
    (r##"$states.input.a.b ~> $uppercase()"##, r##""HELLO""##),
    (
        r##"$uppercase($states.input.s) & "-" & $lowercase($states.input.s)"##,
        r##""STEP FUNCTIONS-step functions""##,
    ),
    (r##"$substring($states.input.s, 5, 3)"##, r##""Fun""##),
    (r##"$substringBefore($states.input.s, " ")"##, r##""Step""##),
    (
        r##"$substringAfter($states.input.s, " ")"##,
        r##""Functions""##,
    ),
    (r##"$length("h\u00e9llo w\u00f6rld")"##, r##"11"##),
    (r##"$pad("x", 5, "#")"##, r##""x####""##),
    (r##"$pad("x", -5)"##, r##""    x""##),
    (r##"$trim("  a   b  ")"##, r##""a b""##),
    (r##"$contains($states.input.s, "Func")"##, r##"true"##),
    (r##"$contains($states.input.s, /fun/i)"##, r##"true"##),
    (r##"$split("a,b,,c", ",")"##, r##"["a","b","","c"]"##),
    (r##"$join($states.input.tags, "|")"##, r##""x|y|z""##),
    (
        r##"$replace("hello world", "o", "0")"##,
        r##""hell0 w0rld""##,
    ),
    (
        r##"$replace("abc123def", /[0-9]+/, "#")"##,
        r##""abc#def""##,
    ),
    (
        r##"$match("abc123def456", /[0-9]+/).match"##,
        r##"["123","456"]"##,
    ),
    (
        r##"$base64encode("Step Functions")"##,
        r##""U3RlcCBGdW5jdGlvbnM=""##,
    ),
    (
        r##"$base64decode("U3RlcCBGdW5jdGlvbnM=")"##,
        r##""Step Functions""##,
    ),
    (
        r##"$encodeUrlComponent("a b&c=d")"##,
        r##""a%20b%26c%3Dd""##,
    ),
    (r##"$string(1/3)"##, r##""0.333333333333333""##),
    (r##"$string(1e21)"##, r##""1e+21""##),
    (
        r##"$string(100000000000000000000)"##,
        r##""100000000000000000000""##,
    ),
    (r##"$string(0.1 + 0.2)"##, r##""0.3""##),
    (r##"0.1 + 0.2"##, r##"0.30000000000000004"##),
    (
        r##"$string({"b": 2, "a": [1, 2.5, "x"]})"##,
        r##""{\"b\":2,\"a\":[1,2.5,\"x\"]}""##,
    ),
    (
        r##"$string($states.input.a)"##,
        r##""{\"b\":\"hello\",\"c\":3}""##,
    ),
    (r##"$number("42.5")"##, r##"42.5"##),
    (r##"$number("1e3")"##, r##"1000"##),
    (r##"$number("0x1F")"##, r##"31"##),
    (
        r##"$formatNumber(1234567.891, "#,##0.00")"##,
        r##""1,234,567.89""##,
    ),
    (r##"$formatNumber(0.125, "0.0%")"##, r##""12.5%""##),
    (r##"$formatBase(255, 16)"##, r##""ff""##),
    (
        r##"$formatInteger(1999, "w")"##,
        r##""one thousand, nine hundred and ninety-nine""##,
    ),
    (r##"$round(2.5)"##, r##"2"##),
    (r##"$round(3.5)"##, r##"4"##),
    (r##"$round(1.23456, 2)"##, r##"1.23"##),
    (r##"$floor(-1.5)"##, r##"-2"##),
    (r##"$ceil(1.2)"##, r##"2"##),
    (r##"$abs(-7)"##, r##"7"##),
    (r##"$power(2, 10)"##, r##"1024"##),
    (r##"$sqrt(16)"##, r##"4"##),
    (r##"$keys($states.input.a)"##, r##"["b","c"]"##),
    (r##"$lookup($states.input.a, "c")"##, r##"3"##),
    (
        r##"$merge([{"a": 1}, {"b": 2}, {"a": 3}])"##,
        r##"{"a":3,"b":2}"##,
    ),
    (
        r##"$spread($states.input.a)"##,
        r##"[{"b":"hello"},{"c":3}]"##,
    ),
    (
        r##"$each($states.input.a, function($v, $k) { $k & "=" & $string($v) })"##,
        r##"["b=hello","c=3"]"##,
    ),
    (
        r##"$sift($states.input.a, function($v) { $type($v) = "number" })"##,
        r##"{"c":3}"##,
    ),
    (r##"$type($states.input.tags)"##, r##""array""##),
    (r##"$distinct([1, 2, 2, "a", "a", 3])"##, r##"[1,2,"a",3]"##),
    (r##"$append([1, 2], [3, 4])"##, r##"[1,2,3,4]"##),
    (
        r##"$append($states.input.tags, "w")"##,
        r##"["x","y","z","w"]"##,
    ),
    (r##"$reverse($states.input.tags)"##, r##"["z","y","x"]"##),
    (
        r##"$zip([1, 2, 3], ["a", "b", "c"])"##,
        r##"[[1,"a"],[2,"b"],[3,"c"]]"##,
    ),
    (
        r##"$single($states.input.items, function($v) { $v.price = 30 }).name"##,
        r##""lamp""##,
    ),
    (r##"$boolean(0)"##, r##"false"##),
    (r##"$boolean("false")"##, r##"true"##),
    (r##"$not($states.input.flag)"##, r##"false"##),
    (r##"$toMillis($states.input.when)"##, r##"1710505800000"##),
    (
        r##"$fromMillis(1704067200000)"##,
        r##""2024-01-01T00:00:00.000Z""##,
    ),
    (
        r##"$fromMillis(1704067200000, "[Y0001]-[M01]-[D01] [H01]:[m01]")"##,
        r##""2024-01-01 00:00""##,
    ),
    (
        r##"$toMillis("2024-01-01", "[Y0001]-[M01]-[D01]")"##,
        r##"1704067200000"##,
    ),
    (r##"$eval("1 + 2")"##, r##"3"##),
    (r##"$states.context.Execution.Name"##, r##""exec-1""##),
    (r##"$states.input.big"##, r##"9007199254740992"##),
    (r##"$states.input.big + 1"##, r##"9007199254740992"##),
    (r##"$states.input.nums[[0..2]]"##, r##"[3,1,4]"##),
    (
        r##"$states.input ~> | $ | {"added": true}, ["tags", "items"] |"##,
        r##"{"a":{"b":"hello","c":3},"n":7,"s":"Step Functions","flag":true,"nums":[3,1,4,1,5,9,2,6],"big":9007199254740992,"when":"2024-03-15T12:30:00.000Z","added":true}"##,
    ),
    (r##""a" + 1"##, r##"error:T2001"##),
    (r##"$error("boom")"##, r##"error:D3137"##),
    (r##"$undefinedFunction(1)"##, r##"error:T1006"##),
    (r##"$states.input.nums[0](1)"##, r##"error:T1006"##),
    (r##"$sum("abc")"##, r##"error:T0412"##),
    (r##"$states.input.s.("##, r##"error:S0203"##),
];

fn probe_expected(text: &str) -> Outcome {
    if text == "undefined" {
        Outcome::Undefined
    } else if let Some(code) = text.strip_prefix("error:") {
        error(code, code.to_owned())
    } else {
        Outcome::Value(integral(
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}")),
        ))
    }
}

// ------------------------------------------------------------------------------ correctness

/// Tallies of one engine on one set.
#[derive(Default)]
struct Tally {
    total: usize,
    parsed: usize,
    same: usize,
    /// Same error code, different text (the engine would print a different cause).
    text_differs: usize,
    kinds: BTreeMap<&'static str, usize>,
    examples: Vec<String>,
}

struct Check<'a> {
    expr: &'a str,
    states: &'a Value,
    vars: &'a Map<String, Value>,
    want: Outcome,
    label: String,
}

fn tally(candidate: &dyn Candidate, checks: &[Check<'_>]) -> Tally {
    let mut t = Tally::default();
    for check in checks {
        t.total += 1;
        let got = guarded(|| candidate.run(check.expr, check.states, check.vars));
        let kind = match &got {
            Err(_) if matches!(&check.want, Outcome::Error { code, .. } if code.starts_with('S')) =>
            {
                // A syntax error is due: the parse error is the right answer.
                t.same += 1;
                continue;
            }
            Err(_) => Some("parse error"),
            Ok(got) => {
                t.parsed += 1;
                if let (Outcome::Error { code: a, text: ta }, Outcome::Error { code: b, text: tb }) =
                    (&check.want, got)
                    && a == b
                    && ta != tb
                    && ta != a
                {
                    t.text_differs += 1;
                    t.examples.push(format!(
                        "(same code, other text) {} `{}` want {ta} got {tb}",
                        check.label, check.expr
                    ));
                }
                difference(&check.want, got)
            }
        };
        match kind {
            None => t.same += 1,
            Some(kind) => {
                *t.kinds.entry(kind).or_default() += 1;
                let got = match &got {
                    Ok(o) => o.short(),
                    Err(e) => format!("parse error {e}"),
                };
                t.examples.push(format!(
                    "{kind}: {} `{}` want {} got {got}",
                    check.label,
                    check.expr,
                    check.want.short()
                ));
            }
        }
    }
    t
}

fn print_tallies(title: &str, rows: &[(&str, Tally)], verbose: bool) {
    println!("\n{title}");
    println!(
        "| engine | expressions | parsed | same result | differ | same code, other error text |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, t) in rows {
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            t.total,
            t.parsed,
            t.same,
            t.total - t.same,
            t.text_differs
        );
    }
    for (name, t) in rows {
        if t.examples.is_empty() {
            continue;
        }
        let kinds: Vec<String> = t.kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        if kinds.is_empty() {
            println!("  {name}: error texts only");
        } else {
            println!("  {name}: {}", kinds.join("; "));
        }
        let shown = if verbose { t.examples.len() } else { 4 };
        for example in t.examples.iter().take(shown) {
            println!("      {example}");
        }
        if t.examples.len() > shown {
            println!("      … {} more", t.examples.len() - shown);
        }
    }
}

// ------------------------------------------------------------------------------------ speed

fn bench_input() -> Value {
    let values: Vec<Value> = (0..100).map(|i| json!(i * 7 % 23 + i / 4)).collect();
    let categories = ["office", "media", "home", "garden"];
    let items: Vec<Value> = (0..20)
        .map(|i| {
            json!({"name": format!("item-{i}"), "price": f64::from(i * 13 % 29) + 0.5,
                   "category": categories[i as usize % 4], "tags": ["a", "b"]})
        })
        .collect();
    json!({"a": {"b": "hello", "c": 3}, "n": 7, "s": "Step Functions orchestrate the world",
           "values": values, "items": items})
}

/// The expressions timed, with a short label.
const SPEED: &[(&str, &str)] = &[
    ("simple path", "$states.input.a.b"),
    ("whole input", "$states.input"),
    (
        "arithmetic",
        "($states.input.n * 2 + 1) / 3 - $states.input.n % 4",
    ),
    ("$sum 100", "$sum($states.input.values)"),
    (
        "$map 100",
        "$map($states.input.values, function($v) { $v * 2 + 1 })",
    ),
    (
        "strings",
        r#"$uppercase($substring($states.input.s, 0, 4)) & "-" & $join($split($states.input.s, " "), "_")"#,
    ),
    (
        "object",
        r#"{"x": $states.input.a, "y": $states.input.n, "z": $states.input.s, "count": $count($states.input.items)}"#,
    ),
    ("filter 20", "$states.input.items[price > 10]"),
];

struct Plan {
    /// Samples per measurement (the median is reported).
    samples: usize,
    /// Target time of one sample.
    sample_time: Duration,
}

/// A measurement: times `iters` evaluations.
type Run<'a> = Box<dyn Fn(u64) -> Duration + 'a>;

/// Median time per evaluation of each run. The samples of the runs are interleaved, so that
/// load from elsewhere on the machine falls on all of them alike. A run that panics gets zero.
fn measure(plan: &Plan, runs: &[Run<'_>]) -> Vec<Duration> {
    let once = |run: &Run<'_>, iters: u64| -> Duration {
        catch_unwind(AssertUnwindSafe(|| run(iters))).unwrap_or(Duration::ZERO)
    };
    let iters: Vec<u64> = runs
        .iter()
        .map(|run| {
            if plan.samples <= 1 {
                return 1;
            }
            // Warm up and calibrate: the fastest of a few single evaluations.
            let single = (0..3).map(|_| once(run, 1)).min().unwrap_or_default();
            (plan.sample_time.as_nanos() / single.as_nanos().max(1)).clamp(1, 1_000_000) as u64
        })
        .collect();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(plan.samples); runs.len()];
    for _ in 0..plan.samples {
        for (i, run) in runs.iter().enumerate() {
            let n = u32::try_from(iters[i]).unwrap_or(u32::MAX);
            samples[i].push(once(run, iters[i]) / n);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort();
            s[s.len() / 2]
        })
        .collect()
}

fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "n/a".to_owned()
    } else if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.2} ms", ns as f64 / 1e6)
    }
}

fn ratio(t: Duration, base: Duration) -> String {
    if t.is_zero() || base.is_zero() {
        return String::new();
    }
    let r = t.as_nanos() as f64 / base.as_nanos() as f64;
    if r >= 10.0 {
        format!(" ({r:.0}×)")
    } else if r >= 0.095 {
        format!(" ({r:.1}×)")
    } else {
        format!(" ({r:.2}×)")
    }
}

fn speed(candidates: &[&dyn Candidate], plan: &Plan) {
    let states = json!({"input": bench_input(), "context": context(&bench_input(), "Work")});
    let vars = Map::from_iter([
        ("limit".to_owned(), json!(10)),
        ("name".to_owned(), json!("x")),
    ]);

    // Whether each engine's answer on the timed expressions matches jsonata-core's.
    let correct: Vec<Vec<bool>> = candidates
        .iter()
        .map(|c| {
            SPEED
                .iter()
                .map(|(_, expr)| {
                    let want = core_engine::JsonataCore.run(expr, &states, &vars);
                    let got = guarded(|| c.run(expr, &states, &vars));
                    matches!((want, got), (Ok(w), Ok(g)) if difference(&w, &g).is_none())
                })
                .collect()
        })
        .collect();

    for mode in 0..3 {
        println!(
            "\nSpeed, {} (median per evaluation; ×: vs jsonata-core)",
            [
                "parsed on every evaluation, bindings converted on every evaluation (the engine today)",
                "parsed once, bindings converted on every evaluation",
                "parsed once, bindings converted once (n/a: the API converts them every time)",
            ][mode]
        );
        let header: Vec<&str> = candidates.iter().map(|c| c.name()).collect();
        println!("| expression | {} |", header.join(" | "));
        println!("|---|{}", "---:|".repeat(candidates.len()));
        for (row, (label, expr)) in SPEED.iter().enumerate() {
            let runs: Vec<Run<'_>> = candidates
                .iter()
                .map(|c| -> Run<'_> {
                    let (states, vars) = (&states, &vars);
                    match mode {
                        0 => Box::new(move |iters| c.time(expr, states, vars, iters, false)),
                        1 => Box::new(move |iters| c.time(expr, states, vars, iters, true)),
                        _ => Box::new(move |iters| c.time_prepared(expr, states, vars, iters)),
                    }
                })
                .collect();
            let times = measure(plan, &runs);
            let cells: Vec<String> = times
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mark = if correct[i][row] || t.is_zero() {
                        ""
                    } else {
                        " (wrong)"
                    };
                    let ratio = if i == 0 {
                        String::new()
                    } else {
                        ratio(*t, times[0])
                    };
                    format!("{}{ratio}{mark}", fmt_duration(*t))
                })
                .collect();
            println!("| {label} | {} |", cells.join(" | "));
        }
    }

    println!(
        "(wrong): the result differs from jsonata-core's. jsonata-rs keeps values in an arena \
         that the compiled expression borrows, so reusing a compiled expression grows one arena \
         without end (its \"parsed once\" time suffers from that); seuil's parse is the costly \
         part of its evaluation."
    );

    // Where jsonata-core's time goes in `cm_asl::jsonata::evaluate`.
    println!(
        "\njsonata-core in the engine: `cm_asl::jsonata::evaluate` as it is (parses the expression \
         and converts $states and the variables on every evaluation) vs the same steps with the \
         AST cached, with the bindings converted once (for all the expressions of a state), or \
         both"
    );
    println!(
        "| expression | engine today | parse alone | AST cached | bindings converted once | \
         both |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, expr) in SPEED {
        let (states, vars) = (&states, &vars);
        let runs: [Run<'_>; 5] = [
            Box::new(move |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let _ = black_box(cm_asl::jsonata::evaluate(
                        black_box(expr),
                        states,
                        vars,
                        "Output",
                    ));
                }
                start.elapsed()
            }),
            Box::new(move |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(core_engine::parse(black_box(expr)));
                }
                start.elapsed()
            }),
            Box::new(move |iters| core_engine::JsonataCore.time(expr, states, vars, iters, true)),
            Box::new(move |iters| core_engine::time_bound(expr, states, vars, iters, false)),
            Box::new(move |iters| core_engine::time_bound(expr, states, vars, iters, true)),
        ];
        let times = measure(plan, &runs);
        let today = times[0];
        let cells: Vec<String> = times
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let ratio = if i == 0 {
                    String::new()
                } else {
                    ratio(*t, today)
                };
                format!("{}{ratio}", fmt_duration(*t))
            })
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
    let (states_ref, vars_ref) = (&states, &vars);
    let runs: [Run<'_>; 2] = [
        Box::new(move |iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(core_engine::convert_only(black_box(states_ref)));
            }
            start.elapsed()
        }),
        Box::new(move |iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(core_engine::setup_only(black_box(states_ref), vars_ref));
            }
            start.elapsed()
        }),
    ];
    let [convert, setup] = measure(plan, &runs)[..] else {
        unreachable!("two runs")
    };
    println!(
        "Fixed cost of every jsonata-core evaluation with this $states ({} bytes as JSON, the \
         context object included): $states to JValue {}, whole set-up (bindings and the 5 host \
         functions) {}.",
        states.to_string().len(),
        fmt_duration(convert),
        fmt_duration(setup)
    );
}

// ------------------------------------------------------------------------------------- main

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (test mode: each
    // measurement once).
    let full = std::env::args().any(|a| a == "--bench");
    let verbose = std::env::var_os("JSONATA_COMPARE_VERBOSE").is_some();
    let started = Instant::now();

    let core = core_engine::JsonataCore;
    let jlens = jlens::Jlens::new();
    let asyncj = async_jsonata::AsyncJsonata::new(false);
    let asyncj_sync = async_jsonata::AsyncJsonata::new(true);
    let seuil = seuil_engine::Seuil;
    let jsonata_rs = jsonata_rs_engine::JsonataRs;
    let candidates: [&dyn Candidate; 5] = [&core, &jlens, &asyncj, &seuil, &jsonata_rs];

    // Engines that panic would print their messages in the middle of the tables.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));

    // Corpus.
    let (sites, cases, mismatched) = corpus();
    println!(
        "Corpus: {} expressions reached in {cases} recorded cases named *jsonata* \
         (the walk reproduces AWS's recorded outcome in {}/{cases} cases)",
        sites.len(),
        cases - mismatched.len()
    );
    for m in &mismatched {
        println!("  walk differs from AWS: {m}");
    }
    let reference: Vec<Outcome> = sites
        .iter()
        .map(|s| {
            core.run(&s.expr, &s.states, &s.vars)
                .unwrap_or_else(|e| error("S0000", e))
        })
        .collect();
    // The adapter must be the engine: same value, or an error where the engine errs.
    let disagreements = sites
        .iter()
        .zip(&reference)
        .filter(|(site, outcome)| match (&site.engine, outcome) {
            (Ok(v), Outcome::Value(o)) => !same_json(v, o, true),
            (Ok(_), _) => true,
            (Err(_), Outcome::Value(_)) => true,
            (Err(_), _) => false,
        })
        .count();
    println!(
        "jsonata-core as driven here agrees with cm_asl::jsonata::evaluate on {}/{} expressions",
        sites.len() - disagreements,
        sites.len()
    );
    let checks: Vec<Check<'_>> = sites
        .iter()
        .zip(&reference)
        .map(|(s, want)| Check {
            expr: &s.expr,
            states: &s.states,
            vars: &s.vars,
            want: want.clone(),
            label: format!("[{} {}]", s.case, s.field),
        })
        .collect();
    let rows: Vec<(&str, Tally)> = candidates[1..]
        .iter()
        .map(|c| (c.name(), tally(*c, &checks)))
        .collect();
    print_tallies(
        "Correctness on the corpus (reference: jsonata-core, which matches AWS on these cases)",
        &rows,
        verbose,
    );

    // Probes.
    let states = probe_states();
    let no_vars = Map::new();
    let probes: Vec<Check<'_>> = PROBES
        .iter()
        .map(|(expr, want)| Check {
            expr,
            states: &states,
            vars: &no_vars,
            want: probe_expected(want),
            label: String::new(),
        })
        .collect();
    let rows: Vec<(&str, Tally)> = candidates
        .iter()
        .map(|c| (c.name(), tally(*c, &probes)))
        .collect();
    print_tallies(
        "Correctness on the probes (reference: jsonata-js 2.2.2; errors compared by code; one \
         probe is a syntax error, which an engine gets right by failing to parse it)",
        &rows,
        verbose,
    );

    // Speed.
    let plan = if full {
        Plan {
            samples: 15,
            sample_time: Duration::from_millis(8),
        }
    } else {
        Plan {
            samples: 1,
            sample_time: Duration::ZERO,
        }
    };
    if !full {
        println!("\n(test mode: every time below is a single evaluation, unoptimised build)");
    }
    speed(&candidates, &plan);
    let runs: [Run<'_>; 2] = [
        Box::new(|iters| asyncj.time("$states.input.a.b", &states, &no_vars, iters, true)),
        Box::new(|iters| asyncj_sync.time("$states.input.a.b", &states, &no_vars, iters, true)),
    ];
    let [polled, sync_api] = measure(&plan, &runs)[..] else {
        unreachable!("two runs")
    };
    println!(
        "async_jsonata_rust, simple path on the probe input, cached: polled on this thread {}, \
         its synchronous API (a thread per evaluation) {}",
        fmt_duration(polled),
        fmt_duration(sync_api)
    );

    std::panic::set_hook(default_hook);
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
}
