"""LocalStack extension for running ConcertMaster without Docker.

Entry points (see pyproject.toml):

- ``localstack.aws.provider``: ``dynamodb:moto``, ``dynamodbstreams:moto``,
  ``apigatewayv2:moto``, ``apigatewaymanagementapi:moto`` -- every operation answered by moto in
  LocalStack's process (select with ``PROVIDER_OVERRIDE_<API>=moto``);
- ``localstack.lambda.runtime_executor``: ``local`` -- runs a ``provided.*`` zip's ``bootstrap``
  as a child process with a Lambda Runtime API of its own (``LAMBDA_RUNTIME_EXECUTOR=local``);
- ``localstack.hooks.on_infra_start``: ``use_jsonata_python`` -- Step Functions JSONata evaluated
  by jsonata-python instead of the JVM engine LocalStack would download;
  ``wake_hypercorn_loop_on_shutdown`` -- SIGTERM ends the process (patches.py says why it may not);
  ``aws_shaped_execution_status_events`` -- Step Functions' EventBridge events with AWS's epoch-ms
  dates; ``add_diagnostic_routes`` -- ``GET /_concertmaster/apigatewaymanagementapi/connections/<id>``:
  what PostToConnection posted (diagnostics.py); ``private_s3_storage`` -- S3 objects under the
  instance's own temporary directory; ``asynchronous_log_subscriptions`` -- CloudWatch Logs
  subscription filters invoke Lambda asynchronously with batches of records, as AWS does.
"""
