"""The cloud end-to-end tier: ConcertMaster's Lambdas on a running docker-free LocalStack.

Run with the LocalStack venv's Python (boto3), against an instance started by
scripts/lib/localstack.sh, with the functions packaged as zips (scripts/lib/cloud-e2e.sh does
all of it: `cloud_e2e_tier LOG`):

    target/venvs/localstack/bin/python tests/e2e/cloud_e2e.py --zips DIR \
        [--endpoint URL] [--concertmaster target/debug/concertmaster] [--work DIR]

DIR holds `<function>.zip` (the binary as `bootstrap`, built for this host) for api,
node-runner, trigger-consumer, scheduler, run-events, status-pusher, ws-connect,
ws-disconnect, ws-message.

What it does (localstack/README.md, "End-to-end tier", has the full account):

1. provisions what infra/lib/concertmaster-stack.ts deploys, with boto3: the control-plane
   table (pk/sk, gsi1, gsi2, a NEW_AND_OLD_IMAGES stream), the datasets table, the triggers
   queue and its dead-letter queue, the queues workflows send to, a schedule group, the nine
   functions with the stack's settings, the event source mappings (triggers queue ->
   trigger-consumer; table stream -> status-pusher, with the stack's filter), the EventBridge
   rule (Step Functions status changes -> run-events) and the state machines' execution log
   group with its subscription filter (every execution event -> run-events);
2. for every example workflow (examples/*.json) and its scenarios (tests/data/runs/): creates and
   publishes it through the api Lambda (API Gateway HTTP API v2 events, as API Gateway would
   send), starts each scenario through its trigger (manual run, form submission, signed
   webhook, schedule tick, approval decision), polls the run through the API to its end,
   checks its node executions (API and table) and what it stored, sent and notified, and
   compares its output with `concertmaster run` of the same workflow and input on the
   embedded engine (parity);
3. a queue-trigger workflow (tests/e2e/workflows/order-queue.json) through SQS: a message with
   the org/queue attributes becomes a run through the event source mapping and the
   trigger-consumer; a message without them ends in the dead-letter queue;
4. the live-status push path: ws-connect / ws-message / ws-disconnect invoked with API Gateway
   WebSocket events; status-pusher fed by the table stream's event source mapping posts frames
   to LocalStack's (moto-backed) API Gateway Management API, read back through our extension's
   diagnostic route.

HTTP nodes reach a local fake upstream (the examples' https URLs are rewritten to it, the same
rewritten workflow running in the cloud and embedded), notifications a local sink
(scripts/sink.py). Each check is a test case; the output ends with cargo's summary line, exit
status 1 if any failed.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import json
import os
import platform
import re
import secrets as pysecrets
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent.parent
REGION = "us-east-1"
ACCOUNT = "000000000000"  # LocalStack's account for the access key "test"
ORG = "e2e"
PREFIX = "cm-e2e"
FUNCTIONS = [
    "api",
    "node-runner",
    "trigger-consumer",
    "scheduler",
    "run-events",
    "status-pusher",
    "ws-connect",
    "ws-disconnect",
    "ws-message",
]
# Memory and timeout per function, as in the stack (infra/lib/concertmaster-stack.ts).
SIZES = {
    "api": (512, 29),
    "node-runner": (512, 300),
    "ws-connect": (256, 10),
    "ws-disconnect": (256, 10),
    "ws-message": (256, 29),
    "status-pusher": (256, 60),
    "trigger-consumer": (256, 30),
    "run-events": (256, 30),
    "scheduler": (256, 30),
}
STATE_MACHINE_ARN_PREFIX = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:"
# The state machines' execution log group (stack: /aws/vendedlogs/states/<stack>-executions).
EXECUTION_LOG_GROUP = f"/aws/vendedlogs/states/{PREFIX}-executions"
EXECUTION_LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{EXECUTION_LOG_GROUP}:*"
PUBLIC_URL = "https://e2e.execute-api.us-east-1.amazonaws.com"
BUILDER_URL = "https://builder.e2e.example"
RUN_TIMEOUT = 90.0
# The triggers queue: the stack's redrive (5 receives), a short visibility timeout so that a
# failed message comes back within the test (the stack: 180 s, six times the consumer's timeout).
TRIGGERS_VISIBILITY = 4
TRIGGERS_MAX_RECEIVES = 5


class Failed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def wait_for(what: str, probe, timeout: float = 30.0, interval: float = 0.1):
    """Polls probe() until it returns a truthy value; fails with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise Failed(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r:.600})")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(key: bytes, sub: str, role: str, org: str = ORG) -> str:
    """An HS256 token as shared/api/src/auth.rs mints them."""
    now = int(time.time())
    header = b64url(b'{"alg":"HS256","typ":"JWT"}')
    claims = b64url(
        json.dumps(
            {"sub": sub, "org": org, "role": role, "exp": now + 3600, "iat": now},
            separators=(",", ":"),
        ).encode()
    )
    signing_input = f"{header}.{claims}"
    sig = b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())
    return f"{signing_input}.{sig}"


def pretty(v) -> str:
    return json.dumps(v, indent=1, sort_keys=True, default=str)


def json_diff(a, b, path="$") -> list[str]:
    """Paths where a and b differ (a few), for failure messages."""
    if type(a) is not type(b):
        return [f"{path}: {json.dumps(a, default=str)[:200]} != {json.dumps(b, default=str)[:200]}"]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: missing in cloud (embedded: {json.dumps(b[k])[:200]})")
            elif k not in b:
                out.append(f"{path}.{k}: missing embedded (cloud: {json.dumps(a[k])[:200]})")
            else:
                out += json_diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)} items"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += json_diff(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: {json.dumps(a)[:200]} != {json.dumps(b)[:200]}"]


# --- local servers -------------------------------------------------------------------------


class Upstream:
    """The outside services the examples' HTTP nodes call, on 127.0.0.1.

    The examples' `https://<host>/<path>` URLs are rewritten to `http://127.0.0.1:<port>/<host>/
    <path>`. Answers are set per scenario (`answer`): a rule is (method, host, path prefix) ->
    (status, JSON body). Responses carry only content-type and content-length (no Date or
    Server header), so the same call answers byte for byte the same to the cloud and to the
    embedded engine. Every request is recorded.
    """

    def __init__(self):
        self.rules: list[tuple[str, str, str, int, object]] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urllib.parse.urlsplit(self.path)
                host, _, path = url.path.lstrip("/").partition("/")
                path = "/" + path
                with upstream.lock:
                    upstream.requests.append(
                        {
                            "method": self.command,
                            "host": host,
                            "path": path,
                            "query": url.query,
                            "headers": dict(self.headers),
                            "body": body.decode("utf-8", "replace"),
                        }
                    )
                    rule = next(
                        (
                            r
                            for r in upstream.rules
                            if r[0] == self.command and r[1] == host and path.startswith(r[2])
                        ),
                        None,
                    )
                if rule is None:
                    status, payload = 404, {"error": f"no answer for {self.command} {host}{path}"}
                else:
                    status, payload = rule[3], rule[4]
                out = json.dumps(payload).encode()
                self.send_response_only(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, https_url: str) -> str:
        return re.sub(r"^https://", f"http://127.0.0.1:{self.port}/", https_url)

    def answer(self, rules: list[tuple[str, str, str, int, object]]) -> None:
        with self.lock:
            self.rules = list(rules)

    def stop(self):
        self.server.shutdown()


class Sink:
    """scripts/sink.py (what scripts/run uses): the Slack webhooks' local endpoint."""

    def __init__(self, log: Path):
        self.log = log
        log.write_text("")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "sink.py"), str(log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self.proc.stdout.readline())

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- scenarios -----------------------------------------------------------------------------

