# The cloud end-to-end tier of scripts/test: ConcertMaster's nine Lambdas on a docker-free
# LocalStack (scripts/lib/localstack.sh), driven by tests/e2e/cloud_e2e.py.
#   . scripts/lib/cloud-e2e.sh       (sources scripts/lib/localstack.sh if needed)
#   cloud_e2e_tier LOG      (from the repository root; sets CLOUD_E2E_TIER_STATUS)
# 1. builds the functions and the CLI (debug: `cargo build --locked -p <functions>`, then
#    `-p concertmaster` as the API tier does; dependencies mostly shared with the test build)
#    and packages each function as target/cloud-e2e/zips/<name>.zip (the stripped binary as
#    `bootstrap`, for this host: the local Lambda executor runs it here);
# 2. localstack_venv, localstack_start on a free loopback port (log target/cloud-e2e/localstack.log);
# 3. localstack/smoke.py with the node-runner zip, then the driver (provisioning, every example
#    workflow through the api Lambda with parity against `concertmaster run`, a queue trigger
#    through SQS, the live-status push path);
# 4. stops LocalStack and the driver's helpers on return, failure or interruption.
# Prints the smoke test's and the driver's cargo-shaped `test result:` lines and appends them to
# LOG (scripts/test's closing total adds them up); a step that could not run is one failed test.
# Safe under `set -euo pipefail`. CLOUD_E2E_BUILD=0 skips step 1 (zips and CLI already there).

declare -F localstack_start >/dev/null || . scripts/lib/localstack.sh

cloud_e2e_functions=(api node-runner trigger-consumer scheduler run-events status-pusher
  ws-connect ws-disconnect ws-message)

# Packages target/debug/<name> as $1/<name>.zip, the binary stripped and named bootstrap.
cloud_e2e_package() {
  local out=$1 name tmp
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  tmp=$(mktemp -d)
  for name in "${cloud_e2e_functions[@]}"; do
    strip -o "$tmp/bootstrap" "target/debug/$name" || { rm -rf "$tmp"; return 1; }
    chmod 755 "$tmp/bootstrap"
    rm -f "$out/$name.zip"
    (cd "$tmp" && zip -q -1 "$out/$name.zip" bootstrap) || { rm -rf "$tmp"; return 1; }
  done
  rm -rf "$tmp"
}

# One failed test for a step that could not run (counted by scripts/test's total).
_cloud_e2e_fail() {
  echo "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out (cloud e2e: $1)" | tee -a "$2"
  CLOUD_E2E_TIER_STATUS=1
}

cloud_e2e_tier() {
  local log=$1 out=target/cloud-e2e started rc cmd name
  local -a packages=()
  CLOUD_E2E_TIER_STATUS=0
  started=$(date +%s)
  mkdir -p "$out"
  rm -f "$out/smoke.out" "$out/e2e.out"

  for cmd in strip zip; do
    if ! command -v "$cmd" >/dev/null; then
      _cloud_e2e_fail "needs $cmd (binutils, zip)" "$log"
      return 0
    fi
  done
  if [ "${CLOUD_E2E_BUILD:-1}" = 1 ]; then
    echo "== cloud e2e: build the functions and the CLI (debug)"
    for name in "${cloud_e2e_functions[@]}"; do packages+=(-p "$name"); done
    # Two builds: the CLI's is the API tier's own command (the same features, so neither
    # rebuilds the other's binary).
    if ! cargo build --locked -q "${packages[@]}" || ! cargo build --locked -q -p concertmaster; then
      _cloud_e2e_fail "cargo build" "$log"
      return 0
    fi
    if ! cloud_e2e_package "$out/zips"; then
      _cloud_e2e_fail "packaging the zips" "$log"
      return 0
    fi
    echo "   zips: $(du -ch "$out"/zips/*.zip | tail -1 | cut -f1) in $out/zips ($(($(date +%s) - started)) s)"
  fi

  if ! localstack_venv; then
    _cloud_e2e_fail "localstack_venv" "$log"
    return 0
  fi
  # Event source mappings poll an idle source at most every second (LocalStack's default backs
  # off to 10 s): the stream and queue records of a run are delivered within about a second.
  # The subshell keeps the setting and the EXIT trap to this tier; LocalStack is stopped on
  # return, failure or interruption.
  (
    set +e
    export LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC=1
    trap 'localstack_stop' EXIT
    trap 'exit 130' INT TERM
    localstack_start "$out/localstack.log" || exit 3
    echo "== cloud e2e: LocalStack smoke test (localstack/smoke.py)"
    "$localstack_venv_dir/bin/python" localstack/smoke.py "$out/zips/node-runner.zip" \
      | tee "$out/smoke.out"
    echo "== cloud e2e: the driver (tests/e2e/cloud_e2e.py)"
    "$localstack_venv_dir/bin/python" tests/e2e/cloud_e2e.py --zips "$out/zips" \
      --concertmaster target/debug/concertmaster --work "$out/work" | tee "$out/e2e.out"
    exit 0
  ) && rc=0 || rc=$?
  if [ "$rc" -eq 3 ]; then
    _cloud_e2e_fail "LocalStack did not start (see $out/localstack.log)" "$log"
    return 0
  fi
  local f line
  for f in smoke e2e; do
    line=$(grep -E '^test result:' "$out/$f.out" 2>/dev/null | tail -1 || true)
    if [ -z "$line" ]; then
      _cloud_e2e_fail "$f ended without a summary (see $out/$f.out, $out/localstack.log)" "$log"
    else
      echo "$line (cloud e2e: $f)" >>"$log"
      case "$line" in *" 0 failed;"*) ;; *) CLOUD_E2E_TIER_STATUS=1 ;; esac
    fi
  done
  echo "== cloud e2e: $(($(date +%s) - started)) s in all"
}
