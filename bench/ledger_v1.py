"""/v1 figures through the real HTTP stack: DynamoDB requests and capacity per operation, transfers per
second between two accounts (both ways) and holds per second on one account, each from 16 threads."""
from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from bench.common import (
    CONTENDED_HEADER,
    KEYED_REQUEST_HEADER,
    THREADS,
    contended,
    contended_cells,
    request_rows,
    table,
    use_fresh_tables,
)
from tools.local_http import request_json as http


def write(base: str, path: str, body: dict | None = None, key: str | None = None):
    return http("POST", f"{base}{path}", body or {}, {"Idempotency-Key": key or str(uuid.uuid4())})


def request_counts(base: str, requests) -> list[list]:
    for account_id, unit, kind in (("alice", "USD", "standard"), ("bob", "USD", "standard"),
                                   ("member", "points", "points")):
        write(base, "/v1/accounts", {"id": account_id, "unit": unit, "kind": kind})
    write(base, "/v1/postings", {"account_id": "alice", "amount": 10_000})
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    for payer in ("A", "B", "C"):
        write(base, "/v1/points/earn", {"account_id": "member", "payer": payer, "points": 100, "expires_at": expires})
    made: dict[str, dict] = {}

    def keep(name, call):
        def run():
            made[name] = call()[1]
        return run

    from chalicelib.core.models import ApiKeyModel

    return request_rows(requests, [
        ("POST /v1/accounts", lambda: write(base, "/v1/accounts", {"unit": "USD"}), 2),
        ("POST /v1/postings", lambda: write(base, "/v1/postings", {"account_id": "alice", "amount": 5}), 2),
        ("POST /v1/transfers", keep("transfer", lambda: write(base, "/v1/transfers", {
            "source": "alice", "destination": "bob", "amount": 100}, key="bench-transfer")), 2),
        # The cancelled write (the record comes back with it), the transaction, and its legs from their accounts'
        # logs while they wait there (2 once drained).
        ("  the same Idempotency-Key again", lambda: write(base, "/v1/transfers", {
            "source": "alice", "destination": "bob", "amount": 100}, key="bench-transfer"), 3),
        ("POST /v1/transactions/{id}/reversals (transfer)", lambda: write(
            base, f"/v1/transactions/{made['transfer']['id']}/reversals", {"amount": 40}), 4),
        ("POST /v1/holds", keep("hold", lambda: write(base, "/v1/holds", {"account_id": "alice", "amount": 300})), 2),
        ("POST /v1/holds/{id}/capture (to an account)", lambda: write(
            base, f"/v1/holds/{made['hold']['id']}/capture", {"amount": 200, "destination": "bob"}), 4),
        ("POST /v1/points/earn (expiring)", lambda: write(base, "/v1/points/earn", {
            "account_id": "member", "payer": "D", "points": 50, "expires_at": expires}), 2),
        ("POST /v1/points/spend (3 lots)", keep("spend", lambda: write(base, "/v1/points/spend", {
            "account_id": "member", "points": 250})), 3),
        ("POST /v1/transactions/{id}/reversals (spend, 3 lots)", lambda: write(
            base, f"/v1/transactions/{made['spend']['id']}/reversals", {}), 6),
        ("GET /v1/accounts/{id}", lambda: http("GET", f"{base}/v1/accounts/alice"), 1),
        ("GET /v1/accounts/{id}/balance?as_of=", lambda: http(
            "GET", f"{base}/v1/accounts/alice/balance?as_of={datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"), 2),
        # A journal read settles first: the account's log read (and drained when postings wait there).
        ("GET /v1/accounts/{id}/entries (a page)", lambda: http("GET", f"{base}/v1/accounts/alice/entries"), 2),
        ("GET /v1/transactions/{id}", lambda: http("GET", f"{base}/v1/transactions/{made['transfer']['id']}"), 1),
        ("POST /v1/postings, 4 searchable metadata keys", lambda: write(base, "/v1/postings", {
            "account_id": "alice", "amount": 5, "metadata": {"order": "o1", "shop": "s1", "channel": "web",
                                                             "region": "eu"}}), 2),
        ("GET /v1/accounts (a page)", lambda: http("GET", f"{base}/v1/accounts?limit=100"), 3),
        ("GET /v1/accounts?unit=&kind= (a page)", lambda: http("GET", f"{base}/v1/accounts?unit=USD&kind=standard"), 2),
        # Legs still waiting in their accounts' logs: one BatchGetItem of those accounts.
        ("GET /v1/transactions?metadata= (a page)", lambda: http("GET", f"{base}/v1/transactions?metadata=order:o1"),
         3),
        # The account's journal settled (its log's read, and a drain when postings wait), then the legs waiting.
        ("GET /v1/transactions?account_id= (a page)", lambda: http("GET", f"{base}/v1/transactions?account_id=alice"),
         5),
        ("GET /v1/holds?status= (a page)", lambda: http("GET", f"{base}/v1/holds?status=authorized"), 1),
        ("GET /v1/accounts/{id}/statement", lambda: http(
            "GET", f"{base}/v1/accounts/alice/statement?start=2020-01-01T00:00:00Z"), 4),
    ], authorizer_table=ApiKeyModel.Meta.table_name)


def run(base: str, endpoint: str) -> None:
    from chalicelib.core.api_keys import ApiKeys
    from tools import local_http
    from tools.request_counter import DynamoDBRequests

    use_fresh_tables(endpoint, "v1")
    local_http.v1_key = ApiKeys(live=False).create("bench", ["admin"])[1]  # every /v1 call below uses it
    with DynamoDBRequests() as requests:
        table("/v1: DynamoDB requests and capacity units per operation (uncontended; capacity units and calls "
              "include the uncached key read)", KEYED_REQUEST_HEADER, request_counts(base, requests))
        for account_id in ("left", "right"):
            write(base, "/v1/accounts", {"id": account_id, "unit": "USD"})
            write(base, "/v1/postings", {"account_id": account_id, "amount": 1_000_000})
        rng = random.Random(1)
        directions = [[rng.random() < 0.5 for _ in range(25)] for _ in range(THREADS)]
        transfers = contended(requests, lambda index, step: write(base, "/v1/transfers", {
            "source": "left" if directions[index][step] else "right",
            "destination": "right" if directions[index][step] else "left", "amount": 7})[0], per_thread=25)
        holds = contended(requests, lambda index, step: write(base, "/v1/holds", {
            "account_id": "left", "amount": 3})[0], per_thread=25)
    table(f"/v1 under contention, {THREADS} client threads", ["operation", "calls", *CONTENDED_HEADER], [
        ["POST /v1/transfers, two accounts, both ways", transfers["calls"], *contended_cells(transfers)],
        ["POST /v1/holds, one account", holds["calls"], *contended_cells(holds)]])