# How each example is started in the cloud (its trigger), and what its HTTP nodes' outside
# services answer where a scenario pins no output for them. Scenario inputs, pinned HTTP answers
# and the nodes expected to run come from tests/data/runs/<example>.json.
TRIGGERS = {
    "customer-health": "manual",
    "expense-approval": "form",
    "lead-intake": "form",
    "scheduled-sync": "schedule",
    "signup-triage-jsonata": "webhook",
    "webhook-orders": "webhook",
}
# scheduled-sync's scenario pins the filter's result; here the filter runs for real over
# contacts from which it keeps the same two (c2 is inactive).
CONTACTS = {
    "records": [
        {
            "id": "c1",
            "email": "ADA@EXAMPLE.COM",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "status": "active",
            "updatedAt": "2026-11-25T09:00:00Z",
        },
        {
            "id": "c2",
            "email": "bob@example.com",
            "firstName": "Bob",
            "lastName": "Inactive",
            "status": "inactive",
            "updatedAt": "2026-11-25T09:10:00Z",
        },
        {
            "id": "c3",
            "email": "grace@example.com",
            "firstName": "Grace",
            "lastName": "Hopper",
            "status": "active",
            "updatedAt": "2026-11-25T09:30:00Z",
        },
    ]
}
# HTTP statuses for the node errors scenarios pin (`failures`).
FAILURE_STATUS = {"ConcertMaster.Http.4xx": 402, "ConcertMaster.Http.5xx": 503}
# Scenarios not run here, and why.
SKIPPED = {
    ("expense-approval", "nobody answers within a week"): (
        "the approval's 7-day timeout (States.Timeout) cannot elapse within the tier"
    ),
}


def http_nodes(workflow: dict) -> dict[str, dict]:
    return {n["id"]: n for n in workflow["nodes"] if n["type"] == "action.http"}


def rewrite_workflow(workflow: dict, upstream: Upstream) -> dict:
    """The workflow with its HTTP nodes' https URLs pointing at the fake upstream."""
    w = copy.deepcopy(workflow)
    for n in w["nodes"]:
        if n["type"] == "action.http" and isinstance(n["config"].get("url"), str):
            n["config"]["url"] = upstream.url(n["config"]["url"])
    return w


def upstream_rules(workflow: dict, scenario: dict) -> list:
    """(method, host, path prefix, status, body) for the scenario's HTTP nodes (`workflow` as in
    examples/, with its https URLs)."""
    rules = []
    for node_id, node in http_nodes(workflow).items():
        url = urllib.parse.urlsplit(node["config"]["url"].split("{{")[0])
        method = node["config"].get("method", "GET").upper()
        if node_id in scenario.get("failures", {}):
            error = scenario["failures"][node_id]
            status = FAILURE_STATUS[error]
            rules.append((method, url.hostname, url.path, status, {"error": "declined"}))
        elif node_id in scenario.get("outputs", {}):
            out = scenario["outputs"][node_id]
            body = out.get("body")
            if workflow["id"] == "scheduled-sync" and node_id == "fetch_contacts":
                body = CONTACTS
            rules.append((method, url.hostname, url.path, out.get("status", 200), body))
    return rules


def secret_names(workflows: list[dict]) -> set[str]:
    names = set()

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "secret" and isinstance(x, str):
                    names.add(x)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for w in workflows:
        walk(w)
    return names


# Run metadata that must differ between a cloud run and an embedded run of the same workflow
# and input; normalised (also where it appears inside strings) before outputs are compared.
RUN_METADATA = ("executionId", "executionName", "startedAt")


def normalise(output, node_types: dict[str, str]):
    """The output with what must differ replaced by placeholders:

    - `run.executionId`, `run.executionName`, `run.startedAt` (the execution's ARN, name = run
      id, start time), wherever their values occur (whole strings or inside strings, e.g. an
      idempotency key built from the execution name);
    - `nodes.<approval>.output.decidedAt` (when the decision was made);
    - `nodes.<queue node>.output.messageId` (minted by SQS, or by the local queue embedded).
    """
    if not isinstance(output, dict) or not isinstance(output.get("run"), dict):
        return output
    values = [
        (output["run"][k], f"<{k}>")
        for k in RUN_METADATA
        if isinstance(output["run"].get(k), str) and output["run"][k]
    ]
    values.sort(key=lambda kv: -len(kv[0]))  # the ARN first: it contains the name

    def walk(v):
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str):
            for value, placeholder in values:
                v = v.replace(value, placeholder)
        return v

    out = walk(output)
    for node_id, node in (out.get("nodes") or {}).items():
        if not isinstance(node, dict) or not isinstance(node.get("output"), dict):
            continue
        kind = node_types.get(node_id)
        if kind == "flow.approval" and "decidedAt" in node["output"]:
            node["output"]["decidedAt"] = "<decidedAt>"
        if kind == "action.queue" and "messageId" in node["output"]:
            node["output"]["messageId"] = "<messageId>"
    return out


# --- the tier ------------------------------------------------------------------------------


