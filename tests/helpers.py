"""Helpers shared by the test modules."""
from __future__ import annotations

import contextlib
import json
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from chalicelib.core import models
from chalicelib.core.api_keys import ApiKeys
from chalicelib.core.ledger import Ledger, utc_now
from chalicelib.core.models import EntryModel, LotModel

TENANT = "t1"  # the tenant tests act as on /v1 unless they say otherwise


def make_key(tenant: str = TENANT, scopes=("admin",), **limits) -> str:
    """A fresh /v1 API key's token, in the tables the models are bound to (`limits`: its issue limits)."""
    return ApiKeys(live=False).create(tenant, list(scopes), **limits)[1]


class Clock:
    """A clock the test moves: the wall clock until `now` is set."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now or utc_now()


@contextlib.contextmanager
def serving(services):
    """The app serves `services` until the block ends, then what it served before, on its tables."""
    import app

    before = app.services
    app.serve(services)
    try:
        yield services
    finally:
        app.serve(before)
        models.bind(before.settings)


def v1_ledger():
    """The /v1 services of the tenant tests act as (what its key reaches through the API)."""
    import app

    return app.services.v1_of(TENANT)[0]


def journal(book: Ledger, account_id: str) -> list[EntryModel]:
    """An account's journal entries, oldest first, read consistently (after its log is settled, as every journal
    read does)."""
    book.settle(account_id, force=True)
    return list(EntryModel.query(book.account_key(account_id), consistent_read=True))


class Body:
    """A canned HTTP body, as botocore reads one."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_kwargs):
        yield self._data


class Crash(BaseException):
    """The process dies here: not an Exception, so no handler of ours catches it."""


class DynamoDBFaults:
    """Stands between botocore and DynamoDB for one operation, on every client Tally uses.

    Sends 1..`failures` fail with `code` (an error DynamoDB answers, or "timeout": no answer before the read
    timeout); the first `forward` of them reach DynamoDB first (the write lands, its answer is lost). Send number
    `crash_at` dies before it is sent.
    """

    def __init__(self, operation: str = "TransactWriteItems", failures: int = 0, forward: int = 0,
                 crash_at: int | None = None, code: str = "InternalServerError") -> None:
        self.operation, self.failures, self.forward, self.crash_at = operation, failures, forward, crash_at
        self.code = code
        self.status = 500 if code == "InternalServerError" else 400
        self.body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                                "message": "injected fault"}).encode()
        self.tokens: list[str | None] = []

    def __call__(self, request, **_kwargs):
        self.tokens.append(json.loads(request.body).get("ClientRequestToken"))
        sent = len(self.tokens)
        if sent == self.crash_at:
            raise Crash(f"crashed before {self.operation} #{sent}")
        if sent > self.failures:
            return None  # let botocore send it
        if sent <= self.forward:
            self.land(request)  # it lands; its answer is dropped
        if self.code == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        return AWSResponse(request.url, self.status, {"x-amzn-requestid": "injected"}, Body(self.body))

    def land(self, request) -> None:
        """Send the request to DynamoDB for real (its answer is thrown away)."""
        forwarded = urllib.request.Request(request.url, data=request.body, method=request.method,
                                           headers=dict(request.headers))
        urllib.request.urlopen(forwarded, timeout=30).read()

    def __enter__(self):
        clients = [model._get_connection().connection.client for model in models.MODELS.values()]
        self._clients = list({id(client): client for client in [*clients, models.transaction_connection.client]}
                             .values())
        for client in self._clients:
            client.meta.events.register_first(f"before-send.dynamodb.{self.operation}", self)
        return self

    def __exit__(self, *_exc):
        for client in self._clients:
            client.meta.events.unregister(f"before-send.dynamodb.{self.operation}", self)


TransactWriteFaults = DynamoDBFaults  # its default operation


class MotoFaults(DynamoDBFaults):
    """`DynamoDBFaults` on moto: a request that lands is handed to moto's own stub (where botocore would have sent
    it), and its answer is thrown away."""

    def land(self, request) -> None:
        from moto.core.models import botocore_stubber

        botocore_stubber(event_name=f"before-send.dynamodb.{self.operation}", request=request)


class LaggingIndex:
    """Makes the open-lot index lag: records the Query answers DynamoDB gives while `recording`,
    then hands the first recorded answer back to every later Query, as an index behind the table would."""

    def __init__(self) -> None:
        self.answers: list[bytes] = []
        self.replayed = 0
        self.recording = True

    def record(self, http_response, **_kwargs) -> None:
        if self.recording:
            self.answers.append(http_response.content)

    def replay(self, request, **_kwargs):
        if self.recording:
            return None
        self.replayed += 1
        return AWSResponse(request.url, 200, {"x-amzn-requestid": "lagging-index"}, Body(self.answers[0]))

    def __enter__(self):
        self._events = LotModel._get_connection().connection.client.meta.events
        self._events.register("after-call.dynamodb.Query", self.record)
        self._events.register_first("before-send.dynamodb.Query", self.replay)
        return self

    def __exit__(self, *_exc):
        self._events.unregister("after-call.dynamodb.Query", self.record)
        self._events.unregister("before-send.dynamodb.Query", self.replay)


THREADS = 16


def race(call, per_thread: int = 1) -> Counter:
    """THREADS threads each make `per_thread` calls `call(thread, step) -> status`; the statuses counted."""
    def worker(index: int) -> list[int]:
        return [call(index, step) for step in range(per_thread)]

    with ThreadPoolExecutor(THREADS) as pool:
        return Counter(status for batch in pool.map(worker, range(THREADS)) for status in batch)


def v1_request(client, method: str, path: str, body=None, key: str | None = "auto", headers: dict | None = None):
    """A /v1 request as its clients send it through `chalice.test.Client`: JSON, and an Idempotency-Key ("auto":
    a fresh one; None: none). The one place to add credentials when /v1 requires them."""
    import uuid

    sent = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        sent["Idempotency-Key"] = str(uuid.uuid4()) if key == "auto" else key
    payload = body if isinstance(body, str) or body is None else json.dumps(body)
    return getattr(client.http, method.lower())(path, headers=sent, body=payload)
