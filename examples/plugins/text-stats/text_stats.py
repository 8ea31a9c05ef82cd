#!/usr/bin/env python3
"""ConcertMaster example plugin `example.text_stats`: word and character counts of a text.

One file, Python 3 standard library only, two ways to run:

* AWS Lambda (cloud): handler `text_stats.handler`. The compiled state machine invokes the
  function with the node event and reads `{"output": ..., "port": ...}` back. A failure is an
  exception: Lambda reports the exception class's `__name__` as the error type, which is what
  the workflow's Retry/Catch match.
* Local HTTP executor (embedded engine): `python3 text_stats.py --port 9100` serves
  `POST /run` with the same event and answers 200 `{"output", "port"}`, or an error status with
  `{"error": <same name as in Lambda>, "cause": <message>}`. It prints
  `listening on http://HOST:PORT/run` once it accepts connections (`--port 0` picks a free port).

Config: `text` (string; a template evaluated before the plugin runs) and `top` (how many of the
most frequent words to list, 0-100, default 3). Output, on port `out`, or on port `empty` when
the text is blank; for `{"text": "The hat, the end", "top": 1}`:
`{"words": 4, "characters": 16, "distinctWords": 3, "topWords": [{"word": "the", "count": 2}]}`
(`characters` counts Unicode code points; words are lowercased runs of letters and digits).
"""

import argparse
import collections
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def error_type(name):
    """An exception class whose `__name__` is `name`.

    Lambda's Python runtime reports `type(exc).__name__` as the errorType, so a class built
    this way can carry a dotted name such as `ConcertMaster.InvalidConfig`, the name the
    built-in nodes use (a plain `class InvalidConfig(Exception)` works too; Retry/Catch then
    match `InvalidConfig`).
    """
    return type(name, (Exception,), {})


# The config is not what the node accepts (not retried by the default policies).
InvalidConfig = error_type("ConcertMaster.InvalidConfig")

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
MAX_TOP = 100


def text_stats(config):
    """The node's work: `config` -> (output, port). Raises InvalidConfig."""
    if not isinstance(config, dict):
        raise InvalidConfig("config must be an object with `text`")
    text = config.get("text")
    if not isinstance(text, str):
        raise InvalidConfig(
            "config.text must be a string, got %s" % type(text).__name__
        )
    top = config.get("top", 3)
    # bool is an int in Python: refuse it explicitly.
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP:
        raise InvalidConfig("config.top must be an integer from 0 to %d" % MAX_TOP)
    words = [w.lower() for w in WORD.findall(text)]
    counts = collections.Counter(words)
    # most_common keeps first-seen order among equal counts, so the answer is stable.
    output = {
        "words": len(words),
        "characters": len(text),
        "distinctWords": len(counts),
        "topWords": [{"word": w, "count": n} for w, n in counts.most_common(top)],
    }
    return output, ("empty" if not text.strip() else "out")


def handler(event, context):
    """AWS Lambda entry point: the node event in, `{"output", "port"}` out."""
    if not isinstance(event, dict):
        raise InvalidConfig("the event must be a ConcertMaster node event object")
    output, port = text_stats(event.get("config"))
    return {"output": output, "port": port}


class _Executor(BaseHTTPRequestHandler):
    """The local executor contract: POST /run with the node event."""

    server_version = "text-stats/1"

    def do_POST(self):  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] != "/run":
            # No error body: a wrong executor URL is ConcertMaster.Http.4xx, not a node error.
            return self.send_error(404, "the executor is at POST /run")
        try:
            length = int(self.headers.get("Content-Length") or 0)
            event = json.loads(self.rfile.read(length) or b"null")
        except ValueError as exc:
            return self._answer(
                400, {"error": "ConcertMaster.InvalidInput", "cause": "bad event: %s" % exc}
            )
        try:
            answer = handler(event, None)
        except InvalidConfig as exc:
            return self._answer(422, _error_body(exc))
        except Exception as exc:  # a bug: the same name Lambda would report
            return self._answer(500, _error_body(exc))
        self._answer(200, answer)

    def _answer(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("text-stats: %s\n" % (fmt % args))


def _error_body(exc):
    return {"error": type(exc).__name__, "cause": str(exc)}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the text-stats plugin's HTTP executor.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9100, help="port (0: any free port)")
    parser.add_argument("--quiet", action="store_true", help="do not log requests on stderr")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), _Executor)
    server.quiet = args.quiet
    host, port = server.server_address[:2]
    print("listening on http://%s:%d/run" % (host, port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
