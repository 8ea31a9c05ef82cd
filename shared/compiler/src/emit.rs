//! Emission: plan blocks → ASL states, in JSONPath or JSONata mode.

use crate::graph::Graph;
use crate::plan::{Block, Fact, Planner};
use crate::{CompileOptions, StateRef, StateRole, jsonata, rules, template};
use cm_registry::{Execution, NativeState, ServiceIntegration};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

pub(crate) type States = Map<String, Value>;

/// Where a fragment leaves off: a field of a state still to be pointed at what comes next.
#[derive(Debug, Clone)]
enum Slot {
    Next,
    Default,
    /// `Catch[i].Next` (JSONata mode handles errors in the catcher itself).
    Catch(usize),
}

#[derive(Debug, Clone)]
struct Exit {
    state: String,
    slot: Slot,
}

/// Worst-case cost of a fragment, for limits and the execution type choice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cost {
    /// History events (one attempt per task).
    pub events: u64,
    /// Seconds (with retries and timeouts); `None` = unbounded or known only at run time.
    pub seconds: Option<f64>,
}

impl Cost {
    fn then(self, o: Cost) -> Cost {
        Cost {
            events: self.events.saturating_add(o.events),
            seconds: self.seconds.zip(o.seconds).map(|(a, b)| a + b),
        }
    }
    fn max(self, o: Cost) -> Cost {
        Cost {
            events: self.events.max(o.events),
            seconds: self.seconds.zip(o.seconds).map(|(a, b)| a.max(b)),
        }
    }
    fn events(n: u64) -> Cost {
        Cost {
            events: n,
            seconds: Some(0.0),
        }
    }
}

struct Frag {
    entry: String,
    exits: Vec<Exit>,
    cost: Cost,
}

/// Features of the emitted machine that constrain its execution type.
#[derive(Debug, Default)]
pub(crate) struct Features {
    /// Nodes that park on a task token.
    pub callbacks: Vec<String>,
    /// Nodes that wait for a child execution (`.sync`).
    pub sync_children: Vec<String>,
}

/// Per-scope plans, computed before emission.
pub(crate) struct Scopes {
    pub top: Block,
    pub bodies: HashMap<usize, (Block, usize)>,
    /// Innermost for-each owning each node (None: top level).
    pub scope_of: Vec<Option<usize>>,
}

pub(crate) struct Emitter<'a, 'w> {
    pub g: &'a Graph<'w>,
    pub planner: &'a Planner<'a, 'w>,
    pub scopes: &'a Scopes,
    pub opts: &'a CompileOptions,
    pub state_map: BTreeMap<String, StateRef>,
    pub features: Features,
    used: HashSet<String>,
    counter: usize,
    estimated_items: u64,
    /// Emit a JSONata-mode machine (`QueryLanguage: "JSONata"`).
    jsonata: bool,
}

