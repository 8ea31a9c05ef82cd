# moto (the AWS emulator) for scripts: the venv and a server on a free loopback port.
# Source it from a script that has cd'ed to the repository root:
#   . scripts/lib/moto.sh
#   moto_venv                      # creates/reuses target/venvs/moto (pip from PyPI)
#   moto_start target/x/moto.log [serial]  # sets moto_pid, moto_endpoint; waits until it answers
#   trap moto_stop EXIT            # (or call moto_stop from the script's own EXIT trap)

moto_version=5.2.5
moto_venv_dir=${MOTO_VENV:-$PWD/target/venvs/moto}
moto_pid=
moto_endpoint=

# Creates the venv with moto[server]==$moto_version and boto3 unless it has them already.
moto_venv() {
  command -v python3 >/dev/null || { echo "python3 is required (for moto)" >&2; return 1; }
  if ! "$moto_venv_dir/bin/python" -c "import boto3, moto, sys; sys.exit(moto.__version__ != '$moto_version')" 2>/dev/null; then
    echo "== creating $moto_venv_dir (moto[server]==$moto_version, boto3)"
    python3 -m venv "$moto_venv_dir"
    "$moto_venv_dir/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version" boto3
  fi
}

# Starts moto_server on a free 127.0.0.1 port, logging to $1, and waits (at most 30 s, polling
# GET /moto-api/config) until it answers. Sets moto_pid and moto_endpoint.
# With `serial` as $2 it serves one request at a time: moto's DynamoDB is not thread-safe
# (TransactWriteItems checks conditions and writes without a lock, and rolls back by restoring a
# copy of the whole table), so concurrent requests to a threaded server can break the atomicity
# of conditional writes that DynamoDB guarantees. Serial, every request is atomic as on AWS.
moto_start() {
  local log=$1 mode=${2:-threaded} port
  mkdir -p "$(dirname "$log")"
  port=$("$moto_venv_dir/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  moto_endpoint=http://127.0.0.1:$port
  echo "== starting moto_server ($mode) on $moto_endpoint (log: $log)"
  if [ "$mode" = serial ]; then
    # moto_server's own entry point with werkzeug's threaded=True turned off.
    "$moto_venv_dir/bin/python" -c '
import sys, moto.server as server
run_simple = server.run_simple
server.run_simple = lambda *a, **k: run_simple(*a, **{**k, "threaded": False})
server.main(sys.argv[1:])' -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  else
    "$moto_venv_dir/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  fi
  moto_pid=$!
  "$moto_venv_dir/bin/python" - "$moto_endpoint" "$moto_pid" <<'PY'
import os, sys, time, urllib.request
endpoint, pid = sys.argv[1], int(sys.argv[2])
for _ in range(300):
    try:
        urllib.request.urlopen(endpoint + "/moto-api/config", timeout=1).read()
        sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("moto_server exited before it answered (see its log)")
        time.sleep(0.1)
sys.exit("moto_server did not answer within 30 s")
PY
}

# Stops the server moto_start started (if any): SIGTERM, then SIGKILL after 5 s.
moto_stop() {
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$moto_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
    moto_pid=
  fi
}