class Tier:
    def __init__(self, args):
        self.endpoint = args.endpoint.rstrip("/")
        self.zips = Path(args.zips)
        self.concertmaster = args.concertmaster
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
        )
        cfg = Config(retries={"max_attempts": 2}, read_timeout=120, connect_timeout=5)
        self.client = lambda name: session.client(name, endpoint_url=self.endpoint, config=cfg)
        self.ddb = self.client("dynamodb")
        self.lam = self.client("lambda")
        self.sfn = self.client("stepfunctions")
        self.sqs = self.client("sqs")
        self.events = self.client("events")
        self.scheduler = self.client("scheduler")
        self.logs = self.client("logs")
        self.table = f"{PREFIX}-control"
        self.datasets = f"{PREFIX}-datasets"
        self.signing_key = pysecrets.token_bytes(32)
        self.editor = mint_token(self.signing_key, "ada@e2e.test", "editor")
        # Decisions in the cloud are made by an admin whose subject and comment are the ones
        # `concertmaster run --decide` records, so the approval's output is the same on both.
        self.decider = mint_token(self.signing_key, "concertmaster run", "admin")
        self.results: list[tuple[str, bool, str, float]] = []
        self.ready = {}
        self.arns: dict[str, str] = {}
        self.stream_arn = None
        self.queue_urls: dict[str, str] = {}
        # SQS_ENDPOINT_STRATEGY=path (scripts/lib/localstack.sh): URLs as LocalStack hands them out
        self.queue_prefix = f"{self.endpoint}/queue/{REGION}/{ACCOUNT}/{PREFIX}-"
        self.latencies: list[tuple[str, dict]] = []
        self.bad_message: str | None = None
        self.bad_sent = 0.0
        self.express_runs: list[str] = []
        self.ignored: list[tuple[str, str]] = []
        self.phases: list[tuple[str, float]] = []
        self.upstream = Upstream()
        self.sink = Sink(self.work / "sink.log")
        self.examples = {
            p.stem: json.loads(p.read_text()) for p in sorted(Path(args.examples).glob("*.json"))
        }
        self.order_queue = json.loads(
            (ROOT / "tests" / "e2e" / "workflows" / "order-queue.json").read_text()
        )
        names = secret_names(list(self.examples.values()))
        self.secrets = {
            n: (
                f"http://127.0.0.1:{self.sink.port}/slack/{n}"
                if n.endswith("slack_webhook")
                else f"e2e-{n}-value"
            )
            for n in sorted(names)
        }
        (self.work / "secrets.json").write_text(json.dumps(self.secrets, indent=1))
        self.workflows: dict[str, dict] = {}  # example id -> rewritten workflow (as published)
        self.files: dict[str, Path] = {}
        wdir = self.work / "workflows"
        wdir.mkdir(exist_ok=True)
        for stem, w in list(self.examples.items()) + [("order-queue", self.order_queue)]:
            rw = rewrite_workflow(w, self.upstream)
            self.workflows[stem] = rw
            self.files[stem] = wdir / f"{stem}.json"
            self.files[stem].write_text(json.dumps(rw, indent=1))

    # --- runner ----------------------------------------------------------------------------

    def run(self, name: str, fn, *args) -> bool:
        began = time.perf_counter()
        try:
            fn(*args)
            ok, detail = True, ""
        except Failed as e:
            ok, detail = False, str(e)
        except Exception as e:  # noqa: BLE001 -- any error is this check's failure
            ok, detail = False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
        ms = (time.perf_counter() - began) * 1000
        self.results.append((name, ok, detail, ms))
        print(f"test {name} ... {'ok' if ok else 'FAILED'} ({ms:.0f} ms)", flush=True)
        if not ok:
            print("    " + detail.replace("\n", "\n    "), flush=True)
        return ok

    def ignore(self, name: str, reason: str) -> None:
        """A known gap: printed as an ignored test (cargo's `ignored`), with the reason."""
        self.ignored.append((name, reason))
        print(f"test {name} ... ignored, {reason}", flush=True)

    def phase(self, name: str, fn):
        print(f"\n== {name}", flush=True)
        began = time.perf_counter()
        fn()
        s = time.perf_counter() - began
        self.phases.append((name, s))
        print(f"   ({name}: {s:.1f} s)", flush=True)

    # --- helpers ---------------------------------------------------------------------------

    def invoke(self, function: str, event, what: str = "") -> tuple[object, float]:
        """RequestResponse invoke; the decoded answer and the time (ms). A function error fails."""
        began = time.perf_counter()
        r = self.lam.invoke(
            FunctionName=self.arns.get(function, function),
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        ms = (time.perf_counter() - began) * 1000
        raw = r["Payload"].read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        check(
            "FunctionError" not in r,
            f"{function} {what}: FunctionError {r.get('FunctionError')}: {payload}",
        )
        return payload, ms

    def api(self, method: str, path: str, body=None, token: str | None = None, headers=None,
            raw_body: str | None = None, query: str = "",
            claims: dict | None = None) -> tuple[int, object]:
        """The api Lambda invoked with an API Gateway HTTP API (payload 2.0) event; `claims`: the
        JWT authorizer's verified claims (a Cognito ID token's), as API Gateway passes them."""
        now = datetime.now(timezone.utc)
        h = {
            "accept": "application/json",
            "host": urllib.parse.urlsplit(PUBLIC_URL).hostname,
            "user-agent": "cloud-e2e",
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        }
        text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
        if text is not None:
            h["content-type"] = "application/json"
        if token:
            h["authorization"] = f"Bearer {token}"
        h.update(headers or {})
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "headers": h,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": "e2e",
                "domainName": urllib.parse.urlsplit(PUBLIC_URL).hostname,
                "domainPrefix": "e2e",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "cloud-e2e",
                },
                "requestId": uuid.uuid4().hex,
                "routeKey": "$default",
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": False,
        }
        if claims:
            event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        if query:
            event["queryStringParameters"] = dict(urllib.parse.parse_qsl(query))
        if text is not None:
            event["body"] = text
        answer, _ms = self.invoke("api", event, f"{method} {path}")
        check(isinstance(answer, dict) and "statusCode" in answer, f"{method} {path}: {answer}")
        out = answer.get("body") or ""
        if answer.get("isBase64Encoded"):
            out = base64.b64decode(out).decode("utf-8", "replace")
        try:
            parsed = json.loads(out) if out else None
        except ValueError:
            parsed = out
        return answer["statusCode"], parsed

    def api_ok(self, method, path, want=(200, 201, 202), **kw):
        status, body = self.api(method, path, **kw)
        check(status in want, f"{method} {path}: HTTP {status} (want {want}): {body}")
        return body

    def poll_run(self, run_id: str) -> tuple[dict, float]:
        """GET /v1/runs/{id} until the run has ended; (run, seconds polled)."""
        began = time.perf_counter()
        run = wait_for(
            f"run {run_id} to end (GET /v1/runs/{run_id})",
            lambda: (
                r
                if (r := self.api_ok("GET", f"/v1/runs/{run_id}", token=self.editor))["status"]
                != "RUNNING"
                else None
            ),
            timeout=RUN_TIMEOUT,
            interval=0.2,
        )
        return run, time.perf_counter() - began

    def node_items(self, run_id: str) -> list[dict]:
        """The run's node-execution items, read from the table directly."""
        items = []
        kw = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :n)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"ORG#{ORG}#RUN#{run_id}"},
                ":n": {"S": "N#"},
            },
            "ConsistentRead": True,
        }
        while True:
            page = self.ddb.query(**kw)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def run_item(self, run_id: str) -> dict | None:
        return self.ddb.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"ORG#{ORG}#RUN#{run_id}"}, "sk": {"S": "RUN"}},
            ConsistentRead=True,
        ).get("Item")

    def embedded(self, stem: str, run_input, decide: dict[str, bool] | None = None) -> dict:
        """`concertmaster run` of the same (rewritten) workflow and input, embedded."""
        cmd = [
            self.concertmaster,
            "run",
            str(self.files[stem]),
            "--input",
            json.dumps(run_input),
            "--secrets",
            str(self.work / "secrets.json"),
            "--allow-network",
            "127.0.0.1/32",
            "--quiet",
        ]
        for node, approve in (decide or {}).items():
            cmd += ["--decide", f"{node}={'approve' if approve else 'reject'}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONCERTMASTER_")}
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
        try:
            return json.loads(p.stdout)
        except ValueError:
            raise Failed(
                f"concertmaster run {stem}: exit {p.returncode}, stdout {p.stdout[-800:]!r}, "
                f"stderr {p.stderr[-800:]!r}"
            ) from None

    def datasets_items(self, execution_arn: str) -> list[dict]:
        items = []
        kw = {
            "TableName": self.datasets,
            "FilterExpression": "runId = :r",
            "ExpressionAttributeValues": {":r": {"S": execution_arn}},
        }
        while True:
            page = self.ddb.scan(**kw)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def drain_queue(self, url: str, wait: float = 0) -> list[dict]:
        out = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=int(wait),
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                return out
            for m in got:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            out += got
            wait = 0

    def log_lines(self, function: str, contains: str) -> list[str]:
        """The function's CloudWatch Logs lines containing `contains` (filtered here: LocalStack's
        filter patterns are not AWS's)."""
        out, kw = [], {"logGroupName": f"/aws/lambda/{PREFIX}-{function}"}
        while True:
            page = self.logs.filter_log_events(**kw)
            out += [e["message"] for e in page["events"] if contains in e["message"]]
            if not page.get("nextToken") or not page["events"]:
                return out
            kw["nextToken"] = page["nextToken"]

    def posted(self, connection_id: str) -> list[dict]:
        """Frames PostToConnection posted to a connection (moto keeps them; our extension's
        diagnostic route reads them), split into JSON documents."""
        url = (
            f"{self.endpoint}/_concertmaster/apigatewaymanagementapi/connections/"
            + urllib.parse.quote(connection_id, safe="")
        )
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                data = base64.b64decode(json.load(r)["posts"]).decode()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise
        frames, i, dec = [], 0, json.JSONDecoder()
        while i < len(data):
            while i < len(data) and data[i].isspace():
                i += 1
            if i >= len(data):
                break
            frame, i = dec.raw_decode(data, i)
            frames.append(frame)
        return frames

    # --- 1. provisioning -------------------------------------------------------------------

    def provision_tables(self):
        gsis = [
            {
                "IndexName": g,
                "KeySchema": [
                    {"AttributeName": f"{g}pk", "KeyType": "HASH"},
                    {"AttributeName": f"{g}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for g in ("gsi1", "gsi2")
        ]
        desc = self.ddb.create_table(
            TableName=self.table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": "S"}
                for a in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=gsis,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        self.stream_arn = desc.get("LatestStreamArn")
        check(bool(self.stream_arn), f"CreateTable answered no LatestStreamArn: {desc}")
        self.ddb.create_table(
            TableName=self.datasets,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        for t in (self.table, self.datasets):
            wait_for(
                f"table {t} ACTIVE",
                lambda t=t: self.ddb.describe_table(TableName=t)["Table"]["TableStatus"]
                == "ACTIVE",
            )
        t = self.ddb.describe_table(TableName=self.table)["Table"]
        check(
            sorted(i["IndexName"] for i in t.get("GlobalSecondaryIndexes", [])) == ["gsi1", "gsi2"],
            f"indexes {t.get('GlobalSecondaryIndexes')}",
        )

    def provision_queues(self):
        def create(name, **attrs):
            url = self.sqs.create_queue(
                QueueName=name, Attributes={k: str(v) for k, v in attrs.items()}
            )["QueueUrl"]
            self.queue_urls[name] = url
            return url

        dlq = create(f"{PREFIX}-triggers-dlq", MessageRetentionPeriod=1209600)
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        create(
            f"{PREFIX}-triggers",
            VisibilityTimeout=TRIGGERS_VISIBILITY,
            RedrivePolicy=json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": TRIGGERS_MAX_RECEIVES}
            ),
        )
        create(f"{PREFIX}-events-dlq")
        create(f"{PREFIX}-stream-dlq")
        # EventBridge -> SQS tap of the Step Functions events (to check their shape).
        create(f"{PREFIX}-states-events")
        # What the examples' action.queue nodes send to (<prefix><queue>).
        create(f"{PREFIX}-onboarding")
        create(
            f"{PREFIX}-order-fulfilment.fifo",
            FifoQueue="true",
            ContentBasedDeduplication="true",
        )
        for name, url in self.queue_urls.items():
            check(url == self.queue_prefix + name[len(PREFIX) + 1 :], f"queue URL {url}")

    def queue_arn(self, name: str) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"

    def function_env(self) -> dict[str, dict[str, str]]:
        common = {
            "CONCERTMASTER_TABLE": self.table,
            "CONCERTMASTER_ENDPOINT_URL": self.endpoint,
            "RUST_LOG": "info",
        }
        secret_env = {f"CONCERTMASTER_SECRET_{n}": v for n, v in self.secrets.items()}
        workers = {
            **common,
            "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX": STATE_MACHINE_ARN_PREFIX,
            "CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN": EXECUTION_LOG_GROUP_ARN,
        }
        return {
            "api": {
                **common,
                "CONCERTMASTER_STATE_MACHINE_ROLE_ARN": self.role_arn("state-machine"),
                "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX": STATE_MACHINE_ARN_PREFIX,
                "CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN": EXECUTION_LOG_GROUP_ARN,
                "CONCERTMASTER_PUBLIC_URL": PUBLIC_URL,
                "CONCERTMASTER_BUILDER_URL": BUILDER_URL,
                # the stack's way: the key's secret, read when the function starts
                "CONCERTMASTER_SIGNING_KEY_SECRET_ARN": self.signing_key_arn,
                "CONCERTMASTER_NODE_RUNNER_FUNCTION": self.function_arn("node-runner"),
                "CONCERTMASTER_DATASETS_TABLE": self.datasets,
                "CONCERTMASTER_QUEUE_URL_PREFIX": f"{self.queue_prefix}",
                "CONCERTMASTER_SCHEDULER_ROLE_ARN": self.role_arn("scheduler"),
                "CONCERTMASTER_SCHEDULER_TARGET_ARN": self.function_arn("scheduler"),
                "CONCERTMASTER_SCHEDULE_GROUP": PREFIX,
                "CONCERTMASTER_SCHEDULER_DLQ_ARN": self.queue_arn(f"{PREFIX}-events-dlq"),
                # webhook HMAC keys
                **secret_env,
            },
            "node-runner": {
                **common,
                "CONCERTMASTER_ALLOW_NETWORKS": "127.0.0.1/32",
                "CONCERTMASTER_APPROVAL_BASE_URL": BUILDER_URL,
                **secret_env,
            },
            "trigger-consumer": workers,
            "scheduler": workers,
            "run-events": workers,
            "status-pusher": {**common, "CONCERTMASTER_WS_ENDPOINT": self.endpoint},
            "ws-message": {**common, "CONCERTMASTER_WS_ENDPOINT": self.endpoint},
            "ws-connect": {**common, "CONCERTMASTER_SIGNING_KEY_SECRET_ARN": self.signing_key_arn},
            "ws-disconnect": common,
        }

    @staticmethod
    def role_arn(name: str) -> str:
        # IAM answers but enforces nothing here: roles are ARNs only
        return f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-{name}"

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PREFIX}-{name}"

    def provision_functions(self):
        # The signing key in Secrets Manager (stack: a generated secret; api and ws-connect read
        # it when they start).
        self.signing_key_arn = self.client("secretsmanager").create_secret(
            Name=f"{PREFIX}-signing-key", SecretString=base64.b64encode(self.signing_key).decode()
        )["ARN"]
        env = self.function_env()
        arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
        began = {}
        for name in FUNCTIONS:
            z = self.zips / f"{name}.zip"
            check(z.is_file(), f"{z} does not exist")
            memory, timeout = SIZES[name]
            began[name] = time.perf_counter()
            self.lam.create_function(
                FunctionName=f"{PREFIX}-{name}",
                Runtime="provided.al2023",
                Handler="bootstrap",
                Architectures=[arch],
                Role=self.role_arn(name),
                Code={"ZipFile": z.read_bytes()},
                Timeout=timeout,
                MemorySize=memory,
                Environment={"Variables": env[name]},
            )
            self.arns[name] = self.function_arn(name)
        for name in FUNCTIONS:
            cfg = wait_for(
                f"function {name} to leave Pending",
                lambda name=name: (
                    c
                    if (c := self.lam.get_function_configuration(FunctionName=self.arns[name]))[
                        "State"
                    ]
                    != "Pending"
                    else None
                ),
                timeout=120,
                interval=0.2,
            )
            check(cfg["State"] == "Active", f"{name}: {cfg['State']} {cfg.get('StateReason')}")
            self.ready[name] = time.perf_counter() - began[name]
        print(
            "    create -> Active: "
            + ", ".join(f"{n} {s:.1f} s" for n, s in self.ready.items()),
            flush=True,
        )

    def provision_wiring(self):
        # triggers queue -> trigger-consumer (stack: batch 10, ReportBatchItemFailures)
        self.triggers_esm = self.lam.create_event_source_mapping(
            FunctionName=self.arns["trigger-consumer"],
            EventSourceArn=self.queue_arn(f"{PREFIX}-triggers"),
            BatchSize=10,
            FunctionResponseTypes=["ReportBatchItemFailures"],
        )["UUID"]
        # table stream -> status-pusher, as the stack (LATEST, batch 100, window 1 s, bisect,
        # 3 retries, ReportBatchItemFailures, on-failure DLQ, only run and node items)
        self.stream_esm = self.lam.create_event_source_mapping(
            FunctionName=self.arns["status-pusher"],
            EventSourceArn=self.stream_arn,
            StartingPosition="LATEST",
            BatchSize=100,
            MaximumBatchingWindowInSeconds=1,
            BisectBatchOnFunctionError=True,
            MaximumRetryAttempts=3,
            MaximumRecordAgeInSeconds=3600,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            DestinationConfig={
                "OnFailure": {"Destination": self.queue_arn(f"{PREFIX}-stream-dlq")}
            },
            FilterCriteria={
                "Filters": [
                    {
                        "Pattern": json.dumps(
                            {"dynamodb": {"Keys": {"sk": {"S": ["RUN", {"prefix": "N#"}]}}}}
                        )
                    }
                ]
            },
        )["UUID"]
        for esm in (self.triggers_esm, self.stream_esm):
            wait_for(
                f"event source mapping {esm} Enabled",
                lambda esm=esm: self.lam.get_event_source_mapping(UUID=esm)["State"] == "Enabled",
                timeout=60,
            )
        # Step Functions status changes -> run-events (stack: the rule with a prefix match on
        # the state machine, 8 retries, the events DLQ)
        pattern = {
            "source": ["aws.states"],
            "detail-type": ["Step Functions Execution Status Change"],
            "detail": {"stateMachineArn": [{"prefix": STATE_MACHINE_ARN_PREFIX}]},
        }
        self.events.put_rule(Name=f"{PREFIX}-execution-status", EventPattern=json.dumps(pattern))
        self.events.put_targets(
            Rule=f"{PREFIX}-execution-status",
            Targets=[
                {
                    "Id": "run-events",
                    "Arn": self.arns["run-events"],
                    "RetryPolicy": {
                        "MaximumRetryAttempts": 8,
                        "MaximumEventAgeInSeconds": 21600,
                    },
                    "DeadLetterConfig": {"Arn": self.queue_arn(f"{PREFIX}-events-dlq")},
                }
            ],
        )
        self.lam.add_permission(
            FunctionName=self.arns["run-events"],
            StatementId="events",
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{PREFIX}-execution-status",
        )
        # Execution logs -> run-events (stack: the log group every state machine logs to at
        # level ALL with execution data, and a subscription filter forwarding every record)
        self.logs.create_log_group(logGroupName=EXECUTION_LOG_GROUP)
        self.lam.add_permission(
            FunctionName=self.arns["run-events"],
            StatementId="logs",
            Action="lambda:InvokeFunction",
            Principal="logs.amazonaws.com",
            SourceArn=EXECUTION_LOG_GROUP_ARN,
        )
        self.logs.put_subscription_filter(
            logGroupName=EXECUTION_LOG_GROUP,
            filterName="run-events",
            filterPattern="",
            destinationArn=self.arns["run-events"],
        )
        # A tap of the same events into a queue, to check what Step Functions emits.
        self.events.put_rule(Name=f"{PREFIX}-states-tap", EventPattern=json.dumps(pattern))
        self.events.put_targets(
            Rule=f"{PREFIX}-states-tap",
            Targets=[{"Id": "tap", "Arn": self.queue_arn(f"{PREFIX}-states-events")}],
        )
        for fn in ("run-events", "scheduler"):
            self.lam.put_function_event_invoke_config(
                FunctionName=self.arns[fn],
                MaximumRetryAttempts=2,
                MaximumEventAgeInSeconds=21600,
                DestinationConfig={
                    "OnFailure": {"Destination": self.queue_arn(f"{PREFIX}-events-dlq")}
                },
            )
        # the schedule group the api creates schedules in
        self.scheduler.create_schedule_group(Name=PREFIX)

    # --- 2. examples -----------------------------------------------------------------------

    def publish(self, stem: str) -> dict:
        w = self.workflows[stem]
        created = self.api_ok("POST", "/v1/workflows", body={"definition": w}, token=self.editor)
        check(
            created.get("workflow", created).get("id", w["id"]) == w["id"],
            f"created {pretty(created)[:600]}",
        )
        published = self.api_ok(
            "POST", f"/v1/workflows/{w['id']}/publish", body={}, token=self.editor
        )
        # the state machine <org>.<id>, runs start on its alias `live`
        arn = f"{STATE_MACHINE_ARN_PREFIX}{ORG}.{w['id']}"
        check(
            published.get("stateMachine") == f"{arn}:live",
            f"publish answered state machine {published.get('stateMachine')!r}, want {arn}:live",
        )
        # What Step Functions has: the machine, version 1 and alias live on it.
        sm = self.sfn.describe_state_machine(stateMachineArn=arn)
        definition = json.loads(sm["definition"])
        check("States" in definition, f"the state machine's definition: {sm['definition'][:300]}")
        aliases = self.sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"]
        check(
            [a["stateMachineAliasArn"].rsplit(":", 1)[1] for a in aliases] == ["live"],
            f"aliases {aliases}",
        )
        alias = self.sfn.describe_state_machine_alias(
            stateMachineAliasArn=aliases[0]["stateMachineAliasArn"]
        )
        check(
            [r["stateMachineVersionArn"] for r in alias["routingConfiguration"]] == [f"{arn}:1"],
            f"alias live routes to {alias['routingConfiguration']}",
        )
        return published

    def start(self, stem: str, scenario: dict, published: dict) -> str:
        """Starts the scenario's run through the workflow's trigger; the run id."""
        trigger = TRIGGERS.get(stem, "manual")
        w = self.workflows[stem]
        if trigger == "manual":
            r = self.api_ok(
                "POST",
                f"/v1/workflows/{w['id']}/runs",
                body={"input": scenario["input"]},
                token=self.editor,
            )
            return r["id"]
        if trigger == "form":
            form = urllib.parse.urlsplit(published["formUrl"]).path  # /v1/forms/<id>
            got = self.api_ok("GET", form)
            check(isinstance(got, dict), f"GET {form}: {got}")
            r = self.api_ok("POST", f"{form}/responses", body={"data": scenario["input"]})
            check(bool(r.get("runId")), f"form submission answered {r}")
            return r["runId"]
        if trigger == "webhook":
            hook = urllib.parse.urlsplit(published["hookUrl"]).path  # /hooks/<token>
            node = next(n for n in w["nodes"] if n["type"] == "trigger.webhook")
            cfg = node["config"]
            raw = json.dumps(scenario["input"]["body"])
            headers = {}
            if cfg.get("secret"):
                key = self.secrets[cfg["secret"]].encode()
                sig = "sha256=" + hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()
                headers[cfg.get("signatureHeader", "X-Signature-256").lower()] = sig
            r = self.api_ok("POST", hook, raw_body=raw, headers=headers, want=(202,))
            return r["runId"]
        if trigger == "schedule":
            # LocalStack's EventBridge Scheduler keeps schedules but never fires them: the
            # schedule the api created is read back and its target invoked with its input, as
            # Scheduler would at a tick.
            s = self.scheduler.get_schedule(GroupName=PREFIX, Name=f"{ORG}.{w['id']}")
            target = s["Target"]
            check(target["Arn"] == self.arns["scheduler"], f"schedule target {target['Arn']}")
            tick = (
                datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
            )
            event = json.loads(target["Input"].replace("<aws.scheduler.scheduled-time>", tick))
            print(
                "    driven: LocalStack's EventBridge Scheduler keeps schedules but never fires "
                f"them; the scheduler function invoked with the schedule's own input {event}"
            )
            r, _ms = self.invoke("scheduler", event, "tick")
            check(r.get("created") is True and r.get("runId"), f"scheduler answered {r}")
            return r["runId"]
        raise Failed(f"unknown trigger {trigger}")

    def bad_signature(self, stem: str, published: dict):
        """A webhook call whose HMAC signature does not match is a 401 and starts no run."""
        w = self.workflows[stem]
        cfg = next(n for n in w["nodes"] if n["type"] == "trigger.webhook")["config"]
        check(bool(cfg.get("secret")), f"{stem}'s webhook has no secret")
        hook = urllib.parse.urlsplit(published["hookUrl"]).path
        header = cfg.get("signatureHeader", "X-Signature-256").lower()
        status, body = self.api(
            "POST", hook, raw_body='{"id":"forged"}', headers={header: "sha256=" + "0" * 64}
        )
        check(status == 401, f"a forged signature: HTTP {status} {body}")
        got = self.api_ok("GET", "/v1/runs", token=self.editor, query=f"workflowId={w['id']}")
        items = got.get("items", got) if isinstance(got, dict) else got
        check(items == [], f"runs after a refused call: {items}")

    def decide_approval(self, run_id: str, approve: bool):
        def pending():
            got = self.api_ok("GET", "/v1/approvals", token=self.decider, query="pending=true")
            items = got.get("items", got) if isinstance(got, dict) else got
            return [a for a in items if a.get("runId") == run_id]

        approvals = wait_for(f"the approval of run {run_id}", pending, timeout=60, interval=0.3)
        a = approvals[0]
        check(a.get("status", "pending") == "pending", f"approval {a}")
        self.api_ok(
            "POST",
            f"/v1/approvals/{a['id']}/decision",
            body={"approve": approve, "comment": "decided with --decide"},
            token=self.decider,
        )

    def scenario(self, stem: str, scenario: dict, published: dict):
        w = self.workflows[stem]
        node_types = {n["id"]: n["type"] for n in w["nodes"]}
        express = published.get("executionType") == "EXPRESS"
        self.upstream.answer(upstream_rules(self.examples[stem], scenario))
        decide = {}
        for node, port in scenario.get("ports", {}).items():
            if node_types.get(node) == "flow.approval":
                decide[node] = port == "approved"
        sink_before = len(self.sink.requests())
        t0 = time.perf_counter()
        run_id = self.start(stem, scenario, published)
        t_started = time.perf_counter()
        for node, approve in decide.items():
            self.decide_approval(run_id, approve)
        run, _ = self.poll_run(run_id)
        t_ended = time.perf_counter()
        if run["status"] != "SUCCEEDED":
            emb = self.embedded(stem, run["input"], decide)
            raise Failed(
                f"run {run_id} {run['status']}: {run.get('error')}: {str(run.get('cause'))[:400]}\n"
                f"embedded, same input: {emb.get('status')} {emb.get('error') or ''}: "
                f"{str(emb.get('cause') or '')[:400]}"
            )
        want = sorted(set(scenario["ran"]))
        execution_arn = run.get("executionArn") or self.run_item(run_id)["executionArn"]["S"]
        metrics = {
            "trigger": TRIGGERS.get(stem, "manual"),
            "start_ms": (t_started - t0) * 1000,
            "end_s": t_ended - t0,
        }
        if express:
            self.express_runs.append(run_id)
        # node executions: recorded by run-events from the execution's log records as the
        # nodes run, then from its whole history at the end (Standard: GetExecutionHistory;
        # Express: its log records, the only history Step Functions keeps of them), read
        # through the API and from the table
        # (run-events writes them one after the other: wait for every node and every end)
        def recorded():
            got = self.api_ok("GET", f"/v1/runs/{run_id}/nodes", token=self.editor)
            items = got.get("items", got) if isinstance(got, dict) else got
            ids = sorted({n["nodeId"] for n in items})
            done = all(n.get("status") != "running" for n in items)
            return (ids, items) if ids == want and done else None

        try:
            _ids, items = wait_for(
                f"node executions {want} of run {run_id}, ended", recorded, timeout=30,
                interval=0.3,
            )
        except Failed as e:
            raise Failed(f"{e}\n(nodes expected to run per tests/data/runs: {want})") from None
        metrics["nodes_s"] = time.perf_counter() - t0
        # nodes the scenario fails (a caught error) end failed with that error, the rest succeed
        failures = scenario.get("failures", {})
        wrong = [
            n
            for n in items
            if (n.get("status"), n.get("error"))
            != (("failed", failures[n["nodeId"]]) if n["nodeId"] in failures else ("succeeded", None))
        ]
        check(not wrong, f"node executions not as the scenario ends them ({failures}): {wrong}")
        table_ids = sorted({i["nodeId"]["S"] for i in self.node_items(run_id)})
        check(table_ids == want, f"table node items {table_ids}, want {want}")
        if express:
            # Step Functions keeps no history of Express executions: the API reads it from
            # the log group (what run-events recorded the nodes from).
            hist = self.api_ok("GET", f"/v1/runs/{run_id}/events", token=self.editor)
            kinds = [e["type"] for e in hist["items"]]
            check(
                kinds[:1] == ["ExecutionStarted"] and kinds[-1:] == ["ExecutionSucceeded"]
                and [e["id"] for e in hist["items"]] == list(range(1, len(kinds) + 1)),
                f"the Express run's history read from its logs: {kinds}",
            )
        else:
            ex = self.sfn.describe_execution(executionArn=execution_arn)
            check(
                ex.get("stateMachineAliasArn", "").endswith(":live"),
                f"the execution did not start on alias live: {ex.get('stateMachineAliasArn')}",
            )
            metrics["execution_s"] = (ex["stopDate"] - ex["startDate"]).total_seconds()
        # what the run stored (the datasets table, read through the API), sent and notified
        for n in w["nodes"]:
            if n["type"] != "action.store" or n["id"] not in want:
                continue
            dataset = n["config"]["dataset"]
            page = self.api_ok(
                "GET", f"/v1/datasets/{dataset}/records", token=self.editor, query="limit=500"
            )
            mine = [
                r for r in page["items"] if r["runId"] == execution_arn and r["nodeId"] == n["id"]
            ]
            check(mine, f"no record of node {n['id']} of the run in dataset {dataset}: {page}")
        queue_nodes = [n for n in w["nodes"] if n["type"] == "action.queue" and n["id"] in want]
        for n in queue_nodes:
            url = self.queue_prefix + n["config"]["queue"]
            msgs = self.drain_queue(url, wait=1)
            check(len(msgs) == 1, f"{len(msgs)} messages on {url}, want 1")
            json.loads(msgs[0]["Body"])
        notifies = [n for n in w["nodes"] if n["type"] == "action.notify" and n["id"] in want]
        sent = self.sink.requests()[sink_before:]
        check(
            len(sent) == len(notifies),
            f"{len(sent)} notifications reached the sink, want {len(notifies)}",
        )
        # parity with the embedded engine on the run's own input
        emb = self.embedded(stem, run["input"], decide)
        check(
            emb.get("status") == run["status"],
            f"embedded {emb.get('status')} {emb.get('error')} {emb.get('cause')}, "
            f"cloud {run['status']}",
        )
        cloud_out = normalise(run.get("output"), node_types)
        emb_out = normalise(emb.get("output"), node_types)
        diff = json_diff(cloud_out, emb_out)
        check(
            not diff,
            "cloud and embedded outputs differ (after normalising run metadata):\n  "
            + "\n  ".join(diff[:12]),
        )
        self.latencies.append((f"{stem} / {scenario['name']}", metrics))

    def examples_phase(self):
        for stem, workflow in self.examples.items():
            runs = ROOT / "tests" / "data" / "runs" / f"{stem}.json"
            published = {}

            def do_publish(stem=stem):
                published.update(self.publish(stem))
                if TRIGGERS.get(stem) == "schedule":
                    s = self.scheduler.get_schedule(
                        GroupName=PREFIX, Name=f"{ORG}.{workflow['id']}"
                    )
                    check(
                        s["ScheduleExpression"] == workflow["nodes"][0]["config"]["expression"],
                        f"schedule {s['ScheduleExpression']}",
                    )

            if not self.run(f"publish::{stem}", do_publish):
                continue
            if TRIGGERS.get(stem) == "webhook":
                self.run(
                    f"hook::{stem}::bad_signature_refused", self.bad_signature, stem, published
                )
            if not runs.exists():
                continue
            for sc in json.loads(runs.read_text())["scenarios"]:
                if (stem, sc["name"]) in SKIPPED:
                    print(f"    skipped {stem} / {sc['name']}: {SKIPPED[(stem, sc['name'])]}")
                    continue
                self.run(f"run::{stem}::{sc['name']}", self.scenario, stem, sc, published)

        def express_followed():
            # Their node executions and ends were checked with each run; here: there were some.
            check(self.express_runs, "no example ran as an Express workflow")
            print(f"    {len(self.express_runs)} Express runs followed through their execution logs")

        self.run("logs::express_runs_are_followed_through_their_logs", express_followed)

    # --- Step Functions events -------------------------------------------------------------

    def states_events_shape(self):
        """The status-change events LocalStack's Step Functions emitted (tapped into a queue by a
        second rule with the run-events rule's pattern) have AWS's shape: epoch-ms dates."""
        msgs = self.drain_queue(self.queue_urls[f"{PREFIX}-states-events"], wait=1)
        check(msgs, "no Step Functions status change event reached the tap queue")
        statuses = {}
        for m in msgs:
            e = json.loads(m["Body"])
            check(e.get("source") == "aws.states", f"event source {e.get('source')}")
            d = e["detail"]
            statuses[d["status"]] = statuses.get(d["status"], 0) + 1
            check(isinstance(d.get("startDate"), int), f"startDate {d.get('startDate')!r}")
            if d["status"] != "RUNNING":
                check(isinstance(d.get("stopDate"), int), f"stopDate {d.get('stopDate')!r}")
            check(
                d["stateMachineArn"].startswith(STATE_MACHINE_ARN_PREFIX)
                and d["stateMachineArn"].count(":") == 6,
                f"stateMachineArn {d['stateMachineArn']} (want the unqualified machine)",
            )
        print(f"    events by status: {statuses}")
        check(statuses.get("SUCCEEDED", 0) > 0, f"no SUCCEEDED event: {statuses}")

    def run_events_invoked_by_eventbridge(self):
        """run-events ran because EventBridge delivered the events (its own log), not because the
        tier invoked it."""
        events = self.log_lines("run-events", "FromHistory")
        check(events, "run-events logged no FromHistory outcome")
        print(f"    run-events recorded {len(events)} runs from their history")

    def run_events_invoked_by_the_log_subscription(self):
        """run-events followed execution log records delivered by the log group's subscription
        filter (its own log)."""
        events = self.log_lines("run-events", "FromLogs")
        check(events, "run-events logged no FromLogs outcome")
        print(f"    run-events followed {len(events)} batches of execution log records")

    # --- 3. SQS ----------------------------------------------------------------------------

    def send_bad_trigger_message(self):
        """A message without the `queue` attribute: the consumer reports it failed on every
        receive, and SQS moves it to the DLQ after maxReceiveCount receives. Sent right after
        provisioning and checked at the end ([`bad_message_in_dlq`]): its receives take a
        while, the other phases run meanwhile."""
        self.bad_message = self.sqs.send_message(
            QueueUrl=self.queue_urls[f"{PREFIX}-triggers"],
            MessageBody=json.dumps({"id": "q-bad"}),
            MessageAttributes={"org": {"DataType": "String", "StringValue": ORG}},
        )["MessageId"]
        self.bad_sent = time.perf_counter()

    def bad_message_in_dlq(self):
        check(self.bad_message is not None, "the bad message was not sent")
        triggers = self.queue_urls[f"{PREFIX}-triggers"]
        dlq = self.queue_urls[f"{PREFIX}-triggers-dlq"]
        msgs = wait_for(
            f"message {self.bad_message} in the triggers DLQ "
            f"after {TRIGGERS_MAX_RECEIVES} receives",
            lambda: self.drain_queue(dlq, wait=1),
            timeout=TRIGGERS_VISIBILITY * TRIGGERS_MAX_RECEIVES * 3 + 30,
            interval=0.5,
        )
        ids = [m["MessageId"] for m in msgs]
        check(ids == [self.bad_message], f"DLQ messages {ids}, want [{self.bad_message}]")
        check(
            msgs[0]["Body"] == json.dumps({"id": "q-bad"})
            and msgs[0]["MessageAttributes"]["org"]["StringValue"] == ORG,
            f"the DLQ message {msgs[0]}",
        )
        receives = int(msgs[0]["Attributes"].get("ApproximateReceiveCount", "0"))
        print(
            f"    in the DLQ {time.perf_counter() - self.bad_sent:.1f} s after sending "
            f"(ApproximateReceiveCount {receives})"
        )
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=triggers,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        check(
            attrs["ApproximateNumberOfMessages"] == "0"
            and attrs["ApproximateNumberOfMessagesNotVisible"] == "0",
            f"the triggers queue still holds messages: {attrs}",
        )
        reported = [
            e
            for e in self.log_lines("trigger-consumer", "trigger message left on the queue")
            if self.bad_message in e
        ]
        check(
            len(reported) == TRIGGERS_MAX_RECEIVES,
            f"trigger-consumer reported the bad message {len(reported)} times, "
            f"want {TRIGGERS_MAX_RECEIVES} (one per receive)",
        )

    def sqs_phase(self):
        stem = "order-queue"
        w = self.workflows[stem]
        queue_name = w["nodes"][0]["config"]["queue"]
        triggers = self.queue_urls[f"{PREFIX}-triggers"]

        def message_to_run():
            body = {"id": "q-1", "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 0}]}
            t0 = time.perf_counter()
            mid = self.sqs.send_message(
                QueueUrl=triggers,
                MessageBody=json.dumps(body),
                MessageAttributes={
                    "org": {"DataType": "String", "StringValue": ORG},
                    "queue": {"DataType": "String", "StringValue": queue_name},
                },
            )["MessageId"]

            def listed():
                got = self.api_ok(
                    "GET", "/v1/runs", token=self.editor, query=f"workflowId={w['id']}"
                )
                return got.get("items", got) if isinstance(got, dict) else got

            items = wait_for(
                "a run of order-queue in GET /v1/runs", listed, timeout=60, interval=0.3
            )
            check(len(items) == 1, f"{len(items)} runs listed, want 1: {items}")
            t_run = time.perf_counter()
            run, _ = self.poll_run(items[0]["id"])
            check(
                run["status"] == "SUCCEEDED",
                f"run {run['status']}: {run.get('error')} {run.get('cause')}",
            )
            check(run["input"].get("messageId") == mid, f"run input {run['input']} (message {mid})")
            check(run["input"].get("queue") == queue_name, f"run input {run['input']}")
            check(run["input"].get("body") == body, f"run input body {run['input'].get('body')}")
            emb = self.embedded(stem, run["input"])
            types = {n["id"]: n["type"] for n in w["nodes"]}
            diff = json_diff(normalise(run["output"], types), normalise(emb.get("output"), types))
            check(not diff, "cloud and embedded outputs differ:\n  " + "\n  ".join(diff[:12]))
            page = self.api_ok(
                "GET", "/v1/datasets/queued_orders/records", token=self.editor
            )
            check(
                [(r["key"], r["runId"]) for r in page["items"]] == [("q-1", run["executionArn"])],
                f"queued_orders records {page}",
            )
            self.latencies.append(
                (
                    "order-queue / SQS message",
                    {
                        "trigger": "sqs",
                        "start_ms": (t_run - t0) * 1000,
                        "end_s": time.perf_counter() - t0,
                    },
                )
            )

        self.run("sqs::publish_queue_workflow", lambda: self.publish(stem))
        self.run("sqs::message_starts_a_run_through_trigger_consumer", message_to_run)

    # --- 4. live status push ---------------------------------------------------------------

    def ws_event(self, route: str, connection_id: str, body=None, query=None) -> dict:
        now = int(time.time() * 1000)
        kind = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
        host = f"e2ews.execute-api.{REGION}.amazonaws.com"
        e = {
            "headers": {"Host": host},
            "requestContext": {
                "routeKey": route,
                "eventType": kind,
                "extendedRequestId": uuid.uuid4().hex[:12],
                "requestTime": datetime.now(timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "messageDirection": "IN",
                "stage": "live",
                "connectedAt": now,
                "requestTimeEpoch": now,
                "identity": {"sourceIp": "127.0.0.1", "userAgent": "cloud-e2e"},
                "requestId": uuid.uuid4().hex[:12],
                "domainName": host,
                "connectionId": connection_id,
                "apiId": "e2ews",
            },
            "isBase64Encoded": False,
        }
        if query:
            e["queryStringParameters"] = query
        if body is not None:
            e["body"] = json.dumps(body)
            e["requestContext"]["messageId"] = uuid.uuid4().hex[:12]
        return e

    def push_phase(self):
        stem = "customer-health"
        w = self.workflows[stem]
        scenario = json.loads((ROOT / "tests" / "data" / "runs" / f"{stem}.json").read_text())[
            "scenarios"
        ][0]
        live, replay = "e2e-live=", "e2e-replay="
        state = {}

        def connect():
            # As the builder signed in with Cognito: a live ticket from the api (the JWT
            # authorizer's claims of a Cognito ID token), then $connect with it.
            ticket = self.api_ok(
                "POST",
                "/v1/live/tickets",
                claims={"sub": "0a1b-cognito", "email": "ed@e2e.test", "custom:org": ORG,
                        "custom:role": "editor", "token_use": "id"},
            )
            check(ticket.get("expiresInSeconds") == 60, f"ticket {ticket}")
            r, _ = self.invoke(
                "ws-connect",
                self.ws_event("$connect", live, query={"token": ticket["token"]}),
                "$connect",
            )
            check(r.get("statusCode") == 200, f"ws-connect answered {r}")
            item = self.ddb.get_item(
                TableName=self.table, Key={"pk": {"S": f"CONN#{live}"}, "sk": {"S": "CONN"}}
            ).get("Item")
            check(item and item["org"]["S"] == ORG, f"connection item {item}")
            bad, _ = self.invoke(
                "ws-connect",
                self.ws_event("$connect", "e2e-bad=", query={"token": self.editor[:-4] + "AAAA"}),
                "$connect",
            )
            check(bad.get("statusCode") == 401, f"a bad token: ws-connect answered {bad}")

        def subscribe():
            self.invoke(
                "ws-message",
                self.ws_event(
                    "$default", live, body={"action": "subscribe", "topic": f"workflow:{w['id']}"}
                ),
                "subscribe",
            )
            frames = wait_for("the subscribed frame", lambda: self.posted(live), timeout=10)
            check(
                frames == [{"type": "subscribed", "topic": f"workflow:{w['id']}"}],
                f"frames {frames}",
            )

        def run_frames():
            self.upstream.answer(upstream_rules(self.examples[stem], scenario))
            t0 = time.perf_counter()
            run = self.api_ok(
                "POST", f"/v1/workflows/{w['id']}/runs", body={"input": scenario["input"]},
                token=self.editor,
            )
            run_id = state["run"] = run["id"]
            # No GET of the run: a WebSocket client only listens; the run's end is recorded by
            # run-events (EventBridge) and pushed by status-pusher (the stream's mapping).

            def finished():
                f = [x for x in self.posted(live) if x.get("runId") == run_id]
                return f if any(x["type"] == "run.finished" for x in f) else None

            frames = wait_for(f"run.finished of run {run_id} on connection {live}", finished,
                              timeout=RUN_TIMEOUT, interval=0.3)
            t_done = time.perf_counter()
            state["frames"] = frames
            kinds = [f["type"] for f in frames]
            print("    frames: " + ", ".join(
                f"{f['type']}{'(' + f['nodeId'] + ')' if f.get('nodeId') else ''}" for f in frames))
            print("    node items: " + ", ".join(
                f"{i['nodeId']['S']}@{i['step']['S']}={i['status']['S']}"
                for i in self.node_items(run_id)))
            check(kinds[0] == "run.started", f"first frame {kinds[0]}, want run.started")
            check(kinds[-1] == "run.finished", f"last frame {kinds[-1]}, want run.finished")
            check(frames[-1].get("status") == "SUCCEEDED", f"run.finished {frames[-1]}")
            check(all(f.get("topic") == f"workflow:{w['id']}" for f in frames), "frame topics")
            want = sorted(set(scenario["ran"]))
            started = [f["nodeId"] for f in frames if f["type"] == "node.started"]
            ended = [f["nodeId"] for f in frames if f["type"] in ("node.succeeded", "node.failed")]
            check(sorted(set(ended)) == want, f"nodes ended {sorted(set(ended))}, want {want}")
            for n in want:
                mine = [f["type"] for f in frames if f.get("nodeId") == n]
                check(
                    mine[0] == "node.started" and mine[-1] in ("node.succeeded", "node.failed")
                    and n in started,
                    f"node {n}: frames {mine} (want node.started first, its end last)",
                )
            # Each node's frames come in the order of its visit (event ids are times). Frames of
            # different nodes follow the execution log's delivery, which can be out of time
            # order (records of parallel branches; batches): clients apply each node's newest
            # news and replay from 0 on a reconnect (the builder does).
            for n in want:
                mine = [f["eventId"] for f in frames if f.get("nodeId") == n]
                check(mine == sorted(mine), f"node {n}: event ids out of order {mine}")
            check(
                frames[-1]["eventId"] >= max(f["eventId"] for f in frames),
                f"run.finished {frames[-1]['eventId']} is not the newest event",
            )
            self.latencies.append(
                (f"{stem} / pushed frames", {"trigger": "manual", "end_s": t_done - t0})
            )

        def replay_subscription():
            check("run" in state, "no run (the previous check failed)")
            r, _ = self.invoke(
                "ws-connect",
                self.ws_event("$connect", replay, query={"token": self.editor}),
                "$connect",
            )
            check(r.get("statusCode") == 200, f"ws-connect answered {r}")
            self.invoke(
                "ws-message",
                self.ws_event("$default", replay,
                              body={"action": "subscribe", "topic": f"run:{state['run']}",
                                    "after": 0}),
                "subscribe",
            )
            frames = wait_for("the replay", lambda: self.posted(replay), timeout=10)
            check(
                frames[0] == {"type": "subscribed", "topic": f"run:{state['run']}"},
                f"first frame {frames[0]}",
            )
            got = [(f["type"], f.get("nodeId")) for f in frames[1:]]
            live_frames = [(f["type"], f.get("nodeId")) for f in state["frames"]]
            check(
                sorted(got) == sorted(live_frames),
                f"the replay {got}\n  differs from the live frames {live_frames}",
            )
            ids = [f["eventId"] for f in frames[1:]]
            check(ids == sorted(ids), f"replayed event ids out of order: {ids}")

        def disconnect():
            r, _ = self.invoke("ws-disconnect", self.ws_event("$disconnect", replay), "$disconnect")
            check(r is None or r.get("statusCode", 200) == 200, f"ws-disconnect answered {r}")
            item = self.ddb.get_item(
                TableName=self.table, Key={"pk": {"S": f"CONN#{replay}"}, "sk": {"S": "CONN"}}
            ).get("Item")
            check(item is None, f"the connection is still recorded: {item}")

        self.run("push::ws_connect_records_the_connection", connect)
        self.run("push::ws_message_subscribes_to_the_workflow", subscribe)
        self.run("push::status_pusher_posts_the_runs_events_in_order", run_frames)
        self.run("push::subscribe_with_after_replays_the_run", replay_subscription)
        self.run("push::ws_disconnect_forgets_the_connection", disconnect)

    # --- all -------------------------------------------------------------------------------

    def all(self) -> int:
        began = time.perf_counter()

        def provision():
            for name, fn in (
                ("provision::tables_with_stream", self.provision_tables),
                ("provision::queues", self.provision_queues),
                ("provision::functions", self.provision_functions),
                ("provision::event_source_mappings_and_rules", self.provision_wiring),
            ):
                if not self.run(name, fn):
                    raise Failed(f"{name} failed")

        try:
            self.phase("1. provision", provision)
        except Failed:
            return self.summary(began)
        self.run("sqs::message_without_queue_attribute_sent", self.send_bad_trigger_message)
        self.phase("2. example workflows through the API, parity with the embedded engine",
                   self.examples_phase)
        self.phase("3. a queue trigger through SQS", self.sqs_phase)
        self.phase("4. live status: WebSocket functions and status-pusher", self.push_phase)

        def events():
            self.run(
                "eventbridge::states_status_change_events_have_aws_shape", self.states_events_shape
            )
            self.run(
                "eventbridge::run_events_invoked_by_the_rule",
                self.run_events_invoked_by_eventbridge,
            )
            self.run(
                "logs::run_events_invoked_by_the_subscription",
                self.run_events_invoked_by_the_log_subscription,
            )
            self.run("sqs::bad_message_ends_in_dlq", self.bad_message_in_dlq)

        self.phase("5. Step Functions events; the triggers DLQ", events)
        return self.summary(began)

    def summary(self, began: float) -> int:
        total = time.perf_counter() - began
        if self.latencies:
            print("\nper-run latency on LocalStack (from the trigger request):")
            print(
                f"    {'run':58} {'trigger':9} {'start':>8} {'ended':>7} {'nodes':>7} "
                f"{'execution':>9}"
            )
            for name, m in self.latencies:
                def s(k, fmt="{:.2f} s"):
                    return fmt.format(m[k]) if k in m else "-"
                print(f"    {name[:58]:58} {m['trigger']:9} {s('start_ms', '{:.0f} ms'):>8} "
                      f"{s('end_s'):>7} {s('nodes_s'):>7} {s('execution_s'):>9}")
            ends = [m["end_s"] for _, m in self.latencies if "end_s" in m]
            print(f"    end to end: median {statistics.median(ends):.2f} s, max {max(ends):.2f} s")
        if self.phases:
            print("phases: " + ", ".join(f"{n.split('.')[0]}. {s:.1f} s" for n, s in self.phases))
        passed = sum(1 for _, ok, _, _ in self.results if ok)
        failed = len(self.results) - passed
        if self.ignored:
            print("\nknown gaps (ignored):")
            for name, _ in self.ignored:
                print(f"    {name}")
        if failed:
            print("\nfailures:")
            for name, ok, _, _ in self.results:
                if not ok:
                    print(f"    {name}")
        status = "ok" if not failed else "FAILED"
        print(
            f"\ntest result: {status}. {passed} passed; {failed} failed; "
            f"{len(self.ignored)} ignored; 0 measured; 0 filtered out; finished in {total:.2f}s"
        )
        return 1 if failed else 0

    def close(self):
        self.upstream.stop()
        self.sink.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default=os.environ.get("localstack_endpoint"))
    parser.add_argument("--zips", default=str(ROOT / "target" / "cloud-e2e" / "zips"))
    parser.add_argument("--concertmaster", default=str(ROOT / "target" / "debug" / "concertmaster"))
    parser.add_argument("--work", default=str(ROOT / "target" / "cloud-e2e" / "work"))
    parser.add_argument("--examples", default=str(ROOT / "examples"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.endpoint:
        parser.error("no --endpoint and no $localstack_endpoint (run localstack_start first)")
    print(f"cloud end-to-end tier against {args.endpoint}")
    tier = Tier(args)
    try:
        return tier.all()
    finally:
        tier.close()


if __name__ == "__main__":
    sys.exit(main())
