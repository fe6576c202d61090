"""Hot accounts against ordinary ones, all through the real HTTP stack, 16 client threads each, read together:

- one hot account (32 shards): credits only, then credits and debits mixed;
- one ordinary account, and the same postings spread over 100 ordinary accounts;
- the physical reference: raw TransactWriteItems on one item, on the same DynamoDB Local.

Every /v1 posting is two legs (the account, and the system account @world:<unit>, itself hot), so each row pays
the same double entry. `python -m bench.hot` runs this section alone; `--against URL --key TOKEN` runs the /v1 rows
against a server already running (`make run`), for as many seconds per row as `--seconds` says.
"""
from __future__ import annotations

import argparse
import uuid

from bench.common import CONTENDED_HEADER, THREADS, contended, contended_cells, for_seconds, note, table
from tools.local_http import request_json as http

PER_THREAD = 25  # 400 postings a row
HOT_SHARDS = 32


def earn(base: str, account_id: str) -> int:
    return http("POST", f"{base}/v1/points/earn", {"account_id": account_id, "payer": "brand", "points": 1},
                {"Idempotency-Key": str(uuid.uuid4())})[0]


def members(base: str, tag: str) -> list[str]:
    """A points account per thread: their earns all count against the issuer, @world:points."""
    names = [f"member-{tag}-{number}" for number in range(THREADS)]
    for name in names:
        open_account(base, name, unit="points", kind="points")
    return names


def post(base: str, account_id: str, amount: int) -> int:
    return http("POST", f"{base}/v1/postings", {"account_id": account_id, "amount": amount},
                {"Idempotency-Key": str(uuid.uuid4())})[0]


def open_account(base: str, account_id: str, **fields) -> None:
    status, body = http("POST", f"{base}/v1/accounts", {"id": account_id, "unit": "USD", **fields},
                        {"Idempotency-Key": str(uuid.uuid4())})
    assert status == 201, body


