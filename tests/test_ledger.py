"""The ledger core's rules and error paths (moto)."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.config import load
from chalicelib.core.errors import Contention, FloorBreached, IdempotencyConflict, InvalidRequest, NotFound
from chalicelib.core.ledger import Ledger
from chalicelib.core.models import EntryModel, IdempotencyModel
from chalicelib.web.errors import from_ledger_error
from helpers import journal


def entries(book: str, account: str) -> list[EntryModel]:
    return journal(Ledger(book), account)


def test_postings_chain_balances_and_number_entries_without_gaps(aws):
    ledger = Ledger("core")
    results = [ledger.post("a", amount) for amount in (10, -3, 0, 7)]
    assert [posting.seq for posting in results] == [1, 2, 3, 4]
    assert [posting.balance_after for posting in results] == [10, 7, 7, 14]
    assert [(entry.seq, entry.amount, entry.balance_after) for entry in entries("core", "a")] == [
        (1, 10, 10), (2, -3, 7), (3, 0, 7), (4, 7, 14)]
    assert ledger.balance("a").entry_count == 4


@pytest.mark.parametrize("amount", ["5", 5.0, True, None, [5]])
def test_a_non_integer_amount_is_refused_before_any_write(aws, amount):
    ledger = Ledger("core")
    with pytest.raises(InvalidRequest):
        ledger.post("a", amount)
    with pytest.raises(NotFound):
        ledger.balance("a")


def test_books_keep_their_own_accounts(aws):
    Ledger("one").post("a", 5)
    with pytest.raises(NotFound):
        Ledger("two").balance("a")


def test_an_account_that_must_exist_is_not_created(aws):
    with pytest.raises(NotFound):
        Ledger("core").post("ghost", 5, create=False)
    with pytest.raises(NotFound):
        Ledger("core").balance("ghost")


def test_a_debit_below_the_floor_is_refused_and_writes_nothing(aws):
    ledger = Ledger("core")
    ledger.post("w", 30, floor=20)
    with pytest.raises(FloorBreached):
        ledger.post("w", -11, idempotency_key="k1")
    assert ledger.balance("w").balance == 30
    assert len(entries("core", "w")) == 1
    with pytest.raises(IdempotencyModel.DoesNotExist):
        IdempotencyModel.get("core:k1")
    assert ledger.post("w", -10).balance_after == 20


def test_credits_are_accepted_below_the_floor(aws):
    ledger = Ledger("core")
    assert ledger.post("w", 5, floor=20).balance_after == 5  # a new wallet starts below its minimum
    assert ledger.post("w", 5).balance_after == 10
    with pytest.raises(FloorBreached):
        ledger.post("w", -1)


def test_a_replayed_key_returns_the_first_result_and_writes_nothing(aws):
    ledger = Ledger("core")
    first = ledger.post("a", 5, idempotency_key="k")
    again = ledger.post("a", 5, idempotency_key="k")
    assert again.replayed and not first.replayed
    assert (again.seq, again.balance_after, again.created_at) == (first.seq, first.balance_after, first.created_at)
    assert len(entries("core", "a")) == 1


@pytest.mark.parametrize("account, amount, request_extra", [("a", 6, None), ("b", 5, None), ("a", 5, {"memo": "x"})])
def test_a_key_reused_for_another_request_is_a_conflict(aws, account, amount, request_extra):
    ledger = Ledger("core")
    ledger.post("a", 5, idempotency_key="k")
    with pytest.raises(IdempotencyConflict):
        ledger.post(account, amount, idempotency_key="k", request=request_extra)
    assert ledger.balance("a").balance == 5


def test_retry_tokens_expire_but_plain_keys_do_not(aws):
    ledger = Ledger("core")
    ledger.post("a", 1, idempotency_key="kept")
    ledger.post("a", 1, idempotency_key="token", key_ttl_seconds=86_400)
    assert IdempotencyModel.get("core:kept").expires_at is None
    expires = IdempotencyModel.get("core:token").expires_at
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)


def test_entry_times_follow_the_sequence_even_when_the_clock_steps_back(aws):
    times = iter([datetime(2030, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC),
                  datetime(2029, 1, 1, tzinfo=UTC)])
    ledger = Ledger("core", clock=lambda: next(times))
    stamps = [ledger.post("a", 1).created_at for _ in range(3)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert stamps[0] == "2030-01-01T00:00:00.000000Z"


def test_when_the_version_keeps_moving_retries_run_out_and_nothing_is_written(aws):
    rival = Ledger("core")
    rival.post("a", 100)

    def clock_with_a_rival_posting():
        # Between this ledger's read and its commit, another writer moves the account on.
        rival.post("a", 1)
        return datetime.now(UTC)

    sleeps = []
    settings = replace(load(), max_attempts=3)
    busy = Ledger("core", settings=settings, clock=clock_with_a_rival_posting, sleep=sleeps.append)
    with pytest.raises(Contention):
        busy.post("a", -50, idempotency_key="k")
    assert ledger_amounts(entries("core", "a")) == [100, 1, 1, 1]
    assert len(sleeps) == 2 and all(0 <= pause <= settings.backoff_cap_ms / 1000 for pause in sleeps)
    with pytest.raises(IdempotencyModel.DoesNotExist):
        IdempotencyModel.get("core:k")


def test_retries_stop_when_the_time_budget_is_spent(aws):
    rival = Ledger("core")
    rival.post("a", 100)
    now = [0.0]

    def clock_with_a_rival_posting():
        rival.post("a", 1)
        now[0] += 0.4  # each round takes 0.4 s of the client's time
        return datetime.now(UTC)

    settings = replace(load(), retry_seconds=1.0, max_attempts=1000)
    busy = Ledger("core", settings=settings, clock=clock_with_a_rival_posting, sleep=lambda _: None,
                  monotonic=lambda: now[0])
    with pytest.raises(Contention):
        busy.post("a", -50)
    assert ledger_amounts(entries("core", "a")) == [100, 1, 1, 1]  # three rounds fit in one second


def test_a_moved_version_is_replanned_and_then_succeeds(aws):
    rival = Ledger("core")
    rival.post("a", 100)
    moves = iter([True, False])

    def clock():
        if next(moves):
            rival.post("a", 1)
        return datetime.now(UTC)

    posting = Ledger("core", clock=clock, sleep=lambda _: None).post("a", -50)
    assert (posting.seq, posting.balance_after) == (3, 51)
    assert ledger_amounts(entries("core", "a")) == [100, 1, -50]


def test_contention_is_a_503_that_asks_to_retry():
    response = from_ledger_error(Contention("busy"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.body["code"] == "contention"


def ledger_amounts(journal: list[EntryModel]) -> list[int]:
    return [entry.amount for entry in journal]


def test_history_pages_newest_first_with_a_cursor(aws):
    ledger = Ledger("core")
    for amount in range(1, 6):
        ledger.post("a", amount)
    first = ledger.history("a", limit=2)
    assert [posting.amount for posting in first.postings] == [5, 4]
    second = ledger.history("a", limit=2, cursor=first.next_cursor)
    assert [posting.amount for posting in second.postings] == [3, 2]
    last = ledger.history("a", limit=2, cursor=second.next_cursor)
    assert [posting.amount for posting in last.postings] == [1]
    oldest_first = ledger.history("a", limit=10, newest_first=False)
    assert [posting.balance_after for posting in oldest_first.postings] == [1, 3, 6, 10, 15]


def test_a_time_range_and_balance_as_of_come_from_the_time_index(aws):
    day = datetime(2030, 1, 1, tzinfo=UTC)
    times = iter([day + timedelta(hours=hour) for hour in range(5)])
    ledger = Ledger("core", clock=lambda: next(times))
    for amount in (10, 20, 30, 40, 50):
        ledger.post("a", amount)
    window = ledger.history("a", start=day + timedelta(hours=1), end=day + timedelta(hours=3), newest_first=False)
    assert [posting.amount for posting in window.postings] == [20, 30, 40]
    assert ledger.balance_as_of("a", day - timedelta(seconds=1)) == 0
    assert ledger.balance_as_of("a", day + timedelta(hours=2, minutes=30)) == 60
    assert ledger.balance_as_of("a", day + timedelta(days=1)) == 150


@pytest.mark.parametrize("cursor", ["not base64!", "bnVsbA==", "W10="])
def test_a_forged_cursor_is_invalid(aws, cursor):
    with pytest.raises(InvalidRequest):
        Ledger("core").history("a", cursor=cursor)


# -- postings written without a read (ledger/sequencer.py) ------------------------------------------------------
def test_a_key_used_again_after_its_record_expired_completes_its_own_record_only(aws):
    """A posting waits in its account's log while its key's record expires (TTL) and the key is used again: the
    drain puts both in the journal and completes only the newer posting's record, which a replay then answers."""
    from chalicelib.core.verify import check_account

    ledger = Ledger("unread", unread_writes=True)
    first = ledger.post("a", 10, idempotency_key="k")
    IdempotencyModel.get(ledger.idempotency_key("k")).delete()  # what TTL does, some time after expires_at
    second = ledger.post("a", 5, idempotency_key="k")
    assert (first.seq, second.seq, second.balance_after) == (1, 2, 15)
    ledger.settle("a")
    record = IdempotencyModel.get(ledger.idempotency_key("k"), consistent_read=True)
    assert (int(record.seq), int(record.balance_after)) == (2, 15)
    replay = ledger.post("a", 5, idempotency_key="k")
    assert (replay.replayed, replay.seq, replay.balance_after) == (True, 2, 15)
    assert [(entry.seq, entry.amount) for entry in entries("unread", "a")] == [(1, 10), (2, 5)]
    assert check_account(ledger, "a") == []


