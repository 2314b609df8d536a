#!/usr/bin/env bash
# The local payhooks stack: moto_server (one per service: DynamoDB, SQS, SSM), the table and queues the SAM template defines, and
# all five functions under `cargo lambda watch`.
#   local-stack.sh demo   start it, send every fixture (plus one duplicate and one forged callback per
#                         provider), print the answers and the queued messages, stop everything
#   local-stack.sh dev    start it and leave it running, printing the callback URLs and demo secrets
#   local-stack.sh loadtest [N] [CONCURRENCY] [DUPLICATE%]   send N signed callbacks (default 1000, 20, 30)
#                         and audit the queues: exits non-zero if any acknowledged event is lost or doubled
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:?usage: local-stack.sh demo|dev|loadtest}

if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  # Re-run under moto_server; with-moto.sh stops the servers when this script ends.
  exec scripts/with-moto.sh "$0" "$@"
fi

local_dir=target/local
mkdir -p "$local_dir"
env_file=$local_dir/demo.env
watch_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "==> building the functions and the signing tool"
functions=$(ls functions)
# shellcheck disable=SC2086 # one -p per function crate
cargo build --quiet --bins $(printf -- '-p %s ' $functions) -p payhooks-send
send() { "${CARGO_TARGET_DIR:-target}/debug/payhooks-send" "$@"; }
# The providers and their routes, from Provider::ALL (the drift test checks functions/ against the same list).
mapfile -t routes < <(send --list)
providers=()
for line in "${routes[@]}"; do providers+=("${line%%$'\t'*}"); done

echo "==> creating the table and queues on moto (DynamoDB $AWS_ENDPOINT_URL_DYNAMODB, SQS $AWS_ENDPOINT_URL_SQS)"
{
  echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
  echo "AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB"
  echo "AWS_ENDPOINT_URL_SQS=$AWS_ENDPOINT_URL_SQS"
  echo "AWS_ENDPOINT_URL_SSM=$AWS_ENDPOINT_URL_SSM"
  echo "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
  echo "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
  echo "AWS_REGION=$AWS_REGION"
  echo "AWS_EC2_METADATA_DISABLED=true"
  echo "RUST_LOG=info"
  echo "PAYHOOKS_URL=http://127.0.0.1:$watch_port/lambda-url"
  .venv/bin/python scripts/local_aws.py create "${providers[@]}"
  # Demo secrets only: the first value of each list signs (or, for Lipia and MUDA, is the URL token).
  for p in "${providers[@]}"; do echo "${p^^}_WEBHOOK_SECRETS=demo-$p-secret"; done
} > "$env_file"

echo "==> starting cargo lambda watch on 127.0.0.1:$watch_port (log: $local_dir/watch.log)"
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$watch_port" --env-file "$env_file" \
  > "$local_dir/watch.log" 2>&1 &
watch_pid=$!
stop_watch() { kill -- -"$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; }
trap stop_watch EXIT INT TERM
for _ in $(seq 1 300); do
  if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$watch_port" 2>/dev/null; then break; fi
  kill -0 "$watch_pid" 2>/dev/null || { cat "$local_dir/watch.log" >&2; echo "cargo lambda watch exited" >&2; exit 1; }
  sleep 0.2
done

set -a; . "$env_file"; set +a

if [ "$mode" = dev ]; then
  echo
  echo "payhooks is running. Callback URLs (POST):"
  for line in "${routes[@]}"; do
    p=${line%%$'\t'*}
    route=${line#*$'\t'}
    route=${route#/webhooks}
    echo "  $p: $PAYHOOKS_URL${route/\{token\}/demo-$p-secret}"
  done
  echo "Demo secrets: $(grep _WEBHOOK_SECRETS "$env_file" | tr '\n' ' ')"
  echo "Send one:  make send PROVIDER=niobi FIXTURE=payin_timeout      Stop: Ctrl-C"
  wait "$watch_pid"
  exit 0
fi

if [ "$mode" = loadtest ]; then
  echo "==> load test: ${2:-1000} callbacks, concurrency ${3:-20}, ${4:-30}% duplicates"
  # One callback per function first, so cargo lambda watch has started all five before the clock runs; each
  # queue holds one message more than the load test's share (the audit counts only the load test's ids).
  for p in "${providers[@]}"; do
    warm=(tests/fixtures/"$p"/*.json)
    send --provider "$p" --fixture "${warm[0]}" --expect 200 >/dev/null
  done
  load_ok=0
  send --load "${2:-1000}" "${3:-20}" "${4:-30}" "$local_dir/loadtest-expected.txt" || load_ok=$?
  .venv/bin/python scripts/local_aws.py audit "$local_dir/loadtest-expected.txt" "${providers[@]}" || exit 1
  exit "$load_ok"
fi

echo "==> sending every fixture, then one duplicate and one forged callback per provider"
failures=0
for p in "${providers[@]}"; do
  fixtures=(tests/fixtures/"$p"/*.json)
  for f in "${fixtures[@]}"; do send --provider "$p" --fixture "$f" --expect 200 || failures=$((failures + 1)); done
  send --provider "$p" --fixture "${fixtures[0]}" --expect 200 || failures=$((failures + 1))
  send --provider "$p" --fixture "${fixtures[0]}" --forge --expect 401 || failures=$((failures + 1))
done

echo "==> a Niobi deposit whose timeout arrives after its success: enqueued, flagged as a regression"
sed 's/A7KQ2M9XW001/DEMO-LATE-TIMEOUT/' tests/fixtures/niobi/payin_ussd_push.json > "$local_dir/late_success.json"
sed 's/A7KQ2M9XW001/DEMO-LATE-TIMEOUT/' tests/fixtures/niobi/payin_timeout.json > "$local_dir/late_timeout.json"
send --provider niobi --fixture "$local_dir/late_success.json" --expect 200 || failures=$((failures + 1))
send --provider niobi --fixture "$local_dir/late_timeout.json" --expect 200 || failures=$((failures + 1))

echo "==> one sweep (the sweeper function; nothing is stalled, so it finds nothing)"
cargo lambda invoke sweeper --invoke-address 127.0.0.1 --invoke-port "$watch_port" --data-ascii '{}' \
  || failures=$((failures + 1))
echo

echo "==> messages now in each queue"
echo "    (M2Money's and MUDA's fixtures are the variants of one transaction each, sent in file-name order:"
echo "    a failure, then a reversal or a pending, then a success. So the later ones are flagged CONTRADICTION"
echo "    or REGRESSION, and their transaction stays failed, as for real callbacks arriving in that order.)"
.venv/bin/python scripts/local_aws.py show "${providers[@]}"

if [ "$failures" -ne 0 ]; then
  echo "demo: $failures callback(s) did not get the expected answer (see $local_dir/watch.log)" >&2
  exit 1
fi
echo "demo: every genuine callback acknowledged once, every forged one refused"
