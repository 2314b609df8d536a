"""Measure a function's init: process start to its first poll of the Lambda Runtime API.

Run under scripts/with-moto.sh (make init-time). A fake Runtime API on a free loopback port records when the
function first connects to ask for an invocation; moto (one server per service, as with-moto.sh starts them)
holds the table, queue and the SSM secret the function warms up with during init (so the figure includes
loading the secret and opening both connections). boto3 finds each server from AWS_ENDPOINT_URL_<SERVICE>.
It also prints the CPU the function itself used until that poll (kernel time included: every live thread's
/proc schedstat, read at the poll): the part of init that is ours; the rest of the time is waiting, mostly on
moto answering the warm-up's three calls.
    python measure_init.py path/to/function-binary [runs]
"""
import glob
import os
import socket
import statistics
import subprocess
import sys
import time

import boto3

binary = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7


def setup():
    ddb = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    ssm = boto3.client("ssm")
    table = f"init-{os.getpid()}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    queue = sqs.create_queue(QueueName=f"init-{os.getpid()}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    ssm.put_parameter(Name=f"/init/{os.getpid()}", Value="s3cret", Type="SecureString")
    return table, queue, f"/init/{os.getpid()}"


def once(table, queue, param):
    """One cold start. The fake Runtime API is a bare listening socket: the function's first poll is its first
    connection, taken the moment the kernel hands it over (no HTTP parsing, no server thread to wait for)."""
    api = socket.socket()
    api.bind(("127.0.0.1", 0))
    api.listen(8)
    api.settimeout(0.05)
    env = dict(os.environ,
               AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.getsockname()[1]}",
               AWS_LAMBDA_FUNCTION_NAME="niobi", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_STREAM_NAME="s", AWS_LAMBDA_LOG_GROUP_NAME="g",
               EVENTS_TABLE=table, EVENTS_QUEUE_URL=queue, WEBHOOK_SECRETS_PARAM=param, RUST_LOG="warn")
    env.pop("WEBHOOK_SECRETS", None)
    started = time.monotonic()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first_poll = None
    cpu_ms = None
    while first_poll is None and time.monotonic() - started < 10:
        try:
            connection, _ = api.accept()
            first_poll = time.monotonic()
            cpu_ms = process_cpu_ms(process.pid)
            connection.close()
        except socket.timeout:
            if process.poll() is not None:
                raise SystemExit(f"{binary} exited: {process.stderr.read().decode()}")
    process.kill()
    process.wait()
    api.close()
    if first_poll is None:
        raise SystemExit("no poll within 10 s")
    return (first_poll - started) * 1000, cpu_ms


def process_cpu_ms(pid):
    """The CPU time a process has used so far, summed over its live threads (each schedstat's first field, ns)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended between the listing and the read
    return total / 1e6


def main():
    table, queue, param = setup()
    results = [once(table, queue, param) for _ in range(runs)]
    samples = [wall for wall, _ in results]
    cpu = [cpu for _, cpu in results]
    print(f"{os.path.basename(binary)}: process start to first Runtime API poll, {runs} runs "
          f"(secret from SSM and both connections warmed during init, against moto on loopback)")
    print(f"  median {statistics.median(samples):.1f} ms, min {min(samples):.1f} ms, max {max(samples):.1f} ms")
    print(f"  the function's own CPU until then: median {statistics.median(cpu):.1f} ms, "
          f"min {min(cpu):.1f} ms, max {max(cpu):.1f} ms")


if __name__ == "__main__":
    main()
