# The infrastructure tier of scripts/test: the CDK app in infra/, offline (no AWS account,
# credentials or Rust build).
#   . scripts/lib/infra.sh; infra_tier LOG      (from the repository root; sets INFRA_TIER_STATUS)
# 1. `npm ci` in infra/ (pinned aws-cdk-lib, aws-cdk CLI, cdk-nag; package-lock.json);
# 2. the assertion tests (node --test with tsx; the cdk-nag checks are among them);
# 3. the checks: `tsc --noEmit`; `cdk synth` with the CLI as a deploy runs it, with asset
#    stand-ins for the Lambda artifacts and the builder (the template is what is tested) —
#    cdk-nag's AwsSolutions pack runs there as a validation plugin, so an unacknowledged
#    finding fails synth; cfn-lint (PyPI, pinned, target/venvs/cfn-lint) on the template with
#    infra/.cfnlintrc.yaml — any error or unexplained warning fails.
# Prints one cargo-shaped `test result:` line for the assertion tests and one for the checks,
# which scripts/test's closing total adds up. Keeps the template in target/infra/.
# Safe under `set -euo pipefail`.
cfn_lint_version=1.58.0

# Runs "$@" as check NAME ($1): counts it in infra_passed / infra_failed, shows its output on failure.
_infra_check() {
  local name=$1
  shift
  echo "== infra: $name"
  if "$@" >"$infra_tmp/check.log" 2>&1; then
    infra_passed=$((infra_passed + 1))
  else
    cat "$infra_tmp/check.log"
    echo "infra: $name FAILED"
    infra_failed=$((infra_failed + 1))
  fi
}

infra_tier() {
  local log=$1 root=$PWD
  local dir=$root/infra venv=$root/target/venvs/cfn-lint out=$root/target/infra
  local started tp tf test_rc synth_started synth_s template
  INFRA_TIER_STATUS=0
  infra_passed=0
  infra_failed=0

  if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "infra tier: Node.js >= 20 is required" | tee -a "$log"
    echo "test result: FAILED. 0 passed; 1 failed; (infra: no Node.js >= 20)" | tee -a "$log"
    INFRA_TIER_STATUS=1
    return 0
  fi
  infra_tmp=$(mktemp -d)
  # No credentials, no instance metadata, no version check or telemetry: synth needs no account.
  local -a offline=(env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_ACCESS_KEY_ID
    -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN AWS_EC2_METADATA_DISABLED=true
    CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true)

  echo "== infra: npm ci"
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$infra_tmp/npm-ci.log" 2>&1; then
    cat "$infra_tmp/npm-ci.log"
    echo "test result: FAILED. 0 passed; 1 failed; (infra: npm ci)" | tee -a "$log"
    INFRA_TIER_STATUS=1
    rm -rf "$infra_tmp"
    return 0
  fi

  echo "== infra: assertion tests (node --test)"
  started=$(date +%s)
  if (cd "$dir" && "${offline[@]}" node --import tsx --test --test-reporter=tap test/*.test.ts) >"$infra_tmp/tests.tap" 2>&1; then
    test_rc=0
  else
    test_rc=$?
  fi
  grep -E '^# (tests|pass|fail) ' "$infra_tmp/tests.tap" || true
  tp=$(awk '/^# pass / { print $3 }' "$infra_tmp/tests.tap")
  tf=$(awk '/^# fail / { print $3 }' "$infra_tmp/tests.tap")
  if [ -z "$tp" ] || [ -z "$tf" ]; then
    tail -40 "$infra_tmp/tests.tap" || true
    tp=${tp:-0}
    tf=1
  elif [ "$test_rc" -ne 0 ] && [ "$tf" -eq 0 ]; then
    tf=1 # the runner failed outside any test
  fi
  if [ "$tf" -gt 0 ]; then
    { grep -A30 '^ *not ok' "$infra_tmp/tests.tap" || true; } | head -150
    INFRA_TIER_STATUS=1
  fi
  echo "test result: $([ "$tf" -eq 0 ] && echo ok || echo FAILED). $tp passed; $tf failed; 0 ignored; 0 measured; 0 filtered out; finished in $(($(date +%s) - started))s (infra: CDK assertion tests)" | tee -a "$log"

  started=$(date +%s)
  _infra_check "typecheck (tsc --noEmit)" bash -c 'cd "$0" && exec npx tsc --noEmit' "$dir"

  synth_started=$(date +%s)
  _infra_check "cdk synth (offline, cdk-nag AwsSolutions)" "${offline[@]}" bash -c '
    cd "$0" && node --import tsx test/support/placeholders-cli.ts "$1/assets" >/dev/null &&
    exec npx cdk synth --no-notices --quiet -o "$1/cdk.out" \
      -c lambdaDir="$1/assets/lambda" -c builderDir="$1/assets/builder"' "$dir" "$infra_tmp"
  synth_s=$(($(date +%s) - synth_started))
  template=$infra_tmp/cdk.out/ConcertMaster.template.json
  if [ -f "$template" ]; then
    mkdir -p "$out"
    cp "$template" "$infra_tmp/cdk.out/validation-report.json" "$out/" 2>/dev/null || true
    echo "infra: synthesized in ${synth_s}s, $(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["Resources"]))' "$template") resources (template kept in target/infra/)"
    if ! "$venv/bin/cfn-lint" --version 2>/dev/null | grep -qx "cfn-lint $cfn_lint_version"; then
      echo "== creating $venv (cfn-lint==$cfn_lint_version)"
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$cfn_lint_version"
    fi
    _infra_check "cfn-lint $cfn_lint_version" "$venv/bin/cfn-lint" --config-file "$dir/.cfnlintrc.yaml" -- "$template"
  else
    echo "infra: no template was synthesized; cfn-lint not run"
    infra_failed=$((infra_failed + 1))
  fi
  [ "$infra_failed" -eq 0 ] || INFRA_TIER_STATUS=1
  echo "test result: $([ "$infra_failed" -eq 0 ] && echo ok || echo FAILED). $infra_passed passed; $infra_failed failed; 0 ignored; 0 measured; 0 filtered out; finished in $(($(date +%s) - started))s (infra: typecheck, synth + cdk-nag, cfn-lint)" | tee -a "$log"
  rm -rf "$infra_tmp"
  return 0
}
