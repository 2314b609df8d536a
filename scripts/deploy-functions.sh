#!/usr/bin/env bash
# cargo lambda deploy of every payhooks function, configured as the SAM template configures it.
# Usage: scripts/deploy-functions.sh CONFIG_DIR LAMBDA_DIR
#   CONFIG_DIR: what `payhooks-admin --stack NAME deploy-config --out CONFIG_DIR` wrote: functions.tsv (one
#               line per function: name, binary, role, memory, timeout, architecture) and <binary>.env (its
#               whole environment, one KEY='value' a line: never split on commas, and a redeploy replaces
#               the environment with all of it).
#   LAMBDA_DIR: <binary>/bootstrap for each function (`make build BUILD=cargo-lambda`); nothing is rebuilt.
# AWS_ENDPOINT_URL, when set, is where the functions go (moto in the tests).
set -euo pipefail
config=${1:?usage: deploy-functions.sh CONFIG_DIR LAMBDA_DIR}
lambda_dir=${2:?usage: deploy-functions.sh CONFIG_DIR LAMBDA_DIR}
[ -f "$config/functions.tsv" ] || { echo "deploy-functions: $config/functions.tsv is missing; run payhooks-admin deploy-config first" >&2; exit 2; }

# The ELF machine of a binary, as Lambda names it.
machine() {
  case $(od -An -tu2 -j18 -N2 "$1" | tr -d ' ') in
    62) echo x86_64 ;;
    183) echo arm64 ;;
    *) echo unknown ;;
  esac
}

while IFS=$'\t' read -r name binary role memory timeout arch; do
  bootstrap="$lambda_dir/$binary/bootstrap"
  [ -f "$bootstrap" ] || { echo "deploy-functions: $bootstrap is missing; run 'make build BUILD=cargo-lambda' first" >&2; exit 2; }
  built=$(machine "$bootstrap")
  [ "$built" = "$arch" ] || { echo "deploy-functions: $bootstrap is $built but the stack's functions run $arch; build with ARCH=$arch" >&2; exit 2; }
  echo "deploy-functions: $name ($binary, $arch, ${memory} MB, ${timeout} s)"
  cargo lambda deploy --lambda-dir "$lambda_dir" --binary-name "$binary" --role "$role" \
    --memory "$memory" --timeout "$timeout" --tracing active --runtime provided.al2023 \
    --env-file "$config/$binary.env" ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} \
    --output-format json "$name" >/dev/null
done < "$config/functions.tsv"
