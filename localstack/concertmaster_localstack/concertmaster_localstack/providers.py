"""Providers whose every operation is answered by moto, in LocalStack's own process.

LocalStack's stock DynamoDB forwards to DynamoDB Local (a Java server it downloads with a JVM,
which fails offline), its DynamoDB Streams provider reads DynamoDB Local's streams, and this
edition has no API Gateway v2 at all. moto (``moto-ext``, installed by ``localstack-core[runtime]``)
implements all of them. A dispatch table that sends every operation of the service's spec to
``dispatch_to_moto`` hands moto the original HTTP request and returns moto's HTTP response as it
is (no parse and re-serialise). LocalStack's request handlers have already put the caller's
account into ``x-moto-account-id``, so moto keeps one backend per account and region as AWS does.

DynamoDB Streams: moto's DynamoDB backend appends a record to the table's stream shard on every
write of a table with a ``StreamSpecification``, and moto's DynamoDB Streams backend reads those
shards from the DynamoDB backend of the same account and region -- both live in this process,
so GetShardIterator/GetRecords see the writes (and so do LocalStack's Lambda event source
mappings, which poll through the same provider).

DynamoDB and DynamoDB Streams requests are served one at a time (``_DYNAMODB_LOCK``): moto's
writes are not atomic. What remains different from DynamoDB: an UpdateItem that creates an item
makes two stream records (an INSERT of the bare key, then an INSERT of the item with the update
applied), where DynamoDB makes one.
"""

import threading

from localstack.aws.skeleton import DispatchTable
from localstack.services.plugins import Service, aws_provider


class MotoProvider:
    """A provider object for ``Service.for_provider``: names the service and exposes moto's
    backends to LocalStack's state visitors (``/_localstack/state/reset``, persistence)."""

    def __init__(self, service: str, backend: str | None = None):
        self.service = service
        self.backend = backend or service

    def accept_state_visitor(self, visitor) -> None:
        import moto.backends

        visitor.visit(moto.backends.get_backend(self.backend))


# One lock for moto's DynamoDB and DynamoDB Streams: every request of either runs alone.
# DynamoDB applies a write atomically; moto does not. Its UpdateItem of a missing item first
# stores the bare key, then applies the update's actions one by one to the stored item, and its
# conditional writes check, then write: a request served meanwhile on another thread (LocalStack
# serves requests concurrently) reads half an update -- e.g. a node-execution item without the
# attributes the same UpdateItem sets -- or wins a race DynamoDB would refuse. Serialised, each
# request sees every other one whole. (moto's requests take about a millisecond.)
_DYNAMODB_LOCK = threading.RLock()
_SERIALISED = {"dynamodb", "dynamodbstreams"}


def moto_dispatch_table(provider: MotoProvider) -> DispatchTable:
    from localstack.aws.spec import load_service
    from localstack.services.moto import dispatch_to_moto

    def handler(context, _request):
        # Raises CommonServiceException for moto's RESTErrors (serialised by the skeleton) and
        # NotImplementedError where moto has no route (the skeleton answers 501).
        return dispatch_to_moto(context)

    def serialised(context, _request):
        with _DYNAMODB_LOCK:
            return dispatch_to_moto(context)

    chosen = serialised if provider.service in _SERIALISED else handler
    return {op: chosen for op in load_service(provider.service).operation_names}


def _service(api: str) -> Service:
    return Service.for_provider(MotoProvider(api), dispatch_table_factory=moto_dispatch_table)


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto():
    return _service("dynamodb")


@aws_provider(api="dynamodbstreams", name="moto")
def dynamodbstreams_moto():
    return _service("dynamodbstreams")


@aws_provider(api="apigatewayv2", name="moto")
def apigatewayv2_moto():
    return _service("apigatewayv2")


@aws_provider(api="apigatewaymanagementapi", name="moto")
def apigatewaymanagementapi_moto():
    return _service("apigatewaymanagementapi")
