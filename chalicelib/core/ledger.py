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
import hmac
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
from chalicelib.core.errors import (
    AlreadyExists,
    Contention,
    FloorBreached,
    Forbidden,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
)
from chalicelib.core.guard import datastore_guarded, is_client_fault, refuse_invalid, response_code
from chalicelib.core.models import AccountModel, CounterModel, EntryModel, IdempotencyModel, LegRecord
from chalicelib.stage_secret import derived_key

# Entries a period's totals or statement read in one request (seed 002's total_in_period, 003's history): the
# newest of the period. One Query page: wallet entries are small, so 1,000 stay well under its 1 MB.
MAX_PERIOD_ENTRIES = 1000


def utc_now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 with microseconds: sorts as text in time order."""
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S.%f}Z"  # %Y does not pad years before 1000


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# Balances (and amounts held) stay within int64, the integers clients' stores and languages hold exactly.
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1

# DynamoDB refuses a key over 2,048 bytes of UTF-8 (a partition key) with a ValidationException: a 500, where
# moto, more lenient, answers "not found". Ids are capped well below that, so that every key built from one
# (a book's prefix, a '#<seq>' suffix, an index key) fits too. No id we issue or accept in a body comes near.
MAX_ID_BYTES = 1024


def findable(what: str, value: str) -> str:
    """`value`, if an item could be stored under it. An id over MAX_ID_BYTES (or not UTF-8) names nothing
    stored: NotFound, as an id that does not exist, before any request is sent. Every id that reaches a key
    passes here (the key builders below, and the /v1 transaction and hold reads)."""
    try:
        fits = len(value.encode("utf-8")) <= MAX_ID_BYTES
    except UnicodeEncodeError:  # a lone surrogate: not text DynamoDB can store
        fits = False
    if not fits:
        raise NotFound(f"{what} {value[:64]}... not found", **{f"{what}_id": value[:64]})
    return value


def require_int(name: str, value: object) -> int:
    """Points and money are integers in the core; bool is not a number here."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer", field=name)
    return value


@dataclass(frozen=True)
class Posting:
    """One account's part of an accepted posting, as committed (or as first committed, when replayed)."""

    account_id: str
    seq: int
    amount: int
    balance_after: int
    created_at: str
    replayed: bool = False
    # What the posting's extension planned (see `Extension.result`); None when replayed.
    extra: object = None
    held_after: int = 0
    # What the posting made, for a service to find on a replay (a transaction's id, say).
    resource: str | None = None
    # As the journal says, in history: the /v1 transaction or hold of the entry, and its kind.
    transaction: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Leg:
    """One account's part of a posting: its amount and the limits it must keep.

    The available balance is `balance - held`. A leg that lowers it must leave it at or above
    the account's floor, and at or above `minimum` (this posting's own, which may only raise it)."""

    account_id: str
    amount: int
    hold_change: int = 0  # how the amount held on the account (open holds) changes
    floor: int | None = None  # the floor of an account this posting creates
    minimum: int | None = None
    create: bool = True

    @property
    def lowers_available(self) -> bool:
        return self.amount - self.hold_change < 0


@dataclass(frozen=True)
class AccountBalance:
    account_id: str
    balance: int
    entry_count: int
    floor: int | None
    held: int = 0


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
    """One leg of a posting as planned, before it commits: what an extension plans around."""

    account: AccountModel  # as read, consistently (a new, unsaved item for a new account)
    seq: int
    amount: int
    balance_after: int
    created_at: str
    # An earlier plan of this request failed on an extension item: re-read such items consistently.
    recheck: bool = False
    held_after: int = 0


@dataclass
class Extension:
    """More writes in a posting's one transaction (lots, link parts, a transaction record), planned by
    a service. `account_actions`, `account_condition` and `entry_attributes` apply to the first leg.

    Every item carries a condition; a failed one makes the plan stale (re-read, re-plan).
    """

    account_actions: list = field(default_factory=list)
    account_condition: Condition | None = None
    entry_attributes: dict = field(default_factory=dict)
    puts: list[tuple[Model, Condition | None]] = field(default_factory=list)
    updates: list[tuple[Model, list, Condition | None]] = field(default_factory=list)
    result: object = None  # handed back on the committed Posting as `extra`

    def merged(self, other: Extension | None) -> Extension:
        """This extension and `other` in one transaction (this one's result is kept)."""
        if other is None:
            return self
        condition = self.account_condition
        if other.account_condition is not None:
            condition &= other.account_condition
        return Extension(self.account_actions + other.account_actions, condition,
                         {**self.entry_attributes, **other.entry_attributes}, self.puts + other.puts,
                         self.updates + other.updates, self.result)


