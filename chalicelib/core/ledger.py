"""The ledger core: postings to accounts, journal, idempotency, volume ranking.

Every posting is one consistent read (TransactGetItems: account, idempotency
record, high-water mark) and one TransactWriteItems that
- updates the account under a condition on the version read (and its floor),
- puts the journal entry (attribute_not_exists),
- puts the idempotency record (attribute_not_exists), when a key was given,
- raises the book's max-volume high-water mark, only when this posting sets a record.
A cancelled transaction is decoded into a typed outcome; a moved version or a
conflict is re-planned from a fresh read, with jittered back-off, within a time
budget (TALLY_RETRY_SECONDS). Nothing here knows about HTTP.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import DoesNotExist, TransactGetError, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactGet, TransactWrite

from chalicelib.config import Settings, load
from chalicelib.core import models
from chalicelib.core.errors import Contention, FloorBreached, Forbidden, IdempotencyConflict, InvalidRequest, NotFound
from chalicelib.core.guard import datastore_guarded, is_client_fault, response_code
from chalicelib.core.models import AccountModel, CounterModel, EntryModel, IdempotencyModel


def utc_now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 with microseconds: sorts as text in time order."""
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S.%f}Z"  # %Y does not pad years before 1000


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def require_int(name: str, value: object) -> int:
    """Points and money are integers in the core; bool is not a number here."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer", field=name)
    return value


@dataclass(frozen=True)
class Posting:
    """An accepted posting, as committed (or as first committed, when replayed)."""

    account_id: str
    seq: int
    amount: int
    balance_after: int
    created_at: str
    replayed: bool = False
    # What the posting's extension planned (see `Extension.result`); None when replayed.
    extra: object = None


@dataclass(frozen=True)
class AccountBalance:
    account_id: str
    balance: int
    entry_count: int
    floor: int | None


@dataclass(frozen=True)
class Page:
    """One page of journal entries and the opaque cursor of the next (None at the end)."""

    postings: list[Posting]
    next_cursor: str | None


@dataclass(frozen=True)
class Totals:
    credit: int
    debit: int
    count: int

    @classmethod
    def of(cls, postings) -> Totals:
        credit = debit = count = 0
        for posting in postings:
            credit += max(posting.amount, 0)
            debit += max(-posting.amount, 0)
            count += 1
        return cls(credit, debit, count)


@dataclass(frozen=True)
class VolumeLeaders:
    max_volume: int
    account_ids: list[str]


class Stale(Exception):
    """The plan is stale (version moved, conflict, a lagging index): read again and re-plan.

    Extensions raise it too; the posting then retries within its budget. `recheck` says a
    condition on one of the extension's own items failed: its reads of them were stale."""

    def __init__(self, recheck: bool = False) -> None:
        super().__init__()
        self.recheck = recheck



@dataclass(frozen=True)
class Draft:
    """A posting as planned, before it commits: what an extension plans around."""

    account: AccountModel  # as read, consistently (a new, unsaved item for a new account)
    seq: int
    amount: int
    balance_after: int
    created_at: str
    # An earlier plan of this request failed on an extension item: re-read such items consistently.
    recheck: bool = False


@dataclass
class Extension:
    """More writes in a posting's one transaction (lots, link parts), planned by a service.

    Every item carries a condition; a failed one makes the plan stale (re-read, re-plan).
    """

    account_actions: list = field(default_factory=list)
    account_condition: Condition | None = None
    entry_attributes: dict = field(default_factory=dict)
    puts: list[tuple[Model, Condition | None]] = field(default_factory=list)
    updates: list[tuple[Model, list, Condition | None]] = field(default_factory=list)
    result: object = None  # handed back on the committed Posting as `extra`


Extend = Callable[[Draft], Extension]


class _Ambiguous(Exception):
    """The commit may or may not have landed: resend it with the same token."""


