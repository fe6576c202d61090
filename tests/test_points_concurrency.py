"""Points under concurrency, asserted only against Amazon DynamoDB Local (moto is not atomic)."""
from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

import app as tally
from chalicelib.core.errors import InsufficientPoints
from chalicelib.core.points import PointsBook
from chalicelib.core.verify import check_points_holder
from chalicelib.surfaces import points_tracker
from tools.local_http import request_json as http
from tools.request_counter import DynamoDBRequests

pytestmark = [pytest.mark.race, pytest.mark.usefixtures("verified_afterwards")]
THREADS = 16
START = datetime(2022, 1, 1, tzinfo=UTC)
# The two seed surfaces' spend routes: (their book among the services, method, path).
SPEND_ROUTES = {"000": ("tracker", "POST", "/spend"), "001": ("points", "PUT", "/spend_points")}
HOLDER = points_tracker.HOLDER  # each seed surface's one holder, in a book of its own


def earn_lots(book: PointsBook, holder: str, lots: int, points: int) -> None:
    """Lots from four payers, their timestamps shuffled against arrival order."""
    minutes = random.sample(range(lots * 10), lots)
    for number, minute in enumerate(minutes):
        book.add(holder, f"payer-{number % 4}", points, timestamp=START + timedelta(minutes=minute))


@pytest.mark.parametrize("seed", sorted(SPEND_ROUTES))
def test_sixteen_threads_overspending_one_holder_spend_each_point_once(live_server, seed):
    name, method, path = SPEND_ROUTES[seed]
    book = getattr(tally.services, name)
    earn_lots(book, HOLDER, lots=40, points=10)
    available, unit, per_thread = 400, 7, 7  # 784 points asked for: about twice what exists

    def worker(_):
        return [http(method, live_server + path, {"points": unit})[0] for _ in range(per_thread)]

    with ThreadPoolExecutor(THREADS) as pool:
        statuses = Counter(status for batch in pool.map(worker, range(THREADS)) for status in batch)
    assert statuses == {200: available // unit, 400: THREADS * per_thread - available // unit}, statuses
    balances = book.balances(HOLDER)
    assert sum(balances.values()) == available - unit * (available // unit)
    assert all(points >= 0 for points in balances.values())
    # Replays the journal: no payer or lot ever below zero; open lots == payers == holder total.
    assert check_points_holder(book, HOLDER) == []


def test_sixteen_spends_of_one_holder_without_a_read_empty_each_lot_once_and_leave_no_empty_lot_open(live_server):
    earn_lots(tally.services.tracker, HOLDER, lots=20, points=3)  # every third spend empties a lot

    def worker(_):
        return [http("POST", f"{live_server}/spend", {"points": 1})[0] for _ in range(3)]

    with DynamoDBRequests() as requests, ThreadPoolExecutor(THREADS) as pool:
        statuses = Counter(status for batch in pool.map(worker, range(THREADS)) for status in batch)
    assert statuses == {200: 48}, statuses
    # A spend that finds its lot emptied by another plans again from the lots read consistently, not from a read of
    # the holder: none of them went to the read path (it reads the holder with TransactGetItems).
    assert requests.calls.get("TransactGetItems", 0) == 0, dict(requests.calls)
    assert sum(tally.services.tracker.balances(HOLDER).values()) == 60 - 48
    open_lots = tally.services.tracker.lots(HOLDER)
    assert len(open_lots) == 4 and all(lot.remaining > 0 for lot in open_lots)  # 16 lots emptied, each left the index
    assert check_points_holder(tally.services.tracker, HOLDER) == []


def test_concurrent_adds_and_spends_lose_nothing(live_server):
    earned, spent = Counter(), Counter()

    def earner(index: int) -> None:
        for step in range(8):
            points = random.randint(1, 20)
            status, _ = http("POST", f"{live_server}/add", {
                "payer": f"payer-{(index + step) % 5}", "points": points,
                "timestamp": (START + timedelta(hours=random.randint(0, 1000))).isoformat()})
            assert status == 200
            earned[index] += points

    def spender(index: int) -> None:
        for _ in range(8):
            points = random.randint(1, 15)
            status, body = http("POST", f"{live_server}/spend", {"points": points})
            assert status in (200, 400), (status, body)
            if status == 200:
                assert -sum(item["points"] for item in body) == points
                spent[index] += points

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(earner if index % 2 else spender, index) for index in range(THREADS)]
        for future in futures:
            future.result()
    status, balances = http("GET", f"{live_server}/balance")
    assert status == 200
    assert sum(balances.values()) == sum(earned.values()) - sum(spent.values())
    assert check_points_holder(tally.services.tracker, points_tracker.HOLDER) == []


def test_a_spend_in_parts_racing_small_writes_is_fenced_and_whole(local_tables):
    book = PointsBook("race", sleep=lambda _: None)
    earn_lots(book, "h", lots=300, points=1)
    outcomes = Counter()

    def big(_):
        book.spend("h", 250, idempotency_key="big")  # 250 lots: decided, then three parts
        outcomes["big"] += 1

    def small(index: int):
        for step in range(3):
            try:
                book.spend("h", 1)
                outcomes["small spent"] += 1
            except InsufficientPoints:
                outcomes["small refused"] += 1
            if step < 2:
                book.add("h", f"late-{index}", 1, timestamp=START + timedelta(days=index))
                outcomes["added"] += 1

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda index: big(index) if index == 0 else small(index), range(THREADS)))
    assert outcomes["big"] == 1
    assert outcomes["added"] == 30
    total = 300 + outcomes["added"] - 250 - outcomes["small spent"]
    assert sum(book.balances("h").values()) == total
    assert check_points_holder(book, "h") == []