Extend = Callable[[Draft], Extension]
ExtendLegs = Callable[[tuple[Draft, ...]], Extension]


class _Ambiguous(Exception):
    """The commit may or may not have landed: resend it with the same token."""


@dataclass(frozen=True)
class _PostingRequest:
    legs: tuple[Leg, ...]
    idempotency_key: str | None
    fingerprint: str
    key_ttl_seconds: int | None
    extend: ExtendLegs | None = None
    entry_attributes: dict = field(default_factory=dict)  # on every leg's entry
    resource: str | None = None
    scope: str | None = None  # the client's namespace for its keys (see `Ledger.idempotency_key`)


@dataclass
class _LegPlan:
    leg: Leg
    account: AccountModel
    entry: EntryModel
    floor: int | None  # the account's own floor
    required: int | None  # the least available balance this leg must leave: the floor, or a higher minimum
    posting: Posting


@dataclass
class _Plan:
    legs: list[_LegPlan]
    record: IdempotencyModel | None
    high_water: CounterModel | None
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

    def now(self) -> datetime:
        return self._clock()

    # -- keys: the one definition of how a book's items are named ----------------
    def account_key(self, account_id: str) -> str:
        return f"{self.book}:{findable('account', account_id)}"

    def idempotency_key(self, key: str, scope: str | None = None) -> str:
        """The stored key: the book's namespace, and the client's scope (a user, say) when keys are per client."""
        key = findable("transaction", key)
        return f"{self.book}:{scope}/{key}" if scope is not None else f"{self.book}:{key}"

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
                              None if account.floor is None else int(account.floor), int(account.held or 0))

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
                owner: int | None = None, surface: str | None = None) -> Page:
        """A page of the account's journal: one Query, on `entries` or, for a time range
        (start <= created_at <= end), on its `by_time` index. With `surface`, a page of an account of
        another surface is NotFound, as if there were no such account; with `owner`, a page of an account
        that is not the owner's is Forbidden (an empty page says nothing: the caller checks)."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000", field="limit")
        key = self.account_key(account_id)
        # A cursor is good for the very query that made it: this account, order and time range.
        binding = [key, newest_first, stamp(start) if start else None, stamp(end) if end else None]
        # One item more than the page: DynamoDB answers a LastEvaluatedKey whenever the limit is reached, so
        # only the item after the page says whether there is a next page (no empty last page).
        query = dict(scan_index_forward=not newest_first, limit=limit + 1, page_size=limit + 1,
                     last_evaluated_key=self._cursors().decode(cursor, binding))
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
        more = len(entries) > limit
        entries = entries[:limit]
        if surface is not None and any(entry.surface != surface for entry in entries):
            raise NotFound(f"account {account_id} not found", account_id=account_id)
        if owner is not None and any(entry.owner is None or int(entry.owner) != owner for entry in entries):
            raise Forbidden(f"account {account_id} belongs to another user", account_id=account_id)
        postings = [Posting(account_id, int(entry.seq), int(entry.amount), int(entry.balance_after),
                            entry.created_at, held_after=int(entry.held_after or 0), transaction=entry.transaction,
                            kind=entry.kind) for entry in entries]
        last = entries[-1] if more else None
        # The page's last item as DynamoDB would name it: the table's keys, and the index's when one was queried.
        after = None if last is None else {"account": {"S": last.account}, "seq": {"N": str(int(last.seq))},
                                           **({} if start is None and end is None
                                              else {"created_at": {"S": last.created_at}})}
        return Page(postings, self._cursors().encode(after, binding))

    def _cursors(self) -> Cursors:
        return Cursors(derived_key(self._settings, "cursor"))

    def totals(self, account_id: str, start: datetime | None, end: datetime | None,
               **whose) -> Totals:
        """Credits, debits and their count with start <= created_at <= end (see `_period`)."""
        return Totals.of(self._period(account_id, start, end, **whose))

    def statement(self, account_id: str, start: datetime | None, end: datetime | None,
                  **whose) -> tuple[Totals, list[Posting]]:
        """The period's totals and every posting in it, oldest first (see `_period`)."""
        postings = list(self._period(account_id, start, end, **whose))
        return Totals.of(postings), postings

    def _period(self, account_id: str, start: datetime | None, end: datetime | None, **whose):
        """The newest MAX_PERIOD_ENTRIES postings with start <= created_at <= end, oldest first: one Query of
        `by_time`, newest first. A request's work is bounded whatever the period holds (a whole history was read
        before); callers whose contract has no paging say so. `whose`: owner, surface (see `history`)."""
        page = self.history(account_id, limit=MAX_PERIOD_ENTRIES, newest_first=True, start=start, end=end,
                            **whose)
        return list(reversed(page.postings))

    def last_entry_as_of(self, account_id: str, moment: datetime) -> Posting | None:
        """The account's last entry at or before `moment` (None before its first): one Query of `by_time`."""
        last = self.history(account_id, limit=1, end=moment).postings
        return last[0] if last else None

    def balance_as_of(self, account_id: str, moment: datetime) -> int:
        """The balance right after the last entry at or before `moment`."""
        last = self.last_entry_as_of(account_id, moment)
        return last.balance_after if last else 0

    # -- the write path ----------------------------------------------------------
    def open(self, account_id: str, *, floor: int | None, attributes: dict, idempotency_key: str | None,
             fingerprint: dict, key_ttl_seconds: int | None = None) -> tuple[AccountModel, bool]:
        """Create an account with no entries, exactly once per idempotency key: one transaction puts it
        (under attribute_not_exists) and the key's record. Returns the account and whether it was a replay;
        an id already taken by another request is AlreadyExists."""
        key = self.account_key(account_id)
        now = self._clock()
        account = AccountModel(key, balance=0, entry_count=0, floor=floor, held=0, created_at=stamp(now),
                               **attributes)
        record = None
        if idempotency_key:
            record = IdempotencyModel(self.idempotency_key(idempotency_key), fingerprint=_fingerprint(fingerprint),
                                      account=key, seq=0, amount=0, balance_after=0, created_at=account.created_at,
                                      resource=account_id)
            if key_ttl_seconds:
                record.expires_at = now + timedelta(seconds=key_ttl_seconds)
        token = str(uuid.uuid4())
        budget = self.retry_budget()
        while True:
            if record is not None:
                try:
                    used = IdempotencyModel.get(record.key, consistent_read=True)
                except IdempotencyModel.DoesNotExist:
                    used = None
                if used is not None:
                    if used.fingerprint != record.fingerprint:
                        raise IdempotencyConflict.reused(idempotency_key)
                    return AccountModel.get(used.account, consistent_read=True), True
            try:
                with TransactWrite(connection=models.transaction_connection, client_request_token=token) as writes:
                    writes.save(account, condition=AccountModel.key.does_not_exist())
                    if record is not None:
                        writes.save(record, condition=IdempotencyModel.key.does_not_exist())
                return account, False
            except TransactWriteError as error:
                refuse_invalid(error)
                if response_code(error) == "TransactionCanceledException":
                    reasons = error.cancellation_reasons or []
                    taken = [reason is not None and reason.code == "ConditionalCheckFailed" for reason in reasons]
                    if taken[:1] == [True] and not any(taken[1:]):
                        raise AlreadyExists(f"account {account_id} already exists", account_id=account_id) from None
                    # The key was taken meanwhile (a concurrent retry) or a conflict: look again.
                elif is_client_fault(error):
                    raise
            if not budget.retry():
                raise Contention("the datastore did not confirm the write; retry with the same idempotency key")

    def post(self, account_id: str, amount: int, *, idempotency_key: str | None = None,
             request: dict | None = None, floor: int | None = None, create: bool = True,
             key_ttl_seconds: int | None = None, extend: Extend | None = None,
             minimum: int | None = None, resource: str | None = None,
             idempotency_scope: str | None = None) -> Posting:
        """Apply `amount` to the account, exactly once per idempotency key.

        `request` is what identifies the client's request besides account and
        amount (it enters the idempotency fingerprint). `floor` applies when the
        account is created by this posting. A posting that lowers the balance
        must leave it at or above the floor, and at or above `minimum` (this posting's
        own, which may only raise the floor). `extend` plans more conditional
        writes (a service's own items) into the same transaction, from the draft.
        """
        amount = require_int("amount", amount)
        leg = Leg(account_id, amount, floor=floor, minimum=minimum, create=create)
        return self.post_legs((leg,), idempotency_key=idempotency_key, key_ttl_seconds=key_ttl_seconds,
                              fingerprint={"account_id": account_id, "amount": amount, **(request or {})},
                              extend=(lambda drafts: extend(drafts[0])) if extend else None,
                              resource=resource, idempotency_scope=idempotency_scope)[0]

    def post_legs(self, legs: tuple[Leg, ...], *, idempotency_key: str | None = None, fingerprint: dict,
                  key_ttl_seconds: int | None = None, extend: ExtendLegs | None = None,
                  entry_attributes: dict | None = None, resource: str | None = None,
                  idempotency_scope: str | None = None) -> list[Posting]:
        """Apply every leg (one account each) in one transaction, exactly once per idempotency key:
        all legs commit or none. `fingerprint` identifies the client's request (a reused key with
        another fingerprint is a conflict); `resource` names what it makes, kept with the key."""
        accounts = [leg.account_id for leg in legs]
        if not legs or len(set(accounts)) != len(accounts):
            raise InvalidRequest("a posting names each account once", field="account_id")
        for leg in legs:
            require_int("amount", leg.amount)
        posting_request = _PostingRequest(tuple(legs), idempotency_key, _fingerprint(fingerprint),
                                          key_ttl_seconds, extend, entry_attributes or {}, resource,
                                          idempotency_scope)
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
                         account_id=accounts[0])

    def _attempt(self, request: _PostingRequest, budget: RetryBudget, recheck: bool) -> list[Posting]:
        """Read, decide, plan, commit; raises Stale when the world moved underneath."""
        accounts, record, high_water = self._read([leg.account_id for leg in request.legs],
                                                  request.idempotency_key, request.scope)
        if record is not None:
            if record.fingerprint != request.fingerprint:
                raise IdempotencyConflict.reused(request.idempotency_key)
            return self._postings_from_record(record)
        for leg, account in zip(request.legs, accounts, strict=True):
            if account is None and not leg.create:
                raise NotFound(f"account {leg.account_id} not found", account_id=leg.account_id)
        plan = self._plan(request, accounts, high_water, recheck)
        self._commit(plan, budget)
        return [leg.posting for leg in plan.legs]

    def _read(self, account_ids: list[str], idempotency_key: str | None, scope: str | None = None):
        try:
            with TransactGet(connection=models.transaction_connection) as reads:
                account_futures = [reads.get(AccountModel, self.account_key(account_id)) for account_id in account_ids]
                record_future = (reads.get(IdempotencyModel, self.idempotency_key(idempotency_key, scope))
                                 if idempotency_key else None)
                high_water_future = (reads.get(CounterModel, self.high_water_name())
                                     if self.track_volume else None)
        except TransactGetError as error:
            if is_client_fault(error):
                raise
            raise Stale() from error  # cancelled by a concurrent write, throttled: read again
        return ([resolved(future) for future in account_futures], resolved(record_future),
                resolved(high_water_future))

    def _plan(self, request: _PostingRequest, accounts: list[AccountModel | None],
              high_water: CounterModel | None, recheck: bool) -> _Plan:
        now = self._clock()
        accounts = [account if account is not None
                    else AccountModel(self.account_key(leg.account_id), balance=0, entry_count=0, floor=leg.floor)
                    for leg, account in zip(request.legs, accounts, strict=True)]
        created = now
        for account in accounts:
            if account.last_entry_at:
                # Entries of one account are stamped strictly in sequence order, so a
                # time-index query and a sequence query agree ("balance as of" is exact).
                created = max(created, parse_stamp(account.last_entry_at) + timedelta(microseconds=1))
        created_at = stamp(created)  # every leg of a posting at one time
        drafts = tuple(Draft(account, int(account.entry_count) + 1, leg.amount, int(account.balance) + leg.amount,
                             created_at, recheck, int(account.held or 0) + leg.hold_change)
                       for leg, account in zip(request.legs, accounts, strict=True))
        for leg, draft in zip(request.legs, drafts, strict=True):
            if not (INT64_MIN <= draft.balance_after <= INT64_MAX and INT64_MIN <= draft.held_after <= INT64_MAX):
                raise InvalidRequest(f"this posting would take the balance of {leg.account_id} outside the "
                                     f"64-bit range ({INT64_MIN} to {INT64_MAX})", field="amount",
                                     account_id=leg.account_id)
        extension = request.extend(drafts) if request.extend else Extension()
        idempotency_key = request.idempotency_key
        stored_key = self.idempotency_key(idempotency_key, request.scope) if idempotency_key else None
        legs = []
        for number, (leg, draft) in enumerate(zip(request.legs, drafts, strict=True)):
            account = draft.account
            account_floor = None if account.floor is None else int(account.floor)
            limits = [limit for limit in (account_floor, leg.minimum) if limit is not None]
            required = max(limits) if limits else None
            available_after = draft.balance_after - draft.held_after
            if leg.lowers_available and required is not None and available_after < required:
                what = "balance" if draft.held_after == 0 else "available balance (balance less holds)"
                whose = f" of {leg.account_id}" if len(request.legs) > 1 else ""
                raise FloorBreached(f"this debit would leave the {what}{whose} at {self._show(available_after)}, "
                                    f"below the minimum {self._show(required)}",
                                    balance=int(account.balance), floor=required, account_id=leg.account_id)
            entry = EntryModel(account.key, draft.seq, amount=leg.amount, balance_after=draft.balance_after,
                               created_at=created_at, idempotency_key=stored_key, **request.entry_attributes,
                               **(extension.entry_attributes if number == 0 else {}))
            if leg.hold_change:
                entry.held_change = leg.hold_change
            if leg.hold_change or draft.held_after:
                entry.held_after = draft.held_after  # what stays reserved, on every entry while anything is
            posting = Posting(leg.account_id, draft.seq, leg.amount, draft.balance_after, created_at,
                              extra=extension.result, held_after=draft.held_after, resource=request.resource)
            legs.append(_LegPlan(leg, account, entry, account_floor, required, posting))
        record = None
        if idempotency_key:
            first = legs[0].posting
            record = IdempotencyModel(stored_key, fingerprint=request.fingerprint,
                                      account=legs[0].account.key, seq=first.seq, amount=first.amount,
                                      balance_after=first.balance_after, created_at=created_at,
                                      resource=request.resource)
            if len(legs) > 1:
                record.legs = [LegRecord(account=plan.account.key, seq=plan.posting.seq, amount=plan.posting.amount,
                                         balance_after=plan.posting.balance_after) for plan in legs]
            if request.key_ttl_seconds:
                record.expires_at = now + timedelta(seconds=request.key_ttl_seconds)
        top = max(legs, key=lambda plan: plan.posting.seq)
        raise_high_water = self.track_volume and (high_water is None or top.posting.seq > int(high_water.value))
        return _Plan(legs=legs, record=record,
                     high_water=CounterModel(self.high_water_name()) if raise_high_water else None,
                     token=str(uuid.uuid4()), extension=extension)

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

    def _account_update(self, plan: _LegPlan, extension: Extension | None) -> tuple[list, Condition | None]:
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
        condition = None
        if extension is not None:
            actions.extend(extension.account_actions)
            condition = extension.account_condition
        if plan.leg.hold_change:
            actions.append(AccountModel.held.set(posting.held_after))
        if plan.leg.lowers_available and plan.required is not None:
            # available after = balance + amount - held after >= required, checked on the stored item.
            condition &= AccountModel.balance >= plan.required + posting.held_after - posting.amount
            if posting.held_after:
                held_before = posting.held_after - plan.leg.hold_change
                condition &= (AccountModel.held == held_before) if held_before else \
                    (AccountModel.held.does_not_exist() | (AccountModel.held == 0))
        return actions, condition

    def _transact(self, plan: _Plan) -> None:
        extension = plan.extension
        # PynamoDB sends condition checks, deletes, puts, then updates; reasons come back in that order.
        roles = (["entry"] * len(plan.legs) + (["record"] if plan.record else []) + ["extension"] * len(extension.puts)
                 + [f"account:{number}" for number in range(len(plan.legs))]
                 + (["high_water"] if plan.high_water else []) + ["extension"] * len(extension.updates))
        try:
            with TransactWrite(connection=models.transaction_connection,
                               client_request_token=plan.token) as writes:
                for leg in plan.legs:
                    writes.save(leg.entry, condition=EntryModel.seq.does_not_exist())
                if plan.record is not None:
                    writes.save(plan.record, condition=IdempotencyModel.key.does_not_exist())
                for item, condition in extension.puts:
                    writes.save(item, condition=condition)
                for number, leg in enumerate(plan.legs):
                    actions, condition = self._account_update(leg, extension if number == 0 else None)
                    writes.update(leg.account, actions, condition=condition, return_values="ALL_OLD")
                if plan.high_water is not None:
                    top = max(plan.legs, key=lambda leg: leg.posting.seq).posting
                    writes.update(plan.high_water,
                                  [CounterModel.value.set(top.seq), CounterModel.holder.set(top.account_id)],
                                  condition=CounterModel.value.does_not_exist() | (CounterModel.value < top.seq))
                for item, item_actions, condition in extension.updates:
                    writes.update(item, item_actions, condition=condition)
        except TransactWriteError as error:
            self._decode(error, roles, plan)

    def _decode(self, error: TransactWriteError, roles: list[str], plan: _Plan) -> None:
        refuse_invalid(error)  # the retry budget is for contention only
        if response_code(error) != "TransactionCanceledException":
            if is_client_fault(error):
                raise  # a bug in the request, not a state of the world
            raise _Ambiguous() from error  # throttled, timed out, 5xx: resend with the same token
        reasons = error.cancellation_reasons
        if len(reasons) != len(roles):
            raise Stale() from error  # unexpected shape: a fresh read decides safely
        failed = {role for role, reason in zip(roles, reasons, strict=True)
                  if reason is not None and reason.code == "ConditionalCheckFailed"}
        by_role = dict(zip(roles, reasons, strict=True))
        for number, leg in enumerate(plan.legs):
            reason = by_role[f"account:{number}"]
            if reason is None or reason.code != "ConditionalCheckFailed":
                continue
            current_version = (reason.raw_item or {}).get("version", {}).get("N")
            read_version = leg.account.version
            if current_version is None or read_version is None or int(current_version) != read_version:
                continue
            if number == 0 and plan.extension.account_condition is not None:
                # The account read was current, so the extension's own conditions on it failed:
                # what it planned from its other reads (an index) was stale.
                raise Stale(recheck=True) from error
            # Same version, so only the floor can have failed: the read was current.
            raise FloorBreached("this debit would take the balance below the minimum", floor=leg.required,
                                account_id=leg.leg.account_id)
        # A moved version, a taken seq or key, a raised high-water mark, a conflict: re-plan.
        # Only an extension item that failed while the accounts held still says the service's own reads
        # were stale (a lagging index); with an account moved too, the fresh read explains both.
        accounts_failed = any(role.startswith("account:") for role in failed)
        raise Stale(recheck="extension" in failed and not accounts_failed) from error


    def retry_budget(self) -> RetryBudget:
        return RetryBudget(self._settings, self._sleep, self._monotonic)

    def _posting_from_record(self, record: IdempotencyModel, replayed: bool) -> Posting:
        return Posting(self._account_id(record.account), int(record.seq), int(record.amount),
                       int(record.balance_after), record.created_at, replayed=replayed, resource=record.resource)

    def _postings_from_record(self, record: IdempotencyModel) -> list[Posting]:
        if not record.legs:
            return [self._posting_from_record(record, replayed=True)]
        return [Posting(self._account_id(leg.account), int(leg.seq), int(leg.amount), int(leg.balance_after),
                        record.created_at, replayed=True, resource=record.resource) for leg in record.legs]


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


class Cursors:
    """Opaque paging cursors: DynamoDB's LastEvaluatedKey and the query it belongs to, signed (HMAC-SHA256
    under a key derived from the stage's secret). A cursor that was tampered with, or made for another
    account or query, is a 400: it can never steer a Query elsewhere nor reach DynamoDB malformed."""

    MAC_BYTES = 16

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, last_evaluated_key: dict | None, binding: list) -> str | None:
        if not last_evaluated_key:
            return None
        payload = base64.urlsafe_b64encode(json.dumps([last_evaluated_key, binding], separators=(",", ":"))
                                           .encode()).decode().rstrip("=")
        return f"{payload}.{self._mac(payload)}"

    def decode(self, cursor: str | None, binding: list) -> dict | None:
        if not cursor:
            return None
        payload, _, mac = cursor.partition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            raise InvalidRequest("cursor is not one this API issued", field="cursor")
        try:
            key, bound = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError, binascii.Error, UnicodeError):
            raise InvalidRequest("cursor is not one this API issued", field="cursor") from None
        if bound != binding or not isinstance(key, dict):
            raise InvalidRequest("cursor belongs to another query: page with the parameters that made it",
                                 field="cursor")
        return key

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:self.MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _fingerprint(request: dict) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
