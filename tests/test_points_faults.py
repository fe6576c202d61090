"""A spend larger than one transaction, with a crash between its transactions, then recovery (DynamoDB Local).

The spend below takes 258 lots: its deciding transaction (#1) and three part transactions
(#2, #3, #4). A crash is a BaseException raised before a send, as if the process died there.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

import app as tally
from chalicelib.config import load
from chalicelib.core.expiry import sweep
from chalicelib.core.models import AccountModel, LinkPartModel, LotModel
from chalicelib.core.points import PointsBook
from chalicelib.core.verify import check_points_holder
from helpers import Crash, LaggingIndex, TransactWriteFaults
from tools.request_counter import DynamoDBRequests

HOLDER = "h"
LOTS, LOT_POINTS, SPEND = 260, 2, 515  # the spend takes 258 lots
EXPECTED = {"P0": 0, "P1": 1, "P2": 2, "P3": 2}


def fast_book(**settings) -> PointsBook:
    return PointsBook("bigspend", settings=replace(load(), **settings), sleep=lambda _: None)


@pytest.fixture
def book(local_tables) -> PointsBook:
    book = fast_book()
    start = datetime(2022, 1, 1, tzinfo=UTC)
    for number in range(LOTS):
        book.add(HOLDER, f"P{number % 4}", LOT_POINTS, timestamp=start + timedelta(minutes=number))
    return book


def open_lot_points(book: PointsBook) -> int:
    return sum(int(lot.remaining) for lot in LotModel.query(book.holder_key(HOLDER), consistent_read=True))


def crash_mid_spend(book: PointsBook, crash_at: int) -> None:
    with TransactWriteFaults(crash_at=crash_at), pytest.raises(Crash):
        book.spend(HOLDER, SPEND, idempotency_key="big-spend")


def assert_spent_once(book: PointsBook) -> None:
    assert book.balances(HOLDER) == EXPECTED
    assert open_lot_points(book) == LOTS * LOT_POINTS - SPEND
    assert check_points_holder(book, HOLDER) == []


def test_a_spend_over_250_lots_commits_in_parts_and_is_whole(book):
    change = book.spend(HOLDER, SPEND, idempotency_key="big-spend")
    assert sum(points for _, points in change.by_payer) == -SPEND
    parts = list(LinkPartModel.query(book.posting_ref(book.holder_key(HOLDER), change.seq), consistent_read=True))
    # 99 items a part besides itself: its lots and the 4 payers they came from.
    assert [len(part.links) for part in parts] == [95, 95, 68] and all(part.applied for part in parts)
    assert_spent_once(book)


def test_a_crash_before_the_deciding_transaction_writes_nothing_and_the_retry_spends_once(book):
    crash_mid_spend(book, crash_at=1)
    assert sum(book.balances(HOLDER).values()) == LOTS * LOT_POINTS
    assert check_points_holder(book, HOLDER) == []
    book.spend(HOLDER, SPEND, idempotency_key="big-spend")
    assert_spent_once(book)


def test_after_a_crash_between_parts_the_balance_is_already_whole_and_a_retry_finishes(book):
    crash_mid_spend(book, crash_at=3)  # decided, part 0 applied, parts 1 and 2 not
    # The holder's total is already the whole spend; its lots stay fenced until it completes.
    assert AccountModel.get(book.holder_key(HOLDER), consistent_read=True).balance == sum(EXPECTED.values())
    assert AccountModel.get(book.holder_key(HOLDER), consistent_read=True).pending
    assert open_lot_points(book) == LOTS * LOT_POINTS - 95 * LOT_POINTS
    assert any("pending" in problem for problem in check_points_holder(book, HOLDER))
    replayed = book.spend(HOLDER, SPEND, idempotency_key="big-spend")
    assert replayed.replayed and sum(points for _, points in replayed.by_payer) == -SPEND
    assert_spent_once(book)


def test_reading_the_balances_finishes_a_crashed_spend_first(book):
    crash_mid_spend(book, crash_at=3)
    # Payer items move with the parts, so the balances view completes the take, as every writer does.
    assert book.balances(HOLDER) == EXPECTED
    assert_spent_once(book)


def test_the_recovery_step_finishes_a_crashed_spend(book):
    crash_mid_spend(book, crash_at=2)  # decided, no part applied
    assert book.settle(HOLDER) is True
    assert book.settle(HOLDER) is False  # nothing left to do
    assert_spent_once(book)


def test_the_scheduled_sweep_finds_and_finishes_a_crashed_spend(book):
    crash_mid_spend(book, crash_at=3)
    assert list(PointsBook.pending_holders()) == [("bigspend", HOLDER)]
    swept = sweep(tally.services.v1_book, datetime.now(UTC))
    assert swept.settled == 1 and list(PointsBook.pending_holders()) == []
    assert_spent_once(book)


def test_the_next_write_to_the_holder_finishes_a_crashed_spend_first(book):
    crash_mid_spend(book, crash_at=4)  # the last part was not applied
    book.add(HOLDER, "P9", 5, timestamp=datetime(2021, 1, 1, tzinfo=UTC))
    assert book.balances(HOLDER) == {**EXPECTED, "P9": 5}
    assert check_points_holder(book, HOLDER) == []
    # The new, older lot is the first one spent next.
    assert book.spend(HOLDER, 6).by_payer == [("P9", -5), ("P1", -1)]
    assert check_points_holder(book, HOLDER) == []


def test_a_part_whose_answer_was_lost_is_resent_and_applied_once(book):
    # Send #2 (part 0) lands but its answer is lost, five times over with botocore's own retries.
    with TransactWriteFaults(failures=6, forward=2) as faults:
        book.spend(HOLDER, SPEND, idempotency_key="big-spend")
    assert faults.tokens[1] == faults.tokens[2]  # the part is resent under its own token
    assert_spent_once(book)


def test_two_recoveries_racing_apply_each_part_once(book):
    crash_mid_spend(book, crash_at=2)
    other = fast_book()
    with TransactWriteFaults(crash_at=3), pytest.raises(Crash):
        other.settle(HOLDER)  # applies part 0, then dies
    assert book.settle(HOLDER) is True
    assert_spent_once(book)


def test_a_plan_from_a_lagging_index_fails_on_the_lot_and_is_rechecked_consistently(local_tables):
    book = fast_book()
    book.add(HOLDER, "A", 10, timestamp=datetime(2022, 1, 1, tzinfo=UTC))
    book.add(HOLDER, "B", 10, timestamp=datetime(2022, 1, 2, tzinfo=UTC))
    with LaggingIndex() as index, DynamoDBRequests() as requests:
        book.spend(HOLDER, 6)  # recorded: the index as it was, A at 10
        index.recording = False
        requests.reset()
        # The index still says A has 10; the table says 4. The lot's condition refuses the stale plan,
        # and the next plan re-reads the lots the index named, consistently.
        change = book.spend(HOLDER, 6)
    assert change.by_payer == [("A", -4), ("B", -2)]
    assert index.replayed == 2 and requests.calls["BatchGetItem"] == 1
    assert book.balances(HOLDER) == {"A": 0, "B": 8}
    assert check_points_holder(book, HOLDER) == []
