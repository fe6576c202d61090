"""Bounded work on DynamoDB Local, where moto is lenient (item sizes, consumed capacity): a write DynamoDB
refuses for its size is the client's 400 at once, never retried into a 503."""
from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.config import load
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.ledger import Extension, Ledger
from chalicelib.core.models import AccountModel
from tools.request_counter import DynamoDBRequests


def test_a_write_over_the_item_size_limit_is_a_400_and_is_not_retried(local_tables):
    ledger = Ledger("limits", settings=replace(load(), retry_seconds=5), sleep=lambda _: None)
    ledger.post("a", 1)
    AccountModel.get(ledger.account_key("a")).update(actions=[AccountModel.metadata.set({"big": "x" * 300_000})])

    def grow(_draft) -> Extension:  # takes the account item past DynamoDB's 400 KB
        return Extension(account_actions=[AccountModel.wallet_type.set("y" * 150_000)])

    with DynamoDBRequests() as requests, pytest.raises(InvalidRequest, match="too large"):
        ledger.post("a", 1, extend=grow)
    assert requests.calls["TransactWriteItems"] == 1  # refused once, not retried until the budget ran out
    assert ledger.balance("a").balance == 1


@pytest.mark.slow
def test_adds_and_spends_cost_the_same_at_1600_long_payers_as_at_10(local_tables):
    """The holder once listed every payer: about 1,500 payers of 256 characters took it past 400 KB, and every
    add failed (each failing request re-read the 400 KB item until its retries ran out)."""
    from datetime import UTC, datetime, timedelta

    from chalicelib.core.points import PointsBook
    from chalicelib.core.verify import check_points_holder

    book = PointsBook("many", settings=replace(load(), retry_seconds=5), sleep=lambda _: None)
    start = datetime(2022, 1, 1, tzinfo=UTC)

    def add_payers(first: int, last: int) -> None:
        for number in range(first, last):
            book.add("h", f"{number:04d}".ljust(256, "p"), 1, timestamp=start + timedelta(seconds=number))

    def costs() -> tuple:
        with DynamoDBRequests() as requests:
            book.add("h", "0000".ljust(256, "p"), 2, timestamp=start + timedelta(days=1))
            add = (requests.total, requests.read_units, requests.write_units)
            requests.reset()
            book.spend("h", 1)
            return add, (requests.total, requests.read_units, requests.write_units)

    add_payers(0, 10)
    at_10 = costs()
    add_payers(10, 1_600)
    assert costs() == at_10
    assert len(book.balances("h")) == 1_600 and check_points_holder(book, "h") == []


def test_a_posting_on_an_account_with_the_largest_metadata_costs_at_most_twice_a_plain_one(local_tables):
    """Metadata lives on the account item, which every posting reads and rewrites: its cap (4,096 bytes of keys
    and values) bounds what it adds to each posting's capacity."""
    from chalicelib.core.transactions import MAX_METADATA_BYTES, MAX_METADATA_KEYS, Transactions

    book = Transactions("v1.limits")
    largest = {f"{number:02d}".ljust(40, "k"): "v" * (MAX_METADATA_BYTES // MAX_METADATA_KEYS - 40)
               for number in range(MAX_METADATA_KEYS)}
    largest["00".ljust(40, "k")] += "v" * (MAX_METADATA_BYTES % MAX_METADATA_KEYS)  # every byte allowed
    assert sum(len(key) + len(value) for key, value in largest.items()) == MAX_METADATA_BYTES
    costs = {}
    for account_id, metadata in (("plain", None), ("noted", largest)):
        book.open_account(account_id, "USD", metadata=metadata, idempotency_key=f"open-{account_id}")
        book.post(account_id, 100, idempotency_key=f"warm-{account_id}")
        with DynamoDBRequests() as requests:
            book.post(account_id, 100, idempotency_key=f"post-{account_id}")
        costs[account_id] = (requests.read_units, requests.write_units)
    (plain_read, plain_write), (noted_read, noted_write) = costs["plain"], costs["noted"]
    assert noted_read <= 2 * plain_read and noted_write <= 2 * plain_write, costs
