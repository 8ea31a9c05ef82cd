"""A Lambda runtime executor that runs ``provided.*`` functions as local child processes.

LocalStack's only executor (``docker``) starts a container per execution environment and copies
its Go init (a fork of the AWS Runtime Interface Emulator) into it. That init serves the Lambda
Runtime API to the function's ``bootstrap``, takes invocations from LocalStack on ``POST /invoke``
and posts results back to LocalStack's executor endpoint (``/_localstack_lambda/<id>/...``).

This executor does the init's part in LocalStack's process instead, without Docker:

- ``prepare_version`` unzips the code (LocalStack's own ``prepare_for_execution``) and checks that
  it is a zip for an OS-only runtime with an executable ``bootstrap``;
- ``start`` serves the Runtime API (``/2018-06-01/runtime/...``) on a free 127.0.0.1 port in a
  thread, spawns ``bootstrap`` with the Lambda environment LocalStack computed (function name,
  memory, version, log group/stream, ``_HANDLER``, the function's variables, ``AWS_REGION``,
  credentials, ``AWS_ENDPOINT_URL`` = this LocalStack) plus ``AWS_LAMBDA_RUNTIME_API``, and waits
  until the runtime asks for its first invocation (``GET .../invocation/next``) -- Lambda's "init
  done" -- or reports an init error, or exits;
- ``invoke`` hands the event to the waiting ``next`` (with the request id, deadline, function ARN
  and trace headers) and waits for ``.../response`` or ``.../error``. An error keeps its body
  (``{"errorType", "errorMessage", ...}``, what Step Functions reads for Retry/Catch); a body
  without ``errorType`` gets the ``Lambda-Runtime-Function-Error-Type`` header's value. A runtime
  that exits during an invocation is ``Runtime.ExitError``; one that overruns the function's
  timeout is killed and the invocation is ``Sandbox.Timedout`` (as on AWS); the next invocation
  starts a fresh process.

The function's stdout/stderr go to LocalStack's log (logger ``concertmaster_localstack.lambda``,
prefixed with the function name) and, per invocation, into the result's logs (CloudWatch Logs and
``LogType=Tail``), framed by START/END/REPORT lines.
"""

from __future__ import annotations

import array
import fcntl
import json
import logging
import os
import platform
import queue
import signal
import subprocess
import termios
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from plux import Plugin

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

LOG = logging.getLogger(__name__)
FUNCTION_LOG = logging.getLogger("concertmaster_localstack.lambda")

RUNTIME_API_PREFIX = "/2018-06-01/runtime"
# Lines of function output kept per environment for get_logs (startup failures, debugging).
KEPT_LOG_LINES = 2000
# How long an invocation waits for the runtime's output written before its response.
OUTPUT_DRAIN_S = 0.2


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class _Invocation:
    def __init__(self, payload: dict):
        self.request_id: str = payload["invoke-id"]
        self.function_arn: str = payload.get("invoked-function-arn") or ""
        self.trace_id: str = payload.get("trace-id") or ""
        self.body: bytes = (payload.get("payload") or "").encode()
        self.client_context: str | None = payload.get("client-context")
        self.deadline_ms = 0
        self.started = 0.0
        self.result: Future[InvocationResult] = Future()
        self.logs: list[str] = []


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: lambda_runtime reuses its connection
    disable_nagle_algorithm = True
    server: _RuntimeApiServer

    def log_message(self, format, *args):  # noqa: A002 -- the base class's signature
        LOG.debug("runtime api %s: " + format, self.server.runtime.executor.id, *args)

    def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        # One write for head and body: two small writes meet delayed ACKs and cost ~40 ms.
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}")
        if "Content-Type" not in (headers or {}):
            head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(body)}")
        head.append(f"Date: {self.date_time_string()}")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.wfile.flush()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers up to the empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return b""

    def do_GET(self):
        runtime = self.server.runtime
        if self.path == f"{RUNTIME_API_PREFIX}/invocation/next":
            invocation = runtime.next_invocation()
            if invocation is None:  # shutting down
                self._reply(410, b'{"errorType":"Runtime.Shutdown"}')
                self.close_connection = True
                return
            headers = {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            }
            if invocation.client_context:
                headers["Lambda-Runtime-Client-Context"] = invocation.client_context
            self._reply(200, invocation.body, headers)
            return
        self._reply(404, _error_payload("NotFound", f"no route for GET {self.path}"))

    def do_POST(self):
        runtime = self.server.runtime
        executor = runtime.executor
        body = self._read_body()
        path = self.path
        if path == f"{RUNTIME_API_PREFIX}/init/error":
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or ""
            executor._init_error(runtime, _with_error_type(body, error_type or "Runtime.Unknown"))
            self._reply(202, b'{"status":"OK"}')
            return
        prefix = f"{RUNTIME_API_PREFIX}/invocation/"
        if path.startswith(prefix):
            request_id, _, kind = path[len(prefix) :].partition("/")
            if kind in ("response", "error"):
                error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or ""
                if kind == "error":
                    body = _with_error_type(body, error_type or "Unhandled")
                if executor._complete(request_id, body, is_error=kind == "error"):
                    self._reply(202, b'{"status":"OK"}')
                else:
                    self._reply(
                        400,
                        _error_payload(
                            "InvalidRequestID", f"no invocation {request_id} is in progress"
                        ),
                    )
                return
        self._reply(404, _error_payload("NotFound", f"no route for POST {path}"))


