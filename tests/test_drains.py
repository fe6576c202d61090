"""The drainer of idle logs (core/drains.py) on what a stream batch may hold, without a table: which items it
settles, and that a batch out of time fails (Lambda delivers it again) rather than dropping the rest."""
from __future__ import annotations

import pytest

from chalicelib.core import drains


def record(key: str, waiting: bool, event: str = "MODIFY") -> dict:
    image = {"key": {"S": key}, "log": {"L": [{"M": {}}] if waiting else []}}
    return {"eventName": event, "dynamodb": {"NewImage": image}}


def test_only_items_whose_newest_image_holds_a_log_are_settled_each_once():
    batch = [record("a", True), record("b", True), record("a", False), record("c", False), record("d", True),
             record("d", True), record("e", True, event="REMOVE"), {"eventName": "MODIFY", "dynamodb": {}}]
    # a: drained by its last write; b, d: still waiting (d once); c: nothing logged; e: deleted.
    assert drains.waiting_items(batch) == ["b", "d"]


def test_a_batch_out_of_time_fails_so_it_is_delivered_again():
    ticks = iter([0.0, drains.BATCH_SECONDS + 1])
    with pytest.raises(drains.DrainUnfinished, match="2 of 2 items left"):
        drains.drain_logs([record("a", True), record("b", True)], budget=lambda: None,
                          monotonic=lambda: next(ticks))


def test_an_item_the_drain_could_not_settle_while_nothing_wrote_it_fails_the_batch(local_tables):
    """A drain that loses while no write lands (here: every try conflicts) would get no later record of the item:
    the batch fails, to be delivered again, and the posting is still in the log for that delivery."""
    import app as tally
    from chalicelib.core.models import AccountModel
    from helpers import DynamoDBFaults

    tally.services.accounts.post("quiet", 5)  # seed 004: written without a read, it waits in the account's log
    key = tally.services.accounts.account_key("quiet")
    with DynamoDBFaults("TransactWriteItems", failures=100, code="TransactionConflictException"), \
            pytest.raises(drains.DrainUnfinished, match="1 of 1 items could not be drained"):
        drains.drain_logs([record(key, True)], tally.services.drain_budget)
    assert len(AccountModel.get(key, consistent_read=True).log) == 1
    assert drains.drain_logs([record(key, True)], tally.services.drain_budget) == drains.Drained(1, 0)
    assert not AccountModel.get(key, consistent_read=True).log
