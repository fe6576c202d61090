"""`make soak`: every surface (the seeds and /v1) from 16 threads for SOAK_SECONDS (default 120) on DynamoDB
Local (127.0.0.1), then the verifier over everything written. Prints ops/s, p50/p99 latency and statuses by
operation, and writes them as Markdown to docs/benchmarks/soak-latest.md (or `TALLY_SOAK_OUT`); exits 1 on any 5xx
or invariant violation. Bounded in time; nothing leaves this machine."""
from __future__ import annotations

import os
import random
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict

from bench import report as bench_report
from bench.common import THREADS, percentile, table, use_fresh_tables, use_local_environment
from tools import dynamodb_local
from tools.local_http import request_json as http

use_local_environment()


def set_up(base: str) -> dict:
    status, user = http("POST", f"{base}/api/v1/users", {"phone_number": "5559990000"})
    bearer = {"Authorization": f"Bearer {user['access_token']}"}
    status, wallet = http("POST", f"{base}/api/v1/wallet/create", {"user_id": user["user_id"], "type": "main"},
                          bearer)
    status, asper_user = http("POST", f"{base}/register", {"phone_number": "5559990001"})
    status, asper = http("POST", f"{base}/wallet/create", {"user_id": asper_user["user_id"]})
    v1_accounts = [f"acct-{number}" for number in range(8)]
    for account_id in v1_accounts:
        keyed(base, "/v1/accounts", {"id": account_id, "unit": "USD"})
        keyed(base, "/v1/postings", {"account_id": account_id, "amount": 5000})
    keyed(base, "/v1/accounts", {"id": "member", "unit": "points", "kind": "points"})
    return {"user": user["user_id"], "bearer": bearer, "wallet": wallet["wallet_id"], "asper": asper["wallet_id"],
            "accounts": [str(uuid.uuid4()) for _ in range(50)], "v1_accounts": v1_accounts}


def keyed(base: str, path: str, body: dict | None = None):
    return http("POST", f"{base}{path}", body or {}, {"Idempotency-Key": str(uuid.uuid4())})


def operations(base: str, world: dict) -> dict:
    def amount():
        return http("POST", f"{base}/amount", {"account_id": random.choice(world["accounts"]),
                                               "amount": random.randint(-50, 50)},
                    {"Transaction-Id": str(uuid.uuid4())})

    def add():
        earned = f"2022-{random.randint(1, 12):02d}-{random.randint(1, 28):02d}"
        return http("POST", f"{base}/add", {"payer": f"P{random.randint(0, 9)}", "points": random.randint(1, 50),
                                            "timestamp": earned})

    def wallet_move():
        return http("POST", f"{base}/api/v1/transactions/create",
                    {"user_id": world["user"], "wallet_id": world["wallet"], "amount": round(random.uniform(1, 40), 2),
                     "is_credit": random.random() < 0.55}, world["bearer"])

    def asper_move():
        kind = random.choice(["credit", "debit"])
        return http("POST", f"{base}/wallet/{kind}", {"wallet_id": world["asper"], "amount": random.randint(1, 60)})

    def transfer():
        source, destination = random.sample(world["v1_accounts"], 2)
        return keyed(base, "/v1/transfers", {"source": source, "destination": destination,
                                             "amount": random.randint(1, 300)})

    def hold_then_settle():
        status, hold = keyed(base, "/v1/holds", {"account_id": random.choice(world["v1_accounts"]),
                                                 "amount": random.randint(1, 200)})
        if status != 201:
            return status, hold
        if random.random() < 0.5:
            return keyed(base, f"/v1/holds/{hold['id']}/void")
        return keyed(base, f"/v1/holds/{hold['id']}/capture", {"destination": random.choice(world["v1_accounts"])})

    def spend_then_refund():
        status, spend = keyed(base, "/v1/points/spend", {"account_id": "member", "points": random.randint(1, 80)})
        if status != 201 or random.random() < 0.5:
            return status, spend
        return keyed(base, f"/v1/transactions/{spend['id']}/reversals", {"amount": random.randint(1, spend["amount"])})

    return {
        "POST /v1/transfers": transfer,
        "POST /v1/holds + capture|void": hold_then_settle,
        "POST /v1/points/earn": lambda: keyed(base, "/v1/points/earn", {
            "account_id": "member", "payer": f"R{random.randint(0, 5)}", "points": random.randint(1, 60)}),
        "POST /v1/points/spend (+ refund)": spend_then_refund,
        "GET /v1/accounts/{id}/entries": lambda: http(
            "GET", f"{base}/v1/accounts/{random.choice(world['v1_accounts'])}/entries?limit=20"),
        "POST /amount": amount,
        "GET /balance/{id}": lambda: http("GET", f"{base}/balance/{random.choice(world['accounts'])}"),
        "GET /max_transaction_volume": lambda: http("GET", f"{base}/max_transaction_volume"),
        "POST /add": add,
        "POST /spend": lambda: http("POST", f"{base}/spend", {"points": random.randint(1, 120)}),
        "POST /transaction": lambda: http("POST", f"{base}/transaction",
                                          {"payer": f"Q{random.randint(0, 4)}", "points": random.randint(1, 30)}),
        "PUT /spend_points": lambda: http("PUT", f"{base}/spend_points", {"points": random.randint(1, 40)}),
        "POST /api/v1/transactions/create": wallet_move,
        "GET /api/v1/transactions/get": lambda: http(
            "GET", f"{base}/api/v1/transactions/get/{world['user']}/{world['wallet']}?limit=50",
            headers=world["bearer"]),
        "POST /wallet/credit|debit": asper_move,
        "GET /wallet/balance/{id}": lambda: http("GET", f"{base}/wallet/balance/{world['asper']}"),
    }