@dataclass(frozen=True)
class _PostingRequest:
    account_id: str
    amount: int
    idempotency_key: str | None
    fingerprint: str
    floor: int | None
    create: bool
    key_ttl_seconds: int | None
    extend: Extend | None = None
    minimum: int | None = None


@dataclass
class _Plan:
    account: AccountModel
    entry: EntryModel
    record: IdempotencyModel | None
    high_water: CounterModel | None
    floor: int | None  # the account's own floor
    required: int | None  # what this posting must leave at least: the floor, or this posting's higher minimum
    posting: Posting
    token: str
    extension: Extension


@datastore_guarded
class Ledger:
    """A book of accounts (one per surface): account ids are unique within a book."""

    def __init__(self, book: str, *, track_volume: bool = False, settings: Settings | None = None,
                 clock: Callable[[], datetime] = utc_now, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, show: Callable[[int], str] = str) -> None:
        if ":" in book or "#" in book:
            raise ValueError("a book name has no ':' or '#'")
        self.book = book
        self.track_volume = track_volume
        self._settings = settings or load()
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._show = show  # how amounts read in messages (minor units of money as currency, say)

    # -- keys: the one definition of how a book's items are named ----------------
    def account_key(self, account_id: str) -> str:
        return f"{self.book}:{account_id}"

    def idempotency_key(self, key: str) -> str:
        return f"{self.book}:{key}"

    def high_water_name(self) -> str:
        return f"max_volume:{self.book}"

    def volume_key(self, entry_count: int) -> str:
        """Hash key of the sparse `by_volume` index: the account's place in the book's ranking."""
        return f"{self.book}#{entry_count}"

    def _account_id(self, account_key: str) -> str:
        return account_key.split(":", 1)[1]

    # -- reads --------------------------------------------------------------
    def balance(self, account_id: str) -> AccountBalance:
        """One strongly consistent GetItem."""
        try:
            account = AccountModel.get(self.account_key(account_id), consistent_read=True)
        except AccountModel.DoesNotExist:
            raise NotFound(f"account {account_id} not found", account_id=account_id) from None
        return AccountBalance(account_id, int(account.balance), int(account.entry_count),
                              None if account.floor is None else int(account.floor))

    def posting_by_key(self, idempotency_key: str) -> Posting:
        """The posting an idempotency key produced: one GetItem."""
        try:
            record = IdempotencyModel.get(self.idempotency_key(idempotency_key), consistent_read=True)
        except IdempotencyModel.DoesNotExist:
            raise NotFound(f"transaction {idempotency_key} not found", transaction_id=idempotency_key) from None
        return self._posting_from_record(record, replayed=True)

    def volume_leaders(self) -> VolumeLeaders:
        """The largest entry count in the book and every account that has it.

        One GetItem of the high-water mark, one Query of the sparse `by_volume`
        index at that count: two requests whatever the number of accounts.
        """
        try:
            high_water = CounterModel.get(self.high_water_name(), consistent_read=True)
        except CounterModel.DoesNotExist:
            return VolumeLeaders(0, [])
        max_volume = int(high_water.value)
        ids = {self._account_id(item.key)
               for item in AccountModel.by_volume.query(self.volume_key(max_volume))}
        # The index is eventually consistent; the holder of the record is known exactly.
        if high_water.holder:
            ids.add(high_water.holder)
        return VolumeLeaders(max_volume, sorted(ids))

    def history(self, account_id: str, *, limit: int = 100, cursor: str | None = None,
                newest_first: bool = True, start: datetime | None = None, end: datetime | None = None,
                owner: int | None = None) -> Page:
        """A page of the account's journal: one Query, on `entries` or, for a time range
        (start <= created_at <= end), on its `by_time` index. With `owner`, a page of an account
        that is not the owner's is Forbidden (an empty page says nothing: the caller checks)."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000", field="limit")
        key = self.account_key(account_id)
        query = dict(scan_index_forward=not newest_first, limit=limit, page_size=limit,
                     last_evaluated_key=_decode_cursor(cursor))
        if start is None and end is None:
            results = EntryModel.query(key, consistent_read=True, **query)
        else:
            created_at = EntryModel.created_at
            if start and end:
                in_range = created_at.between(stamp(start), stamp(end))
            else:
                in_range = created_at >= stamp(start) if start else created_at <= stamp(end)
            results = EntryModel.by_time.query(key, in_range, **query)
        entries = list(results)
        if owner is not None and any(entry.owner is None or int(entry.owner) != owner for entry in entries):
            raise Forbidden(f"account {account_id} belongs to another user", account_id=account_id)
        postings = [Posting(account_id, int(entry.seq), int(entry.amount), int(entry.balance_after),
                            entry.created_at) for entry in entries]
        return Page(postings, _encode_cursor(results.last_evaluated_key))

    def totals(self, account_id: str, start: datetime | None, end: datetime | None,
               owner: int | None = None) -> Totals:
        """Credits, debits and their count with start <= created_at <= end (see `_period`)."""
        return Totals.of(self._period(account_id, start, end, owner))

    def statement(self, account_id: str, start: datetime | None, end: datetime | None,
                  owner: int | None = None) -> tuple[Totals, list[Posting]]:
        """The period's totals and every posting in it, oldest first (see `_period`)."""
        postings = list(self._period(account_id, start, end, owner))
        return Totals.of(postings), postings

    def _period(self, account_id: str, start: datetime | None, end: datetime | None, owner: int | None):
        """Every posting with start <= created_at <= end, oldest first: Query pages of `by_time` through the
        period only (the cost follows the entries in it, not the history). Consumed by guarded callers."""
        cursor = None
        while True:
            page = self.history(account_id, limit=1000, cursor=cursor, newest_first=False, start=start, end=end,
                                owner=owner)
            yield from page.postings
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def balance_as_of(self, account_id: str, moment: datetime) -> int:
        """The balance right after the last entry at or before `moment`: one Query of `by_time`."""
        last = self.history(account_id, limit=1, end=moment).postings
        return last[0].balance_after if last else 0

    # -- the write path ----------------------------------------------------------
    def post(self, account_id: str, amount: int, *, idempotency_key: str | None = None,
             request: dict | None = None, floor: int | None = None, create: bool = True,
             key_ttl_seconds: int | None = None, extend: Extend | None = None,
             minimum: int | None = None) -> Posting:
        """Apply `amount` to the account, exactly once per idempotency key.

        `request` is what identifies the client's request besides account and
        amount (it enters the idempotency fingerprint). `floor` applies when the
        account is created by this posting. A posting that lowers the balance
        must leave it at or above the floor, and at or above `minimum` (this posting's
        own, which may only raise the floor). `extend` plans more conditional
        writes (a service's own items) into the same transaction, from the draft.
        """
        amount = require_int("amount", amount)
        posting_request = _PostingRequest(
            account_id, amount, idempotency_key,
            _fingerprint({"account_id": account_id, "amount": amount, **(request or {})}),
            floor, create, key_ttl_seconds, extend, minimum)
        budget = self.retry_budget()
        recheck = False
        while True:
            try:
                return self._attempt(posting_request, budget, recheck)
            except Stale as stale:
                recheck = recheck or stale.recheck
                if not budget.retry():
                    break
        raise Contention("the account is too busy right now; nothing was written, retry later",
                         account_id=account_id)

    def _attempt(self, request: _PostingRequest, budget: RetryBudget, recheck: bool) -> Posting:
        """Read, decide, plan, commit; raises Stale when the world moved underneath."""
        account, record, high_water = self._read(request.account_id, request.idempotency_key)
        if record is not None:
            if record.fingerprint != request.fingerprint:
                raise IdempotencyConflict(
                    f"idempotency key {request.idempotency_key} was already used with a different request",
                    idempotency_key=request.idempotency_key)
            return self._posting_from_record(record, replayed=True)
        if account is None and not request.create:
            raise NotFound(f"account {request.account_id} not found", account_id=request.account_id)
        plan = self._plan(request, account, high_water, recheck)
        self._commit(plan, budget)
        return plan.posting

    def _read(self, account_id: str, idempotency_key: str | None):
        try:
            with TransactGet(connection=models.transaction_connection) as reads:
                account_future = reads.get(AccountModel, self.account_key(account_id))
                record_future = (reads.get(IdempotencyModel, self.idempotency_key(idempotency_key))
                                 if idempotency_key else None)
                high_water_future = (reads.get(CounterModel, self.high_water_name())
                                     if self.track_volume else None)
        except TransactGetError as error:
            if is_client_fault(error):
                raise
            raise Stale() from error  # cancelled by a concurrent write, throttled: read again
        return (resolved(account_future), resolved(record_future), resolved(high_water_future))

    def _plan(self, request: _PostingRequest, account: AccountModel | None,
              high_water: CounterModel | None, recheck: bool) -> _Plan:
        account_id, amount, idempotency_key = request.account_id, request.amount, request.idempotency_key
        now = self._clock()
        if account is None:
            account = AccountModel(self.account_key(account_id), balance=0, entry_count=0, floor=request.floor)
        balance_after = int(account.balance) + amount
        seq = int(account.entry_count) + 1
        created = now
        if account.last_entry_at:
            # Entries of one account are stamped strictly in sequence order, so a
            # time-index query and a sequence query agree ("balance as of" is exact).
            created = max(now, parse_stamp(account.last_entry_at) + timedelta(microseconds=1))
        created_at = stamp(created)
        extension = (request.extend(Draft(account, seq, amount, balance_after, created_at, recheck))
                     if request.extend else Extension())
        account_floor = None if account.floor is None else int(account.floor)
        limits = [limit for limit in (account_floor, request.minimum) if limit is not None]
        required = max(limits) if limits else None
        if amount < 0 and required is not None and balance_after < required:
            raise FloorBreached(f"this debit would leave the balance at {self._show(balance_after)}, "
                                f"below the minimum {self._show(required)}",
                                balance=int(account.balance), floor=required)
        posting = Posting(account_id, seq, amount, balance_after, created_at, extra=extension.result)
        entry = EntryModel(account.key, seq, amount=amount, balance_after=balance_after, created_at=created_at,
                           idempotency_key=self.idempotency_key(idempotency_key) if idempotency_key else None,
                           **extension.entry_attributes)
        record = None
        if idempotency_key:
            record = IdempotencyModel(self.idempotency_key(idempotency_key), fingerprint=request.fingerprint,
                                      account=account.key, seq=seq, amount=amount,
                                      balance_after=balance_after, created_at=created_at)
            if request.key_ttl_seconds:
                record.expires_at = now + timedelta(seconds=request.key_ttl_seconds)
        raise_high_water = self.track_volume and (high_water is None or seq > int(high_water.value))
        return _Plan(account=account, entry=entry, record=record,
                     high_water=CounterModel(self.high_water_name()) if raise_high_water else None,
                     floor=account_floor, required=required, posting=posting, token=str(uuid.uuid4()),
                     extension=extension)

    def _commit(self, plan: _Plan, budget: RetryBudget) -> None:
        """One TransactWriteItems; resent with the same token while the outcome is unknown."""
        while True:
            try:
                self._transact(plan)
                return
            except _Ambiguous:
                if not budget.retry():
                    raise Contention("the datastore did not confirm the write; "
                                     "retry with the same idempotency key") from None

    def _transact(self, plan: _Plan) -> None:
        account = plan.account
        posting = plan.posting
        actions = [
            AccountModel.balance.set(posting.balance_after),
            AccountModel.entry_count.set(posting.seq),
            AccountModel.last_entry_at.set(posting.created_at),
            AccountModel.created_at.set(AccountModel.created_at | posting.created_at),
        ]
        if plan.floor is not None:
            actions.append(AccountModel.floor.set(plan.floor))
        if self.track_volume:
            actions.append(AccountModel.volume_key.set(self.volume_key(posting.seq)))
        extension = plan.extension
        actions.extend(extension.account_actions)
        account_condition = extension.account_condition
        if posting.amount < 0 and plan.required is not None:
            account_condition &= AccountModel.balance >= plan.required - posting.amount
        # PynamoDB sends condition checks, deletes, puts, then updates; reasons come back in that order.
        roles = (["entry"] + (["record"] if plan.record else []) + ["extension"] * len(extension.puts)
                 + ["account"] + (["high_water"] if plan.high_water else []) + ["extension"] * len(extension.updates))
        try:
            with TransactWrite(connection=models.transaction_connection,
                               client_request_token=plan.token) as writes:
                writes.save(plan.entry, condition=EntryModel.seq.does_not_exist())
                if plan.record is not None:
                    writes.save(plan.record, condition=IdempotencyModel.key.does_not_exist())
                for item, condition in extension.puts:
                    writes.save(item, condition=condition)
                writes.update(account, actions, condition=account_condition, return_values="ALL_OLD")
                if plan.high_water is not None:
                    writes.update(plan.high_water,
                                  [CounterModel.value.set(posting.seq), CounterModel.holder.set(posting.account_id)],
                                  condition=CounterModel.value.does_not_exist() | (CounterModel.value < posting.seq))
                for item, item_actions, condition in extension.updates:
                    writes.update(item, item_actions, condition=condition)
        except TransactWriteError as error:
            self._decode(error, roles, plan)

    def _decode(self, error: TransactWriteError, roles: list[str], plan: _Plan) -> None:
        if response_code(error) != "TransactionCanceledException":
            if is_client_fault(error):
                raise  # a bug in the request, not a state of the world
            raise _Ambiguous() from error  # throttled, timed out, 5xx: resend with the same token
        reasons = error.cancellation_reasons
        if len(reasons) != len(roles):
            raise Stale() from error  # unexpected shape: a fresh read decides safely
        failed = {role for role, reason in zip(roles, reasons, strict=True)
                  if reason is not None and reason.code == "ConditionalCheckFailed"}
        account_reason = dict(zip(roles, reasons, strict=True)).get("account")
        if account_reason is not None and account_reason.code == "ConditionalCheckFailed":
            current = account_reason.raw_item or {}
            current_version = current.get("version", {}).get("N")
            read_version = plan.account.version
            if current_version is not None and read_version is not None and int(current_version) == read_version:
                if plan.extension.account_condition is not None:
                    # The account read was current, so the extension's own conditions on it failed:
                    # what it planned from its other reads (an index) was stale.
                    raise Stale(recheck=True) from error
                # Same version, so only the floor can have failed: the read was current.
                raise FloorBreached("this debit would take the balance below the minimum", floor=plan.required)
        # A moved version, a taken seq or key, a raised high-water mark, a conflict: re-plan.
        # Only an extension item that failed while the account held still says the service's own reads
        # were stale (a lagging index); with the account moved too, the fresh read explains both.
        raise Stale(recheck="extension" in failed and "account" not in failed) from error

    def retry_budget(self) -> RetryBudget:
        return RetryBudget(self._settings, self._sleep, self._monotonic)

    def _posting_from_record(self, record: IdempotencyModel, replayed: bool) -> Posting:
        return Posting(self._account_id(record.account), int(record.seq), int(record.amount),
                       int(record.balance_after), record.created_at, replayed=replayed)


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


def resolved(future):
    if future is None:
        return None
    try:
        return future.get()
    except DoesNotExist:
        return None


def _encode_cursor(last_evaluated_key: dict | None) -> str | None:
    if not last_evaluated_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_evaluated_key, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str | None) -> dict | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidRequest("cursor is not one this API issued", field="cursor") from None
    if not isinstance(key, dict):
        raise InvalidRequest("cursor is not one this API issued", field="cursor")
    return key


def _fingerprint(request: dict) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
