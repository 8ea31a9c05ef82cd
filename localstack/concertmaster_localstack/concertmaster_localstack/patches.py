"""Fixes to LocalStack itself that a docker-free run needs."""

import logging

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)


@hooks.on_infra_start()
def wake_hypercorn_loop_on_shutdown():
    """SIGTERM could leave LocalStack running for good (GATEWAY_SERVER=hypercorn).

    ``HypercornRuntimeServer.shutdown`` runs in a "Runtime-Shutdown" thread and ends with
    ``self.loop.stop()``: from a thread other than the loop's, that only sets a flag, and the main
    thread's event loop, by then idle in ``epoll_wait`` without a timer (the listeners are closed),
    never wakes to read it (a signal does not help: PEP 475 retries the wait). Seen here: after
    "[shutdown] Stopping all services" the process stayed up for minutes. Scheduling the stop with
    ``call_soon_threadsafe`` writes to the loop's self-pipe, so it returns and the process exits.
    """
    from localstack.runtime.server.hypercorn import HypercornRuntimeServer

    original = HypercornRuntimeServer.shutdown
    if getattr(original, "_concertmaster_patched", False):
        return

    def shutdown(self):
        original(self)
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # loop already closed
            pass

    shutdown._concertmaster_patched = True
    HypercornRuntimeServer.shutdown = shutdown


def _epoch_ms(value) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


@hooks.on_infra_start()
def aws_shaped_execution_status_events():
    """Step Functions' EventBridge events carry the dates as AWS sends them.

    ``Execution.publish_execution_status_change_event`` serialises a ``DescribeExecutionOutput``
    with LocalStack's JSON encoder, so ``startDate`` and ``stopDate`` arrive as ISO 8601 strings
    (``"2026-11-26T03:03:13.952411+00:00"``); AWS sends epoch milliseconds (numbers, ``stopDate``
    null while running), and consumers typed after AWS's events (ConcertMaster's run-events:
    ``stopDate: Option<i64>``) reject the event. It also names the version ARN as
    ``stateMachineArn`` of an execution started on a version or alias, and ``{}`` (an object) as
    the input of one started without input. This rebuilds the event's detail in AWS's shape
    (documented example: executionArn, stateMachineArn, name, status, startDate, stopDate, input,
    inputDetails, output, outputDetails, error, cause) plus ``stateMachineVersionArn`` /
    ``stateMachineAliasArn`` when the execution ran on a version or an alias, as DescribeExecution
    answers; the rest (source, detail-type, resources, delivery) is LocalStack's. Like stock
    LocalStack (and unlike AWS, which sends these events for Standard workflows only), Express
    executions emit them too.
    """
    import json

    from localstack.aws.api.events import PutEventsRequestEntry
    from localstack.aws.api.stepfunctions import ExecutionStatus
    from localstack.services.stepfunctions.backend.execution import Execution

    original = Execution.publish_execution_status_change_event
    if getattr(original, "_concertmaster_patched", False):
        return

    def publish_execution_status_change_event(self):
        succeeded = self.exec_status == ExecutionStatus.SUCCEEDED and self.output is not None
        detail = {
            "executionArn": self.exec_arn,
            "stateMachineArn": self.state_machine_arn,
            "name": self.name,
            "status": self.exec_status,
            "startDate": _epoch_ms(self.start_date),
            "stopDate": _epoch_ms(self.stop_date),
            "input": json.dumps(
                self.input_data if self.input_data is not None else {}, separators=(",", ":")
            ),
            "inputDetails": {"included": True},
            "output": json.dumps(self.output, separators=(",", ":")) if succeeded else None,
            "outputDetails": {"included": True} if succeeded else None,
            "error": self.error,
            "cause": self.cause,
        }
        if self.state_machine_version_arn is not None:
            detail["stateMachineVersionArn"] = self.state_machine_version_arn
        if self.state_machine_alias_arn is not None:
            detail["stateMachineAliasArn"] = self.state_machine_alias_arn
        entry = PutEventsRequestEntry(
            Source="aws.states",
            Resources=[self.exec_arn],
            DetailType="Step Functions Execution Status Change",
            Detail=json.dumps(detail),
        )
        try:
            self._get_events_client().put_events(Entries=[entry])
        except Exception:  # noqa: BLE001 -- as LocalStack: a failed notification is only logged
            LOG.error(
                "Unable to send the status change event of execution %s to EventBridge",
                self.exec_arn,
                exc_info=LOG.isEnabledFor(logging.DEBUG),
            )

    publish_execution_status_change_event._concertmaster_patched = True
    Execution.publish_execution_status_change_event = publish_execution_status_change_event


@hooks.on_infra_start()
def private_s3_storage():
    """S3 objects in this instance's own directory, not ``/tmp/localstack-s3-storage``.

    LocalStack's S3 provider keeps objects under a fixed path (``DEFAULT_S3_TMP_DIR``), whatever
    ``TMPDIR`` or ``FILESYSTEM_ROOT`` say: instances running side by side (scripts/lib/localstack.sh
    gives each its own) share the bucket directories -- every instance has the Lambda code bucket
    ``awslambda-<region>-tasks`` -- and one removing its buckets on shutdown removes the other's,
    and the directories outlive the instances. The provider reads the constant when it is created
    (lazily, after this hook): point it into the instance's temporary directory.
    """
    import os

    from localstack import config
    from localstack.services.s3 import provider

    provider.DEFAULT_S3_TMP_DIR = os.path.join(config.dirs.tmp, "s3-storage")


