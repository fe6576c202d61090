"""Lost and refused answers on the write path, injected at the botocore layer, on DynamoDB Local.

A `before-send` hook stands between botocore and DynamoDB Local: it can forward a
TransactWriteItems for real and still hand botocore an error (the write landed, the
answer was lost), or answer an error without forwarding (the write never landed).
"""
from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from chalicelib.config import load
from chalicelib.core.errors import Contention
from chalicelib.core.ledger import Ledger
from helpers import TransactWriteFaults, journal


def fast_ledger(book: str, **settings) -> Ledger:
    return Ledger(book, settings=replace(load(), **settings), sleep=lambda _: None)


def test_a_lost_answer_is_resent_with_the_same_token_and_applied_once(local_tables):
    ledger = fast_ledger("faults")
    # Botocore retries a 500 itself (4 sends in all), then the ledger resends: 6 sends, the first one landed.
    with TransactWriteFaults(failures=5, forward=1) as faults:
        posting = ledger.post("a", 25, idempotency_key="k1")
    assert len(faults.tokens) == 6 and len(set(faults.tokens)) == 1
    assert (posting.seq, posting.balance_after, posting.replayed) == (1, 25, False)
    assert [entry.amount for entry in journal(ledger, "a")] == [25]
    assert ledger.balance("a").balance == 25


def test_a_refused_write_is_resent_and_applied_once(local_tables):
    ledger = fast_ledger("faults")
    ledger.post("a", 10)
    with TransactWriteFaults(failures=5) as faults:
        posting = ledger.post("a", -4, idempotency_key="k2")
    assert len(set(faults.tokens)) == 1
    assert posting.balance_after == 6
    assert [entry.amount for entry in journal(ledger, "a")] == [10, -4]


def test_when_the_answer_never_comes_the_client_retry_with_its_key_finds_the_landed_write(local_tables):
    ledger = fast_ledger("faults", max_attempts=2)
    with TransactWriteFaults(failures=1000, forward=1), pytest.raises(Contention):
        ledger.post("a", 7, idempotency_key=str(uuid.UUID(int=7)))
    # It landed although nobody heard: the client's retry with the same key replays it, once.
    again = ledger.post("a", 7, idempotency_key=str(uuid.UUID(int=7)))
    assert (again.replayed, again.seq, again.balance_after) == (True, 1, 7)
    assert [entry.amount for entry in journal(ledger, "a")] == [7]
