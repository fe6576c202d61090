"""Helpers shared by the test modules."""
from __future__ import annotations

import json
import urllib.request

from botocore.awsrequest import AWSResponse

from chalicelib.core import models
from chalicelib.core.ledger import Ledger
from chalicelib.core.models import EntryModel, LotModel


def journal(book: Ledger, account_id: str) -> list[EntryModel]:
    """An account's journal entries, oldest first, read consistently."""
    return list(EntryModel.query(book.account_key(account_id), consistent_read=True))


INJECTED = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                       "message": "injected fault"}).encode()


class Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_kwargs):
        yield self._data


class Crash(BaseException):
    """The process dies here: not an Exception, so no handler of ours catches it."""


class TransactWriteFaults:
    """Stands between botocore and DynamoDB for TransactWriteItems.

    Sends 1..`failures` fail; the first `forward` of them reach DynamoDB first (the write lands,
    its answer is lost). Send number `crash_at` dies before it is sent.
    """

    def __init__(self, failures: int = 0, forward: int = 0, crash_at: int | None = None) -> None:
        self.failures, self.forward, self.crash_at = failures, forward, crash_at
        self.tokens: list[str] = []

    def __call__(self, request, **_kwargs):
        self.tokens.append(json.loads(request.body)["ClientRequestToken"])
        sent = len(self.tokens)
        if sent == self.crash_at:
            raise Crash(f"crashed before TransactWriteItems #{sent}")
        if sent > self.failures:
            return None  # let botocore send it
        if sent <= self.forward:
            forwarded = urllib.request.Request(request.url, data=request.body, method=request.method,
                                               headers=dict(request.headers))
            urllib.request.urlopen(forwarded, timeout=30).read()  # it lands; its answer is dropped
        return AWSResponse(request.url, 500, {"x-amzn-requestid": "injected"}, Body(INJECTED))

    def __enter__(self):
        self._events = models.transaction_connection.client.meta.events
        self._events.register_first("before-send.dynamodb.TransactWriteItems", self)
        return self

    def __exit__(self, *_exc):
        self._events.unregister("before-send.dynamodb.TransactWriteItems", self)


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
