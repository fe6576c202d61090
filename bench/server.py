"""`make bench`'s local-server section: what the HTTP server our tools start costs, beside the ledger's own work.

- `GET /ping` (no data) from 16 kept-alive clients, against Tally's server and against a plain threaded
  `http.server` with `TCP_NODELAY` answering the same JSON, in the same run (target: Tally >= 0.5x the plain one);
- one posting at a time (uncontended) through the server: p50 and p99 of seed 004's `POST /amount` and of a `/v1`
  posting (target: p50 <= 25 ms).

Bounded: each rate runs `SECONDS` and at most `MAX_REQUESTS_PER_THREAD` a thread. Nothing here asserts timings.

    python -m bench.server          # this section alone, on its own DynamoDB Local
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http import client as http_client
from http import server as http_server
from urllib.parse import urlsplit

from bench.common import THREADS, note, percentile, run_alone, table, use_fresh_tables
from tools.local_http import request_json as http

SECONDS = 5.0
MAX_REQUESTS_PER_THREAD = 20_000
SEQUENTIAL_POSTINGS = 200
PING = json.dumps({"status": "ok"}).encode()


class _Plain(http_server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Chalice's local server speaks
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(PING)))
        self.end_headers()
        self.wfile.write(PING)

    def log_message(self, *_args) -> None:
        pass


@contextlib.contextmanager
def plain_server() -> Iterator[str]:
    """A threaded `http.server` on 127.0.0.1 answering `/ping`'s JSON: the floor of what Python serves here."""
    server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), _Plain)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def kept_alive_rate(base: str, path: str, seconds: float = SECONDS) -> tuple[float, int]:
    """Requests a second from `THREADS` clients, each on one kept-alive connection; and how many were not 200."""
    address = urlsplit(base)
    counts = [0] * THREADS
    failures = [0] * THREADS
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        connection = http_client.HTTPConnection(address.hostname, address.port, timeout=30)
        try:
            while time.perf_counter() < deadline and counts[index] < MAX_REQUESTS_PER_THREAD:
                connection.request("GET", path)
                answer = connection.getresponse()
                answer.read()
                counts[index] += 1
                failures[index] += answer.status != 200
        finally:
            connection.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start), sum(failures)


def sequential_ms(call, samples: int = SEQUENTIAL_POSTINGS) -> tuple[float, float]:
    """p50 and p99 of `call`, one at a time (after ten to warm up)."""
    for _ in range(10):
        call()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        status = call()
        times.append((time.perf_counter() - start) * 1000)
        assert status in (200, 201), status  # a figure of failed requests would mean nothing
    return percentile(times, 0.5), percentile(times, 0.99)


def run(base: str, endpoint: str) -> None:
    use_fresh_tables(endpoint, "server")
    with plain_server() as plain:
        plain_rate, plain_failed = kept_alive_rate(plain, "/ping")
    tally_rate, tally_failed = kept_alive_rate(base, "/ping")
    table(f"GET /ping, {THREADS} kept-alive clients, {SECONDS:.0f} s each", ["server", "requests/s", "not 200"],
          [["plain http.server (TCP_NODELAY)", f"{plain_rate:.0f}", plain_failed],
           ["Tally's local server", f"{tally_rate:.0f}", tally_failed],
           ["ratio Tally / plain (target >= 0.5)", f"{tally_rate / plain_rate:.2f}", ""]])
    account = str(uuid.uuid4())

    def amount() -> int:
        return http("POST", f"{base}/amount", {"account_id": account, "amount": 1},
                    {"Transaction-Id": str(uuid.uuid4())})[0]

    v1_account = f"seq-{uuid.uuid4().hex[:8]}"
    assert http("POST", f"{base}/v1/accounts", {"id": v1_account, "unit": "USD"},
                {"Idempotency-Key": str(uuid.uuid4())})[0] == 201

    def posting() -> int:
        return http("POST", f"{base}/v1/postings", {"account_id": v1_account, "amount": 1},
                    {"Idempotency-Key": str(uuid.uuid4())})[0]

    rows = []
    for label, call in (("seed 004 POST /amount", amount), ("/v1 POST /v1/postings", posting)):
        p50, p99 = sequential_ms(call)
        rows.append([label, f"{p50:.1f}", f"{p99:.1f}"])
    table(f"One posting at a time through the server ({SEQUENTIAL_POSTINGS} each, ms; target p50 <= 25)",
          ["operation", "p50", "p99"], rows)
    note("(each request opens a connection, as the other sections' clients do; DynamoDB Local shares the cores)")


if __name__ == "__main__":
    run_alone(run)
