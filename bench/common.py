"""What every benchmark section shares: tables of figures, fresh tables, timing, a 16-thread runner."""
from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from bench import report

THREADS = 16


def use_local_environment() -> None:
    """DynamoDB Local's credentials (unless set) and quiet request logs: their lines would drown the figures."""
    import os

    from tools import dynamodb_local
    for name, value in dynamodb_local.LOCAL_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("TALLY_LOG_LEVEL", "WARNING")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def table(title: str, header: list[str], rows: list[list]) -> None:
    """Print a table of figures (and record it for the Markdown file, bench/report.py)."""
    report.record(report.Table(title, list(header), [list(row) for row in rows]))
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    for row in [header, ["-" * width for width in widths], *rows]:
        print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


def note(text: str) -> None:
    """Print a line under a table (and record it for the Markdown file)."""
    report.record(report.Note(text))
    print(f"  {text}")


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def median_ms(call, samples: int, warm_up: int = 10) -> float:
    for _ in range(warm_up):
        call()
    return statistics.median(timed(call) for _ in range(samples))


def run_alone(section: Callable[[str, str], None]) -> None:
    """Run one section (`run(base, endpoint)`) by itself: DynamoDB Local (DYNAMODB_ENDPOINT's, else its own) and the
    app behind the in-process server, as `make bench` runs every section."""
    from tools import dynamodb_local

    use_local_environment()
    with dynamodb_local.running(existing=dynamodb_local.endpoint_from_environment()) as endpoint:
        import app as tally
        from tools.local_http import serving

        with serving(tally.app) as base:
            section(base, endpoint)


def use_fresh_tables(endpoint: str, label: str) -> None:
    """Tables of this section's own, served by services built on them (what a container learns about its tables,
    a hot account's layout say, starts afresh), and an admin key of tenant `bench` that every /v1 call then sends."""
    import app
    from chalicelib import composition
    from chalicelib.config import load
    from chalicelib.core import models
    from chalicelib.core.api_keys import ApiKeys
    from tools import local_http
    settings = replace(load(), dynamodb_endpoint=endpoint, table_prefix=f"bench-{label}-{uuid.uuid4().hex[:8]}")
    app.serve(composition.build(settings))
    models.create_tables()
    local_http.v1_key = ApiKeys(live=False).create("bench", ["admin"])[1]


def request_rows(requests, operations: list[tuple[str, Callable[[], object], int]],
                 authorizer_table: str | None = None) -> list[list]:
    """One row per operation: DynamoDB requests (against a target), capacity units, the calls made. With
    `authorizer_table`, the requests also with the authorizer's read of the key (a call API Gateway's cache
    did not answer): the local server runs the authorizer on every request."""
    rows = []
    for name, call, target in operations:
        requests.reset()
        call()
        own = requests.total - (requests.by_table[authorizer_table] if authorizer_table else 0)
        row = [name, own, f"<= {target}"]
        if authorizer_table:
            row.append(requests.total)
        rows.append([*row, f"{requests.read_units:g}", f"{requests.write_units:g}", ", ".join(sorted(requests.calls))])
    return rows


REQUEST_HEADER = ["operation", "requests", "target", "read units", "write units", "calls"]
# /v1: "requests" as API Gateway runs them with the authorizer's answer cached; "uncached" adds its read.
KEYED_REQUEST_HEADER = ["operation", "requests (key cached)", "target", "uncached key", "read units", "write units",
                        "calls"]


def contended(requests, call: Callable[[int, int], int], per_thread: int) -> dict:
    """THREADS threads each make `per_thread` calls `call(thread, step) -> HTTP status`."""
    requests.reset()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def worker(index: int) -> None:
        for step in range(per_thread):
            start = time.perf_counter()
            status = call(index, step)
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[status] += 1

    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))
    seconds = time.perf_counter() - start
    total = THREADS * per_thread
    return {"calls": total, "per_second": total / seconds, "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99), "statuses": dict(statuses), "requests_per_call": requests.total / total}


def for_seconds(call, seconds: float) -> dict:
    """THREADS threads making `call(thread) -> HTTP status` for `seconds`: accepted (200, 201) per second, p50 and
    p99, statuses, the seconds taken."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def worker(index: int) -> None:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            status = call(index)
            with lock:
                latencies.append((time.perf_counter() - start) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))
    elapsed = time.perf_counter() - start
    accepted = sum(count for status, count in statuses.items() if status in (200, 201))
    return {"per_second": accepted / elapsed, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
            "statuses": statuses, "accepted": accepted, "elapsed": elapsed}


CONTENDED_HEADER = ["calls/s", "p50 ms", "p99 ms", "DynamoDB requests/call", "statuses"]


def contended_cells(result: dict) -> list:
    return [f"{result['per_second']:.1f}", f"{result['p50']:.1f}", f"{result['p99']:.1f}",
            f"{result['requests_per_call']:.2f}", result["statuses"]]
