"""Where a posting's time goes on this machine: CPU per call of DynamoDB Local's Java process and of this Python
process (the in-process server and its client), one call at a time, after a warm-up (the JIT's), for raw DynamoDB
calls and for seed 004's `POST /amount`. On a machine whose cores the two share, their sum per posting bounds the
postings a second any write protocol can reach. Prints figures; asserts nothing.

    python -m bench.cpu            # on its own DynamoDB Local (Linux: reads /proc)
"""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.common import run_alone, use_fresh_tables
from tools.local_http import request_json as http

WARM_UP = 300
CALLS = 400


def java_seconds() -> float:
    """CPU seconds (user + system) of every DynamoDB Local process on the machine."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"DynamoDBLocal" not in (proc / "cmdline").read_bytes():
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measured(label: str, call: Callable[[], object]) -> None:
    for _ in range(WARM_UP):
        call()
    java, python, wall = java_seconds(), time.process_time(), time.perf_counter()
    for _ in range(CALLS):
        call()
    java, python, wall = (java_seconds() - java, time.process_time() - python, time.perf_counter() - wall)
    print(f"  {label:<44} DynamoDB Local {1000 * java / CALLS:6.2f} ms  Python {1000 * python / CALLS:6.2f} ms  "
          f"wall {1000 * wall / CALLS:6.2f} ms")


def run(base: str, endpoint: str) -> None:
    import boto3

    use_fresh_tables(endpoint, "cpu")
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    table = f"bench-cpu-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=table, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    add = {"UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}
    one, spread = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(100)]
    turn = iter(range(10**9))
    print(f"CPU per call, one at a time ({CALLS} after {WARM_UP} to warm up)")
    measured("raw TransactWriteItems, one item ADD", lambda: client.transact_write_items(
        TransactItems=[{"Update": {"TableName": table, "Key": {"k": {"S": "a"}}, **add}}]))
    measured("raw UpdateItem ADD", lambda: client.update_item(TableName=table, Key={"k": {"S": "b"}}, **add))
    measured("raw GetItem (consistent)", lambda: client.get_item(TableName=table, Key={"k": {"S": "b"}},
                                                                   ConsistentRead=True))
    measured("GET /ping through the local server", lambda: http("GET", f"{base}/ping"))
    measured("004 POST /amount, one account", lambda: http(
        "POST", f"{base}/amount", {"account_id": one, "amount": 1}, {"Transaction-Id": str(uuid.uuid4())}))
    measured("004 POST /amount, 100 accounts", lambda: http(
        "POST", f"{base}/amount", {"account_id": spread[next(turn) % 100], "amount": 1},
        {"Transaction-Id": str(uuid.uuid4())}))


if __name__ == "__main__":
    run_alone(run)
