#!/usr/bin/env python3
"""A local HTTP sink for `scripts/run`: answers every request 200 {"ok": true} and appends one
JSON line per request (method, path, headers, body) to the log file. Prints its port first.

    python3 scripts/sink.py LOGFILE        # binds 127.0.0.1 on a free port
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        with open(sys.argv[1], "a", encoding="utf-8") as log:
            log.write(json.dumps({"method": self.command, "path": self.path,
                                  "headers": dict(self.headers), "body": body}) + "\n")
        out = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
