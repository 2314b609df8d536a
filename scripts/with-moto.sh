#!/usr/bin/env bash
# Run a command with moto_server listening on a free 127.0.0.1 port, then stop it (also on failure or Ctrl-C).
# The command sees AWS_ENDPOINT_URL and test credentials, so every AWS SDK client talks to the emulator.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
moto="$root/.venv/bin/moto_server"
[ -x "$moto" ] || { echo "with-moto: $moto is missing; run 'make venv' first" >&2; exit 2; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$root/target"
log="$root/target/moto.log"
"$moto" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
stop() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; }
trap stop EXIT INT TERM

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

for _ in $(seq 1 100); do
  if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$AWS_ENDPOINT_URL/moto-api/" 2>/dev/null; then
    break
  fi
  kill -0 "$moto_pid" 2>/dev/null || { echo "with-moto: moto_server exited; see $log" >&2; exit 1; }
  sleep 0.1
done
echo "with-moto: moto_server on $AWS_ENDPOINT_URL (log: $log)" >&2
"$@"
