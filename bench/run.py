"""`make bench`: Tally's figures on Amazon DynamoDB Local (127.0.0.1 only), printed as tables and written as
Markdown to docs/benchmarks/latest.md (or `TALLY_BENCH_OUT`), with date, commit and machine, and drawn as PNG
charts beside it (bench/charts.py).

Every request goes through the real stack: HTTP -> Chalice's local server ->
handlers -> ledger core -> PynamoDB -> DynamoDB Local. DynamoDB requests are
counted with a botocore `before-call` hook. Nothing here asserts timings.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid

from bench import charts, hot, ledger_v1, payers, points, protocol, report, server, wallets
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
    use_local_environment,
)
from tools import dynamodb_local
from tools.local_http import request_json as http

use_local_environment()
EXTERNAL_ENDPOINT = dynamodb_local.endpoint_from_environment()


def post_amount(base: str, account: str, amount: int, transaction: str | None = None):
    return http("POST", f"{base}/amount", {"account_id": account, "amount": amount},
                {"Transaction-Id": transaction or str(uuid.uuid4())})


def request_counts(base: str, requests) -> list[list]:
    account, transaction = str(uuid.uuid4()), str(uuid.uuid4())
    post_amount(base, account, 1)
    return request_rows(requests, [
        # No read before the write: the transaction, the account read for the answer, and here (this account sets
        # the book's record count) the high-water mark's raise.
        ("POST /amount", lambda: post_amount(base, account, 5, transaction), 3),
        # The cancelled transaction, the record, the account (its count for the mark, the posting in its log).
        ("POST /amount (replayed key)", lambda: post_amount(base, account, 5, transaction), 3),
        ("GET /balance/{id}", lambda: http("GET", f"{base}/balance/{account}"), 1),
        ("GET /transaction/{id}", lambda: http("GET", f"{base}/transaction/{transaction}"), 1),
        ("GET /max_transaction_volume", lambda: http("GET", f"{base}/max_transaction_volume"), 2),
    ])


def contended_postings(base: str, requests, accounts: list[str], per_thread: int) -> dict:
    return contended(requests, lambda index, step: post_amount(
        base, accounts[(index * per_thread + step) % len(accounts)], 1)[0], per_thread)


def seed_history(entries_wanted: int, accounts: int) -> tuple[str, str]:
    """Write journal history directly (bench set-up only): `accounts` accounts with their entries,
    account items and idempotency records consistent with each other. Returns one account and one key."""
    from chalicelib.core.ledger import Ledger, stamp, utc_now
    from chalicelib.core.models import AccountModel, CounterModel, EntryModel, IdempotencyModel

    book = Ledger("accounts", track_volume=True)  # names items exactly as seed 004's surface does
    per_account = entries_wanted // accounts
    sample_account = sample_key = ""
    leader_count = per_account + 1  # the last account leads, so max volume names one account
    with EntryModel.batch_write() as entries, AccountModel.batch_write() as account_items, \
            IdempotencyModel.batch_write() as records:
        for index in range(accounts):
            account_id = str(uuid.uuid4())
            key = book.account_key(account_id)
            count = leader_count if index == accounts - 1 else per_account
            for seq in range(1, count + 1):
                transaction = str(uuid.uuid4())
                created_at = stamp(utc_now())
                entries.save(EntryModel(key, seq, amount=1, balance_after=seq, created_at=created_at,
                                        idempotency_key=book.idempotency_key(transaction)))
                records.save(IdempotencyModel(book.idempotency_key(transaction), fingerprint="seeded", account=key,
                                              seq=seq, amount=1, balance_after=seq, created_at=created_at))
                sample_key = transaction
            account_items.save(AccountModel(key, balance=count, entry_count=count,
                                            created_at=stamp(utc_now()), last_entry_at=stamp(utc_now()),
                                            volume=count, version=count))
            sample_account = account_id
    CounterModel(book.high_water_name(), value=leader_count, holder=sample_account).save()
    return sample_account, sample_key


def read_latencies(base: str, account: str, transaction: str, samples: int) -> dict[str, float]:
    paths = {"GET /balance/{id}": f"/balance/{account}", "GET /transaction/{id}": f"/transaction/{transaction}",
             "GET /max_transaction_volume": "/max_transaction_volume"}
    return {name: median_ms(lambda url=base + path: http("GET", url), samples) for name, path in paths.items()}


def import_times(runs: int = 7) -> dict[str, float]:
    def median_run_ms(code: str) -> float:
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=dynamodb_local.PROJECT_ROOT)
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    return {"python -c pass": median_run_ms("pass"), "import boto3": median_run_ms("import boto3"),
            "import app": median_run_ms("import app")}


def main() -> None:
    imports = import_times()
    with dynamodb_local.running(existing=EXTERNAL_ENDPOINT) as endpoint:
        import app as tally
        from tools.local_http import serving
        from tools.request_counter import DynamoDBRequests

        with serving(tally.app) as base:
            use_fresh_tables(endpoint, "counts")
            with DynamoDBRequests() as requests:
                table("Seed 004: DynamoDB requests per API operation (uncontended)", REQUEST_HEADER,
                      request_counts(base, requests))
                one = contended_postings(base, requests, [str(uuid.uuid4())], per_thread=25)
                many = contended_postings(base, requests, [str(uuid.uuid4()) for _ in range(100)], per_thread=25)
            table(f"POST /amount, {THREADS} client threads, 400 postings", ["accounts", *CONTENDED_HEADER],
                  [[label, *contended_cells(result)] for label, result in (("1 (one contended account)", one),
                                                                           ("100", many))])
            rows = []
            for label, entries, accounts in (("1k", 1_000, 10), ("100k", 100_000, 1_000)):
                use_fresh_tables(endpoint, label)
                start = time.perf_counter()
                account, transaction = seed_history(entries, accounts)
                seeded = time.perf_counter() - start
                rows.append((label, read_latencies(base, account, transaction, samples=200), seeded))
            small, large = rows[0][1], rows[1][1]
            table("Seed 004: read latency (median of 200, ms) vs journal size",
                  ["operation", "1k entries", "100k entries", "ratio (target <= 1.2)"],
                  [[name, f"{small[name]:.2f}", f"{large[name]:.2f}", f"{large[name] / small[name]:.2f}"]
                   for name in small])
            note(f"(history written in {rows[0][2]:.0f}s and {rows[1][2]:.0f}s; 10 and 1,000 accounts)")
            points.run(base, endpoint)
            payers.run(endpoint)
            wallets.run(base, endpoint)
            ledger_v1.run(base, endpoint)
            hot.run(base, endpoint)
            protocol.run(base, endpoint)
            server.run(base, endpoint)
    table("Cold import (median of 7 runs, ms, including interpreter start)",
          ["command", "ms"], [[name, f"{ms:.0f}"] for name, ms in imports.items()]
          + [["ratio app / boto3 (target <= 1.5)", f"{imports['import app'] / imports['import boto3']:.2f}"]])
    written = report.write(report.output_path("TALLY_BENCH_OUT", report.BENCH_OUT), report.RECORDED,
                           title="make bench: last run", command="make bench")
    print(f"\nfigures written to {written}")
    # The charts beside it, from the same recorded tables, captioned with the file's date, commit and machine.
    for chart in charts.write(report.RECORDED, written.parent, charts.caption_of(written.read_text())):
        print(f"chart written to {chart}")


if __name__ == "__main__":
    main()
