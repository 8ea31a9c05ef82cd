# The builder tier of scripts/test: the web builder in frontend/ (React + Vite).
#   . scripts/lib/frontend.sh; frontend_tier LOG CONCERTMASTER_BINARY   (from the repository root)
# 1. `npm ci` (package-lock.json);
# 2. the API types are generated from the server's OpenAPI document, not written twice: they
#    are regenerated from `concertmaster openapi` and must equal the committed ones;
# 3. typecheck (tsc --noEmit), the Vitest unit tests, the production build into frontend/dist
#    (which `concertmaster dev` serves).
# Prints cargo-shaped `test result:` lines (Vitest's counts, then the checks) for the closing
# total. Safe under `set -euo pipefail`.

_frontend_check() {
  local name=$1
  shift
  echo "== builder: $name"
  if "$@" >"$frontend_tmp/check.log" 2>&1; then
    frontend_passed=$((frontend_passed + 1))
  else
    cat "$frontend_tmp/check.log"
    echo "builder: $name FAILED"
    frontend_failed=$((frontend_failed + 1))
  fi
}

_frontend_types_current() {
  "$frontend_bin" openapi >"$frontend_tmp/openapi.json"
  cmp -s "$frontend_tmp/openapi.json" frontend/src/api/openapi.json || {
    echo "frontend/src/api/openapi.json differs from \`concertmaster openapi\`: run (cd frontend && npm run gen:api) and commit"
    diff <(head -c 4000 frontend/src/api/openapi.json) <(head -c 4000 "$frontend_tmp/openapi.json") | head -20
    return 1
  }
  (cd frontend && npx --no-install openapi-typescript "$frontend_tmp/openapi.json" -o "$frontend_tmp/schema.d.ts" >/dev/null)
  cmp -s "$frontend_tmp/schema.d.ts" frontend/src/api/schema.d.ts || {
    echo "frontend/src/api/schema.d.ts is not what openapi-typescript makes of the document: run (cd frontend && npm run gen:api) and commit"
    return 1
  }
}

_frontend_vitest() {
  local log=$1
  local report=$frontend_tmp/vitest.json
  (cd frontend && npx --no-install vitest run --reporter=default --reporter=json --outputFile="$report") || true
  if [ ! -s "$report" ]; then
    echo "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out (vitest did not report)" | tee -a "$log"
    return
  fi
  node -e '
    const r = require(process.argv[1]);
    const ok = r.numFailedTests === 0 && r.numFailedTestSuites === 0;
    const failed = r.numFailedTests + (r.numFailedTestSuites && !r.numFailedTests ? 1 : 0);
    console.log(`test result: ${ok ? "ok" : "FAILED"}. ${r.numPassedTests} passed; ${failed} failed; ${r.numPendingTests} ignored; 0 measured; 0 filtered out (builder unit tests, Vitest)`);
  ' "$report" | tee -a "$log"
}

frontend_tier() {
  local log=$1
  frontend_bin=$2
  frontend_tmp=$(mktemp -d)
  frontend_passed=0
  frontend_failed=0
  command -v npm >/dev/null || { echo "npm is required (Node.js 20)" >&2; return 1; }
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
  _frontend_vitest "$log"
  _frontend_check "API types generated from the OpenAPI document" _frontend_types_current
  _frontend_check "typecheck (tsc --noEmit)" bash -c 'cd frontend && npx --no-install tsc --noEmit'
  _frontend_check "production build (vite build → frontend/dist)" bash -c 'cd frontend && npx --no-install vite build'
  local word=ok
  [ "$frontend_failed" -eq 0 ] || word=FAILED
  echo "test result: $word. $frontend_passed passed; $frontend_failed failed; 0 ignored; 0 measured; 0 filtered out (builder checks)" | tee -a "$log"
  rm -rf "$frontend_tmp"
}
