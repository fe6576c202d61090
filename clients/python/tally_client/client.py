"""`Tally`: a thin, typed client of Tally's own API, `/v1`, on the standard library alone (urllib).

One method per /v1 route. Every call sends the API key (`Authorization: Bearer tk_...`); every write sends an
`Idempotency-Key` (the caller's, or a fresh UUID) and is retried on a 503, a 429 or a connection error with the
SAME key: the server applies a key once and answers a retry with what the first request made, so a retried write
can never be applied twice, even when the first attempt did reach the server and only its answer was lost.
Reads are retried the same way. Lists are iterators that follow `next_cursor` while `has_more`.
"""
from __future__ import annotations

import email.message
import enum
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Literal

from tally_client.errors import TallyError, Unauthorized, Unavailable, error_for
from tally_client.types import Account, Balance, Capture, Entry, Hold, Lots, Statement, Transaction

__version__ = "0.1.0"
DEFAULT_URL = "http://127.0.0.1:8000"
RETRIED_STATUSES = frozenset({429, 503})
# (method, url, headers, body, timeout) -> (status, headers with lower-case names, body). Raises OSError (or
# http.client.HTTPException) when no answer came. Swap it for tests, or to add a proxy or mTLS.
Transport = Callable[[str, str, Mapping[str, str], bytes | None, float], tuple[int, Mapping[str, str], bytes]]
Time = str | datetime  # ISO 8601; a datetime without a zone is taken as UTC by the server


class Default(enum.Enum):
    """The server's default for a field that may also be sent as null (an account's `floor`)."""

    DEFAULT = "default"


DEFAULT = Default.DEFAULT


