# The API tier of scripts/test: schemathesis (PyPI) against /openapi.json of a running
# `concertmaster dev` (fresh data directory, free loopback port). Passes when no request gets a
# 5xx and every response matches the document (status codes, content types, headers, body
# schemas), with auth, resource and use-after-free checks. Two checks are excluded because they
# assume the schema alone decides validity: `positive_data_acceptance` (an opaque cursor or a
# workflow that parses but does not compile is schema-valid yet rightly refused) and
# `negative_data_rejection` (lenient parsing of free-form node configs).
#   source scripts/lib/schemathesis.sh; api_tier BIN LOG   (sets API_TIER_STATUS)
schemathesis_version=4.32.5

api_tier() {
  local bin=$1 log=$2 root=$PWD
  local venv=$root/target/venvs/schemathesis
  if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$schemathesis_version"; then
    echo "creating $venv (schemathesis==$schemathesis_version)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
  fi
  local data out
  data=$(mktemp -d)
  out=$data/dev.out
  "$bin" dev --port 0 --data-dir "$data/data" >"$out" 2>&1 &
  local pid=$!
  local url="" token="" i
  for i in $(seq 1 200); do
    url=$(grep -o 'http://127[^ ]*' "$out" 2>/dev/null | head -1 || true)
    token=$(awk '/token:/ {print $2}' "$out" 2>/dev/null || true)
    [ -n "$url" ] && [ -n "$token" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "concertmaster dev did not start:"; cat "$out"
    kill "$pid" 2>/dev/null || true
    API_TIER_STATUS=1
    return
  fi
  echo "schemathesis against $url/openapi.json"
  set +e
  "$venv/bin/st" run "$url/openapi.json" -H "Authorization: Bearer $token" \
    --checks all --exclude-checks positive_data_acceptance,negative_data_rejection \
    --max-examples "${API_TIER_EXAMPLES:-50}" --exclude-path /ws --seed 1 \
    --report junit --report-junit-path "$data/junit.xml" 2>&1 | tail -25 | tee -a "$log"
  API_TIER_STATUS=${PIPESTATUS[0]}
  set -e
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # One line in the shape of cargo's, so the closing total counts this tier.
  if [ "$API_TIER_STATUS" -eq 0 ]; then
    echo "test result: ok. 1 passed; 0 failed; (schemathesis)" | tee -a "$log"
  else
    echo "test result: FAILED. 0 passed; 1 failed; (schemathesis)" | tee -a "$log"
  fi
  rm -rf "$data"
}
