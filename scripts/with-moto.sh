#!/usr/bin/env bash
# Run a command with moto_server on 127.0.0.1, one server per AWS service the functions call (DynamoDB, SQS,
# SSM), then stop them (also on failure or Ctrl-C). One moto server is one Python process that answers one
# call at a time; AWS runs these as three services, so the local stack does too.
# The command sees the SDKs' per-service endpoint variables (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS,
# AWS_ENDPOINT_URL_SSM), AWS_ENDPOINT_URL (the DynamoDB server: set means "local"), and test credentials.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
moto="$root/.venv/bin/moto_server"
[ -x "$moto" ] || { echo "with-moto: $moto is missing; run 'make venv' first" >&2; exit 2; }
mkdir -p "$root/target"

pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT INT TERM

for service in dynamodb sqs ssm; do
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$moto" -H 127.0.0.1 -p "$port" >"$root/target/moto-$service.log" 2>&1 &
  pids+=($!)
  export "AWS_ENDPOINT_URL_${service^^}=http://127.0.0.1:$port"
done
export AWS_ENDPOINT_URL="$AWS_ENDPOINT_URL_DYNAMODB"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

for url in "$AWS_ENDPOINT_URL_DYNAMODB" "$AWS_ENDPOINT_URL_SQS" "$AWS_ENDPOINT_URL_SSM"; do
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url/moto-api/" 2>/dev/null; then
      break
    fi
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "with-moto: a moto_server exited; see $root/target/moto-*.log" >&2; exit 1; }
    done
    sleep 0.1
  done
done
echo "with-moto: moto_server for DynamoDB $AWS_ENDPOINT_URL_DYNAMODB, SQS $AWS_ENDPOINT_URL_SQS, SSM $AWS_ENDPOINT_URL_SSM (logs: target/moto-*.log)" >&2
"$@"
