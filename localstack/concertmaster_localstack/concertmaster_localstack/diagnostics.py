"""Read-only routes that let tests observe what emulated services keep but AWS's APIs do not show.

``GET /_concertmaster/apigatewaymanagementapi/connections/<connection-id>[?account=&region=]``:
what ``PostToConnection`` posted to a WebSocket connection of the moto-backed management API.
moto appends every post's bytes to the connection (``Connection.data``) and has no data plane
that would deliver them; its ``GetConnection`` answers only dates and identity. The answer is
``{"connectionId", "posts": <bytes posted so far, base64>}``, or 404 for a connection nothing
was posted to (nor read with ``GetConnection``). The id is looked up as given and percent-encoded
(moto keeps the id as the request path had it). Posts follow each other without a separator:
ConcertMaster's frames are JSON objects, so a reader splits them with a streaming JSON decoder.
Account and region default to LocalStack's ``000000000000`` and ``us-east-1``.
"""

import base64
import logging
import urllib.parse

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)

ROUTE = "/_concertmaster/apigatewaymanagementapi/connections/<connection_id>"


def posted_to_connection(request, connection_id: str):
    from localstack.http import Response
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    account = request.args.get("account", "000000000000")
    region = request.args.get("region", "us-east-1")
    connections = apigatewaymanagementapi_backends[account][region].connections
    # .get: the backend's connections are a defaultdict, and reading must not create one. moto
    # keys a connection by its id as it appeared in the request path, not decoded: a client that
    # percent-encodes the id (the AWS SDK for Rust does, e.g. `=` of API Gateway's ids as `%3D`)
    # posts under the encoded form.
    connection = connections.get(connection_id)
    if connection is None:
        connection = connections.get(urllib.parse.quote(connection_id, safe="-_.~"))
    if connection is None:
        return Response.for_json(
            {"message": f"nothing was posted to connection {connection_id} ({account}, {region})"},
            status=404,
        )
    return Response.for_json(
        {"connectionId": connection_id, "posts": base64.b64encode(connection.data).decode()}
    )


@hooks.on_infra_start()
def add_diagnostic_routes():
    from localstack.services.edge import ROUTER

    ROUTER.add(ROUTE, endpoint=posted_to_connection, methods=["GET"])
