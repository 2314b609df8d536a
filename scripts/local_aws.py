"""Create and inspect the local stack's table and queues on moto (used by scripts/local-stack.sh).

    local_aws.py create|show PROVIDER...   (the providers come from `payhooks-send --list`)

Names follow infra/template.yaml for a stack called "payhooks": table payhooks-events, FIFO queue
payhooks-<provider>.fifo (high throughput) with dead-letter queue payhooks-<provider>-dlq.fifo (maxReceiveCount 5).
"""
import json
import os
import sys

import boto3
# jsonschema comes with aws-sam-cli (requirements-dev.txt).
from jsonschema import Draft202012Validator

SCHEMA = Draft202012Validator(json.load(open(os.path.join(os.path.dirname(__file__), "..", "schema", "payhooks-event.schema.json"))))

STACK = os.environ.get("STACK_NAME", "payhooks")


def client(service):
    # boto3 takes each service's endpoint from AWS_ENDPOINT_URL_<SERVICE> (with-moto.sh sets them).
    return boto3.client(service, region_name=os.environ.get("AWS_REGION", "us-east-1"))


def create(providers):
    """Create the table and queues; print the env lines for the functions."""
    ddb, sqs = client("dynamodb"), client("sqs")
    table = f"{STACK}-events"
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "pending", "AttributeType": "S"},
            {"AttributeName": "lease_until", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        # The sparse index the sweeper queries (as in infra/template.yaml).
        GlobalSecondaryIndexes=[{
            "IndexName": "pending-index",
            "KeySchema": [
                {"AttributeName": "pending", "KeyType": "HASH"},
                {"AttributeName": "lease_until", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
    )
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    print(f"EVENTS_TABLE={table}")
    for provider in providers:
        dlq = sqs.create_queue(QueueName=f"{STACK}-{provider}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(
            QueueName=f"{STACK}-{provider}.fifo",
            Attributes={
                "FifoQueue": "true",
                "ContentBasedDeduplication": "false",
                "DeduplicationScope": "messageGroup",
                "FifoThroughputLimit": "perMessageGroupId",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
            },
        )["QueueUrl"]
        print(f"{provider.upper()}_EVENTS_QUEUE_URL={queue}")


def show(providers):
    """Print every message now in each provider's queue (without deleting them), each checked against the
    published schema; non-zero if one is not as it says."""
    sqs = client("sqs")
    total = invalid = 0
    for provider in providers:
        url = sqs.get_queue_url(QueueName=f"{STACK}-{provider}.fifo")["QueueUrl"]
        messages = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0,
                MessageSystemAttributeNames=["MessageGroupId"],
            ).get("Messages", [])
            if not batch:
                break
            messages.extend(batch)
        total += len(messages)
        print(f"\n{STACK}-{provider}.fifo: {len(messages)} message(s)")
        for m in messages:
            event = json.loads(m["Body"])
            errors = [f"{e.message} at {list(e.path)}" for e in SCHEMA.iter_errors(event)]
            if errors:
                invalid += 1
                print(f"  NOT AS schema/payhooks-event.schema.json SAYS: {m['Body'][:200]}: {errors}")
            data = event["data"]
            flags = "".join(f"  {flag.upper()}" for flag in ("regression", "contradiction") if data.get(flag))
            state = f"  transaction={data['transaction_status']}" if data.get("transaction_status") else ""
            print(f"  {event['type']:<42} id={event['id']}  group={m['Attributes']['MessageGroupId']}  amount={data.get('amount') or '-'} {data.get('currency') or ''}{state}{flags}")
    print(f"\n{total} message(s) in all, {total - invalid} valid against schema/payhooks-event.schema.json")
    return 1 if invalid else 0


def audit(args):
    """Compare the event ids a load test expected (file) with the messages in the queues: lost (acknowledged,
    never enqueued) and extra (more than one message per id). Reads and deletes every message."""
    expected_file, providers = args[0], args[1:]
    expected = {line.strip() for line in open(expected_file) if line.strip()}
    sqs = client("sqs")
    seen = {}
    for provider in providers:
        url = sqs.get_queue_url(QueueName=f"{STACK}-{provider}.fifo")["QueueUrl"]
        count = 0
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300,
                                        WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                break
            for m in batch:
                event_id = json.loads(m["Body"])["id"]
                seen[event_id] = seen.get(event_id, 0) + 1
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            count += len(batch)
        print(f"  {STACK}-{provider}.fifo: {count} message(s)")
    lost = sorted(expected - set(seen))
    extra = sum(n - 1 for n in seen.values() if n > 1)
    print(f"expected {len(expected)} events: lost {len(lost)}, extra {extra}")
    for event_id in lost[:10]:
        print(f"  lost: {event_id}")
    return 1 if lost or extra else 0


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("create", "show", "audit"):
        raise SystemExit("usage: local_aws.py create|show PROVIDER... | audit EXPECTED_FILE PROVIDER...")
    sys.exit({"create": create, "show": show, "audit": audit}[sys.argv[1]](sys.argv[2:]) or 0)