@hooks.on_infra_start()
def asynchronous_log_subscriptions():
    """CloudWatch Logs subscription filters deliver to Lambda asynchronously, in batches.

    LocalStack's ``put_log_events`` invokes a Lambda destination synchronously
    (``RequestResponse``), once per ``PutLogEvents`` call, inside the call. Step Functions logs
    every history event with its own ``PutLogEvents``, so with a subscription on the execution
    log group each state transition waited for a whole Lambda invocation (runs took ~30 s instead
    of ~2 s), and an invocation that calls back into Step Functions could stall the execution
    for good. AWS delivers subscription data outside the writer's call, batching records as
    they come in. This hands the records of Lambda destinations to one delivery thread, which
    sends what accumulated (per log group and filter, at most ``batch_size`` records, lingering
    at most ``linger_s`` for more) as one ``{"awslogs": {"data": base64(gzip(json))}}`` payload,
    one invocation at a time, in the order the records were put; records put during an
    invocation make the next batch. (AWS invokes the destination asynchronously, so two batches
    may run at once there; LocalStack's asynchronous invocations run concurrently too, which
    reordered a run's node statuses here, so this delivers serially: the end-to-end tier checks
    the order of pushed frames.) Other destinations (Kinesis, Firehose) stay LocalStack's.
    Filter patterns are matched as LocalStack does (community: every record matches).
    """
    import base64
    import gzip
    import itertools
    import json
    import queue
    import threading
    import time

    # Import first: LocalStack's own patches of moto's logs are applied on import, and this
    # one must wrap them.
    from localstack.aws.connect import connect_to
    from localstack.services.logs import provider as logs_provider
    from localstack.utils.aws import arns
    from localstack.utils.aws.client_types import ServicePrincipal
    from moto.logs.models import LogStream as MotoLogStream

    original = MotoLogStream.put_log_events
    if getattr(original, "_concertmaster_patched", False):
        return

    batch_size, linger_s = 500, 0.1
    pending: queue.Queue = queue.Queue()
    ids = itertools.count(1)
    lock = threading.Lock()

    def deliver(key, records):
        account, region, group, filter_name, destination = key
        data = {
            "messageType": "DATA_MESSAGE",
            "owner": account,
            "logGroup": group,
            "logStream": records[0][0],
            "subscriptionFilters": [filter_name],
            "logEvents": [
                {"id": str(next(ids)), "timestamp": ts, "message": msg}
                for _, ts, msg in records
            ],
        }
        payload = {
            "awslogs": {
                "data": base64.b64encode(
                    gzip.compress(json.dumps(data, separators=(",", ":")).encode())
                ).decode()
            }
        }
        arn = arns.parse_arn(destination)
        client = connect_to(
            aws_access_key_id=arn["account"], region_name=arn["region"]
        ).lambda_.request_metadata(
            source_arn=arns.log_group_arn(group, account, region),
            service_principal=ServicePrincipal.logs,
        )
        client.invoke(FunctionName=destination, Payload=json.dumps(payload))

    def run():
        while True:
            item = pending.get()
            batches: dict = {}
            deadline = None
            while item is not None:
                key, rec = item
                batches.setdefault(key, []).append(rec)
                if len(batches[key]) >= batch_size:
                    break
                deadline = deadline or time.monotonic() + linger_s
                try:
                    item = pending.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    item = None
            for key, records in batches.items():
                try:
                    deliver(key, records)
                except Exception:  # noqa: BLE001 -- as AWS: a failed delivery is dropped, logged
                    LOG.exception("delivering %d log records to %s failed", len(records), key[4])

    threading.Thread(target=run, name="concertmaster-log-subscriptions", daemon=True).start()

    def put_log_events(self, log_events):
        group = self.log_group
        with lock:
            mine = {
                n: f
                for n, f in group.subscription_filters.items()
                if f.destination_arn and ":lambda:" in f.destination_arn
            }
            if not mine:
                return original(self, log_events)
            # LocalStack's delivery sees only the other destinations.
            everything = group.subscription_filters
            group.subscription_filters = {n: f for n, f in everything.items() if n not in mine}
            try:
                token = original(self, log_events)
            finally:
                group.subscription_filters = everything
        for name, f in mine.items():
            if f.filter_pattern:
                matches = logs_provider.get_pattern_matcher(f.filter_pattern)
                events = [e for e in log_events if matches(f.filter_pattern, e)]
            else:
                events = log_events
            key = (self.account_id, self.region, group.name, name, f.destination_arn)
            for e in events:
                pending.put((key, (self.log_stream_name, e["timestamp"], e["message"])))
        return token

    put_log_events._concertmaster_patched = True
    MotoLogStream.put_log_events = put_log_events
