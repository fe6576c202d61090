"""`Ledger`, the face of one book: its accounts (open, balance, volume ranking), and the postings
engine, journal and idempotency behind them. Nothing here knows about HTTP."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.config import Settings, load
from chalicelib.core.errors import AlreadyExists, Contention, InvalidRequest, NotFound
from chalicelib.core.guard import datastore_guarded
from chalicelib.core.ledger import idempotency
from chalicelib.core.ledger.idempotency import check_replay, new_record, replayed_postings
from chalicelib.core.ledger.journal import Journal, Page, Totals
from chalicelib.core.ledger.keys import BookKeys
from chalicelib.core.ledger.legs import Leg, Posting, require_int
from chalicelib.core.ledger.posting import Extend, ExtendLegs, PostingEngine, PostingRequest
from chalicelib.core.ledger.runner import (
    Ambiguous,
    Cancelled,
    Refused,
    RetryBudget,
    Stale,
    Writes,
    send,
    until_current,
)
from chalicelib.core.ledger.stamps import stamp, utc_now
from chalicelib.core.models import AccountModel, CounterModel, IdempotencyModel


@dataclass(frozen=True)
class AccountBalance:
    account_id: str
    balance: int
    entry_count: int
    floor: int | None
    held: int = 0


@dataclass(frozen=True)
class VolumeLeaders:
    max_volume: int
    account_ids: list[str]


@datastore_guarded
class Ledger:
    """A book of accounts (one per surface): account ids are unique within a book."""

    def __init__(self, book: str, *, track_volume: bool = False, settings: Settings | None = None,
                 clock: Callable[[], datetime] = utc_now, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, show: Callable[[int], str] = str) -> None:
        self._keys = BookKeys(book)
        self.book = book
        self.track_volume = track_volume
        self._settings = settings or load()
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._journal = Journal(self._keys, self._settings)
        # `show`: how amounts read in messages (minor units of money as currency, say).
        self._engine = PostingEngine(self._keys, track_volume=track_volume, clock=clock, show=show)

    def now(self) -> datetime:
        return self._clock()

    def retry_budget(self) -> RetryBudget:
        return RetryBudget(self._settings, self._sleep, self._monotonic)

    # -- keys (see `BookKeys`) ------------------------------------------------------
    def account_key(self, account_id: str) -> str:
        return self._keys.account_key(account_id)

    def idempotency_key(self, key: str, scope: str | None = None) -> str:
        return self._keys.idempotency_key(key, scope)

    def high_water_name(self) -> str:
        return self._keys.high_water_name()

    def volume_key(self, entry_count: int) -> str:
        return self._keys.volume_key(entry_count)

    # -- reads ------------------------------------------------------------------------
    def balance(self, account_id: str) -> AccountBalance:
        """One strongly consistent GetItem."""
        try:
            account = AccountModel.get(self.account_key(account_id), consistent_read=True)
        except AccountModel.DoesNotExist:
            raise NotFound(f"account {account_id} not found") from None
        return AccountBalance(account_id, int(account.balance), int(account.entry_count),
                              None if account.floor is None else int(account.floor), int(account.held or 0))

    def posting_by_key(self, idempotency_key: str) -> Posting:
        """The posting an idempotency key produced: one GetItem."""
        try:
            record = IdempotencyModel.get(self.idempotency_key(idempotency_key), consistent_read=True)
        except IdempotencyModel.DoesNotExist:
            raise NotFound(f"transaction {idempotency_key} not found") from None
        return replayed_postings(record, self._keys)[0]

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
        ids = {self._keys.account_id(item.key)
               for item in AccountModel.by_volume.query(self.volume_key(max_volume))}
        # The index is eventually consistent; the holder of the record is known exactly.
        if high_water.holder:
            ids.add(high_water.holder)
        return VolumeLeaders(max_volume, sorted(ids))

    # -- the journal (see `Journal`) ------------------------------------------------------
    def history(self, account_id: str, *, limit: int = 100, cursor: str | None = None,
                newest_first: bool = True, start: datetime | None = None, end: datetime | None = None,
                owner: int | None = None, surface: str | None = None) -> Page:
        """A page of the account's journal: see `Journal.history`."""
        return self._journal.history(account_id, limit=limit, cursor=cursor, newest_first=newest_first,
                                     start=start, end=end, owner=owner, surface=surface)

    def totals(self, account_id: str, start: datetime | None, end: datetime | None, **whose) -> Totals:
        """Credits, debits and their count with start <= created_at <= end (see `Journal.period`)."""
        return Totals.of(self._journal.period(account_id, start, end, **whose))

    def statement(self, account_id: str, start: datetime | None, end: datetime | None,
                  **whose) -> tuple[Totals, list[Posting]]:
        """The period's totals and every posting in it, oldest first (see `Journal.period`)."""
        postings = self._journal.period(account_id, start, end, **whose)
        return Totals.of(postings), postings

    def last_entry_as_of(self, account_id: str, moment: datetime) -> Posting | None:
        return self._journal.last_entry_as_of(account_id, moment)

    def balance_as_of(self, account_id: str, moment: datetime) -> int:
        """The balance right after the last entry at or before `moment`."""
        last = self._journal.last_entry_as_of(account_id, moment)
        return last.balance_after if last else 0

    # -- writes -------------------------------------------------------------------------
    def open(self, account_id: str, *, floor: int | None, attributes: dict, idempotency_key: str | None,
             fingerprint: dict, key_ttl_seconds: int | None = None,
             requires: Callable[[AccountModel, Writes], None] | None = None) -> tuple[AccountModel, bool]:
        """Create an account with no entries, exactly once per idempotency key: one transaction puts it
        (under attribute_not_exists) and the key's record. Returns the account and whether it was a replay;
        an id already taken by another request is AlreadyExists. `requires` adds the caller's items that
        must hold for the account to exist (a uniqueness item, say); when one fails, it is Refused."""
        key = self.account_key(account_id)
        now = self._clock()
        account = AccountModel(key, balance=0, entry_count=0, floor=floor, held=0, created_at=stamp(now),
                               **attributes)
        record = None
        if idempotency_key:
            opened: Posting = Posting(account_id, 0, 0, 0, account.created_at)
            record = new_record(self.idempotency_key(idempotency_key), idempotency.fingerprint(fingerprint),
                                [opened], [key], now=now, key_ttl_seconds=key_ttl_seconds, resource=account_id)

        def put(writes: Writes) -> None:
            writes.put("account", account, AccountModel.key.does_not_exist())
            if record is not None:
                writes.put("record", record, IdempotencyModel.key.does_not_exist())
            if requires is not None:
                requires(account, writes)

        token = str(uuid.uuid4())  # one request: every round resends the same transaction

        def attempt(_recheck: bool) -> tuple[AccountModel, bool]:
            if record is not None:
                try:
                    used = IdempotencyModel.get(record.key, consistent_read=True)
                except IdempotencyModel.DoesNotExist:
                    used = None
                if used is not None and idempotency_key is not None:  # a record is made only for a key
                    check_replay(used, record.fingerprint, idempotency_key)
                    return AccountModel.get(used.account, consistent_read=True), True
            try:
                send(put, token)
            except Cancelled as cancelled:
                if cancelled.failed == {"account"}:
                    raise AlreadyExists(f"account {account_id} already exists") from None
                if cancelled.failed and cancelled.failed - {"account", "record"}:
                    raise Refused(cancelled.failed) from None
                raise Stale() from None  # the key was taken meanwhile (a concurrent retry) or a conflict: look again
            except Ambiguous:
                raise Stale() from None
            return account, False

        return until_current(attempt, self.retry_budget(), lambda: Contention(
            "the datastore did not confirm the write; retry with the same idempotency key"))

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
        writes (a service's own items) into the same transaction, from the planned leg.
        """
        amount = require_int("amount", amount)
        leg = Leg(account_id, amount, floor=floor, minimum=minimum, create=create)
        return self.post_legs((leg,), idempotency_key=idempotency_key, key_ttl_seconds=key_ttl_seconds,
                              fingerprint={"account_id": account_id, "amount": amount, **(request or {})},
                              extend=(lambda planned: extend(planned[0])) if extend else None,
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
        request = PostingRequest(tuple(legs), idempotency_key, idempotency.fingerprint(fingerprint), key_ttl_seconds,
                                 extend, entry_attributes or {}, resource, idempotency_scope)
        return self._engine.post(request, self.retry_budget())