/// What a scope's last states output: the run document (top level), its `nodes` map (parallel
/// branches) or one node's output (for-each bodies).
#[derive(Clone, Copy)]
enum ScopeOutput<'s> {
    Document,
    /// The `nodes` map; in JSONata mode only the entries of these nodes (the branch's own), so
    /// that a Parallel's result does not hold one copy of the whole map per branch.
    Nodes(&'s [String]),
    NodeOutput(&'s str),
}

#[derive(Clone)]
struct Ctx {
    known: Vec<Fact>,
    /// Inside a for-each body: the run document also has `item` and `index`.
    in_loop: bool,
}

const DEFAULT_TASK_SECONDS: f64 = 900.0;
const DEFAULT_SERVICE_SECONDS: f64 = 60.0;

impl<'a, 'w> Emitter<'a, 'w> {
    pub fn new(
        g: &'a Graph<'w>,
        planner: &'a Planner<'a, 'w>,
        scopes: &'a Scopes,
        opts: &'a CompileOptions,
    ) -> Self {
        // Node ids never contain `.`, internal state names always do: they cannot collide.
        let used = HashSet::new();
        Emitter {
            g,
            planner,
            scopes,
            opts,
            state_map: BTreeMap::new(),
            features: Features::default(),
            used,
            counter: 0,
            estimated_items: u64::from(g.wf.settings.estimated_items_per_loop.unwrap_or(100)),
            jsonata: g.wf.settings.query_language == cm_model::QueryLanguage::JSONata,
        }
    }

    /// Emits the whole state machine: (StartAt, States, cost).
    pub fn emit_top(&mut self) -> (String, States, Cost) {
        let mut states = States::new();
        let ctx = Ctx {
            known: Vec::new(),
            in_loop: false,
        };
        let top = &self.scopes.top;
        let frag = self.block(top, &mut states, &ctx);
        self.finish(&mut states, frag.exits, ScopeOutput::Document);
        (frag.entry, states, frag.cost.then(Cost::events(2)))
    }

    /// A unique state name derived from `base`, at most [`MAX_STATE_NAME`] characters.
    fn name(&mut self, base: &str, node: Option<usize>, role: StateRole) -> String {
        let mut name = fit_name(base, None);
        let mut k = 2;
        while !self.used.insert(name.clone()) {
            name = fit_name(base, Some(k));
            k += 1;
        }
        self.record(&name, node, role);
        name
    }

    fn record(&mut self, name: &str, node: Option<usize>, role: StateRole) {
        self.state_map.insert(
            name.to_owned(),
            StateRef {
                node_id: node.map(|i| self.g.id(i).to_owned()),
                role,
            },
        );
    }

    fn connect(states: &mut States, exits: &[Exit], target: &str) {
        for exit in exits {
            if let Some(Value::Object(state)) = states.get_mut(&exit.state) {
                match exit.slot {
                    Slot::Next => {
                        state.insert("Next".into(), json!(target));
                    }
                    Slot::Default => {
                        state.insert("Default".into(), json!(target));
                    }
                    Slot::Catch(i) => {
                        if let Some(c) = state
                            .get_mut("Catch")
                            .and_then(|c| c.get_mut(i))
                            .and_then(Value::as_object_mut)
                        {
                            c.insert("Next".into(), json!(target));
                        }
                    }
                }
            }
        }
    }

    /// Ends a scope: exits become `End` (producing `output`), through an end Pass when
    /// some exit is a Choice branch or a catcher.
    fn finish(&mut self, states: &mut States, exits: Vec<Exit>, output: ScopeOutput<'_>) {
        // JSONPath selects with OutputPath; JSONata wraps each last state's Output expression.
        let output_path = match output {
            ScopeOutput::Document => None,
            ScopeOutput::Nodes(_) => Some("$.nodes".to_owned()),
            ScopeOutput::NodeOutput(id) => Some(format!("$.nodes.{id}.output")),
        };
        let select = |doc: &str| -> Option<String> {
            match output {
                ScopeOutput::Document => None,
                ScopeOutput::Nodes(ids) => {
                    let names: Vec<String> =
                        ids.iter().map(|i| jsonata::string_literal(i)).collect();
                    Some(format!(
                        "($own := $sift(({doc}).nodes, function($v, $k) {{ $k in [{}] }}); $exists($own) ? $own : {{}})",
                        names.join(", ")
                    ))
                }
                ScopeOutput::NodeOutput(id) => {
                    Some(format!("({doc}).nodes.{}.output", jsonata::name_token(id)))
                }
            }
        };
        let all_next = exits.iter().all(|e| matches!(e.slot, Slot::Next));
        let jsonata = self.jsonata;
        let apply = |state: &mut Map<String, Value>| {
            if jsonata {
                let current = state
                    .get("Output")
                    .and_then(Value::as_str)
                    .and_then(|o| o.strip_prefix("{% ").and_then(|o| o.strip_suffix(" %}")))
                    .map(str::to_owned)
                    .unwrap_or_else(|| "$states.input".to_owned());
                if let Some(selected) = select(&current) {
                    state.insert("Output".into(), jsonata::wrap(&selected));
                }
            } else if let Some(p) = &output_path {
                state.insert("OutputPath".into(), json!(p));
            }
        };
        if all_next {
            for exit in &exits {
                if let Some(Value::Object(state)) = states.get_mut(&exit.state) {
                    state.remove("Next");
                    apply(state);
                    state.insert("End".into(), json!(true));
                }
            }
        } else {
            let name = self.name("end", None, StateRole::End);
            let mut state = Map::new();
            state.insert("Type".into(), json!("Pass"));
            apply(&mut state);
            state.insert("End".into(), json!(true));
            states.insert(name.clone(), Value::Object(state));
            Self::connect(states, &exits, &name);
        }
    }

    fn block(&mut self, block: &Block, states: &mut States, ctx: &Ctx) -> Frag {
        match block {
            Block::Node(v) => self.node(*v, states, ctx, None),
            Block::Seq(items) => {
                let mut first: Option<Frag> = None;
                let mut exits: Vec<Exit> = Vec::new();
                let mut cost = Cost::events(0);
                let mut i = 0;
                while i < items.len() {
                    let frag = match (&items[i], items.get(i + 1)) {
                        (Block::Node(c), Some(Block::Dispatch { cond, arms }))
                            if c == cond && self.native_choice(*c).is_some() =>
                        {
                            i += 2;
                            self.node(*c, states, ctx, Some(arms))
                        }
                        (b, _) => {
                            i += 1;
                            self.block(b, states, ctx)
                        }
                    };
                    if first.is_some() {
                        Self::connect(states, &exits, &frag.entry);
                    }
                    cost = cost.then(frag.cost);
                    exits = frag.exits.clone();
                    first.get_or_insert(frag);
                }
                let entry = first.map(|f| f.entry).unwrap_or_default();
                Frag { entry, exits, cost }
            }
            Block::Par(branches) => self.parallel(branches, states, ctx),
            Block::Dispatch { cond, arms } => {
                let name = self.name(
                    &format!("{}.dispatch", self.g.id(*cond)),
                    Some(*cond),
                    StateRole::Dispatch,
                );
                states.insert(name.clone(), json!({"Type": "Choice", "Choices": []}));
                let mut exits = vec![Exit {
                    state: name.clone(),
                    slot: Slot::Default,
                }];
                let mut worst = Cost::events(0);
                let mut choices = Vec::new();
                for (ports, arm) in arms {
                    let mut arm_ctx = ctx.clone();
                    arm_ctx.known.push((*cond, ports.clone()));
                    let frag = self.block(arm, states, &arm_ctx);
                    for port in ports {
                        let mut rule = self.port_rule(self.g.id(*cond), Some(port));
                        rule["Next"] = json!(frag.entry);
                        choices.push(rule);
                    }
                    exits.extend(frag.exits);
                    worst = worst.max(frag.cost);
                }
                states[&name]["Choices"] = Value::Array(choices);
                Frag {
                    entry: name,
                    exits,
                    cost: Cost::events(2).then(worst),
                }
            }
        }
    }

    fn parallel(&mut self, branches: &[Block], states: &mut States, ctx: &Ctx) -> Frag {
        self.counter += 1;
        let name = self.name(
            &format!("parallel.{}", self.counter),
            None,
            StateRole::Parallel,
        );
        // Reserve the slot so that the Parallel is listed before what follows it.
        states.insert(name.clone(), Value::Null);
        let mut asl_branches = Vec::new();
        let mut cost = Cost::events(4);
        let mut slowest = Cost::events(0);
        for b in branches {
            let mut sub = States::new();
            let frag = self.block(b, &mut sub, ctx);
            let own = b.node_ids(self.g);
            self.finish(&mut sub, frag.exits, ScopeOutput::Nodes(&own));
            asl_branches.push(obj([
                ("StartAt", json!(frag.entry)),
                ("States", Value::Object(sub)),
            ]));
            cost.events = cost.events.saturating_add(frag.cost.events);
            slowest = slowest.max(Cost {
                events: 0,
                seconds: frag.cost.seconds,
            });
        }
        cost.seconds = slowest.seconds;
        if self.jsonata {
            // Branch outputs are `nodes` maps; the Parallel's Output merges them back.
            states.insert(
                name.clone(),
                obj([
                    ("Type", json!("Parallel")),
                    ("Branches", Value::Array(asl_branches)),
                    (
                        "Output",
                        jsonata::wrap(
                            "$merge([$states.input, {\"nodes\": $merge($append([$states.input.nodes], $states.result))}])",
                        ),
                    ),
                ]),
            );
            return Frag {
                exits: vec![Exit {
                    state: name.clone(),
                    slot: Slot::Next,
                }],
                entry: name,
                cost,
            };
        }
        // Branch outputs are the `nodes` maps; merge them back into the run document.
        // Nested JsonMerge is chunked to keep intrinsic nesting shallow.
        let merge = self.name(&format!("{name}.merge"), None, StateRole::Merge);
        states.insert(
            name.clone(),
            obj([
                ("Type", json!("Parallel")),
                ("Branches", Value::Array(asl_branches)),
                ("ResultPath", json!("$.branches")),
                ("Next", json!(merge)),
            ]),
        );
        let n = branches.len();
        let mut done = 0;
        let mut current = merge;
        let mut steps = 0;
        while done < n {
            let upto = (done + 8).min(n);
            let mut expr = "$.nodes".to_owned();
            for k in done..upto {
                expr = format!("States.JsonMerge({expr}, $.branches[{k}], false)");
            }
            let mut params = Map::new();
            params.insert("run.$".into(), json!("$.run"));
            if ctx.in_loop {
                params.insert("item.$".into(), json!("$.item"));
                params.insert("index.$".into(), json!("$.index"));
            }
            params.insert("nodes.$".into(), json!(expr));
            if upto < n {
                params.insert("branches.$".into(), json!("$.branches"));
            }
            let mut state = obj([
                ("Type", json!("Pass")),
                ("Parameters", Value::Object(params)),
            ]);
            steps += 1;
            if upto < n {
                let next = self.name(
                    &format!("{name}.merge.{}", steps + 1),
                    None,
                    StateRole::Merge,
                );
                state["Next"] = json!(next);
                states.insert(current.clone(), state);
                current = next;
            } else {
                states.insert(current.clone(), state);
            }
            done = upto;
        }
        cost.events = cost.events.saturating_add(2 * steps);
        Frag {
            entry: name,
            exits: vec![Exit {
                state: current,
                slot: Slot::Next,
            }],
            cost,
        }
    }

    /// The Choice rule of a native condition node, per port in order (None: not native).
    fn native_choice(&self, v: usize) -> Option<Vec<(String, Value)>> {
        let node = &self.g.wf.nodes[v];
        let jsonata = self.jsonata;
        let lower = |group: &Value| -> Option<Value> {
            if jsonata {
                Some(json!({"Condition": jsonata::wrap(&jsonata::group(group)?)}))
            } else {
                rules::lower_group(group)
            }
        };
        match (self.g.execution(v)?, self.g.type_id(v)) {
            (
                Execution::Native {
                    state: NativeState::Choice,
                },
                "condition.if",
            ) => Some(vec![("true".into(), lower(&node.config)?)]),
            (
                Execution::Native {
                    state: NativeState::Choice,
                },
                "condition.switch",
            ) => node
                .config
                .get("cases")?
                .as_array()?
                .iter()
                .map(|case| Some((case.get("port")?.as_str()?.to_owned(), lower(case)?)))
                .collect(),
            _ => None,
        }
    }

    /// Emits one node, with its guard if needed. `arms`: fuse a following dispatch on this
    /// (native condition) node's ports.
    fn node(
        &mut self,
        v: usize,
        states: &mut States,
        ctx: &Ctx,
        arms: Option<&Vec<(Vec<String>, Block)>>,
    ) -> Frag {
        let guarded = !self.planner.implied(v, &ctx.known);
        let id = self.g.id(v);
        let guard_name =
            guarded.then(|| self.name(&format!("{id}.guard"), Some(v), StateRole::Guard));
        if let Some(g) = &guard_name {
            // Insert now so that the guard precedes the node in the listing.
            states.insert(g.clone(), Value::Null);
        }
        let body = self.node_body(v, states, ctx, arms);
        let Some(guard) = guard_name else {
            return body;
        };
        let skip = self.name(&format!("{id}.skip"), Some(v), StateRole::Skip);
        let mut rule = self.activation_rule(v);
        rule["Next"] = json!(body.entry);
        states[&guard] = json!({"Type": "Choice", "Choices": [rule], "Default": skip});
        let marker = self.set_static(id, json!({"output": null, "skipped": true}));
        states.insert(skip.clone(), pass(marker));
        let mut exits = body.exits;
        exits.push(Exit {
            state: skip,
            slot: Slot::Next,
        });
        Frag {
            entry: guard,
            exits,
            cost: Cost::events(2).then(body.cost.max(Cost::events(2))),
        }
    }

    /// "Some incoming edge of `v` is active" as a Choice rule.
    fn activation_rule(&self, v: usize) -> Value {
        let scope = self.scopes.scope_of[v];
        let mut alternatives = Vec::new();
        for &e in &self.g.inc[v] {
            let edge = &self.g.edges[e];
            if self.scopes.scope_of[edge.from] != scope {
                continue;
            }
            let port = self.g.is_branching(edge.from).then_some(edge.port.as_str());
            let rule = if self.jsonata {
                json!(port_expr(self.g.id(edge.from), port))
            } else {
                port_rule(self.g.id(edge.from), port)
            };
            if !alternatives.contains(&rule) {
                alternatives.push(rule);
            }
        }
        if self.jsonata {
            let exprs: Vec<&str> = alternatives.iter().filter_map(Value::as_str).collect();
            return json!({"Condition": jsonata::wrap(&exprs.join(" or "))});
        }
        if alternatives.len() == 1 {
            alternatives.pop().unwrap_or(Value::Null)
        } else {
            json!({"Or": alternatives})
        }
    }

    /// "Node `id` ran (and took `port`)" as a Choice rule of this machine's query language.
    fn port_rule(&self, id: &str, port: Option<&str>) -> Value {
        if self.jsonata {
            json!({"Condition": jsonata::wrap(&port_expr(id, port))})
        } else {
            port_rule(id, port)
        }
    }

    /// Fields that set `$.nodes.<id>` to a constant, for a Pass-like state.
    fn set_static(&self, id: &str, value: Value) -> Vec<(&'static str, Value)> {
        if self.jsonata {
            set_expr(id, &value.to_string())
        } else {
            vec![
                ("Result", value),
                ("ResultPath", json!(format!("$.nodes.{id}"))),
            ]
        }
    }

    /// The JSONPath of the data a node receives as `input` (its single upstream node's output,
    /// looking through conditions and waits), if it has one.
    fn primary_input(&self, v: usize) -> Option<String> {
        let mut cur = v;
        for _ in 0..self.g.len() {
            let [e] = self.g.inc[cur].as_slice() else {
                return None;
            };
            let p = self.g.edges[*e].from;
            if self.scopes.scope_of[p] != self.scopes.scope_of[v] {
                // Entered from the enclosing for-each: the loop item.
                return Some("$.item".into());
            }
            let passthrough = matches!(
                self.g.execution(p),
                Some(Execution::Native {
                    state: NativeState::Choice | NativeState::Wait
                })
            );
            if !passthrough {
                return Some(format!("$.nodes.{}.output", self.g.id(p)));
            }
            cur = p;
        }
        None
    }

    fn node_body(
        &mut self,
        v: usize,
        states: &mut States,
        ctx: &Ctx,
        arms: Option<&Vec<(Vec<String>, Block)>>,
    ) -> Frag {
        let node = &self.g.wf.nodes[v];
        let id = node.id.as_str();
        let Some(execution) = self.g.execution(v).cloned() else {
            return self.runner_task(v, states, ctx, None);
        };
        match (execution, node.node_type.as_str()) {
            (Execution::Trigger, _) if self.jsonata => {
                let name = self.name(id, Some(v), StateRole::Node);
                let wf = self.g.wf;
                let doc = format!(
                    "{{\"run\": {{\"executionId\": $states.context.Execution.Id, \"executionName\": $states.context.Execution.Name, \"startedAt\": $states.context.Execution.StartTime, \"workflowId\": {}, \"workflowVersion\": {}, \"trigger\": {}}}, \"nodes\": {{{}: {{\"output\": $states.input, \"port\": \"out\"}}}}}}",
                    jsonata::string_literal(&wf.id),
                    wf.version,
                    jsonata::string_literal(&node.node_type),
                    jsonata::string_literal(id),
                );
                states.insert(
                    name.clone(),
                    obj([
                        ("Type", json!("Pass")),
                        (
                            "Comment",
                            json!(format!("Trigger {} ({})", id, node.node_type)),
                        ),
                        ("Output", jsonata::wrap(&doc)),
                    ]),
                );
                next_frag(name, Cost::events(2))
            }
            (Execution::Trigger, _) => {
                let name = self.name(id, Some(v), StateRole::Node);
                let wf = self.g.wf;
                states.insert(
                    name.clone(),
                    json!({
                        "Type": "Pass",
                        "Comment": format!("Trigger {} ({})", id, node.node_type),
                        "Parameters": {
                            "run": {
                                "executionId.$": "$$.Execution.Id",
                                "executionName.$": "$$.Execution.Name",
                                "startedAt.$": "$$.Execution.StartTime",
                                "workflowId": wf.id,
                                "workflowVersion": wf.version,
                                "trigger": node.node_type,
                            },
                            "nodes": { id: {"output.$": "$", "port": "out"} }
                        }
                    }),
                );
                next_frag(name, Cost::events(2))
            }
            (
                Execution::Native {
                    state: NativeState::Pass,
                },
                "transform.set",
            ) => {
                let fields = node.config.get("fields").cloned().unwrap_or(json!({}));
                let fields = if self.jsonata {
                    set_expr(
                        id,
                        &jsonata::with_bindings(&format!(
                            "{{\"output\": {}, \"port\": \"out\"}}",
                            jsonata::value_expr(&fields)
                        )),
                    )
                } else {
                    let mut params = Map::new();
                    insert_lowered(&mut params, "output", &fields);
                    params.insert("port".into(), json!("out"));
                    set_params(id, Value::Object(params))
                };
                let name = self.name(id, Some(v), StateRole::Node);
                let state = pass(fields);
                states.insert(name.clone(), state);
                next_frag(name, Cost::events(2))
            }
            (
                Execution::Native {
                    state: NativeState::Choice,
                },
                _,
            ) => match self.native_choice(v) {
                Some(choices) => self.choice(v, choices, states, ctx, arms),
                None => self.runner_task(v, states, ctx, None),
            },
            (
                Execution::Native {
                    state: NativeState::Wait,
                },
                _,
            ) => self.wait(v, states),
            (
                Execution::Native {
                    state: NativeState::Map,
                },
                _,
            ) => self.map(v, states),
            (
                Execution::Native {
                    state: NativeState::Pass,
                },
                _,
            ) => self.runner_task(v, states, ctx, None),
            (Execution::Service { integration }, _) => self.service(v, integration, states, ctx),
            (Execution::NodeRunner { callback }, "transform.merge") if !callback => {
                let fields = if self.jsonata {
                    jsonata_merge(&node.config).map(|expr| set_expr(id, &expr))
                } else {
                    native_merge(&node.config)
                        .map(|expr| set_params(id, json!({"output.$": expr, "port": "out"})))
                };
                match fields {
                    Some(fields) => {
                        let name = self.name(id, Some(v), StateRole::Node);
                        let state = pass(fields);
                        states.insert(name.clone(), state);
                        next_frag(name, Cost::events(2))
                    }
                    None => self.runner_task(v, states, ctx, None),
                }
            }
            (Execution::NodeRunner { .. }, _) => self.runner_task(v, states, ctx, None),
            (Execution::Plugin { executor }, _) => {
                let function = executor.lambda_arn.clone().unwrap_or_else(|| {
                    format!("{}{}", crate::PLUGIN_FUNCTION_PREFIX, node.node_type)
                });
                self.runner_task(v, states, ctx, Some(function))
            }
        }
    }

    fn choice(
        &mut self,
        v: usize,
        choices: Vec<(String, Value)>,
        states: &mut States,
        ctx: &Ctx,
        arms: Option<&Vec<(Vec<String>, Block)>>,
    ) -> Frag {
        let id = self.g.id(v);
        let name = self.name(id, Some(v), StateRole::Node);
        let default_port = if self.g.type_id(v) == "condition.if" {
            "false"
        } else {
            "default"
        };
        states.insert(name.clone(), Value::Null);
        let mut ports: Vec<String> = choices.iter().map(|(p, _)| p.clone()).collect();
        ports.push(default_port.to_owned());
        let mut port_states = HashMap::new();
        for port in &ports {
            if port_states.contains_key(port) {
                continue;
            }
            let ps = self.name(&format!("{id}.{port}"), Some(v), StateRole::Port);
            let state = pass(self.set_static(id, json!({"port": port})));
            states.insert(ps.clone(), state);
            port_states.insert(port.clone(), ps);
        }
        let rules: Vec<Value> = choices
            .into_iter()
            .map(|(port, mut rule)| {
                rule["Next"] = json!(port_states[&port]);
                rule
            })
            .collect();
        states[&name] = obj([
            ("Type", json!("Choice")),
            ("Choices", Value::Array(rules)),
            ("Default", json!(port_states[default_port])),
        ]);
        let mut exits = Vec::new();
        let mut worst = Cost::events(0);
        let mut unreached: Vec<&String> = Vec::new();
        let mut seen: HashSet<&String> = HashSet::new();
        for port in &ports {
            if seen.insert(port) && !arms.is_some_and(|a| a.iter().any(|(ps, _)| ps.contains(port)))
            {
                unreached.push(port);
            }
        }
        for (arm_ports, arm) in arms.into_iter().flatten() {
            let mut arm_ctx = ctx.clone();
            arm_ctx.known.push((v, arm_ports.clone()));
            let frag = self.block(arm, states, &arm_ctx);
            let entries: Vec<Exit> = arm_ports
                .iter()
                .filter_map(|p| port_states.get(p))
                .map(|ps| Exit {
                    state: ps.clone(),
                    slot: Slot::Next,
                })
                .collect();
            Self::connect(states, &entries, &frag.entry);
            exits.extend(frag.exits);
            worst = worst.max(frag.cost);
        }
        for port in unreached {
            exits.push(Exit {
                state: port_states[port].clone(),
                slot: Slot::Next,
            });
        }
        Frag {
            entry: name,
            exits,
            cost: Cost::events(4).then(worst),
        }
    }

    fn wait(&mut self, v: usize, states: &mut States) -> Frag {
        let node = &self.g.wf.nodes[v];
        let id = node.id.as_str();
        let name = self.name(id, Some(v), StateRole::Node);
        if self.jsonata {
            // JSONata: the Wait records its port in its own Output.
            let mut state = Map::new();
            state.insert("Type".into(), json!("Wait"));
            let mut seconds = None;
            let dynamic =
                |v: &Value| jsonata::wrap(&jsonata::with_bindings(&jsonata::value_expr(v)));
            match (node.config.get("seconds"), node.config.get("until")) {
                (Some(Value::Number(n)), _) => {
                    state.insert("Seconds".into(), Value::Number(n.clone()));
                    seconds = n.as_f64();
                }
                (Some(other), _) => {
                    state.insert("Seconds".into(), dynamic(other));
                }
                (_, Some(Value::String(t))) if !template::has_template(t) => {
                    state.insert("Timestamp".into(), json!(t));
                }
                (_, Some(other)) => {
                    state.insert("Timestamp".into(), dynamic(other));
                }
                _ => {
                    state.insert("Seconds".into(), json!(0));
                    seconds = Some(0.0);
                }
            }
            for (k, val) in self.set_static(id, json!({"port": "out"})) {
                state.insert(k.into(), val);
            }
            states.insert(name.clone(), Value::Object(state));
            return Frag {
                exits: vec![Exit {
                    state: name.clone(),
                    slot: Slot::Next,
                }],
                entry: name,
                cost: Cost { events: 2, seconds },
            };
        }
        let done = self.name(&format!("{id}.done"), Some(v), StateRole::Port);
        let mut state = Map::new();
        state.insert("Type".into(), json!("Wait"));
        let mut seconds = None;
        match (node.config.get("seconds"), node.config.get("until")) {
            (Some(Value::Number(n)), _) => {
                state.insert("Seconds".into(), Value::Number(n.clone()));
                seconds = n.as_f64();
            }
            (Some(Value::String(s)), _) => {
                state.insert(
                    "SecondsPath".into(),
                    json!(template::pure_path(s).unwrap_or_default()),
                );
            }
            (_, Some(Value::String(s))) => match template::pure_path(s) {
                Some(p) => {
                    state.insert("TimestampPath".into(), json!(p));
                }
                None => {
                    state.insert("Timestamp".into(), json!(s));
                }
            },
            _ => {
                state.insert("Seconds".into(), json!(0));
                seconds = Some(0.0);
            }
        }
        state.insert("Next".into(), json!(done));
        states.insert(name.clone(), Value::Object(state));
        states.insert(
            done.clone(),
            json!({"Type": "Pass", "Result": {"port": "out"}, "ResultPath": format!("$.nodes.{id}")}),
        );
        Frag {
            entry: name,
            exits: vec![Exit {
                state: done,
                slot: Slot::Next,
            }],
            cost: Cost { events: 4, seconds },
        }
    }

    fn map(&mut self, v: usize, states: &mut States) -> Frag {
        let node = &self.g.wf.nodes[v];
        let id = node.id.as_str();
        let name = self.name(id, Some(v), StateRole::Node);
        states.insert(name.clone(), Value::Null);
        let (body_block, sink) = self.scopes.bodies[&v].clone();
        let mut sub = States::new();
        let body_ctx = Ctx {
            known: Vec::new(),
            in_loop: true,
        };
        let frag = self.block(&body_block, &mut sub, &body_ctx);
        self.finish(
            &mut sub,
            frag.exits,
            ScopeOutput::NodeOutput(self.g.id(sink)),
        );
        let items = node
            .config
            .get("items")
            .and_then(Value::as_str)
            .and_then(template::pure_path)
            .unwrap_or_else(|| "$.item".into());
        let concurrency = node
            .config
            .get("maxConcurrency")
            .and_then(Value::as_u64)
            .unwrap_or(10);
        let processor = obj([
            ("ProcessorConfig", json!({"Mode": "INLINE"})),
            ("StartAt", json!(frag.entry)),
            ("States", Value::Object(sub)),
        ]);
        let mut state = if self.jsonata {
            let items = node.config.get("items").cloned().unwrap_or(Value::Null);
            obj([
                ("Type", json!("Map")),
                (
                    "Items",
                    jsonata::wrap(&jsonata::with_bindings(&jsonata::value_expr(&items))),
                ),
                (
                    "ItemSelector",
                    json!({
                        "run": "{% $states.input.run %}",
                        "nodes": "{% $states.input.nodes %}",
                        "item": "{% $states.context.Map.Item.Value %}",
                        "index": "{% $states.context.Map.Item.Index %}"
                    }),
                ),
                ("MaxConcurrency", json!(concurrency)),
                ("ItemProcessor", processor),
                (
                    "Output",
                    jsonata::wrap(&jsonata::set_entry(
                        id,
                        "{\"output\": $states.result, \"port\": \"done\"}",
                    )),
                ),
            ])
        } else {
            obj([
                ("Type", json!("Map")),
                ("ItemsPath", json!(items)),
                (
                    "ItemSelector",
                    json!({
                        "run.$": "$.run",
                        "nodes.$": "$.nodes",
                        "item.$": "$$.Map.Item.Value",
                        "index.$": "$$.Map.Item.Index"
                    }),
                ),
                ("MaxConcurrency", json!(concurrency)),
                ("ItemProcessor", processor),
                ("ResultSelector", json!({"output.$": "$", "port": "done"})),
                ("ResultPath", json!(format!("$.nodes.{id}"))),
            ])
        };
        let batches = if concurrency == 0 {
            1
        } else {
            self.estimated_items.div_ceil(concurrency)
        };
        let cost = Cost {
            // Saturating: a hostile estimatedItemsPerLoop must not overflow (the projection then
            // simply exceeds every limit).
            events: self
                .estimated_items
                .saturating_mul(frag.cost.events.saturating_add(2))
                .saturating_add(4),
            seconds: frag.cost.seconds.map(|s| s * batches as f64),
        };
        let (exits, cost) = self.retry_catch(v, &name, &mut state, states, cost, None);
        states[&name] = state;
        Frag {
            entry: name,
            exits,
            cost,
        }
    }

    fn service(
        &mut self,
        v: usize,
        integration: ServiceIntegration,
        states: &mut States,
        ctx: &Ctx,
    ) -> Frag {
        if self.jsonata {
            let (resource, args, entry) = self.service_jsonata(v, integration, ctx);
            let state = self.task_state(self.g.id(v), &resource, args, &entry);
            let cost = Cost {
                events: 5,
                seconds: None,
            };
            return self.insert_task(v, states, state, cost, Some(DEFAULT_SERVICE_SECONDS), None);
        }
        let node = &self.g.wf.nodes[v];
        let id = node.id.as_str();
        let cfg = &node.config;
        let mut prepare: Option<String> = None;
        let (resource, params, selector) = match integration {
            ServiceIntegration::DynamodbPutItem => {
                let (dataset, pk) = self.dataset_key(cfg);
                let record = cfg.get("record").cloned().unwrap_or(Value::Null);
                let data = match &record {
                    Value::String(s) if template::pure_path(s).is_some() => {
                        json!({"S.$": format!("States.JsonToString({})", template::pure_path(s).unwrap_or_default())})
                    }
                    r if !template::contains_template(r) => {
                        json!({"S": serde_json::to_string(r).unwrap_or_default()})
                    }
                    r => {
                        // Render the record first, into the node's own slot.
                        let p = self.name(&format!("{id}.record"), Some(v), StateRole::Prepare);
                        let mut params = Map::new();
                        insert_lowered(&mut params, "value", r);
                        states.insert(
                            p.clone(),
                            json!({"Type": "Pass", "Parameters": params, "ResultPath": format!("$.nodes.{id}")}),
                        );
                        prepare = Some(p);
                        json!({"S.$": format!("States.JsonToString($.nodes.{id}.value)")})
                    }
                };
                let key = match cfg.get("key").and_then(Value::as_str) {
                    Some(k) => match template::lower_string(k).ok().flatten() {
                        Some(expr) => json!({"S.$": format!("States.Format('{{}}', {expr})")}),
                        None => json!({"S": k}),
                    },
                    None if ctx.in_loop => {
                        json!({"S.$": format!("States.Format('{{}}#{id}#{{}}', $$.Execution.Name, $.index)")})
                    }
                    None => {
                        json!({"S.$": format!("States.Format('{{}}#{id}', $$.Execution.Name)")})
                    }
                };
                (
                    "arn:aws:states:::dynamodb:putItem".to_owned(),
                    json!({
                        "TableName": self.opts.datasets_table,
                        "Item": {
                            "pk": {"S": pk},
                            "sk": key,
                            "data": data,
                            "runId": {"S.$": "$$.Execution.Id"},
                            "nodeId": {"S": id},
                            "storedAt": {"S.$": "$$.State.EnteredTime"}
                        }
                    }),
                    json!({"output": {"dataset": dataset, "stored": true}, "port": "out"}),
                )
            }
            ServiceIntegration::SqsSendMessage => {
                let queue = cfg.get("queue").and_then(Value::as_str).unwrap_or_default();
                let mut params = Map::new();
                params.insert(
                    "QueueUrl".into(),
                    json!(format!("{}{queue}", self.opts.queue_url_prefix)),
                );
                insert_lowered(
                    &mut params,
                    "MessageBody",
                    cfg.get("message").unwrap_or(&Value::Null),
                );
                if let Some(g) = cfg.get("groupId") {
                    insert_lowered(&mut params, "MessageGroupId", g);
                }
                if let Some(d) = cfg.get("deduplicationId") {
                    insert_lowered(&mut params, "MessageDeduplicationId", d);
                }
                if let Some(d) = cfg.get("delaySeconds") {
                    params.insert("DelaySeconds".into(), d.clone());
                }
                (
                    "arn:aws:states:::sqs:sendMessage".to_owned(),
                    Value::Object(params),
                    json!({"output": {"messageId.$": "$.MessageId"}, "port": "out"}),
                )
            }
            ServiceIntegration::StartExecution => {
                let wait = cfg.get("wait").and_then(Value::as_bool).unwrap_or(true);
                let target = cfg
                    .get("workflowId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let mut params = Map::new();
                params.insert(
                    "StateMachineArn".into(),
                    json!(format!("{}{target}", self.opts.state_machine_arn_prefix)),
                );
                insert_lowered(&mut params, "Input", cfg.get("input").unwrap_or(&json!({})));
                if wait {
                    self.features.sync_children.push(id.to_owned());
                    (
                        "arn:aws:states:::states:startExecution.sync:2".to_owned(),
                        Value::Object(params),
                        json!({"output.$": "$.Output", "port": "out"}),
                    )
                } else {
                    (
                        "arn:aws:states:::states:startExecution".to_owned(),
                        Value::Object(params),
                        json!({"output": {"executionArn.$": "$.ExecutionArn"}, "port": "out"}),
                    )
                }
            }
        };
        let name = self.name(id, Some(v), StateRole::Node);
        let mut state = obj([
            ("Type", json!("Task")),
            ("Resource", json!(resource)),
            ("Parameters", params),
            ("ResultSelector", selector),
            ("ResultPath", json!(format!("$.nodes.{id}"))),
        ]);
        let cost = Cost {
            events: 5 + if prepare.is_some() { 2 } else { 0 },
            seconds: None,
        };
        // Reserve the slot so that the task is listed before its catch handler.
        states.insert(name.clone(), Value::Null);
        let (exits, cost) = self.retry_catch(
            v,
            &name,
            &mut state,
            states,
            cost,
            Some(DEFAULT_SERVICE_SECONDS),
        );
        states.insert(name.clone(), state);
        if let Some(p) = &prepare {
            states[p]["Next"] = json!(name);
        }
        Frag {
            entry: prepare.unwrap_or(name),
            exits,
            cost,
        }
    }

    fn runner_task(
        &mut self,
        v: usize,
        states: &mut States,
        ctx: &Ctx,
        function: Option<String>,
    ) -> Frag {
        let node = &self.g.wf.nodes[v];
        let id = node.id.as_str();
        let callback = matches!(
            self.g.execution(v),
            Some(Execution::NodeRunner { callback: true })
        );
        if callback {
            self.features.callbacks.push(id.to_owned());
        }
        let mut payload = Map::new();
        payload.insert(
            "node".into(),
            json!({"id": id, "type": node.node_type, "typeVersion": node.type_version}),
        );
        if self.jsonata {
            let config = jsonata::lower_value(&node.config).unwrap_or_else(|_| node.config.clone());
            payload.insert("config".into(), config);
        } else {
            insert_lowered(&mut payload, "config", &node.config);
        }
        if let Some(input) = self.primary_input(v) {
            self.insert_ref(&mut payload, "input", &input);
        }
        let mut context = Map::new();
        self.insert_ref(&mut context, "executionId", "$$.Execution.Id");
        self.insert_ref(&mut context, "executionName", "$$.Execution.Name");
        context.insert("workflowId".into(), json!(self.g.wf.id));
        context.insert("workflowVersion".into(), json!(self.g.wf.version));
        self.insert_ref(&mut context, "stateName", "$$.State.Name");
        self.insert_ref(&mut context, "attempt", "$$.State.RetryCount");
        if callback {
            self.insert_ref(&mut context, "taskToken", "$$.Task.Token");
        }
        if ctx.in_loop {
            self.insert_ref(&mut context, "index", "$.index");
        }
        payload.insert("context".into(), Value::Object(context));
        let resource = if callback {
            "arn:aws:states:::lambda:invoke.waitForTaskToken"
        } else {
            "arn:aws:states:::lambda:invoke"
        };
        let function = function.unwrap_or_else(|| self.opts.node_runner_function.clone());
        let args = obj([
            ("FunctionName", json!(function)),
            ("Payload", Value::Object(payload)),
        ]);
        // A callback's result is what SendTaskSuccess sent: {output, port} directly.
        let mut state = if self.jsonata {
            let result = if callback {
                "$states.result"
            } else {
                "$states.result.Payload"
            };
            let entry = format!("{{\"output\": {result}.output, \"port\": {result}.port}}");
            self.task_state(id, resource, args, &entry)
        } else {
            let selector = if callback {
                json!({"output.$": "$.output", "port.$": "$.port"})
            } else {
                json!({"output.$": "$.Payload.output", "port.$": "$.Payload.port"})
            };
            obj([
                ("Type", json!("Task")),
                ("Resource", json!(resource)),
                ("Parameters", args),
                ("ResultSelector", selector),
                ("ResultPath", json!(format!("$.nodes.{id}"))),
            ])
        };
        if callback && let Some(t) = node.config.get("timeoutSeconds").and_then(Value::as_u64) {
            state["TimeoutSeconds"] = json!(t);
        }
        let cost = Cost {
            events: if callback { 6 } else { 5 },
            seconds: None,
        };
        let default = if callback {
            node.config.get("timeoutSeconds").and_then(Value::as_f64)
        } else {
            Some(DEFAULT_TASK_SECONDS)
        };
        self.insert_task(v, states, state, cost, default, None)
    }

    /// A run-time reference in Parameters/Arguments: JSONPath `"key.$": path`, JSONata
    /// `"key": "{% $states... %}"`.
    fn insert_ref(&self, map: &mut Map<String, Value>, key: &str, path: &str) {
        if self.jsonata {
            let expr = jsonata::path(path).unwrap_or_else(|| "null".into());
            map.insert(key.to_owned(), jsonata::wrap(&expr));
        } else {
            map.insert(format!("{key}.$"), json!(path));
        }
    }

    /// A store node's dataset name and its partition key (namespaced when configured).
    fn dataset_key<'c>(&self, cfg: &'c Value) -> (&'c str, String) {
        let dataset = cfg
            .get("dataset")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let pk = match &self.opts.dataset_namespace {
            Some(ns) => format!("{ns}#{dataset}"),
            None => dataset.to_owned(),
        };
        (dataset, pk)
    }

    /// A JSONata-mode Task: `Arguments`, and an `Output` that records `entry` (an expression
    /// over `$states.result`) as the node's entry.
    fn task_state(&self, id: &str, resource: &str, args: Value, entry: &str) -> Value {
        obj([
            ("Type", json!("Task")),
            ("Resource", json!(resource)),
            ("Arguments", args),
            ("Output", jsonata::wrap(&jsonata::set_entry(id, entry))),
        ])
    }

    /// Adds retry/catch to a task state, inserts it (after an optional preparing state) and
    /// returns its fragment.
    fn insert_task(
        &mut self,
        v: usize,
        states: &mut States,
        mut state: Value,
        cost: Cost,
        attempt_seconds: Option<f64>,
        prepare: Option<String>,
    ) -> Frag {
        let name = self.name(self.g.id(v), Some(v), StateRole::Node);
        // Reserve the slot so that the task is listed before its catch handler.
        states.insert(name.clone(), Value::Null);
        let (exits, cost) = self.retry_catch(v, &name, &mut state, states, cost, attempt_seconds);
        states.insert(name.clone(), state);
        if let Some(p) = &prepare {
            states[p]["Next"] = json!(name);
        }
        Frag {
            entry: prepare.unwrap_or(name),
            exits,
            cost,
        }
    }

    fn service_jsonata(
        &mut self,
        v: usize,
        integration: ServiceIntegration,
        ctx: &Ctx,
    ) -> (String, Value, String) {
        let node = &self.g.wf.nodes[v];
        let id = node.id.as_str();
        let cfg = &node.config;
        let dynamic = |v: &Value| jsonata::wrap(&jsonata::with_bindings(&jsonata::value_expr(v)));
        let as_string = |v: &Value| {
            jsonata::wrap(&jsonata::with_bindings(&format!(
                "$string({})",
                jsonata::value_expr(v)
            )))
        };
        match integration {
            ServiceIntegration::DynamodbPutItem => {
                let (dataset, pk) = self.dataset_key(cfg);
                let record = cfg.get("record").cloned().unwrap_or(Value::Null);
                let key = match cfg.get("key") {
                    Some(k) => as_string(k),
                    None if ctx.in_loop => jsonata::wrap(&format!(
                        "$states.context.Execution.Name & {} & $string($states.input.index)",
                        jsonata::string_literal(&format!("#{id}#"))
                    )),
                    None => jsonata::wrap(&format!(
                        "$states.context.Execution.Name & {}",
                        jsonata::string_literal(&format!("#{id}"))
                    )),
                };
                let args = json!({
                    "TableName": self.opts.datasets_table,
                    "Item": {
                        "pk": {"S": pk},
                        "sk": {"S": key},
                        "data": {"S": as_string(&record)},
                        "runId": {"S": "{% $states.context.Execution.Id %}"},
                        "nodeId": {"S": id},
                        "storedAt": {"S": "{% $states.context.State.EnteredTime %}"}
                    }
                });
                let entry = format!(
                    "{{\"output\": {{\"dataset\": {}, \"stored\": true}}, \"port\": \"out\"}}",
                    jsonata::string_literal(dataset)
                );
                ("arn:aws:states:::dynamodb:putItem".into(), args, entry)
            }
            ServiceIntegration::SqsSendMessage => {
                let queue = cfg.get("queue").and_then(Value::as_str).unwrap_or_default();
                let mut args = Map::new();
                args.insert(
                    "QueueUrl".into(),
                    json!(format!("{}{queue}", self.opts.queue_url_prefix)),
                );
                args.insert(
                    "MessageBody".into(),
                    as_string(cfg.get("message").unwrap_or(&Value::Null)),
                );
                if let Some(g) = cfg.get("groupId") {
                    args.insert("MessageGroupId".into(), dynamic(g));
                }
                if let Some(d) = cfg.get("deduplicationId") {
                    args.insert("MessageDeduplicationId".into(), dynamic(d));
                }
                if let Some(d) = cfg.get("delaySeconds") {
                    args.insert("DelaySeconds".into(), d.clone());
                }
                (
                    "arn:aws:states:::sqs:sendMessage".into(),
                    Value::Object(args),
                    "{\"output\": {\"messageId\": $states.result.MessageId}, \"port\": \"out\"}"
                        .into(),
                )
            }
            ServiceIntegration::StartExecution => {
                let wait = cfg.get("wait").and_then(Value::as_bool).unwrap_or(true);
                let target = cfg
                    .get("workflowId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let args = obj([
                    (
                        "StateMachineArn",
                        json!(format!("{}{target}", self.opts.state_machine_arn_prefix)),
                    ),
                    ("Input", dynamic(cfg.get("input").unwrap_or(&json!({})))),
                ]);
                if wait {
                    self.features.sync_children.push(id.to_owned());
                    (
                        "arn:aws:states:::states:startExecution.sync:2".into(),
                        args,
                        "{\"output\": $states.result.Output, \"port\": \"out\"}".into(),
                    )
                } else {
                    (
                        "arn:aws:states:::states:startExecution".into(),
                        args,
                        "{\"output\": {\"executionArn\": $states.result.ExecutionArn}, \"port\": \"out\"}".into(),
                    )
                }
            }
        }
    }

    /// Adds TimeoutSeconds, Retry and Catch from the node's settings (or its type's defaults);
    /// returns the exits (success, and the catch handler) and the cost with retries counted in
    /// seconds. `attempt_seconds`: worst case of one attempt when no timeout is set.
    fn retry_catch(
        &mut self,
        v: usize,
        name: &str,
        state: &mut Value,
        states: &mut States,
        mut cost: Cost,
        attempt_seconds: Option<f64>,
    ) -> (Vec<Exit>, Cost) {
        let node = &self.g.wf.nodes[v];
        let id = node.id.as_str();
        let descriptor = self.g.types[v].as_ref().map(|t| t.descriptor());
        let timeout = node
            .timeout_seconds
            .or_else(|| descriptor.and_then(|d| d.default_timeout_seconds));
        if let Some(t) = timeout
            && state.get("TimeoutSeconds").is_none()
        {
            state["TimeoutSeconds"] = json!(t);
        }
        let per_attempt = state
            .get("TimeoutSeconds")
            .and_then(Value::as_f64)
            .or(attempt_seconds);
        let rules = node.retry.clone().unwrap_or_else(|| {
            descriptor
                .map(|d| d.default_retry.clone())
                .unwrap_or_default()
        });
        let mut retry_delay = 0.0;
        let mut attempts = 1.0;
        if !rules.is_empty() {
            let asl: Vec<Value> = rules
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    m.insert("ErrorEquals".into(), json!(r.errors));
                    m.insert("IntervalSeconds".into(), json!(r.interval_seconds));
                    m.insert("MaxAttempts".into(), json!(r.max_attempts));
                    m.insert("BackoffRate".into(), json!(r.backoff_rate));
                    if let Some(d) = r.max_delay_seconds {
                        m.insert("MaxDelaySeconds".into(), json!(d));
                    }
                    if let Some(j) = r.jitter {
                        m.insert(
                            "JitterStrategy".into(),
                            json!(match j {
                                cm_model::Jitter::Full => "FULL",
                                cm_model::Jitter::None => "NONE",
                            }),
                        );
                    }
                    Value::Object(m)
                })
                .collect();
            state["Retry"] = Value::Array(asl);
            // Worst case: ASL counts attempts per retrier, so every rule can use up its
            // retries in turn, each waiting its capped interval.
            for r in &rules {
                let mut interval = f64::from(r.interval_seconds);
                for _ in 0..r.max_attempts.min(1000) {
                    retry_delay += r
                        .max_delay_seconds
                        .map_or(interval, |m| interval.min(f64::from(m)));
                    interval *= r.backoff_rate;
                }
                attempts += f64::from(r.max_attempts.min(1000));
            }
        }
        cost.seconds = match (cost.seconds, per_attempt) {
            (Some(s), _) if s > 0.0 => Some(s * attempts + retry_delay),
            (_, Some(t)) => Some(t * attempts + retry_delay),
            _ => None,
        };
        let mut exits = vec![Exit {
            state: name.to_owned(),
            slot: Slot::Next,
        }];
        if let Some(on_error) = &node.on_error
            && on_error.action != cm_model::ErrorAction::Fail
        {
            let errors = if on_error.errors.is_empty() {
                vec!["States.ALL".to_owned()]
            } else {
                on_error.errors.clone()
            };
            if self.jsonata {
                // The catcher records the error itself and goes straight on.
                let port = if on_error.action == cm_model::ErrorAction::Route {
                    cm_model::ERROR_PORT
                } else {
                    cm_model::DEFAULT_OUTPUT_PORT
                };
                let entry = format!(
                    "{{\"error\": $states.errorOutput, \"output\": null, \"port\": {}}}",
                    jsonata::string_literal(port)
                );
                state["Catch"] = json!([{
                    "ErrorEquals": errors,
                    "Output": jsonata::wrap(&jsonata::set_entry(id, &entry)),
                }]);
                exits.push(Exit {
                    state: name.to_owned(),
                    slot: Slot::Catch(0),
                });
                return (exits, cost);
            }
            let caught = self.name(&format!("{id}.caught"), Some(v), StateRole::Catch);
            state["Catch"] = json!([{"ErrorEquals": errors, "ResultPath": format!("$.nodes.{id}"), "Next": caught}]);
            let port = if on_error.action == cm_model::ErrorAction::Route {
                cm_model::ERROR_PORT
            } else {
                cm_model::DEFAULT_OUTPUT_PORT
            };
            states.insert(
                caught.clone(),
                json!({
                    "Type": "Pass",
                    "Parameters": {"error.$": format!("$.nodes.{id}"), "output": null, "port": port},
                    "ResultPath": format!("$.nodes.{id}")
                }),
            );
            exits.push(Exit {
                state: caught,
                slot: Slot::Next,
            });
            cost.events = cost.events.saturating_add(2);
        }
        (exits, cost)
    }
}

