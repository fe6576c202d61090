"""Points adds and spends at 10 and at 10,000 distinct payers (256 characters each) on one holder: DynamoDB
requests and the capacity units DynamoDB Local reports, per operation, through the core. Per-payer balances live
in their own items, so the figures should not move with the number of payers (the holder's list of payers
reached DynamoDB's 400 KB item limit at about 1,500 such payers).

`python -m bench.payers` runs it on a DynamoDB Local of its own; `make bench` runs it too."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bench.common import REQUEST_HEADER, note, table, use_fresh_tables, use_local_environment

START = datetime(2022, 1, 1, tzinfo=UTC)


def payer(number: int) -> str:
    return f"{number:08d}".ljust(256, "p")


def seed(book, holder: str, payers: int) -> None:
    """One 1-point lot from each payer, through the core (every payer item and lot as an add makes them)."""
    for number in range(payers):
        book.add(holder, payer(number), 1, timestamp=START + timedelta(seconds=number))


def rows_for(book, holder: str, payers: int) -> list[list]:
    from tools.request_counter import DynamoDBRequests

    operations = [
        ("add, a payer seen before", lambda: book.add(holder, payer(0), 5, timestamp=START + timedelta(days=9999))),
        ("add, a new payer", lambda: book.add(holder, "new".ljust(256, "n"), 5, timestamp=START)),
        ("spend 1 point (1 lot)", lambda: book.spend(holder, 1)),
        ("add, negative (1 lot)", lambda: book.add(holder, payer(2), -1, timestamp=START)),
        ("balances (every payer)", lambda: book.balances(holder)),
    ]
    rows = []
    with DynamoDBRequests() as requests:
        for name, call in operations:
            requests.reset()
            call()
            rows.append([f"{name}, {payers:,} payers", requests.total, "-", f"{requests.read_units:g}",
                         f"{requests.write_units:g}", ", ".join(sorted(requests.calls))])
    return rows


def run(endpoint: str) -> None:
    from chalicelib.core.points import PointsBook

    rows, seeded = [], {}
    for payers in (10, 10_000):
        use_fresh_tables(endpoint, f"payers-{payers}")
        book = PointsBook("payers")
        start = time.perf_counter()
        seed(book, "holder", payers)
        seeded[payers] = time.perf_counter() - start
        rows += rows_for(book, "holder", payers)
    table("Points: DynamoDB requests and capacity units per operation vs distinct payers (256 characters each)",
          REQUEST_HEADER, rows)
    note(f"({seeded[10_000]:.0f}s to add 10,000 payers one by one through the core)")


if __name__ == "__main__":
    use_local_environment()
    from tools import dynamodb_local

    with dynamodb_local.running(existing=dynamodb_local.endpoint_from_environment()) as endpoint:
        run(endpoint)