def test_a_period_read_counts_what_it_drained_before_the_index_shows_it(aws):
    """On AWS a GSI lags its table: the entries a read drains just before its Query may be missing from `by_time`.
    The read merges them in (DynamoDB's answer to every Query of the index is made empty, as one that has not
    caught up)."""
    import json

    from botocore.awsrequest import AWSResponse

    from helpers import Body

    answered: list[int] = []

    def index_behind(request, **_kwargs):
        if json.loads(request.body).get("IndexName") != "by_time":
            return None
        answered.append(1)
        return AWSResponse(request.url, 200, {"x-amzn-requestid": "index-behind"},
                           Body(json.dumps({"Items": [], "Count": 0, "ScannedCount": 0}).encode()))

    ledger = Ledger("unread", unread_writes=True)
    for amount in (10, -3, 4):
        ledger.post("a", amount, idempotency_key=f"p{amount}")
    events = EntryModel._get_connection().connection.client.meta.events
    events.register_first("before-send.dynamodb.Query", index_behind)
    try:
        totals = ledger.totals("a", datetime(2020, 1, 1, tzinfo=UTC), None)
    finally:
        events.unregister("before-send.dynamodb.Query", index_behind)
    assert (totals.credit, totals.debit, totals.count) == (14, 3, 3)
    ledger.post("a", 2, idempotency_key="p2")
    events.register_first("before-send.dynamodb.Query", index_behind)
    try:
        assert ledger.as_of("a", datetime.now(UTC) + timedelta(seconds=1)).balance == 13  # its balance after
    finally:
        events.unregister("before-send.dynamodb.Query", index_behind)
    assert len(answered) == 2  # the index answered both reads as one behind