/// A JSON object from owned values (`json!` would deep-copy large sub-trees such as nested
/// `States` maps).
fn obj<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// AWS's limit on state name length.
const MAX_STATE_NAME: usize = 80;

/// `base` (plus `.k`), shortened with a `~` mark when too long. Names are ASCII: node ids and
/// port names are identifiers.
fn fit_name(base: &str, k: Option<usize>) -> String {
    let suffix = k.map(|k| format!(".{k}")).unwrap_or_default();
    if base.len() + suffix.len() <= MAX_STATE_NAME {
        return format!("{base}{suffix}");
    }
    let keep = MAX_STATE_NAME - suffix.len() - 1;
    let cut = (0..=keep)
        .rev()
        .find(|&i| base.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}~{suffix}", &base[..cut])
}

fn next_frag(name: String, cost: Cost) -> Frag {
    Frag {
        exits: vec![Exit {
            state: name.clone(),
            slot: Slot::Next,
        }],
        entry: name,
        cost,
    }
}

/// JSONPath: fields that set `$.nodes.<id>` to Parameters (with `.$` keys).
fn set_params(id: &str, params: Value) -> Vec<(&'static str, Value)> {
    vec![
        ("Parameters", params),
        ("ResultPath", json!(format!("$.nodes.{id}"))),
    ]
}

