"""Step Functions JSONata evaluated by jsonata-python (pure Python) instead of the JVM.

LocalStack evaluates every JSONata expression of a state machine (``QueryLanguage: JSONata``:
Arguments, Output, Assign, Choice conditions, ``{% %}`` strings) through
``localstack.services.stepfunctions.asl.jsonata.jsonata.eval_jsonata_expression``, which on first
use installs a Java runtime plus the dashjoin jsonata-java library and starts a JVM (JPype):
offline, that download fails and so does every JSONata state. ``eval_jsonata_expression`` calls
the module-level function pointer ``_eval_jsonata``, set lazily; this hook sets it first, to an
evaluator with the same contract (the composed expression -- ``($states := {...}; ...; expr)`` --
evaluated without input, the result as plain JSON values, any failure a ``JSONataException``).
"""

import json
import logging

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)


def _compile(expression: str):
    # No cache: a Jsonata object keeps its evaluation environment and is not thread-safe, and
    # the expression LocalStack composes inlines the variables' values, so it rarely repeats.
    import jsonata

    return jsonata.Jsonata(expression)


def _to_json(value):
    # jsonata-python returns Python values (dicts, lists, numbers, str, bool, None); sequences
    # may be its own list subclass, and whole floats should read as ints as in the JVM engine.
    return json.loads(json.dumps(value, default=str))


def eval_jsonata(expression: str):
    from localstack.services.stepfunctions.asl.jsonata.jsonata import JSONataException

    try:
        result = _compile(expression).evaluate(None)
    except Exception as e:  # noqa: BLE001 -- every engine error is a JSONata failure
        raise JSONataException("UNKNOWN", str(e)) from e
    return _to_json(result)


@hooks.on_infra_start()
def use_jsonata_python():
    from localstack.services.stepfunctions.asl.jsonata import jsonata as ls_jsonata

    ls_jsonata._eval_jsonata = eval_jsonata
    LOG.debug("Step Functions JSONata: jsonata-python")
