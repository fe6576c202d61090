"""The one transaction runner: every TransactWriteItems of the core is sent here.

It names each item by its role, so a cancellation reads as the roles whose condition failed; it holds a
request's retry budget; and it keeps the resend rule: an answer that never came (a timeout, throttling, a
5xx) is resent with the same request token, which DynamoDB applies at most once.
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import TypeVar

from pynamodb.exceptions import CancellationReason, DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.config import Settings
from chalicelib.core import models
from chalicelib.core.errors import Contention
from chalicelib.core.guard import is_client_fault, refuse_invalid, response_code

T = TypeVar("T")


# Back-off waits grow to at most 2**5 rounds: 32 times the time a round takes.
MAX_BACKOFF_DOUBLINGS = 5


class RetryBudget:
    """The retries of one request, shared by its read-plan-commit rounds and its resends.

    It allows `max_attempts` in all, within `retry_seconds` of the request's start, waiting a full-jitter
    exponential back-off before each retry (see `retry`).
    """

    def __init__(self, settings: Settings, sleep: Callable[[float], None], monotonic: Callable[[], float]) -> None:
        self._settings = settings
        self._sleep = sleep
        self._monotonic = monotonic
        self._round_started = monotonic()
        self._deadline = self._round_started + settings.retry_seconds
        self.attempts = 1

    def retry(self, wait: bool = True) -> bool:
        """Wait (unless told not to), then True if one more attempt is allowed.

        The wait is counted in rounds: the time the round just lost took (at least `backoff_base_ms`), doubled
        per attempt up to 32 rounds, at most `backoff_cap_ms`. Contenders on one item so thin out instead of
        spending its capacity on writes that lose, whatever a round costs where it runs (a few ms in AWS; tens on
        a busy local server, where a fixed 50 ms cap gave 10 requests a posting on one account). Past a quarter of
        its budget a request's waits shrink with the time it has left, so one that lost many rounds competes
        harder than a newcomer instead of starving. Measured in docs/design/hot-accounts.md."""
        now = self._monotonic()
        if self.attempts >= self._settings.max_attempts or now >= self._deadline:
            return False
        settings = self._settings
        round_ms = max(settings.backoff_base_ms, (now - self._round_started) * 1000)
        longest = min(settings.backoff_cap_ms, round_ms * 2 ** min(self.attempts, MAX_BACKOFF_DOUBLINGS))
        longest *= min(1.0, (self._deadline - now) / (settings.retry_seconds * 0.75))
        if wait:
            self._sleep(random.uniform(0, longest) / 1000.0)
        self.attempts += 1
        self._round_started = self._monotonic()
        return True


class Stale(Exception):
    """What a round read has moved (a version, a taken key, a lagging index): read again and re-plan.

    Extensions raise it too; the request then retries within its budget. `recheck` says a
    condition on one of the extension's own items failed: its reads of them were stale. `wait`: back off
    first (False when the next round goes to other items than the ones contended)."""

    def __init__(self, recheck: bool = False, wait: bool = True) -> None:
        super().__init__()
        self.recheck = recheck
        self.wait = wait


class Ambiguous(Exception):
    """No answer came, or one that says nothing about the outcome: the write may or may not have landed."""


class Cancelled(Exception):
    """DynamoDB cancelled the transaction: nothing was written. `failed`: the roles whose condition failed
    (None when the reasons do not line up with the items sent); `reasons`: each role's reason."""

    def __init__(self, failed: frozenset[str] | None, reasons: dict[str, CancellationReason | None]) -> None:
        super().__init__()
        self.failed = failed
        self.reasons = reasons


class Refused(Exception):
    """A condition on the caller's own items failed (a uniqueness item taken, say): `roles` say which.
    Nothing was written."""

    def __init__(self, roles: frozenset[str]) -> None:
        super().__init__()
        self.roles = roles


class Writes:
    """The items of one TransactWriteItems, each named by its role (roles of items alike may repeat)."""

    def __init__(self, transaction: TransactWrite) -> None:
        self._transaction = transaction
        self._checks: list[str] = []
        self._puts: list[str] = []
        self._updates: list[str] = []

    def check(self, role: str, model_cls, hash_key, condition) -> None:
        self._checks.append(role)
        self._transaction.condition_check(model_cls, hash_key, condition=condition)

    def put(self, role: str, item, condition, **options) -> None:
        self._puts.append(role)
        self._transaction.save(item, condition=condition, **options)

    def update(self, role: str, item, actions: list, condition=None, **options) -> None:
        self._updates.append(role)
        self._transaction.update(item, actions, condition=condition, **options)

    def roles(self) -> list[str]:
        """In PynamoDB's send order (condition checks, puts, updates): the order of cancellation reasons."""
        return self._checks + self._puts + self._updates


def send(build: Callable[[Writes], None], token: str) -> None:
    """One TransactWriteItems of the items `build` adds. Raises Cancelled or Ambiguous; what DynamoDB would
    refuse at any moment is never either (too large: InvalidRequest; malformed: the error as it came)."""
    try:
        with TransactWrite(connection=models.transaction_connection, client_request_token=token) as transaction:
            writes = Writes(transaction)
            build(writes)
    except TransactWriteError as error:
        refuse_invalid(error)
        if response_code(error) != "TransactionCanceledException":
            if is_client_fault(error):
                raise  # a bug in the request, not a state of the world
            raise Ambiguous() from error
        roles, reasons = writes.roles(), error.cancellation_reasons or []
        if len(reasons) != len(roles):
            raise Cancelled(None, {}) from error
        failed = frozenset(role for role, reason in zip(roles, reasons, strict=True)
                           if reason is not None and reason.code == "ConditionalCheckFailed")
        raise Cancelled(failed, dict(zip(roles, reasons, strict=True))) from error


def write_once(build: Callable[[Writes], None]) -> None:
    """One transaction, not retried (a request token still makes botocore's own resends apply once):
    Refused when a condition failed, Contention when DynamoDB did not say."""
    try:
        send(build, str(uuid.uuid4()))
    except Cancelled as cancelled:
        if cancelled.failed:
            raise Refused(cancelled.failed) from None
        raise busy() from None
    except Ambiguous:
        raise busy() from None


def busy() -> Contention:
    """DynamoDB did not answer or did not say why it cancelled: nothing was written, and a retry may pass."""
    return Contention("the datastore is busy; nothing was written, retry")


def commit(build: Callable[[Writes], None], token: str, budget: RetryBudget, gave_up: Callable[[], Exception]) -> None:
    """`send`, resent with the same token while the outcome is unknown, within the budget."""
    while True:
        try:
            return send(build, token)
        except Ambiguous:
            if not budget.retry():
                raise gave_up() from None


def until_current(attempt: Callable[[bool], T], budget: RetryBudget, gave_up: Callable[[], Exception]) -> T:
    """`attempt(recheck)` again, from fresh reads, while it raises Stale, within the budget. `recheck` is
    True once any round found an extension's own reads stale."""
    recheck = False
    while True:
        try:
            return attempt(recheck)
        except Stale as stale:
            recheck = recheck or stale.recheck
            if not budget.retry(wait=stale.wait):
                raise gave_up() from None


def resolved(future):
    """A TransactGetItems answer: the item, or None when there is none."""
    if future is None:
        return None
    try:
        return future.get()
    except DoesNotExist:
        return None