def urllib_transport(method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                     timeout: float) -> tuple[int, Mapping[str, str], bytes]:
    """One HTTP request through urllib; an HTTP error status is an answer, not an exception."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, _lower(error.headers), error.read()


def _lower(headers: email.message.Message | None) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()} if headers is not None else {}


def _segment(value: str) -> str:
    """A path segment: `@` and `:` kept (system accounts read `@world:USD`), everything else escaped."""
    if not value:
        raise ValueError("an id cannot be empty")
    return urllib.parse.quote(value, safe="@:")


def _time(value: Time | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _metadata_filter(pair: tuple[str, str] | None) -> str | None:
    return None if pair is None else f"{pair[0]}:{pair[1]}"


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


class Tally:
    """A /v1 client. `url` and `key` default to the environment's `TALLY_URL` (else http://127.0.0.1:8000, what
    `make run` serves) and `TALLY_KEY`.

    `retries`: how many times a call answered 503 or 429, or not answered at all, is tried again (so at most
    `retries + 1` attempts), waiting `backoff`, 2x, 4x... seconds (at least the answer's `Retry-After`, at most
    `max_delay`). `transport` and `sleep` are for tests and special networks."""

    def __init__(self, url: str | None = None, key: str | None = None, *, timeout: float = 30.0,
                 retries: int = 3, backoff: float = 0.5, max_delay: float = 8.0,
                 transport: Transport | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = (url or os.environ.get("TALLY_URL") or DEFAULT_URL).rstrip("/")
        self.key = key or os.environ.get("TALLY_KEY") or None
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_delay = max_delay
        self._transport = transport or urllib_transport
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"Tally(url={self.url!r}, key={'set' if self.key else None!r})"  # never the key itself

    # -- accounts ----------------------------------------------------------------------------------------------
    def create_account(self, unit: str, *, id: str | None = None, kind: Literal["standard", "points"] | None = None,
                       floor: int | None | Default = DEFAULT, overdraft_limit: int | None = None,
                       shards: int | None = None, metadata: dict[str, str] | None = None,
                       idempotency_key: str | None = None) -> Account:
        """`POST /v1/accounts`. `floor`: the lowest available balance (server default 0; None: no floor; below 0
        or None needs an admin key), or `overdraft_limit` instead; `shards` > 1 opens a hot account."""
        body = _without_none({"id": id, "unit": unit, "kind": kind, "overdraft_limit": overdraft_limit,
                              "shards": shards, "metadata": metadata})
        if floor is not DEFAULT:
            body["floor"] = floor  # None is sent: no floor
        return self._call("POST", "/v1/accounts", body=body, idempotency_key=idempotency_key)

    def get_account(self, account_id: str) -> Account:
        """`GET /v1/accounts/{id}`: balance, held, available; `@world:<unit>` reads a system account."""
        return self._call("GET", f"/v1/accounts/{_segment(account_id)}")

    def list_accounts(self, *, unit: str | None = None, kind: Literal["standard", "points", "system"] | None = None,
                      start: Time | None = None, end: Time | None = None, metadata: tuple[str, str] | None = None,
                      page_size: int | None = None) -> Iterator[Account]:
        """`GET /v1/accounts`, every page: the tenant's accounts, oldest first (system accounts too)."""
        return self._paged("/v1/accounts", {"unit": unit, "kind": kind, "start": _time(start), "end": _time(end),
                                            "metadata": _metadata_filter(metadata), "limit": page_size})

    def get_balance(self, account_id: str, *, as_of: Time | None = None) -> Balance:
        """`GET /v1/accounts/{id}/balance`: now, or as of a moment."""
        return self._call("GET", f"/v1/accounts/{_segment(account_id)}/balance", query={"as_of": _time(as_of)})

    def list_entries(self, account_id: str, *, start: Time | None = None, end: Time | None = None,
                     order: Literal["asc", "desc"] | None = None, page_size: int | None = None) -> Iterator[Entry]:
        """`GET /v1/accounts/{id}/entries`, every page: the account's journal, newest first unless
        `order="asc"`. (A 404 for an unknown account is raised when the first page is read.)"""
        return self._paged(f"/v1/accounts/{_segment(account_id)}/entries",
                           {"start": _time(start), "end": _time(end), "order": order, "limit": page_size})

    def get_statement(self, account_id: str, *, start: Time, end: Time | None = None,
                      limit: int | None = None) -> Statement:
        """`GET /v1/accounts/{id}/statement`: opening and closing balance, credits, debits and count between
        `start` and `end` (default now), and the period's first `limit` entries."""
        return self._call("GET", f"/v1/accounts/{_segment(account_id)}/statement",
                          query={"start": _time(start), "end": _time(end), "limit": limit})

    def get_lots(self, account_id: str, *, state: Literal["open", "all"] | None = None) -> Lots:
        """`GET /v1/accounts/{id}/lots`: a points account's balance per payer and its lots, oldest first."""
        return self._call("GET", f"/v1/accounts/{_segment(account_id)}/lots", query={"state": state})

    # -- money movement ----------------------------------------------------------------------------------------
    def post(self, account_id: str, amount: int, *, counter_account: str | None = None,
             expected_seq: dict[str, int] | None = None, metadata: dict[str, str] | None = None,
             idempotency_key: str | None = None) -> Transaction:
        """`POST /v1/postings`: credit (amount > 0) or debit (< 0) one account, from or to `counter_account`
        (default: the system account `@world:<unit>`)."""
        return self._call("POST", "/v1/postings", body=_without_none({
            "account_id": account_id, "amount": amount, "counter_account": counter_account,
            "expected_seq": expected_seq, "metadata": metadata}), idempotency_key=idempotency_key)

    def transfer(self, source: str, destination: str, amount: int, *, expected_seq: dict[str, int] | None = None,
                 metadata: dict[str, str] | None = None, idempotency_key: str | None = None) -> Transaction:
        """`POST /v1/transfers`: move `amount` from `source` to `destination` (one unit), in one transaction."""
        return self._call("POST", "/v1/transfers", body=_without_none({
            "source": source, "destination": destination, "amount": amount, "expected_seq": expected_seq,
            "metadata": metadata}), idempotency_key=idempotency_key)

    def get_transaction(self, transaction_id: str) -> Transaction:
        """`GET /v1/transactions/{id}`: a transaction and its entries."""
        return self._call("GET", f"/v1/transactions/{_segment(transaction_id)}")

    def list_transactions(self, *, type: Literal["posting", "transfer", "capture", "reversal", "earn", "spend",
                                                 "expiry"] | None = None,
                          account_id: str | None = None, start: Time | None = None, end: Time | None = None,
                          metadata: tuple[str, str] | None = None,
                          page_size: int | None = None) -> Iterator[Transaction]:
        """`GET /v1/transactions`, every page: the tenant's transactions, oldest first."""
        return self._paged("/v1/transactions", {"type": type, "account_id": account_id, "start": _time(start),
                                                "end": _time(end), "metadata": _metadata_filter(metadata),
                                                "limit": page_size})

    def reverse(self, transaction_id: str, *, amount: int | None = None, metadata: dict[str, str] | None = None,
                idempotency_key: str | None = None) -> Transaction:
        """`POST /v1/transactions/{id}/reversals`: reverse all that is left (or `amount` of it)."""
        return self._call("POST", f"/v1/transactions/{_segment(transaction_id)}/reversals",
                          body=_without_none({"amount": amount, "metadata": metadata}),
                          idempotency_key=idempotency_key)

    # -- holds -------------------------------------------------------------------------------------------------
    def create_hold(self, account_id: str, amount: int, *, expires_at: Time | None = None,
                    expected_seq: dict[str, int] | None = None, metadata: dict[str, str] | None = None,
                    idempotency_key: str | None = None) -> Hold:
        """`POST /v1/holds`: reserve `amount` of the available balance (until `expires_at`; default 7 days)."""
        return self._call("POST", "/v1/holds", body=_without_none({
            "account_id": account_id, "amount": amount, "expires_at": _time(expires_at),
            "expected_seq": expected_seq, "metadata": metadata}), idempotency_key=idempotency_key)

    def get_hold(self, hold_id: str) -> Hold:
        """`GET /v1/holds/{id}`."""
        return self._call("GET", f"/v1/holds/{_segment(hold_id)}")

    def list_holds(self, *, status: Literal["authorized", "captured", "voided", "expired"] | None = None,
                   account_id: str | None = None, expires_before: Time | None = None,
                   page_size: int | None = None) -> Iterator[Hold]:
        """`GET /v1/holds`, every page: the tenant's holds, oldest first."""
        return self._paged("/v1/holds", {"status": status, "account_id": account_id,
                                         "expires_before": _time(expires_before), "limit": page_size})

    def capture(self, hold_id: str, *, amount: int | None = None, destination: str | None = None,
                metadata: dict[str, str] | None = None, idempotency_key: str | None = None) -> Capture:
        """`POST /v1/holds/{id}/capture`: move all (or `amount`) of a hold to `destination` (default: out of the
        ledger, to `@world:<unit>`); the rest is released. Answers the hold and the transaction."""
        return self._call("POST", f"/v1/holds/{_segment(hold_id)}/capture", body=_without_none({
            "amount": amount, "destination": destination, "metadata": metadata}), idempotency_key=idempotency_key)

    def void(self, hold_id: str, *, idempotency_key: str | None = None) -> Hold:
        """`POST /v1/holds/{id}/void`: release a hold without moving anything."""
        return self._call("POST", f"/v1/holds/{_segment(hold_id)}/void", idempotency_key=idempotency_key)

    # -- points ------------------------------------------------------------------------------------------------
    def earn(self, account_id: str, payer: str, points: int, *, expires_at: Time | None = None,
             metadata: dict[str, str] | None = None, idempotency_key: str | None = None) -> Transaction:
        """`POST /v1/points/earn`: points from `payer` into a points account (from `@world:<unit>`)."""
        return self._call("POST", "/v1/points/earn", body=_without_none({
            "account_id": account_id, "payer": payer, "points": points, "expires_at": _time(expires_at),
            "metadata": metadata}), idempotency_key=idempotency_key)

    def spend(self, account_id: str, points: int, *, metadata: dict[str, str] | None = None,
              idempotency_key: str | None = None) -> Transaction:
        """`POST /v1/points/spend`: spend points, oldest unexpired lots first."""
        return self._call("POST", "/v1/points/spend", body=_without_none({
            "account_id": account_id, "points": points, "metadata": metadata}), idempotency_key=idempotency_key)

    # -- the wire ----------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, query: Mapping[str, object] | None = None,
                body: Mapping[str, object] | None = None, idempotency_key: str | None = None) -> Any:
        """Any route, with the same key, retries and errors as the methods above: the decoded JSON answer. A
        POST gets an `Idempotency-Key` (a fresh one unless given)."""
        return self._call(method, path, query=query, body=body, idempotency_key=idempotency_key)

    def _paged(self, path: str, query: dict[str, object]) -> Iterator[Any]:
        cursor = None
        while True:
            page = self._call("GET", path, query={**query, "cursor": cursor})
            yield from page["data"]
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return

    def _call(self, method: str, path: str, *, query: Mapping[str, object] | None = None,
              body: Mapping[str, object] | None = None, idempotency_key: str | None = None) -> Any:
        if not self.key:
            raise Unauthorized("no API key: set TALLY_KEY or pass one (make run prints one; make key makes one)")
        present = {name: str(value) for name, value in (query or {}).items() if value is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(present) if present else "")
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json",
                   "User-Agent": f"tally-client-python/{__version__}"}
        data = None
        if method.upper() != "GET":
            headers["Content-Type"] = "application/json"
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())  # one key for every attempt
            data = None if body is None else json.dumps(body).encode()
        status, answer, raw = self._send(method.upper(), url, headers, data)
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = None
        if status >= 400:
            raise error_for(status, decoded, answer.get("x-request-id"))
        if decoded is None and raw:
            raise TallyError(f"the answer is not JSON: {raw[:200]!r}", status=status,
                             request_id=answer.get("x-request-id"))
        return decoded

    def _send(self, method: str, url: str, headers: dict[str, str],
              data: bytes | None) -> tuple[int, Mapping[str, str], bytes]:
        """The answer, trying again (with the same headers, so the same idempotency key) on a 503, a 429 or no
        answer, until `retries` run out."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                status, answer, raw = self._transport(method, url, headers, data, self.timeout)
            except (OSError, http.client.HTTPException) as error:
                if last:
                    raise Unavailable(f"no answer from {url} after {attempt + 1} attempts: {error}") from error
                self._sleep(self._delay(attempt, None))
                continue
            if status in RETRIED_STATUSES and not last:
                self._sleep(self._delay(attempt, answer.get("retry-after")))
                continue
            return status, answer, raw
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff * 2 ** attempt
        try:
            delay = max(delay, float(retry_after)) if retry_after else delay
        except ValueError:
            pass  # an HTTP date: keep our own back-off
        return min(delay, self.max_delay)