def soak(base: str, seconds: float) -> tuple[dict, float]:
    world = set_up(base)
    calls = operations(base, world)
    names = list(calls)
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter] = defaultdict(Counter)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            name = random.choice(names)
            start = time.perf_counter()
            status, _ = calls[name]()
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies[name].append(elapsed)
                statuses[name][status] += 1

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {name: (latencies[name], statuses[name]) for name in names}, time.perf_counter() - start


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", "120"))
    with dynamodb_local.running(existing=dynamodb_local.endpoint_from_environment()) as endpoint:
        import app as tally
        from tools.local_http import serving
        from tools.verify import print_report, verify_tables

        with serving(tally.app) as base:
            use_fresh_tables(endpoint, "soak")
            results, elapsed = soak(base, seconds)
            report = verify_tables()
    every = [latency for latencies, _ in results.values() for latency in latencies]
    totals = sum((statuses for _, statuses in results.values()), Counter())
    rows = [[name, len(latencies), f"{len(latencies) / elapsed:.1f}", f"{percentile(latencies, 0.5):.1f}",
             f"{percentile(latencies, 0.99):.1f}", dict(sorted(statuses.items()))]
            for name, (latencies, statuses) in results.items() if latencies]
    rows.append(["all", len(every), f"{len(every) / elapsed:.1f}", f"{percentile(every, 0.5):.1f}",
                 f"{percentile(every, 0.99):.1f}", dict(sorted(totals.items()))])
    table(f"Soak: {THREADS} threads, every surface, {elapsed:.0f} s", ["operation", "calls", "calls/s", "p50 ms",
                                                                     "p99 ms", "statuses"], rows)
    print()
    print_report(report, "the soak's tables")
    server_errors = sum(count for status, count in totals.items() if status >= 500)
    print(f"5xx answers: {server_errors}")
    counts = ", ".join(f"{count:,} {what}" for what, count in report.checked.items())  # printed above; recorded
    bench_report.record(bench_report.Note(f"verified the soak's tables: {counts or 'no data'}"))
    bench_report.record(bench_report.Note(f"{len(report.violations)} violations; 5xx answers: {server_errors}"))
    written = bench_report.write(bench_report.output_path("TALLY_SOAK_OUT", bench_report.SOAK_OUT),
                                 bench_report.RECORDED, title="make soak: last run",
                                 command=f"SOAK_SECONDS={seconds:g} make soak")
    print(f"figures written to {written}")
    return 1 if server_errors or report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
