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
from chalicelib.core.ledger.idempotency import check_replay, new_record
from chalicelib.core.ledger.journal import Journal, Page, Snapshot, Totals
from chalicelib.core.ledger.keys import BookKeys
from chalicelib.core.ledger.legs import Leg, Posting, require_int
from chalicelib.core.ledger.posting import Extend, ExtendLegs, PostingEngine, PostingRequest, WithoutRead
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
from chalicelib.core.ledger.sequencer import placed
from chalicelib.core.ledger.shards import Layouts, shard_id, split_floor
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
                 monotonic: Callable[[], float] = time.monotonic, show: Callable[[int], str] = str,
                 hot_accounts: bool = False, unread_writes: bool = False) -> None:
        """`hot_accounts`: the book may hold hot accounts (see `shards.py`), so its reads look for them.
        `unread_writes`: postings whose outcome depends on no read are written without one (see `sequencer.py`),
        so the book's journal reads settle the account's log first."""
        self._keys = BookKeys(book)
        self.book = book
        self.track_volume = track_volume
        self.hot_accounts = hot_accounts
        self._layouts = Layouts()
        self._settings = settings or load()
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._journal = Journal(self._keys, self._settings)
        # `show`: how amounts read in messages (minor units of money as currency, say).
        self._engine = PostingEngine(self._keys, self._layouts, track_volume=track_volume, clock=clock, show=show,
                                     unread_writes=unread_writes)

    @property
    def unread_writes(self) -> bool:
        return self._engine.unread_writes

    @property
    def settings(self) -> Settings:
        return self._settings

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

    # -- reads ------------------------------------------------------------------------
    def balance(self, account_id: str) -> AccountBalance:
        """One strongly consistent GetItem (a hot account's shards: one BatchGetItem, see `stored`)."""
        account, shards = self.stored(account_id)
        counted = shards or [account]
        return AccountBalance(account_id, sum(int(item.balance) for item in counted),
                              sum(int(item.entry_count) for item in counted),
                              None if account.floor is None else int(account.floor),
                              sum(int(item.held or 0) for item in counted))

    def stored(self, account_id: str) -> tuple[AccountModel, list[AccountModel]]:
        """The account's item and, for a hot account, its shards (whose balances sum to its balance), read
        consistently: one GetItem, or one BatchGetItem of the item and its shards once the layout is known
        (the first read of a hot account in a container reads its shards after its item)."""
        key = self.account_key(account_id)
        layout = self._layouts.get(account_id)
        if layout is None:
            try:
                account = AccountModel.get(key, consistent_read=True)
            except AccountModel.DoesNotExist:
                raise NotFound(f"account {account_id} not found") from None
            layout = self._layouts.learn_item(account_id, account)
            if layout is None:
                return account, []
            items = {item.key: item for item in AccountModel.batch_get(self.shard_keys(account_id, layout.shards),
                                                                         consistent_read=True)}
        else:
            items = {item.key: item for item in AccountModel.batch_get(
                [key, *self.shard_keys(account_id, layout.shards)], consistent_read=True)}
            if key not in items:
                raise NotFound(f"account {account_id} not found")
            account = items[key]
        return account, [items[shard_key] for shard_key in self.shard_keys(account_id, layout.shards)]

    def stored_and_settled(self, account_id: str) -> tuple[AccountModel, list[AccountModel], list[Posting]]:
        """`stored`, and the journal settled (`settle`) for reads that follow, by the same read where it can be: an
        ordinary account's GetItem that settles it is the item `stored` would read (a drain moves only its log)."""
        seen: list[AccountModel] = []  # the account's own item only: a hot account's shards are not passed on
        settled = self.settle(account_id, seen=seen.append)
        if seen and not seen[-1].shards:
            return seen[-1], [], settled
        account, shards = self.stored(account_id)
        return account, shards, settled

    def is_hot(self, account_id: str) -> bool:
        """Whether the account is hot: known in this container, or read (one GetItem; False if there is none)."""
        if not self.hot_accounts:
            return False
        if self._layouts.get(account_id) is not None:
            return True
        try:
            account = AccountModel.get(self.account_key(account_id), consistent_read=True)
        except AccountModel.DoesNotExist:
            return False
        return self._layouts.learn_item(account_id, account) is not None

    def learn_layout(self, account_id: str, account: AccountModel) -> None:
        """What the caller read of an account (its `shards` and `floor`) says of its layout, if it is hot: later
        postings go to its shards without reading it."""
        if self.hot_accounts:
            self._layouts.learn_item(account_id, account)

    def shard_keys(self, account_id: str, shards: int) -> list[str]:
        """The keys of a hot account's shard items."""
        return [self.account_key(shard_id(account_id, number)) for number in range(shards)]

    def _record(self, idempotency_key: str) -> IdempotencyModel:
        try:
            return IdempotencyModel.get(self.idempotency_key(idempotency_key), consistent_read=True)
        except IdempotencyModel.DoesNotExist:
            raise NotFound(f"transaction {idempotency_key} not found") from None

    def posting_by_key(self, idempotency_key: str) -> Posting:
        """The posting an idempotency key produced: one GetItem (two while it waits in its account's log)."""
        return self._engine.replayed(self._record(idempotency_key))[0]

    def movement_by_key(self, idempotency_key: str) -> tuple[str, int]:
        """The account and amount of the posting an idempotency key produced: one GetItem."""
        record = self._record(idempotency_key)
        return self._keys.account_id(record.account), int(record.amount)

    def volume_leaders(self) -> VolumeLeaders:
        """The largest entry count in the book and every account that has it.

        One GetItem of the high-water mark, one Query of the sparse `by_count`
        index at that count: two requests whatever the number of accounts.
        """
        try:
            high_water = CounterModel.get(self.high_water_name(), consistent_read=True)
        except CounterModel.DoesNotExist:
            return VolumeLeaders(0, [])
        max_volume = int(high_water.value)
        prefix = self.account_key("")
        ids = {self._keys.account_id(item.key) for item in AccountModel.by_count.query(max_volume)
               if item.key.startswith(prefix)}  # `volume` is a number: the index names every such book's accounts
        # The index is eventually consistent; the holder of the record is known exactly.
        if high_water.holder:
            ids.add(high_water.holder)
        return VolumeLeaders(max_volume, sorted(ids))

    # -- the journal (see `Journal`) ------------------------------------------------------
    def settle(self, account_id: str, *, force: bool = False, owner: int | None = None,
               surface: str | None = None, seen: Callable[[AccountModel], None] | None = None) -> list[Posting]:
        """Every posting of the account answered before this call that waits in its log (written without a read)
        put in the journal, so a read of the journal sees it: one GetItem when none waits (`sequencer.py`), and a
        drain when some do. Returns those, as the journal holds them: a time index may not show them yet (on AWS
        a GSI lags its table), so a read of one merges them in. Only in books that write without reads, unless
        `force`d (the verifier, which knows no book's options). `owner`, `surface`: whose reads these are; an
        account of another is left as it is (the read that follows refuses it, and a probe of it costs what a
        probe of a missing one does). `seen`: told of each account item read."""
        if not (self._engine.unread_writes or force):
            return []

        def sees(account: AccountModel) -> bool:
            return ((surface is None or account.surface == surface)
                    and (owner is None or (account.owner is not None and int(account.owner) == owner)))
        layout = self._layouts.get(account_id) if self.hot_accounts else None
        if layout is None:
            settled = self._engine.settle(self.account_key(account_id), self.retry_budget(), sees, seen)
            layout = self._layouts.get(account_id) if self.hot_accounts else None  # the read may find it hot
            if layout is None:
                return [place.as_posting(account_id) for place in settled]
        # A hot account: its shards read in one batch; each that holds a log, an ordinary account of the core,
        # settled in turn (one with none has nothing to move).
        keys = self.shard_keys(account_id, layout.shards)
        logged = {item.key for item in AccountModel.batch_get(keys, consistent_read=True) if item.log and sees(item)}
        return [place.as_posting(shard_id(account_id, number), shard=number) for number, key in enumerate(keys)
                if key in logged for place in self._engine.settle(key, self.retry_budget(), sees)]

    def logged_legs(self, account_ids: set[str]) -> dict[tuple[str, int], tuple[int, int]]:
        """Of the /v1 transactions' legs waiting in these accounts' logs: (transaction, leg number) -> (seq, balance
        after), as the journal will hold them. One consistent BatchGetItem per 100 accounts; nothing written."""
        keys = [self.account_key(account_id) for account_id in account_ids]
        found: dict[tuple[str, int], tuple[int, int]] = {}
        for account in AccountModel.batch_get(keys, consistent_read=True) if keys else ():
            for place in placed(account):
                transaction = place.attributes.get("transaction")
                if transaction is not None and place.leg is not None:
                    found[(transaction, place.leg)] = (place.seq, place.balance_after)
        return found

    def history(self, account_id: str, *, limit: int = 100, cursor: str | None = None,
                newest_first: bool = True, start: datetime | None = None, end: datetime | None = None,
                owner: int | None = None, surface: str | None = None, hot: bool | None = None,
                settled: list[Posting] | None = None) -> Page:
        """A page of the account's journal: see `Journal.history`; a hot account's shards merged in time order
        through `hot_by_time`. `hot`: whether the account is hot, when the caller read it; else a layout known
        in this container says, or, for a page after the first, the account's item (one GetItem). `settled`: what
        the caller's `settle` returned, when it settled the account for several reads (else this read settles)."""
        if settled is None:
            self.settle(account_id, owner=owner, surface=surface)
        if hot is None:
            hot = self.hot_accounts and (self._layouts.get(account_id) is not None
                                         or (cursor is not None and self.is_hot(account_id)))
        return self._journal.history(account_id, limit=limit, cursor=cursor, newest_first=newest_first, start=start,
                                     end=end, owner=owner, surface=surface, hot=hot)

    def totals(self, account_id: str, start: datetime | None, end: datetime | None, **whose) -> Totals:
        """Credits, debits and their count with start <= created_at <= end (see `Journal.period`)."""
        settled = self.settle(account_id, **whose)
        return Totals.of(self._journal.period(account_id, start, end, settled=settled, **whose))

    def statement(self, account_id: str, start: datetime | None, end: datetime | None,
                  **whose) -> tuple[Totals, list[Posting]]:
        """The period's totals and every posting in it, oldest first (see `Journal.period`)."""
        settled = self.settle(account_id, **whose)
        postings = self._journal.period(account_id, start, end, settled=settled, **whose)
        return Totals.of(postings), postings

    def balance_as_of(self, account_id: str, moment: datetime) -> int:
        """The balance right after the last entry at or before `moment` (see `as_of`)."""
        return self.as_of(account_id, moment).balance

    def as_of(self, account_id: str, moment: datetime, shards: int | None = None,
              settled: list[Posting] | None = None) -> Snapshot:
        """The account right after its last entry at or before `moment`: one Query, or for a hot account see
        `Journal.hot_as_of`. `shards`: the account's, when the caller read it (else found as `history` finds it).
        `settled`: as `history` has it."""
        if settled is None:
            settled = self.settle(account_id)
        if shards is None:
            layout = self._layouts.get(account_id) if self.is_hot(account_id) else None
            shards = layout.shards if layout else 1
        if shards > 1:
            return self._journal.hot_as_of(account_id, shards, moment)
        return self._journal.as_of(account_id, moment, settled=settled)

    # -- writes -------------------------------------------------------------------------
    def open(self, account_id: str, *, floor: int | None, attributes: dict, idempotency_key: str | None,
             fingerprint: dict, key_ttl_seconds: int | None = None,
             requires: Callable[[AccountModel, Writes], None] | None = None, shards: int = 1,
             shard_attributes: dict | None = None) -> tuple[AccountModel, bool]:
        """Create an account with no entries, exactly once per idempotency key: one transaction puts it
        (under attribute_not_exists) and the key's record. Returns the account and whether it was a replay;
        an id already taken by another request is AlreadyExists. `requires` adds the caller's items that
        must hold for the account to exist (a uniqueness item, say); when one fails, it is Refused.

        With `shards` > 1 the account is hot (see `shards.py`): the same transaction puts its shards, each an
        ordinary account with `shard_attributes`, whose floors sum to `floor`."""
        key = self.account_key(account_id)
        now = self._clock()
        account = AccountModel(key, balance=0, entry_count=0, floor=floor, held=0, available=0,
                               created_at=stamp(now), **attributes)
        shard_items = []
        if shards > 1:
            if not self.hot_accounts:
                raise InvalidRequest("this book keeps no hot accounts", field="shards")
            if floor is not None and floor > 0:
                # Every shard must stay at or above its own floor for their sum to keep the account's: shards start
                # at 0, so a positive floor would leave some below theirs from the start (see `shards.py`).
                raise InvalidRequest("a hot account's floor is 0, negative (an overdraft) or none", field="floor")
            account.shards = shards
            shard_items = [AccountModel(self.account_key(shard_id(account_id, number)), balance=0, entry_count=0,
                                        floor=shard_floor, held=0, available=0, created_at=account.created_at,
                                        shard_of=key,
                                        **(shard_attributes or {}))
                           for number, shard_floor in enumerate(split_floor(floor, shards))]
        record = None
        if idempotency_key:
            opened: Posting = Posting(account_id, 0, 0, 0, account.created_at)
            record = new_record(self.idempotency_key(idempotency_key), idempotency.fingerprint(fingerprint),
                                [opened], [key], now=now, key_ttl_seconds=key_ttl_seconds, resource=account_id)

        def put(writes: Writes) -> None:
            writes.put("account", account, AccountModel.key.does_not_exist())
            for shard in shard_items:
                writes.put("shard", shard, AccountModel.key.does_not_exist())
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
                # The account taken is the answer, whatever else failed beside it: an item named after the account (a
                # search item of the same id, moment and metadata) exists because the account does.
                if cancelled.failed and "account" in cancelled.failed:
                    raise AlreadyExists(f"account {account_id} already exists") from None
                if cancelled.failed and cancelled.failed - {"account", "shard", "record"}:
                    raise Refused(cancelled.failed) from None
                raise Stale() from None  # the key was taken meanwhile (a concurrent retry) or a conflict: look again
            except Ambiguous:
                raise Stale() from None
            if shard_items:
                self._layouts.learn_item(account_id, account)
            return account, False

        return until_current(attempt, self.retry_budget(), lambda: Contention(
            "the datastore did not confirm the write; retry with the same idempotency key"))

    def post(self, account_id: str, amount: int, *, idempotency_key: str | None = None,
             request: dict | None = None, floor: int | None = None, create: bool = True,
             key_ttl_seconds: int | None = None, extend: Extend | None = None,
             minimum: int | None = None, resource: str | None = None,
             idempotency_scope: str | None = None, counter: str | None = None,
             plan_legs: ExtendLegs | None = None, without_read: WithoutRead | None = None) -> Posting:
        """Apply `amount` to the account, exactly once per idempotency key.

        `request` is what identifies the client's request besides account and
        amount (it enters the idempotency fingerprint). `floor` applies when the
        account is created by this posting (of an existing one: the floor the caller expects it to have, which a
        posting without a read checks). A posting that lowers the balance
        must leave it at or above the floor, and at or above `minimum` (this posting's
        own, which may only raise the floor). `extend` plans more conditional
        writes (a service's own items) into the same transaction, from the planned leg; `plan_legs` does
        the same from every planned leg; `without_read` says what `extend` checks, as a condition on the
        account, and what it adds, so that the posting may go without a read (see `sequencer.py`). `counter`
        names the account the amount comes from or goes to (it is posted `-amount` in the same transaction, so the
        posting sums to zero).
        """
        amount = require_int("amount", amount)
        legs: tuple[Leg, ...] = (Leg(account_id, amount, floor=floor, minimum=minimum, create=create),)
        fingerprint = {"account_id": account_id, "amount": amount, **(request or {})}
        if counter is not None:
            legs += (Leg(counter, -amount, create=False),)
            fingerprint["counter"] = counter
        if extend is not None:
            plan_legs = lambda planned: extend(planned[0])  # noqa: E731 - the one leg's plan
        return self.post_legs(legs, idempotency_key=idempotency_key, key_ttl_seconds=key_ttl_seconds,
                              fingerprint=fingerprint, extend=plan_legs, resource=resource,
                              idempotency_scope=idempotency_scope,
                              without_read=without_read)[0]

    def post_legs(self, legs: tuple[Leg, ...], *, idempotency_key: str | None = None, fingerprint: dict,
                  key_ttl_seconds: int | None = None, extend: ExtendLegs | None = None,
                  entry_attributes: dict | None = None, resource: str | None = None,
                  idempotency_scope: str | None = None, without_read: WithoutRead | None = None) -> list[Posting]:
        """Apply every leg (one account each) in one transaction, exactly once per idempotency key:
        all legs commit or none. `fingerprint` identifies the client's request (a reused key with
        another fingerprint is a conflict); `resource` names what it makes, kept with the key; `without_read`
        what `extend` asks of the accounts and adds, so that the posting may go without a read."""
        accounts = [leg.account_id for leg in legs]
        if not legs or len(set(accounts)) != len(accounts):
            raise InvalidRequest("a posting names each account once", field="account_id")
        for leg in legs:
            require_int("amount", leg.amount)
        request = PostingRequest(tuple(legs), idempotency_key, idempotency.fingerprint(fingerprint), key_ttl_seconds,
                                 extend, entry_attributes or {}, resource, idempotency_scope, without_read)
        return self._engine.post(request, self.retry_budget())