def _with_error_type(body: bytes, error_type: str) -> bytes:
    """The error body as the caller sees it: the runtime's JSON, with ``errorType`` filled in
    from the header where the runtime left it out; a non-JSON body becomes the message."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        if not parsed.get("errorType"):
            parsed["errorType"] = error_type
            return json.dumps(parsed).encode()
        return body
    return _error_payload(error_type, body.decode("utf-8", "replace"))


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, runtime: _Runtime):
        self.runtime = runtime
        super().__init__(("127.0.0.1", 0), _RuntimeApiHandler)


class _Runtime:
    """One ``bootstrap`` process with its own Runtime API server and invocation queue. A process
    that exits or is killed (timeout) is replaced by a new _Runtime, so a stale ``next`` of the
    old one never takes an invocation meant for its successor."""

    def __init__(self, executor: LocalProcessRuntimeExecutor):
        self.executor = executor
        self.queue: queue.Queue[_Invocation | None] = queue.Queue()
        self.ready = threading.Event()
        self.init_failure: bytes | None = None
        self.process: subprocess.Popen | None = None
        self.server = _RuntimeApiServer(self)
        threading.Thread(
            target=self.server.serve_forever,
            name=f"lambda-runtime-api-{executor.id}",
            daemon=True,
        ).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def spawn(self, env: dict[str, str]) -> None:
        code_dir = Path(env["LAMBDA_TASK_ROOT"])
        env = {**env, "AWS_LAMBDA_RUNTIME_API": self.address}
        try:
            self.process = subprocess.Popen(
                [str(code_dir / "bootstrap")],
                cwd=code_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # A group of its own, so that a timeout ends what it started as well. If
                # LocalStack dies without stopping it, its Runtime API connection breaks and a
                # runtime client exits.
                process_group=0,
            )
        except OSError as e:
            self.fail_init(
                _error_payload(
                    "Runtime.InvalidEntrypoint", f"cannot run {code_dir / 'bootstrap'}: {e}"
                )
            )
            return
        LOG.debug("started bootstrap pid %s for environment %s", self.process.pid, self.executor.id)
        threading.Thread(
            target=self.executor._pump_output,
            args=(self,),
            name=f"lambda-output-{self.executor.id}",
            daemon=True,
        ).start()

    def fail_init(self, payload: bytes) -> None:
        if not self.ready.is_set():
            self.init_failure = payload
            self.ready.set()

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def next_invocation(self) -> _Invocation | None:
        self.ready.set()
        while True:
            invocation = self.queue.get()
            if invocation is None:  # shutting down
                self.queue.put(None)  # for any other waiter
                return None
            if invocation.result.done():  # timed out before the runtime took it
                continue
            invocation.started = time.perf_counter()
            return invocation

    def shutdown(self) -> None:
        """Ends the process (and its process group) now; the server in the background, as
        ``serve_forever`` notices a shutdown only at its next poll (0.5 s)."""
        self.queue.put(None)
        process = self.process
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        if process is not None:
            _signal_group(process, signal.SIGKILL)  # whatever it left behind

        def close(server=self.server):
            server.shutdown()
            server.server_close()

        threading.Thread(target=close, name="lambda-runtime-api-close", daemon=True).start()


_ELF_MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}
_HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def _elf_arch(path: Path) -> str | None:
    """The architecture of an ELF executable (None for scripts and unknown machines)."""
    with path.open("rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(head[18:20], "big" if head[5] == 2 else "little")
    return _ELF_MACHINES.get(machine)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class LocalProcessRuntimeExecutor(RuntimeExecutor):
    """One execution environment = one ``bootstrap`` process at a time (see _Runtime)."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self._lock = threading.RLock()
        self._env: dict[str, str] = {}
        self._runtime: _Runtime | None = None
        self._current: _Invocation | None = None
        self._stopped = False
        self._all_logs: deque[str] = deque(maxlen=KEPT_LOG_LINES)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, env_vars: dict[str, str]) -> None:
        code_dir = self._code_dir()
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8"}
        env.update({k: str(v) for k, v in env_vars.items() if v is not None})
        env["LAMBDA_TASK_ROOT"] = str(code_dir)
        env["LAMBDA_RUNTIME_DIR"] = str(code_dir)
        env.setdefault("TMPDIR", os.environ.get("TMPDIR", "/tmp"))
        self._env = env
        runtime = self._new_runtime()
        timeout = config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT
        if not runtime.ready.wait(timeout):
            raise LambdaRuntimeException(
                f"the runtime of {self.function_version.id.function_name} did not ask for an "
                f"invocation within {timeout} s"
            )
        if runtime.init_failure is not None:
            raise StatusErrorException("Environment startup failed", payload=runtime.init_failure)

    def _new_runtime(self) -> _Runtime:
        with self._lock:
            old, self._runtime = self._runtime, _Runtime(self)
            runtime = self._runtime
        if old is not None:
            old.shutdown()
        runtime.spawn(self._env)
        return runtime

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            current, self._current = self._current, None
            runtime, self._runtime = self._runtime, None
        if current and not current.result.done():
            current.result.set_result(
                InvocationResult(
                    current.request_id,
                    _error_payload("Runtime.Stopped", "the execution environment was stopped"),
                    is_error=True,
                    logs=None,
                )
            )
        if runtime is not None:
            runtime.shutdown()

    # --- output ----------------------------------------------------------------------------

    def _pump_output(self, runtime: _Runtime) -> None:
        name = self.function_version.id.function_name
        process = runtime.process
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._all_logs.append(line)
            current = self._current
            if current is not None:
                current.logs.append(line)
            FUNCTION_LOG.info("[%s] %s", name, line)
        code = process.wait()
        status = f"signal {-code}" if code < 0 else f"exit status {code}"
        runtime.fail_init(
            _error_payload("Runtime.ExitError", f"Runtime exited with error: {status}")
        )
        with self._lock:
            if runtime is not self._runtime:
                return  # replaced or stopped: expected
            current = self._current
        LOG.info("runtime of %s (environment %s) exited: %s", name, self.id, status)
        if current is not None:
            self._finish(
                current,
                _error_payload(
                    "Runtime.ExitError",
                    f"RequestId: {current.request_id} Error: Runtime exited with error: {status}",
                ),
                is_error=True,
            )

    @staticmethod
    def _drain_output(runtime: _Runtime) -> None:
        """Waits (at most OUTPUT_DRAIN_S) until the output pump has read what the runtime wrote.

        A runtime writes its last log lines (e.g. "message left on the queue") before it posts the
        response, but the pump thread may read them only after the response has arrived; the
        invocation would then end without them (they would reach LocalStack's log but not the
        invocation's CloudWatch Logs or ``LogType=Tail``). As on AWS, what was written before the
        response belongs to the invocation: wait until the pipe is empty, then give the pump a
        moment for lines it has read but not yet attributed.
        """
        process = runtime.process
        if process is None or process.stdout is None:
            return
        deadline = time.monotonic() + OUTPUT_DRAIN_S
        pending = array.array("i", [0])
        try:
            fd = process.stdout.fileno()
            while time.monotonic() < deadline:
                fcntl.ioctl(fd, termios.FIONREAD, pending, True)
                if pending[0] == 0:
                    break
                time.sleep(0.001)
        except (OSError, ValueError):  # closed: the runtime exited
            return
        time.sleep(0.003)

    # --- Runtime API callbacks (server threads) ---------------------------------------------

    def _init_error(self, runtime: _Runtime, body: bytes) -> None:
        LOG.warning(
            "runtime of %s reported an init error: %s",
            self.function_version.id.function_name,
            body.decode("utf-8", "replace"),
        )
        runtime.fail_init(body)
        with self._lock:
            current = self._current if runtime is self._runtime else None
        if current is not None:  # an init error of a runtime restarted for this invocation
            self._finish(current, body, is_error=True)

    def _complete(self, request_id: str, body: bytes, is_error: bool) -> bool:
        with self._lock:
            current = self._current
        if current is None or current.request_id != request_id:
            return False
        return self._finish(current, body, is_error)

    @staticmethod
    def _finish(invocation: _Invocation, body: bytes, is_error: bool) -> bool:
        try:
            invocation.result.set_result(
                InvocationResult(invocation.request_id, body, is_error=is_error, logs=None)
            )
            return True
        except Exception:  # already answered (timeout, exit)
            return False

    # --- invocations -----------------------------------------------------------------------

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        invocation = _Invocation(payload)
        timeout_s = float(self.function_version.config.timeout or 3)
        invocation.deadline_ms = int((time.time() + timeout_s) * 1000)
        version = self.function_version.id.qualifier
        invocation.logs.append(f"START RequestId: {invocation.request_id} Version: {version}")
        with self._lock:
            if self._stopped:
                raise LambdaRuntimeException(f"execution environment {self.id} is stopped")
            self._current = invocation
            runtime = self._runtime
        if runtime is None or not runtime.is_alive() or runtime.init_failure is not None:
            # the previous invocation timed out or the runtime exited: a fresh process
            runtime = self._new_runtime()
        runtime.queue.put(invocation)
        if runtime.ready.is_set() and runtime.init_failure is not None:
            self._finish(invocation, runtime.init_failure, is_error=True)  # could not even start
        begun = time.perf_counter()
        try:
            result = invocation.result.result(timeout=timeout_s)
        except FutureTimeout:
            message = (
                f"RequestId: {invocation.request_id} Error: Task timed out after "
                f"{timeout_s:.2f} seconds"
            )
            if self._finish(invocation, _error_payload("Sandbox.Timedout", message), True):
                invocation.logs.append(message)
                with self._lock:
                    if self._runtime is runtime:
                        self._runtime = None  # the next invocation starts a fresh process
                runtime.shutdown()
            result = invocation.result.result()
        finally:
            duration_ms = (time.perf_counter() - begun) * 1000
            self._drain_output(runtime)
            with self._lock:
                if self._current is invocation:
                    self._current = None
        memory = self.function_version.config.memory_size
        invocation.logs.append(f"END RequestId: {invocation.request_id}")
        invocation.logs.append(
            f"REPORT RequestId: {invocation.request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, round(duration_ms))} ms\tMemory Size: {memory} MB"
        )
        result.logs = "\n".join(invocation.logs) + "\n"
        return result

    def get_logs(self) -> str:
        return "\n".join(self._all_logs)

    # --- addresses (the function reaches LocalStack on loopback) ----------------------------

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        # Only LocalStack's Go init calls back to LocalStack; this executor answers in-process.
        return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    # --- versions --------------------------------------------------------------------------

    def _code_dir(self) -> Path:
        return Path(self.function_version.config.code.get_unzipped_code_location())

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        fn_config = function_version.config
        if fn_config.package_type != PackageType.Zip or not fn_config.code:
            raise LambdaRuntimeException(
                "the local executor runs zip packages only (container images need Docker)"
            )
        runtime = fn_config.runtime or ""
        if not runtime.startswith("provided"):
            raise LambdaRuntimeException(
                f"the local executor runs OS-only runtimes (provided.al2023, provided.al2) "
                f"only, not {runtime}"
            )
        if fn_config.layers:
            raise LambdaRuntimeException("the local executor does not support layers")
        fn_config.code.prepare_for_execution()
        bootstrap = Path(fn_config.code.get_unzipped_code_location()) / "bootstrap"
        if not bootstrap.is_file():
            raise LambdaRuntimeException("the zip has no bootstrap at its root")
        if not os.access(bootstrap, os.X_OK):
            bootstrap.chmod(0o755)
        arch = _elf_arch(bootstrap)
        host = _HOST_ARCH.get(platform.machine(), platform.machine())
        if arch is not None and arch != host:
            # The function's Architectures setting is not what decides: this host runs the
            # binary itself, so it must be built for this host (scripts/build-lambdas --x86-64).
            raise LambdaRuntimeException(
                f"bootstrap is an {arch} executable but this host is {host}: build the function "
                f"for {host} to run it on this LocalStack"
            )

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        return True


class LocalProcessRuntimeExecutorPlugin(Plugin):
    namespace = "localstack.lambda.runtime_executor"
    name = "local"

    def load(self, *args, **kwargs):
        return LocalProcessRuntimeExecutor
