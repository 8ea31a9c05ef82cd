"""Smoke test of a running docker-free LocalStack: proves the gaps our extension closes.

Run with the LocalStack venv's Python (it has boto3), against an instance started by
scripts/lib/localstack.sh:

    . scripts/lib/localstack.sh; localstack_venv; localstack_start target/x/localstack.log
    target/venvs/localstack/bin/python localstack/smoke.py [--endpoint URL] [node-runner.zip]
    localstack_stop

The endpoint defaults to $localstack_endpoint (exported by localstack_start); the zip to
target/lambda/node-runner.zip (scripts/measure-node-runner builds it: the `lambda_runtime` binary
as `bootstrap`), else target/lambda/node-runner/bootstrap.zip (scripts/build-lambdas --x86-64:
the executor runs the binary on this host, so it must be built for this host's architecture).
Each check is a test case; the output ends with cargo's summary line
(`test result: ok. N passed; M failed; ...`) and the exit status is 1 if any failed.

Checks: DynamoDB (a table with a stream; put, get, query, a failed condition, update) and its
stream's records through DynamoDB Streams; API Gateway v2 (a WebSocket API, a route) and the
management API; SQS; Lambda from the real node-runner zip (every fixture of
tests/data/node-runner: the exact answer, or FunctionError with the node error's errorType);
a DynamoDB Streams event source mapping delivering to it; Step Functions `lambda:invoke` tasks
(JSONPath, with Retry and Catch on the node error's name; JSONata).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import time
import traceback
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "node-runner"
REGION = "us-east-1"
ACCOUNT = "000000000000"  # LocalStack's account for the access key "test"


class Failed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def wait_for(what: str, probe, timeout: float = 30.0, interval: float = 0.05):
    """Polls probe() until it returns a truthy value; fails with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise Failed(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class Smoke:
    def __init__(self, endpoint: str, zip_path: Path):
        self.endpoint = endpoint
        self.zip_path = zip_path
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
        )
        cfg = Config(retries={"max_attempts": 1}, read_timeout=120, connect_timeout=5)
        self.client = lambda name: session.client(name, endpoint_url=endpoint, config=cfg)
        self.ddb = self.client("dynamodb")
        self.streams = self.client("dynamodbstreams")
        self.lam = self.client("lambda")
        self.sfn = self.client("stepfunctions")
        self.sqs = self.client("sqs")
        self.apigw = self.client("apigatewayv2")
        self.suffix = uuid.uuid4().hex[:8]
        self.table = f"cm-smoke-{self.suffix}"
        self.function = f"cm-node-runner-{self.suffix}"
        self.function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function}"
        self.stream_arn: str | None = None
        self.function_ready = False
        self.results: list[tuple[str, bool, str, float]] = []
        self.invoke_ms: list[float] = []

    # --- runner --------------------------------------------------------------------------

    def run(self, name: str, fn, *args) -> None:
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

    # --- DynamoDB and its stream ----------------------------------------------------------

    def dynamodb_table_with_stream(self):
        desc = self.ddb.create_table(
            TableName=self.table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        self.stream_arn = desc.get("LatestStreamArn")
        check(bool(self.stream_arn), f"CreateTable answered no LatestStreamArn: {desc}")
        wait_for(
            "the table to be ACTIVE",
            lambda: (
                self.ddb.describe_table(TableName=self.table)["Table"]["TableStatus"] == "ACTIVE"
            ),
        )

    def dynamodb_items(self):
        check(self.stream_arn is not None, "no table (the previous check failed)")
        for sk, n in (("a", 1), ("b", 2), ("c", 3)):
            self.ddb.put_item(
                TableName=self.table,
                Item={"pk": {"S": "run#1"}, "sk": {"S": sk}, "n": {"N": str(n)}},
            )
        got = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": "run#1"}, "sk": {"S": "b"}})
        check(got.get("Item", {}).get("n") == {"N": "2"}, f"GetItem answered {got.get('Item')}")
        q = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :p AND sk > :s",
            ExpressionAttributeValues={":p": {"S": "run#1"}, ":s": {"S": "a"}},
        )
        check([i["sk"]["S"] for i in q["Items"]] == ["b", "c"], f"Query answered {q['Items']}")
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={"pk": {"S": "run#1"}, "sk": {"S": "a"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            raise Failed("a conditional PutItem on an existing item succeeded")
        except self.ddb.exceptions.ConditionalCheckFailedException:
            pass
        self.ddb.update_item(
            TableName=self.table,
            Key={"pk": {"S": "run#1"}, "sk": {"S": "a"}},
            UpdateExpression="SET n = n + :one",
            ExpressionAttributeValues={":one": {"N": "10"}},
        )

    def dynamodb_stream_records(self):
        check(self.stream_arn is not None, "no table (the previous check failed)")
        streams = self.streams.list_streams(TableName=self.table)["Streams"]
        check(
            [s["StreamArn"] for s in streams] == [self.stream_arn],
            f"ListStreams answered {streams}",
        )
        desc = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        check(desc["StreamViewType"] == "NEW_AND_OLD_IMAGES", f"DescribeStream answered {desc}")
        records = []
        for shard in desc["Shards"]:
            iterator = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType="TRIM_HORIZON",
            )["ShardIterator"]
            for _ in range(10):
                page = self.streams.get_records(ShardIterator=iterator)
                records += page["Records"]
                iterator = page.get("NextShardIterator")
                if not page["Records"] or not iterator:
                    break
        seen = [(r["eventName"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in records]
        want = [("INSERT", "a"), ("INSERT", "b"), ("INSERT", "c"), ("MODIFY", "a")]
        check(seen == want, f"stream records {seen}, want {want}")
        modify = records[-1]["dynamodb"]
        check(
            modify.get("OldImage", {}).get("n") == {"N": "1"}
            and modify.get("NewImage", {}).get("n") == {"N": "11"},
            f"the MODIFY record's images: {modify}",
        )

    # --- API Gateway v2 (control plane; moto has no WebSocket data plane) ------------------

    def apigatewayv2_websocket_api(self):
        api = self.apigw.create_api(
            Name=f"cm-ws-{self.suffix}",
            ProtocolType="WEBSOCKET",
            RouteSelectionExpression="$request.body.action",
        )
        integration = self.apigw.create_integration(
            ApiId=api["ApiId"],
            IntegrationType="AWS_PROXY",
            IntegrationUri=self.function_arn,
        )
        for route in ("$connect", "$disconnect", "$default"):
            self.apigw.create_route(
                ApiId=api["ApiId"],
                RouteKey=route,
                Target=f"integrations/{integration['IntegrationId']}",
            )
        self.apigw.create_stage(ApiId=api["ApiId"], StageName="live")
        routes = sorted(r["RouteKey"] for r in self.apigw.get_routes(ApiId=api["ApiId"])["Items"])
        check(routes == ["$connect", "$default", "$disconnect"], f"GetRoutes answered {routes}")
        manage = self.client("apigatewaymanagementapi")
        manage.post_to_connection(ConnectionId="smoke", Data=b'{"type":"pong"}')

    # --- SQS -------------------------------------------------------------------------------

    def sqs_send_receive(self):
        url = self.sqs.create_queue(QueueName=f"cm-smoke-{self.suffix}")["QueueUrl"]
        check(url.endswith(f"/cm-smoke-{self.suffix}"), f"queue URL {url}")
        self.sqs.send_message(QueueUrl=url, MessageBody='{"run":"r1"}')
        got = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, MaxNumberOfMessages=1)
        bodies = [m["Body"] for m in got.get("Messages", [])]
        check(bodies == ['{"run":"r1"}'], f"ReceiveMessage answered {bodies}")
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=got["Messages"][0]["ReceiptHandle"])

    # --- Lambda ----------------------------------------------------------------------------

    def lambda_create_function(self):
        check(
            self.zip_path.is_file(), f"{self.zip_path} does not exist (scripts/measure-node-runner)"
        )
        secrets = {}
        for f in sorted(FIXTURES.glob("*.json")):
            for name, value in (json.loads(f.read_text()).get("secrets") or {}).items():
                secrets[f"CONCERTMASTER_SECRET_{name}"] = value
        self.lam.create_function(
            FunctionName=self.function,
            Runtime="provided.al2023",
            Handler="bootstrap",
            # the host's: the local executor runs the binary itself
            Architectures=["arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"],
            Role=f"arn:aws:iam::{ACCOUNT}:role/cm-node-runner",
            Code={"ZipFile": self.zip_path.read_bytes()},
            Timeout=30,
            MemorySize=512,
            Environment={"Variables": {"RUST_LOG": "info", **secrets}},
        )
        cfg = wait_for(
            "the function to leave Pending",
            lambda: (
                c
                if (c := self.lam.get_function_configuration(FunctionName=self.function))["State"]
                != "Pending"
                else None
            ),
        )
        check(
            cfg["State"] == "Active",
            f"function state {cfg['State']}: {cfg.get('StateReason')}",
        )
        self.function_ready = True

    def invoke(self, event) -> tuple[str | None, object, float]:
        check(self.function_ready, "no function (lambda_create_function failed)")
        began = time.perf_counter()
        r = self.lam.invoke(
            FunctionName=self.function,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        ms = (time.perf_counter() - began) * 1000
        raw = r["Payload"].read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        return r.get("FunctionError"), payload, ms

    def lambda_fixture(self, path: Path):
        fixture = json.loads(path.read_text())
        error, payload, ms = self.invoke(fixture["event"])
        self.invoke_ms.append(ms)
        expect = fixture["expect"]
        if "ok" in expect:
            check(error is None, f"FunctionError {error}: {payload}")
            check(
                payload == expect["ok"],
                f"answer differs\n  want: {expect['ok']}\n  got:  {payload}",
            )
        else:
            want = expect["error"]
            check(error == "Unhandled", f"FunctionError {error!r} (want Unhandled): {payload}")
            check(
                isinstance(payload, dict) and payload.get("errorType") == want["errorType"],
                f"errorType differs: want {want['errorType']}, got {payload}",
            )
            check(
                want.get("messageContains", "") in payload.get("errorMessage", ""),
                f"errorMessage {payload.get('errorMessage')!r} lacks {want['messageContains']!r}",
            )

    def lambda_warm_invoke_latency(self):
        event = json.loads((FIXTURES / "transform-merge-array.json").read_text())["event"]
        times = []
        for _ in range(20):
            error, _payload, ms = self.invoke(event)
            check(error is None, f"FunctionError {error}")
            times.append(ms)
        median = statistics.median(times)
        print(f"    warm RequestResponse invoke: median {median:.1f} ms, max {max(times):.1f} ms")
        check(median < 500, f"median invoke {median:.1f} ms (want < 500 ms)")

    def lambda_async_invoke(self):
        """InvocationType=Event goes through LocalStack's event manager to the same executor."""
        check(self.function_ready, "no function (lambda_create_function failed)")
        node_id = f"async-{self.suffix}"
        event = {
            "node": {"id": node_id, "type": "transform.merge"},
            "config": {"sources": [[1], [2]], "mode": "array"},
        }
        r = self.lam.invoke(
            FunctionName=self.function, InvocationType="Event", Payload=json.dumps(event).encode()
        )
        check(r["StatusCode"] == 202, f"StatusCode {r['StatusCode']} (want 202)")
        logs = self.client("logs")
        wait_for(
            f"node {node_id} in the function's log",
            lambda: logs.filter_log_events(
                logGroupName=f"/aws/lambda/{self.function}", filterPattern=f'"{node_id}"'
            )["events"],
            timeout=30,
            interval=0.2,
        )

    def lambda_log_tail(self):
        check(self.function_ready, "no function (lambda_create_function failed)")
        event = json.loads((FIXTURES / "transform-filter.json").read_text())["event"]
        r = self.lam.invoke(
            FunctionName=self.function, Payload=json.dumps(event).encode(), LogType="Tail"
        )
        tail = base64.b64decode(r.get("LogResult", "")).decode("utf-8", "replace")
        check('"node ran"' in tail and "REPORT RequestId" in tail, f"LogResult: {tail!r}")

    def lambda_dynamodb_stream_mapping(self):
        """LocalStack's event source mapping polls the table's stream through the moto-backed
        DynamoDB Streams provider and invokes the function with the records. The node-runner
        answers a stream batch with ConcertMaster.InvalidInput, which is enough to see it arrive:
        its log says so."""
        check(self.function_ready and self.stream_arn, "no function or table (earlier checks)")
        logs = self.client("logs")
        mapping = self.lam.create_event_source_mapping(
            FunctionName=self.function,
            EventSourceArn=self.stream_arn,
            StartingPosition="LATEST",
            BatchSize=10,
            MaximumRetryAttempts=0,
        )
        try:
            wait_for(
                "the mapping to be Enabled",
                lambda: (
                    self.lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled"
                ),
            )
            since = int(time.time() * 1000)

            def delivered():
                # write until a batch arrives (LATEST skips records from before the poller)
                self.ddb.put_item(
                    TableName=self.table,
                    Item={"pk": {"S": "esm"}, "sk": {"S": str(time.time())}},
                )
                events = logs.filter_log_events(
                    logGroupName=f"/aws/lambda/{self.function}", startTime=since
                )["events"]
                return [e for e in events if "ConcertMaster.InvalidInput" in e["message"]]

            wait_for("a stream batch in the function's log", delivered, timeout=60, interval=1)
        finally:
            self.lam.delete_event_source_mapping(UUID=mapping["UUID"])

    # --- Step Functions ----------------------------------------------------------------------

    def run_execution(self, definition: dict, event, name: str) -> dict:
        check(self.function_ready, "no function (lambda_create_function failed)")
        arn = self.sfn.create_state_machine(
            name=f"{name}-{self.suffix}",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/cm-state-machine",
        )["stateMachineArn"]
        execution = self.sfn.start_execution(stateMachineArn=arn, input=json.dumps(event))[
            "executionArn"
        ]
        return wait_for(
            "the execution to finish",
            lambda: (
                d
                if (d := self.sfn.describe_execution(executionArn=execution))["status"] != "RUNNING"
                else None
            ),
            timeout=60,
        )

    def task_events(self, execution_arn: str) -> list[str]:
        history = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
        return [e["type"] for e in history["events"] if e["type"].startswith("Task")]

    def jsonpath_definition(self) -> dict:
        return {
            "StartAt": "node",
            "States": {
                "node": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": self.function_arn, "Payload.$": "$"},
                    "ResultSelector": {"output.$": "$.Payload.output", "port.$": "$.Payload.port"},
                    "Retry": [
                        {
                            "ErrorEquals": ["ConcertMaster.ValidationFailed"],
                            "IntervalSeconds": 1,
                            "MaxAttempts": 1,
                            "BackoffRate": 1,
                        }
                    ],
                    "Catch": [
                        {
                            "ErrorEquals": ["ConcertMaster.ValidationFailed"],
                            "ResultPath": "$.error",
                            "Next": "caught",
                        }
                    ],
                    "End": True,
                },
                "caught": {
                    "Type": "Pass",
                    "Parameters": {"caught.$": "$.error.Error"},
                    "End": True,
                },
            },
        }

    def sfn_jsonpath_task(self):
        fixture = json.loads((FIXTURES / "transform-filter.json").read_text())
        d = self.run_execution(self.jsonpath_definition(), fixture["event"], "cm-smoke-ok")
        check(
            d["status"] == "SUCCEEDED",
            f"execution {d['status']}: {d.get('error')} {d.get('cause')}",
        )
        check(json.loads(d["output"]) == fixture["expect"]["ok"], f"output {d['output']}")

    def sfn_jsonpath_retry_catch(self):
        fixture = json.loads((FIXTURES / "transform-validate-fail.json").read_text())
        d = self.run_execution(self.jsonpath_definition(), fixture["event"], "cm-smoke-catch")
        check(
            d["status"] == "SUCCEEDED",
            f"execution {d['status']}: {d.get('error')} {d.get('cause')}",
        )
        check(
            json.loads(d["output"]) == {"caught": "ConcertMaster.ValidationFailed"},
            f"output {d['output']}",
        )
        tasks = self.task_events(d["executionArn"])
        check(
            tasks.count("TaskScheduled") == 2 and tasks.count("TaskFailed") == 2,
            f"want 2 attempts (Retry MaxAttempts 1) then Catch, history: {tasks}",
        )

    def sfn_sequential_tasks_latency(self):
        """Ten Task states in a row, each a lambda:invoke of the node-runner: the time per task
        (DescribeExecution's startDate to stopDate over ten)."""
        n = 10
        states = {}
        for i in range(n):
            states[f"t{i}"] = {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": self.function_arn,
                    "Payload": {
                        "node": {"id": f"t{i}", "type": "transform.merge"},
                        "config": {
                            "sources.$": "States.Array($.items, States.Array(" + str(i) + "))",
                            "mode": "array",
                        },
                    },
                },
                "ResultSelector": {"items.$": "$.Payload.output"},
                **({"Next": f"t{i + 1}"} if i + 1 < n else {"End": True}),
            }
        d = self.run_execution({"StartAt": "t0", "States": states}, {"items": []}, "cm-smoke-seq")
        check(
            d["status"] == "SUCCEEDED",
            f"execution {d['status']}: {d.get('error')} {d.get('cause')}",
        )
        check(json.loads(d["output"]) == {"items": list(range(n))}, f"output {d['output']}")
        per_task = (d["stopDate"] - d["startDate"]).total_seconds() * 1000 / n
        print(f"    Step Functions lambda:invoke task: {per_task:.1f} ms each (10 in a row)")
        check(per_task < 1000, f"{per_task:.0f} ms per task (want < 1000 ms)")

    def sfn_jsonata_task(self):
        definition = {
            "QueryLanguage": "JSONata",
            "StartAt": "node",
            "States": {
                "node": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Arguments": {
                        "FunctionName": self.function_arn,
                        "Payload": "{% $states.input %}",
                    },
                    "Assign": {"port": "{% $states.result.Payload.port %}"},
                    "Output": (
                        "{% {'names': $states.result.Payload.output.items.name,"
                        " 'count': $states.result.Payload.output.count} %}"
                    ),
                    "Catch": [
                        {
                            "ErrorEquals": ["ConcertMaster.UnknownNodeType"],
                            "Output": "{% {'caught': $states.errorOutput.Error} %}",
                            "Next": "done",
                        }
                    ],
                    "Next": "route",
                },
                "route": {
                    "Type": "Choice",
                    "Choices": [
                        {
                            "Condition": "{% $port = 'out' and $states.input.count > 1 %}",
                            "Next": "done",
                        }
                    ],
                    "Default": "unexpected",
                },
                "unexpected": {"Type": "Fail", "Error": "Smoke.UnexpectedPort"},
                "done": {"Type": "Pass", "End": True},
            },
        }
        fixture = json.loads((FIXTURES / "transform-filter.json").read_text())
        d = self.run_execution(definition, fixture["event"], "cm-smoke-jsonata")
        check(
            d["status"] == "SUCCEEDED",
            f"execution {d['status']}: {d.get('error')} {d.get('cause')}",
        )
        check(
            json.loads(d["output"]) == {"names": ["Ada", "Cy"], "count": 2}, f"output {d['output']}"
        )
        unknown = json.loads((FIXTURES / "unknown-node-type.json").read_text())
        d = self.run_execution(definition, unknown["event"], "cm-smoke-jsonata-catch")
        check(
            d["status"] == "SUCCEEDED",
            f"execution {d['status']}: {d.get('error')} {d.get('cause')}",
        )
        check(
            json.loads(d["output"]) == {"caught": "ConcertMaster.UnknownNodeType"},
            f"output {d['output']}",
        )

    # --- all -----------------------------------------------------------------------------

    def all(self) -> int:
        self.run("dynamodb_table_with_stream", self.dynamodb_table_with_stream)
        self.run("dynamodb_put_get_query_update", self.dynamodb_items)
        self.run("dynamodbstreams_records", self.dynamodb_stream_records)
        self.run("sqs_send_receive", self.sqs_send_receive)
        self.run("lambda_create_function_from_zip", self.lambda_create_function)
        self.run("apigatewayv2_websocket_api", self.apigatewayv2_websocket_api)
        for path in sorted(FIXTURES.glob("*.json")):
            self.run(f"lambda_invoke_fixture::{path.stem}", self.lambda_fixture, path)
        self.run("lambda_warm_invoke_latency", self.lambda_warm_invoke_latency)
        self.run("lambda_log_tail", self.lambda_log_tail)
        self.run("lambda_async_invoke", self.lambda_async_invoke)
        self.run("stepfunctions_jsonpath_lambda_invoke", self.sfn_jsonpath_task)
        self.run("stepfunctions_jsonpath_retry_catch_node_error", self.sfn_jsonpath_retry_catch)
        self.run(
            "stepfunctions_jsonpath_sequential_tasks_latency", self.sfn_sequential_tasks_latency
        )
        self.run("stepfunctions_jsonata_lambda_invoke", self.sfn_jsonata_task)
        self.run("lambda_dynamodb_stream_event_source_mapping", self.lambda_dynamodb_stream_mapping)
        passed = sum(1 for _, ok, _, _ in self.results if ok)
        failed = len(self.results) - passed
        if failed:
            print("\nfailures:")
            for name, ok, _, _ in self.results:
                if not ok:
                    print(f"    {name}")
        status = "ok" if not failed else "FAILED"
        print(
            f"\ntest result: {status}. {passed} passed; {failed} failed; 0 ignored; 0 measured; "
            f"0 filtered out"
        )
        return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_zip = ROOT / "target" / "lambda" / "node-runner.zip"  # scripts/measure-node-runner
    if not default_zip.exists():  # scripts/build-lambdas --x86-64
        default_zip = ROOT / "target" / "lambda" / "node-runner" / "bootstrap.zip"
    parser.add_argument("zip", nargs="?", default=str(default_zip))
    parser.add_argument("--endpoint", default=os.environ.get("localstack_endpoint"))
    args = parser.parse_args()
    if not args.endpoint:
        parser.error("no --endpoint and no $localstack_endpoint (run localstack_start first)")
    print(f"running LocalStack smoke checks against {args.endpoint}")
    return Smoke(args.endpoint, Path(args.zip)).all()


if __name__ == "__main__":
    sys.exit(main())