def raw_transact_writes(endpoint: str, per_thread: int) -> dict:
    """TransactWriteItems of one item (ADD, no condition) from 16 threads: what DynamoDB Local does at best."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    table = f"bench-raw-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=table, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")

    def write(_index: int, _step: int) -> int:
        client.transact_write_items(TransactItems=[{"Update": {
            "TableName": table, "Key": {"k": {"S": "one"}}, "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
        return 200

    class NoCount:  # boto3's own client: nothing here goes through PynamoDB's counted clients
        total = 0

        def reset(self) -> None:
            pass

    result = contended(NoCount(), write, per_thread)
    client.delete_table(TableName=table)
    return result


def rows(base: str, requests, tag: str) -> list[tuple[str, dict]]:
    """The /v1 rows, on accounts of their own (`tag` keeps reruns on one server apart)."""
    hot, ordinary = f"hot-{tag}", f"one-{tag}"
    spread = [f"spread-{tag}-{number}" for number in range(100)]
    open_account(base, hot, shards=HOT_SHARDS)
    open_account(base, ordinary)
    for account_id in spread:
        open_account(base, account_id)
    # Warm up (DynamoDB Local's JIT, every shard's first read): not counted.
    contended(requests, lambda index, step: post(base, spread[(index * 10 + step) % 100], 1), 10)
    contended(requests, lambda index, step: post(base, hot, 1), 5)
    results = [(f"one hot account ({HOT_SHARDS} shards), credits",
                contended(requests, lambda index, step: post(base, hot, 1), PER_THREAD)),
               # Half the threads credit 2, half debit 1: the balance only grows, so no debit is refused.
               (f"one hot account ({HOT_SHARDS} shards), credits and debits",
                contended(requests, lambda index, step: post(base, hot, 2 if index % 2 else -1), PER_THREAD)),
               ("one ordinary account, credits",
                contended(requests, lambda index, step: post(base, ordinary, 1), PER_THREAD)),
               ("100 ordinary accounts, credits",
                contended(requests, lambda index, step: post(base, spread[(index * PER_THREAD + step) % 100], 1),
                          PER_THREAD))]
    earners = members(base, tag)
    results.insert(3, ("the issuer: earns into 16 points accounts (@world:points, 32 shards)",
                       contended(requests, lambda index, step: earn(base, earners[index]), PER_THREAD)))
    return results


def print_rows(title: str, results: list[tuple[str, dict]], raw: dict | None) -> None:
    spread = results[-1][1]["per_second"]
    body = [[label, *contended_cells(result), f"{result['per_second'] / spread:.2f}"] for label, result in results]
    if raw is not None:
        body.append(["raw TransactWriteItems, one item (no Tally)", *contended_cells(raw),
                     f"{raw['per_second'] / spread:.2f}"])
    table(title, ["case", *CONTENDED_HEADER, "x 100 accounts"], body)
    note("targets: hot credits >= 0.8x, hot mixed >= 0.6x the 100-account rate; one ordinary account <= 6 "
         "DynamoDB requests per posting")


def run(base: str, endpoint: str) -> None:
    from bench.common import use_fresh_tables
    from tools.request_counter import DynamoDBRequests

    use_fresh_tables(endpoint, "hot")
    with DynamoDBRequests() as requests:
        results = rows(base, requests, "bench")
    raw = raw_transact_writes(endpoint, PER_THREAD)
    print_rows(f"/v1 hot and ordinary accounts, POST /v1/postings from {THREADS} threads, 400 postings a row",
               results, raw)


def against(base: str, key: str, seconds: float) -> None:
    """On a running server, 16 threads for `seconds` each: postings to a fresh hot account, then to an ordinary
    one, then earns into 16 points accounts (all against the issuer, @world:points). Accepted per second, and
    what was read back (nothing lost)."""
    from tools import local_http

    local_http.v1_key = key
    tag = uuid.uuid4().hex[:6]
    cases = ((f"postings, one hot account ({HOT_SHARDS} shards)", f"hot-{tag}", {"shards": HOT_SHARDS}),
             ("postings, one ordinary account", f"one-{tag}", {}))
    for label, account_id, fields in cases:
        open_account(base, account_id, **fields)
        result = for_seconds(lambda _index, account_id=account_id: post(base, account_id, 1), seconds)
        elapsed, statuses = result["elapsed"], result["statuses"]
        balance = http("GET", f"{base}/v1/accounts/{account_id}")[1]["balance"]
        print(f"{label}: {statuses.get(201, 0) / elapsed:.1f}/s accepted over {elapsed:.1f}s ({THREADS} threads), "
              f"statuses {statuses}, balance {balance} (lost: {statuses.get(201, 0) - balance})")
    earners = members(base, tag)
    issuer_before = http("GET", f"{base}/v1/accounts/@world:points")[1]["balance"]
    result = for_seconds(lambda index: earn(base, earners[index]), seconds)
    elapsed, statuses = result["elapsed"], result["statuses"]
    earned = sum(http("GET", f"{base}/v1/accounts/{name}")[1]["balance"] for name in earners)
    issuer = http("GET", f"{base}/v1/accounts/@world:points")[1]["balance"]
    print(f"earns, the issuer @world:points: {statuses.get(201, 0) / elapsed:.1f}/s accepted over {elapsed:.1f}s "
          f"({THREADS} threads), statuses {statuses}, earned {earned}, issuer moved {issuer_before - issuer}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", help="the base URL of a running server (make run)")
    parser.add_argument("--key", help="its /v1 key (make run prints it)")
    parser.add_argument("--seconds", type=float, default=20.0)
    arguments = parser.parse_args()
    if arguments.against:
        against(arguments.against.rstrip("/"), arguments.key, arguments.seconds)
        return
    from bench.common import run_alone

    run_alone(run)


if __name__ == "__main__":
    main()
