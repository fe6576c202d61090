"""Points figures, seeds 000 and 001 through the real HTTP stack: requests and capacity per operation,
spend latency with and without 100k exhausted lots behind the open ones, spends per second on one holder."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bench.common import (
    CONTENDED_HEADER,
    REQUEST_HEADER,
    THREADS,
    contended,
    contended_cells,
    median_ms,
    note,
    request_rows,
    table,
    use_fresh_tables,
)
from chalicelib.core.points import PointsBook
from chalicelib.surfaces import points_app, points_tracker
from tools.local_http import request_json as http

START = datetime(2022, 1, 1, tzinfo=UTC)


def earn(book, holder: str, lots: int, points: int, payers: int = 5) -> None:
    """Set-up through the core (same process, same tables): `lots` lots, oldest first."""
    for number in range(lots):
        book.add(holder, f"payer-{number % payers}", points, timestamp=START + timedelta(minutes=number))


def spend(base: str, points: int, key: str | None = None):
    return http("POST", f"{base}/spend", {"points": points}, {"Idempotency-Key": key} if key else None)


def request_counts(base: str, requests, services) -> list[list]:
    earn(services.tracker, points_tracker.HOLDER, lots=400, points=1)
    earn(services.points, points_app.HOLDER, lots=10, points=10)
    add = {"payer": "payer-0", "points": 1, "timestamp": "2030-01-01T00:00:00Z"}
    # Seeds 000 and 001 keep a snapshot of the holder's balances by payer per container (core/payer_snapshots.py):
    # the first read of a container, or one after another container's write, reads the payers; after that, the
    # container's own reads and changes keep it current. Rows say which they are; the targets are issue 24's.
    return request_rows(requests, [
        ("GET /balance, first read of the container (or after another's write)",
         lambda: http("GET", f"{base}/balance"), 1),
        ("GET /balance, unchanged since the container's last read", lambda: http("GET", f"{base}/balance"), 1),
        ("POST /add", lambda: http("POST", f"{base}/add", add), 2),
        ("POST /add, negative (1 lot)", lambda: http("POST", f"{base}/add", {**add, "points": -1}), 3),
        ("POST /spend, 1 lot", lambda: spend(base, 1, "bench-1"), 3),
        ("POST /spend, replayed key", lambda: spend(base, 1, "bench-1"), 2),
        ("POST /spend, 10 lots", lambda: spend(base, 10), 3),
        ("GET /balance, after the container's own changes", lambda: http("GET", f"{base}/balance"), 1),
        ("POST /spend, 96 lots (2 index pages)", lambda: spend(base, 96), 4),
        ("POST /spend, 250 lots (in 3 parts)", lambda: spend(base, 250), 14),
        ("GET /balance, after a spend in parts", lambda: http("GET", f"{base}/balance"), 1),
        ("POST /transaction (001)", lambda: http("POST", f"{base}/transaction", {"payer": "p", "points": 5}), 2),
        ("PUT /spend_points (001), 1 lot, first of the container", lambda: http(
            "PUT", f"{base}/spend_points", {"points": 5}), 3),
        ("PUT /spend_points (001), 1 lot", lambda: http("PUT", f"{base}/spend_points", {"points": 5}), 3),
        ("GET / (001)", lambda: http("GET", f"{base}/"), 1),
    ])


def bury_exhausted_lots(holder_key: str, count: int) -> None:
    """Spent history: lots at remaining 0 carry no open-index keys, exactly as a spend leaves them."""
    from chalicelib.core.models import LotModel
    with LotModel.batch_write() as lots:
        for number in range(count):
            stamp = f"{START - timedelta(days=1, seconds=number):%Y-%m-%dT%H:%M:%S}.000000Z"
            lots.save(LotModel(holder_key, 10**9 + number, payer=f"payer-{number % 5}", points=10, remaining=0,
                               timestamp=stamp, fifo=f"{stamp}#{10**9 + number:012d}"))


def spend_latency_vs_history(base: str, endpoint: str, tracker: PointsBook) -> tuple[dict[str, float], float]:
    medians, seeded = {}, 0.0
    for label, exhausted in (("none", 0), ("100k", 100_000)):
        use_fresh_tables(endpoint, f"points-{label}")
        earn(tracker, points_tracker.HOLDER, lots=300, points=10)
        start = time.perf_counter()
        bury_exhausted_lots(tracker.holder_key(points_tracker.HOLDER), exhausted)
        seeded = max(seeded, time.perf_counter() - start)
        medians[label] = median_ms(lambda: spend(base, 5), samples=200)  # each spend takes from one lot
    return medians, seeded


def run(base: str, endpoint: str) -> None:
    import app as tally
    from tools.request_counter import DynamoDBRequests

    use_fresh_tables(endpoint, "points")
    with DynamoDBRequests() as requests:
        table("Seeds 000/001: DynamoDB requests and capacity units per operation (uncontended)", REQUEST_HEADER,
              request_counts(base, requests, tally.services))
    use_fresh_tables(endpoint, "points-race")  # new tables, new clients: count on them
    earn(tally.services.tracker, points_tracker.HOLDER, lots=100, points=10)
    with DynamoDBRequests() as requests:
        race = contended(requests, lambda index, step: spend(base, 1)[0], per_thread=25)
    table(f"POST /spend of 1 point, {THREADS} client threads, one holder", ["spends", *CONTENDED_HEADER],
          [[race["calls"], *contended_cells(race)]])

    medians, seeded = spend_latency_vs_history(base, endpoint, tally.services.tracker)
    table("POST /spend latency (median of 200, ms) vs exhausted lots behind 300 open ones",
          ["exhausted lots", "none", "100k", "ratio (target <= 1.2)"],
          [["POST /spend, 1 lot", f"{medians['none']:.2f}", f"{medians['100k']:.2f}",
            f"{medians['100k'] / medians['none']:.2f}"]])
    note(f"(100k exhausted lots written in {seeded:.0f}s, straight to the lots table, as spends leave them)")
