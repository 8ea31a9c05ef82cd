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
"""

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


def moto_dispatch_table(provider: MotoProvider) -> DispatchTable:
    from localstack.aws.spec import load_service
    from localstack.services.moto import dispatch_to_moto

    def handler(context, _request):
        # Raises CommonServiceException for moto's RESTErrors (serialised by the skeleton) and
        # NotImplementedError where moto has no route (the skeleton answers 501).
        return dispatch_to_moto(context)

    return {op: handler for op in load_service(provider.service).operation_names}


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
