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

pytestmark = pytest.mark.dynamodb_local


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
