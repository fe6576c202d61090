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


class RetryBudget:
    """The retries of one request, shared by its read-plan-commit rounds and its resends.

    It allows `max_attempts` in all, within `retry_seconds` of the request's start,
    sleeping a full-jitter back-off before each retry.
    """

    def __init__(self, settings: Settings, sleep: Callable[[float], None], monotonic: Callable[[], float]) -> None:
        self._settings = settings
        self._sleep = sleep
        self._monotonic = monotonic
        self._deadline = monotonic() + settings.retry_seconds
        self.attempts = 1

    def retry(self) -> bool:
        """Wait, then True if one more attempt is allowed."""
        if self.attempts >= self._settings.max_attempts or self._monotonic() >= self._deadline:
            return False
        # The cap stays low so a request that lost many rounds still competes as often as a new one.
        cap = min(self._settings.backoff_cap_ms, self._settings.backoff_base_ms * 2 ** min(self.attempts, 16))
        self._sleep(random.uniform(0, cap) / 1000.0)
        self.attempts += 1
        return True


class Stale(Exception):
    """What a round read has moved (a version, a taken key, a lagging index): read again and re-plan.

    Extensions raise it too; the request then retries within its budget. `recheck` says a
    condition on one of the extension's own items failed: its reads of them were stale."""

    def __init__(self, recheck: bool = False) -> None:
        super().__init__()
        self.recheck = recheck


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

    def put(self, role: str, item, condition) -> None:
        self._puts.append(role)
        self._transaction.save(item, condition=condition)

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
            if not budget.retry():
                raise gave_up() from None


def resolved(future):
    """A TransactGetItems answer: the item, or None when there is none."""
    if future is None:
        return None
    try:
        return future.get()
    except DoesNotExist:
        return None
