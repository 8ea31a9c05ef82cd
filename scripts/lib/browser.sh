# The builder's browser tier of scripts/test: end-to-end tests of the web builder in Debian's
# chromium, driven by playwright-core (frontend/e2e/, `node --test`).
#   . scripts/lib/browser.sh; browser_tier LOG CONCERTMASTER_BINARY   (from the repository root)
# 1. installs Debian's chromium when /usr/bin/chromium is missing (apt-get; `apt-get update`
#    only when the install fails without it); no browser is ever downloaded by npm;
# 2. builds the builder (`vite build` → frontend/dist; `npm ci` ran in the builder tier before);
# 3. runs frontend/e2e/*.test.mjs: they start `concertmaster dev` on a free loopback port with a
#    fresh data directory and chromium headless with a fresh profile, and stop both; screenshots
#    in target/e2e-artifacts/ (FAILED-*.png for a failing step).
# Prints a cargo-shaped `test result:` line for the closing total and appends it to LOG. The
# tests run in their own process group (setsid), which is killed when they end, fail, time out
# or when this shell is interrupted, so no server or browser outlives the tier. Safe under
# `set -euo pipefail`.

_browser_result() {
  local log=$1 passed=$2 failed=$3 ignored=$4 word=ok
  [ "$failed" -eq 0 ] || word=FAILED
  echo "test result: $word. $passed passed; $failed failed; $ignored ignored; 0 measured; 0 filtered out (builder end-to-end, chromium)" | tee -a "$log"
}

_browser_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  echo "== browser: installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; } ||
    return 1
  [ -x /usr/bin/chromium ]
}

# Kill the test process group (node, the dev server, chromium and its helpers).
_browser_stop() {
  local pgid=${_browser_pgid:-}
  [ -n "$pgid" ] || return 0
  if kill -0 -- "-$pgid" 2>/dev/null; then
    kill -TERM -- "-$pgid" 2>/dev/null || true
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 -- "-$pgid" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
  _browser_pgid=
}

browser_tier() {
  local log=$1
  local bin=$2
  local tmp
  tmp=$(mktemp -d)
  _browser_pgid=

  if ! _browser_chromium; then
    echo "browser: /usr/bin/chromium is missing and apt-get could not install it"
    _browser_result "$log" 0 1 0
    rm -rf "$tmp"
    return 0
  fi
  echo "== browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"

  echo "== browser: build the builder (vite build → frontend/dist)"
  if ! (cd frontend && npx --no-install vite build >"$tmp/build.log" 2>&1); then
    cat "$tmp/build.log"
    echo "browser: vite build FAILED"
    _browser_result "$log" 0 1 0
    rm -rf "$tmp"
    return 0
  fi

  # Whatever ends this shell (error, Ctrl-C, the caller's exit) also ends the tests; the
  # caller's handlers are restored afterwards.
  local saved_traps
  saved_traps=$(trap -p EXIT INT TERM)
  _browser_caller_exit=
  local prev_exit
  prev_exit=$(trap -p EXIT)
  if [ -n "$prev_exit" ]; then
    eval "set -- $prev_exit"
    _browser_caller_exit=$3
  fi
  trap '_browser_stop; eval "$_browser_caller_exit"' EXIT
  trap '_browser_stop; exit 130' INT
  trap '_browser_stop; exit 143' TERM

  echo "== browser: end-to-end tests (frontend/e2e, node --test)"
  local rc=0
  (
    cd frontend
    exec setsid --wait timeout --kill-after=15 1200 env CM_BIN="$(cd .. && realpath "$bin")" \
      node --test --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination="$tmp/e2e.tap" e2e/ </dev/null
  ) &
  _browser_pgid=$!
  wait "$_browser_pgid" || rc=$?
  _browser_stop

  trap - EXIT INT TERM
  eval "$saved_traps"

  # The TAP report's closing counts: `# pass N`, `# fail N`, `# cancelled N`, `# skipped N`, `# todo N`.
  local counts="" passed failed ignored
  [ -s "$tmp/e2e.tap" ] && counts=$(awk '
    /^# (pass|fail|cancelled|skipped|todo) [0-9]+$/ { n[$2] = $3; seen = 1 }
    END { if (seen && ("pass" in n) && ("fail" in n)) print n["pass"] + 0, n["fail"] + n["cancelled"], n["skipped"] + n["todo"] }
  ' "$tmp/e2e.tap" || true)
  if [ -z "$counts" ]; then
    echo "browser: the end-to-end tests did not report (exit $rc)"
    _browser_result "$log" 0 1 0
  else
    read -r passed failed ignored <<<"$counts"
    # A runner that failed without a failing test (a crash in a hook) still fails the tier.
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
      echo "browser: node --test exited $rc"
      failed=1
    fi
    _browser_result "$log" "$passed" "$failed" "$ignored"
  fi
  echo "browser: screenshots in target/e2e-artifacts/"
  rm -rf "$tmp"
}
