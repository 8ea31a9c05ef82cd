#!/usr/bin/env python3
"""Runs the benchmark ASL definitions on moto's Step Functions and compares with the engine.

Used by scripts/bench-engine, which starts moto_server and runs the engine side first:
  bench_moto.py --endpoint http://127.0.0.1:PORT --definitions DIR --runs N --engine FILE

For every DIR/*.json ({"definition": ..., "input": ...}) it creates a Standard state machine on
moto, runs it N times one at a time (start_execution, then describe_execution until the
status is no longer RUNNING; polls 1 ms apart after an immediate first one), checks that moto's
outcome (status, output or error/cause) equals the engine's, and prints one table: latency per
execution (p50, p90), executions per second (N / total time, one at a time), and how many
times faster than moto the engine is (moto p50 / engine p50).
"""

import argparse
import glob
import json
import os
import statistics
import sys
import time
import uuid

import boto3


def pct(samples, p):
    """Nearest-rank percentile of a list of seconds."""
    s = sorted(samples)
    if not s:
        return 0.0
    rank = max(1, -(-p * len(s) // 100))
    return s[min(rank, len(s)) - 1]


def outcome(desc):
    """The engine's outcome shape from a DescribeExecution response."""
    out = desc.get("output")
    return {
        "status": desc["status"],
        "output": json.loads(out) if out is not None else None,
        "error": desc.get("error"),
        "cause": desc.get("cause"),
    }


def run_once(client, arn, payload):
    """Starts one execution and waits for its end; returns (seconds, describe response)."""
    began = time.perf_counter()
    ex = client.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input=payload)
    while True:
        desc = client.describe_execution(executionArn=ex["executionArn"])
        if desc["status"] != "RUNNING":
            return time.perf_counter() - began, desc
        time.sleep(0.001)


def same(a, b):
    """JSON equality where 1 == 1.0 (both sides may print numbers differently)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--definitions", required=True)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--engine", required=True, help="the bench binary's --compare output")
    args = ap.parse_args()

    engine = json.load(open(args.engine))
    client = boto3.client(
        "stepfunctions",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    rows = []
    checks = []
    # The floor of any moto call: one API round trip (boto3 -> HTTP on loopback -> moto).
    floor = client.create_state_machine(
        name=f"floor-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/bench",
    )["stateMachineArn"]
    trips = []
    for _ in range(max(20, args.runs)):
        began = time.perf_counter()
        client.describe_state_machine(stateMachineArn=floor)
        trips.append(time.perf_counter() - began)
    for path in sorted(glob.glob(os.path.join(args.definitions, "*.json"))):
        name = os.path.basename(path)[: -len(".json")]
        doc = json.load(open(path))
        payload = json.dumps(doc.get("input", {}))
        sm = client.create_state_machine(
            name=f"{name}-{uuid.uuid4().hex[:8]}",
            definition=json.dumps(doc["definition"]),
            roleArn="arn:aws:iam::123456789012:role/bench",
            type="STANDARD",
        )
        arn = sm["stateMachineArn"]
        _, desc = run_once(client, arn, payload)  # outcome check, and warm-up
        moto_outcome = outcome(desc)
        for _ in range(min(5, args.runs)):
            run_once(client, arn, payload)
        began = time.perf_counter()
        samples = [run_once(client, arn, payload)[0] for _ in range(args.runs)]
        total = time.perf_counter() - began
        moto = {
            "p50_us": pct(samples, 50) * 1e6,
            "p90_us": pct(samples, 90) * 1e6,
            "mean_us": statistics.mean(samples) * 1e6,
            "per_s": len(samples) / total,
            "runs": len(samples),
        }
        ours = engine.get(name)
        if ours is None:
            print(f"{name}: no engine figures in {args.engine}", file=sys.stderr)
            return 1
        equal = same(moto_outcome, ours["outcome"])
        checks.append((name, equal, moto_outcome, ours["outcome"]))
        rows.append((name, "moto (HTTP, Python)", moto, None))
        for store in ("memory", "sqlite"):
            rows.append((name, f"engine {store}", ours[store], moto["p50_us"] / ours[store]["p50_us"]))

    print()
    print("Same ASL, executions one at a time, start -> terminal status (latency per execution)")
    head = f"{'definition':<21} {'runner':<20} {'runs':>5} {'p50':>10} {'p90':>10} {'exec/s':>9} {'vs moto':>9}"
    print(head)
    print("-" * len(head))
    for name, runner, f, speedup in rows:
        vs = "1.0x" if speedup is None else f"{speedup:,.0f}x"
        print(
            f"{name:<21} {runner:<20} {f['runs']:>5} {ms(f['p50_us']):>10} {ms(f['p90_us']):>10}"
            f" {f['per_s']:>9,.0f} {vs:>9}"
        )
    print()
    print("Outputs (moto vs engine):")
    failed = 0
    for name, equal, m, e in checks:
        if equal:
            print(f"  {name:<21} equal ({m['status']})")
        else:
            failed += 1
            print(f"  {name:<21} DIFFERENT\n    moto:   {json.dumps(m)}\n    engine: {json.dumps(e)}")
    print()
    print(f"moto API round trip (describe_state_machine) p50: {ms(pct(trips, 50) * 1e6)}; an")
    print("execution on moto takes at least two (start_execution, describe_execution).")
    print("vs moto: moto p50 / engine p50. moto runs behind HTTP on loopback (boto3 client,")
    print("Python server, describe polled 1 ms apart); the engine runs in-process.")
    return 1 if failed else 0


def ms(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


if __name__ == "__main__":
    sys.exit(main())