/// JSONata: fields that set `$.nodes.<id>` to the value of `expr`.
fn set_expr(id: &str, expr: &str) -> Vec<(&'static str, Value)> {
    vec![("Output", jsonata::wrap(&jsonata::set_entry(id, expr)))]
}

/// A Pass state built from fields.
fn pass(fields: Vec<(&'static str, Value)>) -> Value {
    let mut m = Map::new();
    m.insert("Type".into(), json!("Pass"));
    for (k, v) in fields {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

/// JSONata: node `id` ran (and took `port`).
fn port_expr(id: &str, port: Option<&str>) -> String {
    let var = format!("$states.input.nodes.{}.port", jsonata::name_token(id));
    match port {
        None => format!("$exists({var})"),
        Some(p) => format!(
            "($exists({var}) and {var} = {})",
            jsonata::string_literal(p)
        ),
    }
}

/// `{"Variable": "$.nodes.<id>.port", ...}`: the node ran (and took `port`).
fn port_rule(id: &str, port: Option<&str>) -> Value {
    let var = format!("$.nodes.{id}.port");
    match port {
        None => json!({"Variable": var, "IsPresent": true}),
        Some(p) => json!({"And": [
            {"Variable": var, "IsPresent": true},
            {"Variable": var, "StringEquals": p}
        ]}),
    }
}

/// Inserts `key` (literal) or `key.$` (template) into ASL Parameters. Validation has already
/// rejected what cannot be lowered.
fn insert_lowered(params: &mut Map<String, Value>, key: &str, value: &Value) {
    match template::lower_value(value) {
        Ok(Ok(v)) => {
            params.insert(key.to_owned(), v);
        }
        Ok(Err(expr)) => {
            params.insert(format!("{key}.$"), json!(expr));
        }
        Err(_) => {
            params.insert(key.to_owned(), value.clone());
        }
    }
}

/// JSONata: a shallow object merge of any sources, as one expression (None: needs the
/// node-runner for deep merges and array concatenation).
fn jsonata_merge(config: &Value) -> Option<String> {
    if config
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or("object")
        != "object"
        || config.get("deep").and_then(Value::as_bool).unwrap_or(false)
    {
        return None;
    }
    let sources = config.get("sources")?.as_array()?;
    let parts: Vec<String> = sources.iter().map(jsonata::value_expr).collect();
    Some(jsonata::with_bindings(&format!(
        "{{\"output\": $merge([{}]), \"port\": \"out\"}}",
        parts.join(", ")
    )))
}

/// A shallow object merge of plain references, as one intrinsic (None: needs the node-runner).
fn native_merge(config: &Value) -> Option<String> {
    if config
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or("object")
        != "object"
        || config.get("deep").and_then(Value::as_bool).unwrap_or(false)
    {
        return None;
    }
    let paths: Vec<String> = config
        .get("sources")?
        .as_array()?
        .iter()
        .map(|s| s.as_str().and_then(template::pure_path))
        .collect::<Option<_>>()?;
    let (first, rest) = paths.split_first()?;
    if rest.len() > 7 {
        return None;
    }
    Some(rest.iter().fold(first.clone(), |acc, p| {
        format!("States.JsonMerge({acc}, {p}, false)")
    }))
}
