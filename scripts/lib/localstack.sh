# LocalStack without Docker for scripts: the venv and an instance on a free loopback port.
# Source it from a script that has cd'ed to the repository root:
#   . scripts/lib/localstack.sh
#   localstack_venv                  # creates/reuses target/venvs/localstack (pip from PyPI)
#   trap localstack_stop EXIT        # (or call localstack_stop from the script's own EXIT trap)
#   localstack_start target/x/localstack.log   # sets localstack_pid, exports localstack_endpoint
#   target/venvs/localstack/bin/python localstack/smoke.py   # e.g.; boto3 is in the venv
# `localstack-core[runtime]` runs in host mode (python -m localstack.runtime.main) with our
# extension (localstack/concertmaster_localstack) closing its offline gaps: DynamoDB, DynamoDB
# Streams, API Gateway v2 and its management API on moto; Lambda `provided.*` zips run as child
# processes (LAMBDA_RUNTIME_EXECUTOR=local); Step Functions JSONata on jsonata-python.
# See localstack/README.md.

localstack_version=2026.3.0
localstack_venv_dir=${LOCALSTACK_VENV:-$PWD/target/venvs/localstack}
localstack_pid=
localstack_endpoint=
localstack_dir=

# The first Python >= 3.12 found: $LOCALSTACK_PYTHON, python3.13, python3.12 (PATH), pyenv's.
_localstack_python() {
  local candidate
  for candidate in "${LOCALSTACK_PYTHON:-}" python3.13 python3.12 python3 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3; do
    [ -n "$candidate" ] || continue
    candidate=$(command -v "$candidate" 2>/dev/null) || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "LocalStack $localstack_version needs Python >= 3.12 (set LOCALSTACK_PYTHON)" >&2
  return 1
}

# Creates the venv with localstack-core[runtime]==$localstack_version (pinned by
# localstack/constraints-2026.3.0.txt) and our extension, unless the stamp in the venv says it
# has exactly those already (a hash of the version, the constraints and the extension's files).
localstack_venv() {
  local python stamp ext_copy
  stamp=$( { echo "$localstack_version"; cat localstack/constraints-2026.3.0.txt
    find localstack/concertmaster_localstack -type f \( -name '*.py' -o -name '*.toml' \) \
      -not -path '*/build/*' | LC_ALL=C sort | xargs cat; } | sha256sum | cut -d' ' -f1)
  if [ -x "$localstack_venv_dir/bin/python" ] \
    && [ "$(cat "$localstack_venv_dir/.concertmaster-stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  python=$(_localstack_python) || return 1
  echo "== installing $localstack_venv_dir (localstack-core[runtime]==$localstack_version + localstack/concertmaster_localstack, $("$python" -V))"
  if [ ! -x "$localstack_venv_dir/bin/python" ] \
    || ! "$localstack_venv_dir/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    rm -rf "$localstack_venv_dir"
    "$python" -m venv "$localstack_venv_dir" || return 1
  fi
  rm -f "$localstack_venv_dir/.concertmaster-stamp"
  # pip builds a local directory in place (build/, *.egg-info): build a copy instead.
  ext_copy=$(mktemp -d)
  cp -r localstack/concertmaster_localstack "$ext_copy/"
  if ! "$localstack_venv_dir/bin/pip" install --quiet --disable-pip-version-check \
    -c localstack/constraints-2026.3.0.txt \
    "localstack-core[runtime]==$localstack_version" "$ext_copy/concertmaster_localstack"; then
    rm -rf "$ext_copy"
    return 1
  fi
  rm -rf "$ext_copy"
  echo "$stamp" >"$localstack_venv_dir/.concertmaster-stamp"
}

# Starts LocalStack on a free 127.0.0.1 port, logging to $1, with a private data and temp
# directory (removed by localstack_stop), and waits (at most 60 s, polling
# GET /_localstack/health) until it answers. Sets localstack_pid, localstack_dir and
# localstack_endpoint (exported). Clients take any credentials (pass AWS_ACCESS_KEY_ID=test
# AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 as scripts/test does for moto): the access key
# "test" is account 000000000000.
# LocalStack runs in a process group of its own, so localstack_stop can end whatever it leaves.
# (Each Lambda process it starts has a group of its own: LocalStack stops them on SIGTERM, and
# one whose LocalStack died exits when its Runtime API connection breaks.)
localstack_start() {
  local log=$1 port
  mkdir -p "$(dirname "$log")"
  port=$("$localstack_venv_dir/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  localstack_dir=$(mktemp -d "${TMPDIR:-/tmp}/localstack.XXXXXX")
  mkdir -p "$localstack_dir/fs" "$localstack_dir/tmp"
  localstack_endpoint=http://127.0.0.1:$port
  echo "== starting LocalStack $localstack_version (no Docker) on $localstack_endpoint (log: $log)"
  # Settings (localstack/README.md): the hypercorn server binds only GATEWAY_LISTEN; no DNS
  # server; OVERRIDE_IN_DOCKER=0 because this may be a container (/.dockerenv) whose paths
  # (/var/lib/localstack, ...) LocalStack would otherwise write; FILESYSTEM_ROOT and TMPDIR per
  # instance (instances sharing TMPDIR delete each other's files on shutdown).
  env -u AWS_PROFILE -u AWS_SESSION_TOKEN \
    GATEWAY_LISTEN="127.0.0.1:$port" GATEWAY_SERVER=hypercorn DNS_ADDRESS=0 \
    OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$localstack_dir/fs" TMPDIR="$localstack_dir/tmp" \
    SQS_ENDPOINT_STRATEGY=path DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
    LOCALSTACK_HOST="127.0.0.1:$port" \
    PROVIDER_OVERRIDE_DYNAMODB=moto PROVIDER_OVERRIDE_DYNAMODBSTREAMS=moto \
    PROVIDER_OVERRIDE_APIGATEWAYV2=moto PROVIDER_OVERRIDE_APIGATEWAYMANAGEMENTAPI=moto \
    LAMBDA_RUNTIME_EXECUTOR=local \
    "$localstack_venv_dir/bin/python" -c 'import os, sys; os.setpgrp(); os.execv(sys.executable, [sys.executable, "-m", "localstack.runtime.main"])' \
    >"$log" 2>&1 &
  localstack_pid=$!
  export localstack_endpoint
  if ! "$localstack_venv_dir/bin/python" - "$localstack_endpoint" "$localstack_pid" <<'PY'
import json, os, sys, time, urllib.request
endpoint, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(endpoint + "/_localstack/health", timeout=1) as r:
            json.load(r)
            sys.exit(0)
    except (OSError, ValueError):
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("LocalStack exited before it answered (see its log)")
        time.sleep(0.05)
sys.exit("LocalStack did not answer within 60 s")
PY
  then
    echo "LocalStack failed to start; the end of $log:" >&2
    tail -n 20 "$log" >&2
    localstack_stop
    return 1
  fi
}

# Stops the instance localstack_start started (if any): SIGTERM (LocalStack stops its services
# and Lambda processes), SIGKILL to whatever is left of its process group after 20 s; removes
# its data and temp directory.
localstack_stop() {
  if [ -n "$localstack_pid" ]; then
    kill -TERM "$localstack_pid" 2>/dev/null || true
    for _ in $(seq 200); do
      kill -0 "$localstack_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$localstack_pid" 2>/dev/null || true
    wait "$localstack_pid" 2>/dev/null || true
    localstack_pid=
  fi
  if [ -n "$localstack_dir" ]; then
    rm -rf "$localstack_dir"
    localstack_dir=
  fi
}
