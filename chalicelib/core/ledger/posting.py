"""The posting engine: one consistent read, a plan, one TransactWriteItems, and what a cancellation means.

A posting whose outcome depends on no read (`_without_read`) is one TransactWriteItems without a read instead
(`_post_unread`; see `sequencer.py`). Every other posting is one consistent read (TransactGetItems: accounts,
idempotency record, high-water mark) and one TransactWriteItems that
- updates each account under a condition on the version read (and its floor: `_account_update`, the one
  place a floor is enforced in the store),
- puts each journal entry (attribute_not_exists),
- puts the idempotency record (attribute_not_exists), when a key was given,
- raises the book's max-volume high-water mark, only when this posting sets a record.
A hot account's leg reads and posts to its shards (`_target`, `_on_shards`; see `shards.py`), each an
ordinary account here. A cancellation is decoded by role (`_decode`): a floor breach, or Stale, which the
runner re-plans within the request's retry budget: from the account images the cancellation returned when
only versions moved (`_images`), else from a fresh read; a lost race on a shard moves to another (`_Rounds`).
"""
from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactGetError, UpdateError
from pynamodb.expressions.condition import Condition, size
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactGet

from chalicelib.core import models
from chalicelib.core.errors import AccountMoved, Contention, FloorBreached, InvalidRequest, NotFound
from chalicelib.core.guard import is_client_fault, response_code
from chalicelib.core.ledger.idempotency import (
    check_replay,
    new_record,
    replayed_leg,
    replayed_postings,
    unsequenced_record,
)
from chalicelib.core.ledger.keys import BookKeys
from chalicelib.core.ledger.legs import INT64_MAX, INT64_MIN, Leg, PlannedLeg, Posting, Result
from chalicelib.core.ledger.runner import (
    Ambiguous,
    Cancelled,
    RetryBudget,
    Stale,
    Writes,
    commit,
    resolved,
    send,
    until_current,
)
from chalicelib.core.ledger.sequencer import (
    DRAIN_AT,
    INTERNAL_KEY_TTL_SECONDS,
    MAX_UNSEQUENCED,
    Placed,
    drain_writes,
    logged,
    placed,
    unread_update,
)
from chalicelib.core.ledger.shards import Layout, Layouts, debit_parts, home_shard, shard_id
from chalicelib.core.ledger.stamps import parse_stamp, stamp
from chalicelib.core.models import AccountModel, CounterModel, EntryModel, IdempotencyModel, UnsequencedEntry

T = TypeVar("T")

# An item a posting's transaction updates: the item (its keys), the actions, and the condition it must meet.
ItemUpdate = tuple[Model, list[Action], Condition | None]


@dataclass
class Extension(Generic[Result]):
    """More writes in a posting's one transaction (lots, link parts, a transaction record), planned by
    a service. `account_actions`, `account_condition` and `entry_attributes` apply to the first leg.

    Every item carries a condition; a failed one makes the plan stale (re-read, re-plan).
    """

    account_actions: list = field(default_factory=list)
    account_condition: Condition | None = None
    entry_attributes: dict = field(default_factory=dict)
    puts: list[tuple[Model, Condition | None]] = field(default_factory=list)
    updates: list[ItemUpdate] = field(default_factory=list)
    result: Result | None = None  # handed back on the committed Posting as `extra`
    every_entry: dict = field(default_factory=dict)  # attributes of every leg's entry (its transaction, say)

    def planned(self) -> Result:
        """The result this extension planned, for the service that set it."""
        if self.result is None:
            raise LookupError("this extension planned no result")
        return self.result

    def merged(self, other: Extension | None) -> Extension[Result]:
        """This extension and `other` in one transaction (this one's result is kept)."""
        if other is None:
            return self
        condition = self.account_condition
        if other.account_condition is not None:
            condition &= other.account_condition
        return Extension(self.account_actions + other.account_actions, condition,
                         {**self.entry_attributes, **other.entry_attributes}, self.puts + other.puts,
                         self.updates + other.updates, self.result, {**self.every_entry, **other.every_entry})


Extend = Callable[[PlannedLeg], Extension]
ExtendLegs = Callable[[tuple[PlannedLeg, ...]], Extension]


@dataclass(frozen=True)
class WithoutRead:
    """What a service that plans a posting (`extend`) asks of it when it goes without a read (see `sequencer.py`):
    per leg, a condition on its account that says what `extend` checks from the read (a wallet's owner, an
    account's unit and kind); and `extend`'s items, planned from the legs as posted (a hot account's on the shard
    it goes to) and the posting's time instead of from a read: puts and updates only, under their own conditions;
    None when the service would refuse, which is the read path's to say (the request may be a replay)."""

    conditions: tuple[Condition | None, ...] = ()
    extend: Callable[[tuple[Leg, ...], str], Extension | None] | None = None
    # A failed condition of `extend`'s items means what it planned from moved (a points lot another spend emptied):
    # plan again without a read, within the request's budget, instead of going to the read path.
    replan_on_refusal: bool = False


@dataclass(frozen=True)
class PostingRequest:
    legs: tuple[Leg, ...]
    idempotency_key: str | None
    fingerprint: str
    key_ttl_seconds: int | None
    extend: ExtendLegs | None = None
    entry_attributes: dict = field(default_factory=dict)  # on every leg's entry
    resource: str | None = None
    scope: str | None = None  # the client's namespace for its keys (see `BookKeys.idempotency_key`)
    # With it, a posting that `extend`s may still be written without a read (see `sequencer.py`); the read path
    # runs `extend` instead.
    without_read: WithoutRead | None = None


@dataclass(frozen=True)
class _Target:
    """What one asked leg reads: its account (`layout` None), or the shards of a hot account it may touch."""

    leg: Leg
    layout: Layout | None
    home: int  # a hot account's shard this posting goes to first
    ids: tuple[str, ...]  # the core account ids read


@dataclass(frozen=True)
class _Read:
    """One round's consistent read: the accounts by core id (None: no such item), the record, the high-water."""

    ids: list[str]
    accounts: dict[str, AccountModel | None]
    record: IdempotencyModel | None
    high_water: CounterModel | None

    def updated(self, images: dict[str, AccountModel]) -> _Read:
        return replace(self, accounts={**self.accounts, **images})


class _ShardFull(Exception):
    """The shard a posting read would leave int64: try another of the hot account's shards."""

    def __init__(self, account_id: str) -> None:
        super().__init__(account_id)
        self.account_id = account_id


@dataclass
class _Rounds:
    """What one request's rounds carry to the next: the last read brought up to date from a cancellation's images,
    and, per hot account, how often this posting moved off a shard another writer had just taken."""

    spread: str  # the posting's id: spreads a hot account's postings over its shards
    carried: _Read | None = None
    hops: dict[str, int] = field(default_factory=dict)

    def home(self, account_id: str, shards: int) -> int:
        """The shard this posting goes to first: by its id, and after each lost race on it, another."""
        hop = self.hops.get(account_id, 0)
        return home_shard(f"{self.spread}/{hop}" if hop else self.spread, shards)

    def hop_off(self, cancelled: Cancelled, legs: tuple[Leg, ...]) -> bool:
        """A hot account's shard that another writer moved is the likeliest to move again (the others who lost
        there retry there): the next round goes to another of its shards, which costs a read, not a queue.
        True when every item that failed was such a shard (or its entry)."""
        only_shards = bool(cancelled.failed)
        for role in cancelled.failed or ():
            shard = legs[int(role.split(":", 1)[1])].shard if role.startswith("account:") else None
            if shard is not None:
                self.hops[shard[0]] = self.hops.get(shard[0], 0) + 1
            elif role != "entry":
                only_shards = False
        return only_shards


@dataclass
class _Plan:
    request: PostingRequest
    planned: tuple[PlannedLeg, ...]
    postings: list[Posting]
    stored_key: str | None
    record: IdempotencyModel | None
    raise_high_water: bool
    token: str
    extension: Extension


def _running_sums(planned: PlannedLeg) -> tuple[int, int]:
    """The account's sums of credits and debits with this leg: what its entry and its item then say."""
    account = planned.account
    return (int(account.credited or 0) + max(planned.amount, 0), int(account.debited or 0) + max(-planned.amount, 0))


def _required(leg: Leg, planned: PlannedLeg) -> int | None:
    """The least available balance the leg must leave: the account's floor, or a higher minimum."""
    limits = [limit for limit in (planned.account.floor, leg.minimum) if limit is not None]
    return int(max(limits)) if limits else None


def _again(call: Callable[[], T], budget: RetryBudget) -> T:
    """A read, or a write that may be repeated, after a posting landed: tried again within the request's budget while
    DynamoDB gives no answer (throttled, a 5xx, a timeout), so that a committed posting is answered."""
    while True:
        try:
            return call()
        except PynamoDBException as error:
            if isinstance(error, DoesNotExist) or is_client_fault(error) or not budget.retry():
                raise


class _ReadFirst(Exception):
    """The account is not as a posting without a read assumed (another floor, something held, not yet opened):
    nothing was written; the posting is planned from a read."""


def _too_busy() -> Contention:
    return Contention("the account is too busy right now; nothing was written, retry later")


def drain(account: AccountModel) -> None:
    """Move the account's logged postings (as read) into the journal. Cancelled when another drain took them
    first; records that expired are left out on a second try."""
    build = drain_writes(account)
    if build is None:
        return
    try:
        send(build, str(uuid.uuid4()))
    except Cancelled as cancelled:
        gone = frozenset(role.split(":", 1)[1] for role in cancelled.failed or () if role.startswith("record:"))
        if not gone or (cancelled.failed or frozenset()) - {f"record:{key}" for key in gone}:
            raise
        build = drain_writes(account, skip_records=gone)
        if build is not None:
            send(build, str(uuid.uuid4()))


def settle(account_key: str, budget: RetryBudget, sees: Callable[[AccountModel], bool],
           learn: Callable[[AccountModel], object] = lambda _account: None) -> list[Placed]:
    """Every posting of the item answered before this call in the journal (of an account the reader `sees`:
    another's is left alone): read, and drain what the log holds; read again only when that drain lost to
    another (so writers that keep logging never starve a reader). Returns the postings the first read found in
    the log, which an index may not show yet. `learn`: told of the item read, whatever it holds."""
    first: list[Placed] = []
    target: int | None = None

    def attempt(_recheck: bool) -> None:
        nonlocal target
        try:
            account = AccountModel.get(account_key, consistent_read=True)
        except AccountModel.DoesNotExist:
            return
        learn(account)
        if not account.log or not sees(account):
            return
        if target is None:
            target, first[:] = int(account.entry_count), placed(account)
        if int(account.entry_count) - len(account.log) >= target:
            return  # what was answered before this read is in the journal; later postings wait for later reads
        try:
            drain(account)
        except Cancelled as cancelled:
            # Another drain moved some first: read again at once. A conflict (nothing failed): nobody moved
            # anything yet, so wait first.
            raise Stale(wait=not cancelled.failed) from None
        except Ambiguous:
            raise Stale() from None
    until_current(attempt, budget, _too_busy)
    return first


class PostingEngine:
    """Posts the legs of one book's accounts; `Ledger.post_legs` is its face."""

    def __init__(self, keys: BookKeys, layouts: Layouts, *, track_volume: bool, clock: Callable[[], datetime],
                 show: Callable[[int], str], unread_writes: bool = False) -> None:
        self._keys = keys
        self._layouts = layouts
        self._track_volume = track_volume
        self._clock = clock
        self._show = show
        self.unread_writes = unread_writes
        self._mark_seen = 0  # the high-water mark is at least this (it only grows): what this container last saw
        self._last_stamped: datetime | None = None  # see `_unread_now`
        self._stamping = threading.Lock()

    def post(self, request: PostingRequest, budget: RetryBudget) -> list[Posting]:
        """Every leg in one transaction, exactly once per idempotency key: all legs commit or none."""
        try:
            return until_current(lambda _recheck: self._post_unread(request, budget), budget, _too_busy)
        except _ReadFirst:
            pass  # it needs a read (or the account is not what the write assumed: another floor): plan from one
        rounds = _Rounds(request.resource or request.idempotency_key or uuid.uuid4().hex)
        return until_current(lambda recheck: self._attempt(request, budget, recheck, rounds), budget, _too_busy)

    # -- postings that do not read their accounts (see `sequencer.py`) --------------------------------------------
    def _without_read(self, request: PostingRequest) -> bool:
        """Whether the posting's outcome depends on no read: credits and debits of ordinary accounts (or of a hot
        account's shard, unless a debit must find one that covers it), planned by no service, or by one that says
        what it asks of them (`without_read`). `expected_seq` reads, and so does a hold on a hot account (refused)."""
        if not self.unread_writes or (request.extend is not None and request.without_read is None):
            return False
        for leg in request.legs:
            layout = self._layouts.get(leg.account_id)
            if leg.expected_seq is not None or leg.shard is not None or (layout is not None and (
                    leg.hold_change or leg.lowers_available and layout.floored or leg.minimum is not None)):
                return False
        return True

    def _as_posted(self, request: PostingRequest, spread: str) -> tuple[Leg, ...]:
        """The legs as written: a hot account's on its home shard (see `_Rounds.home`: no hop without a read)."""
        legs = []
        for leg in request.legs:
            layout = self._layouts.get(leg.account_id)
            if layout is None:
                legs.append(leg)
                continue
            number = home_shard(spread, layout.shards)
            legs.append(Leg(shard_id(leg.account_id, number), leg.amount, create=False,
                            shard=(leg.account_id, number)))
        return tuple(legs)

    def _post_unread(self, request: PostingRequest, budget: RetryBudget) -> list[Posting]:
        """One TransactWriteItems: each account by arithmetic under what must hold, the entry into its log, the
        record under attribute_not_exists, the service's items. A cancellation, by role: the key used (a replay:
        one read), an account's condition (decided from the image it returned: the floor's 4xx, a missing account,
        a hot one, a full log to drain; else the read path decides), or a conflict (again at once)."""
        if not self._without_read(request):
            # Checked at every attempt: an earlier one may have learnt that an account is hot, where this leg needs a
            # read (a hold, say).
            raise _ReadFirst()
        now = self._unread_now()
        created_at = stamp(now)
        # A posting without a key gets one of its own: its record is where a drain leaves its seq.
        stored_key = (self._keys.idempotency_key(request.idempotency_key, request.scope) if request.idempotency_key
                      else self._keys.internal_key(uuid.uuid4().hex))
        key_ttl_seconds = request.key_ttl_seconds if request.idempotency_key else INTERNAL_KEY_TTL_SECONDS
        posting_id = uuid.uuid4().hex
        legs = self._as_posted(request, request.resource or stored_key)
        several = len(legs) > 1
        account_keys = [self._keys.account_key(leg.account_id) for leg in legs]
        record = unsequenced_record(stored_key, posting_id, request.fingerprint, account_keys,
                                    [leg.amount for leg in legs], now=now, key_ttl_seconds=key_ttl_seconds,
                                    resource=request.resource)
        asked = request.without_read or WithoutRead()
        extension = asked.extend(legs, created_at) if asked.extend is not None else Extension()
        if extension is None:
            raise _ReadFirst()
        updates = []
        for number, leg in enumerate(legs):
            # The extension's attributes of an entry, kept in the log until the drain puts them on it: JSON values.
            attributes = {**request.entry_attributes, **extension.every_entry,
                          **(extension.entry_attributes if number == 0 else {})}
            entry = UnsequencedEntry(key=stored_key, posting=posting_id, amount=leg.amount, created_at=created_at,
                                     attributes=attributes or None,
                                     leg=number if several else None, held_change=leg.hold_change or None)
            actions, condition = unread_update(leg, entry, track_volume=self._track_volume)
            if leg.shard is None:
                condition &= AccountModel.shards.does_not_exist()  # a hot account's postings go to its shards
            if number < len(asked.conditions) and asked.conditions[number] is not None:
                condition &= asked.conditions[number]
            updates.append((actions, condition))

        def build(writes: Writes) -> None:
            # A used key's record comes back with the cancellation: a replay need not read it.
            writes.put("record", record, IdempotencyModel.key.does_not_exist(), return_values="ALL_OLD")
            for item, condition in extension.puts:
                writes.put("extension", item, condition)
            for number, (account_key, (actions, condition)) in enumerate(zip(account_keys, updates, strict=True)):
                # A copy: PynamoDB appends the version's increment to the list it is given, and a resend builds
                # again.
                writes.update(f"account:{number}", AccountModel(account_key, version=0), list(actions), condition,
                              return_values="ALL_OLD", add_version_condition=False)
            for item, item_actions, condition in extension.updates:
                writes.update("extension", item, item_actions, condition)

        try:
            commit(build, str(uuid.uuid4()), budget, lambda: Contention(
                "the datastore did not confirm the write; retry with the same idempotency key"))
        except Cancelled as cancelled:
            return self._after_cancellation(cancelled, request, legs, stored_key, budget)
        return self._answer_unread(record, budget)

    def _unread_now(self) -> datetime:
        """The time of a posting without a read: the clock, and at least a microsecond after the last this container
        stamped. A read's plan stamps after its accounts' last entries; without the read, one container's postings
        still follow each other in time across accounts (a hot account's shards merge by time), whatever its
        clock's resolution."""
        with self._stamping:
            now = self._clock()
            if self._last_stamped is not None and now <= self._last_stamped:
                now = self._last_stamped + timedelta(microseconds=1)
            self._last_stamped = now
            return now

    def _after_cancellation(self, cancelled: Cancelled, request: PostingRequest, legs: tuple[Leg, ...],
                            stored_key: str, budget: RetryBudget) -> list[Posting]:
        """What a cancelled posting without a read means (nothing was written): the replay of a used key, a refusal,
        or another try."""
        if cancelled.failed is None:
            raise Stale() from cancelled
        if "record" in cancelled.failed and request.idempotency_key is not None:
            reason = cancelled.reasons.get("record")
            if reason is not None and reason.raw_item:
                used = IdempotencyModel.from_raw_data(reason.raw_item)  # the record as the condition found it
            else:
                try:
                    used = IdempotencyModel.get(stored_key, consistent_read=True)
                except IdempotencyModel.DoesNotExist:
                    raise Stale() from cancelled  # expired between the write and this read: try again
            check_replay(used, request.fingerprint, request.idempotency_key)
            if not self._track_volume:
                return self.replayed(used)
            # The first request may have lost its answer before it raised the mark: its count, from the one read of
            # the account that also places the posting while it waits in the log.
            account = _again(lambda: AccountModel.get(used.account, consistent_read=True), budget)
            self._raise_mark(int(account.entry_count), self._keys.account_id(used.account), budget)
            return self.replayed(used, account)
        failed = [int(role.split(":", 1)[1]) for role in cancelled.failed if role.startswith("account:")]
        if not failed:
            if "extension" in cancelled.failed:
                if request.without_read is not None and request.without_read.replan_on_refusal:
                    raise Stale(wait=False)
                raise _ReadFirst()  # what the service's items found (a limit reached, say) is the read path's to say
            conflict = any(reason is not None and reason.code == "TransactionConflict"
                           for reason in cancelled.reasons.values())
            raise Stale(wait=not conflict) from cancelled  # a conflict clears at once: go again without waiting
        images = {}
        for number in failed:
            reason = cancelled.reasons.get(f"account:{number}")
            images[number] = AccountModel.from_raw_data(reason.raw_item) if reason is not None and reason.raw_item \
                else None
        for number, image in images.items():
            if image is not None and self._layouts.learn_item(legs[number].account_id, image) is not None:
                raise Stale(wait=False)  # a hot account, not known here before: to its shards
        if len(legs) == 1 and legs[0].shard is None:
            image, leg = images[0], legs[0]
            if image is None:
                if not leg.create:
                    raise NotFound(f"account {leg.account_id} not found")
                raise _ReadFirst()  # a debit of an account not opened yet, expecting a floor: the read path opens it
            # The image is the account as the condition found it: the plan a read would have made from it refuses
            # what it refuses (the floor, with its message; another owner's wallet, through the service's own
            # check), before anything else is done to the account (what a stranger's request costs tells nothing of
            # it).
            self._plan(request, [image], None, recheck=False)
        full = [image for image in images.values() if image is not None and len(image.log or []) >= MAX_UNSEQUENCED]
        for image in full:
            self._try_drain(image)  # or another writer drained it first: either way there is room now
        if full:
            raise Stale(wait=False)
        raise _ReadFirst()  # the plan would pass (another floor than expected, say), or refuses: the read path says

    def _answer_unread(self, record: IdempotencyModel, budget: RetryBudget) -> list[Posting]:
        """The committed posting as the journal will hold it, from one consistent read of its accounts after the
        write (in their logs), or of its record (a drain moved some meanwhile). Then, for every DRAIN_AT-th
        posting of an account, a drain; and the book's high-water mark raised to the count read, before the
        answer: once every write is answered, the mark is exact. The write has landed: its reads are tried again
        within the request's budget, and a drain that fails leaves the answer as it is."""
        postings, accounts, places = self._placed_legs(record, budget, replayed=False)
        if self._track_volume:
            self._raise_mark(int(accounts[0].entry_count), postings[0].account_id, budget)
        for account, mine in zip(accounts, places, strict=True):
            if mine is not None and mine.seq % DRAIN_AT == 0:
                # One posting in DRAIN_AT drains, so that concurrent writers do not all try (all but one would lose).
                with contextlib.suppress(PynamoDBException, InvalidRequest):
                    self._try_drain(account)  # the posting landed: its answer stands whatever the drain meets
        return postings

    def _placed_legs(self, record: IdempotencyModel, budget: RetryBudget | None, *, replayed: bool,
                     accounts: list[AccountModel] | None = None,
                     ) -> tuple[list[Posting], list[AccountModel], list[Placed | None]]:
        """The record's postings, each from its account's log (`accounts` as read after the record, else one
        consistent read of them: a GetItem, or a BatchGetItem, which no writer cancels), or, where a drain moved
        it, from the record read again. Also the accounts and where each posting is in its log. `budget`: what the
        reads may be tried again within (a write landed); None: once."""

        def read(call: Callable[[], T]) -> T:
            return call() if budget is None else _again(call, budget)
        keys = [leg.account for leg in record.legs] if record.legs else [record.account]
        if accounts is None:
            accounts = read(lambda: self._accounts(keys))
        places = [logged(account, record) for account in accounts]
        completed: IdempotencyModel | None = None
        postings: list[Posting] = []
        for number, (key, account, mine) in enumerate(zip(keys, accounts, places, strict=True)):
            if mine is not None:
                # Last in its log (its seq the entry count), it is the account's last write (a later one would follow
                # it there, or drain it first): the version read is the one it made.
                last = mine.seq == int(account.entry_count)
                postings.append(mine.as_posting(self._keys.account_id(key), replayed=replayed,
                                                resource=record.resource,
                                                version=int(account.version) if last and account.version else None))
                continue
            if completed is None:
                completed = read(lambda: IdempotencyModel.get(record.key, consistent_read=True))
            postings.append(replace(replayed_leg(completed, number, self._keys), replayed=replayed))
        return postings, accounts, places

    @staticmethod
    def _accounts(keys: list[str]) -> list[AccountModel]:
        """The accounts, consistently, in the order of `keys`."""
        if len(keys) == 1:
            return [AccountModel.get(keys[0], consistent_read=True)]
        found = {account.key: account for account in AccountModel.batch_get(keys, consistent_read=True)}
        missing = [key for key in keys if key not in found]
        if missing:
            raise DoesNotExist(f"no account {missing[0]}")
        return [found[key] for key in keys]

    def _raise_mark(self, count: int, account_id: str, budget: RetryBudget) -> None:
        """The book's high-water mark at least `count`: one conditional UpdateItem when it may be lower (tried again
        within the budget: setting it twice is setting it once)."""
        if count <= self._mark_seen:
            return
        mark = CounterModel(self._keys.high_water_name())

        def raise_it() -> None:
            try:
                mark.update([CounterModel.value.set(count), CounterModel.holder.set(account_id)],
                            condition=CounterModel.value.does_not_exist() | (CounterModel.value < count))
            except UpdateError as error:
                if response_code(error) != "ConditionalCheckFailedException":
                    raise
        _again(raise_it, budget)
        self._mark_seen = max(self._mark_seen, count)

    def _try_drain(self, account: AccountModel) -> None:
        """`drain`, for a caller that goes on whether it moved the postings or another drain did (or none could
        say): it reads again, or answers what it knows."""
        with contextlib.suppress(Cancelled, Ambiguous):
            drain(account)

    def settle(self, account_key: str, budget: RetryBudget, sees: Callable[[AccountModel], bool],
               seen: Callable[[AccountModel], None] | None = None) -> list[Placed]:
        """`settle`, learning the account's layout from its item on the way (a hot account's postings wait in its
        shards' logs: `Ledger.settle` reads them); `seen` is told of each item read."""
        def learn(account: AccountModel) -> None:
            self._layouts.learn_item(self._keys.account_id(account_key), account)
            if seen is not None:
                seen(account)
        return settle(account_key, budget, sees, learn)

    def replayed(self, record: IdempotencyModel, account: AccountModel | None = None) -> list[Posting]:
        """What the first request with the record's key committed: from the record, or, while the posting waits
        in its accounts' logs, from the accounts (`account` if the caller read a one-leg posting's after the record,
        else one read; a drain that moved it meanwhile left it in the record)."""
        if record.seq is not None and all(leg.seq is not None for leg in record.legs or ()):
            return replayed_postings(record, self._keys)
        # `account` is a one-leg posting's: a posting of several legs reads all of its accounts.
        accounts = None if account is None or record.legs else [account]
        return self._placed_legs(record, None, replayed=True, accounts=accounts)[0]

    def _attempt(self, request: PostingRequest, budget: RetryBudget, recheck: bool, rounds: _Rounds) -> list[Posting]:
        """Read (or re-plan from what the last cancellation returned), decide, plan, commit; raises Stale when the
        world moved underneath."""
        targets = [self._target(leg, rounds) for leg in request.legs]
        ids = [core_id for target in targets for core_id in target.ids]
        read = rounds.carried if rounds.carried is not None and rounds.carried.ids == ids else None
        rounds.carried = None
        if read is None:
            read = self._read(ids, request.idempotency_key, request.scope)
        if read.record is not None and request.idempotency_key is not None:  # a record is read only for a key
            check_replay(read.record, request.fingerprint, request.idempotency_key)
            return self.replayed(read.record)
        if self._learned_layouts(targets, read):
            return self._attempt(request, budget, recheck, rounds)  # read the shards this time
        try:
            legs, accounts = self._on_shards(request.legs, targets, read, rounds)
        except _ShardFull as full:
            rounds.hops[full.account_id] = rounds.hops.get(full.account_id, 0) + 1
            return self._attempt(request, budget, recheck, rounds)  # bounded: one more round per shard at most
        plan = self._plan(replace(request, legs=legs), accounts, read.high_water, recheck)
        # Postings that did not read wait in these logs: in the journal first (the plan's seq and time follow theirs,
        # and a drain moves no version, so the plan stays right); the write then requires the logs empty. After the
        # plan, so that what the plan refuses (another user's wallet, say) costs what it costs on an account with no
        # log.
        for account in accounts:
            if account is not None and account.log:
                self._try_drain(account)
        try:
            commit(lambda writes: self._write(plan, writes), plan.token, budget,
                   lambda: Contention("the datastore did not confirm the write; retry with the same idempotency key"))
        except Cancelled as cancelled:
            images = self._images(cancelled, plan)
            if images:
                rounds.carried = read.updated(images)
            moved_away = rounds.hop_off(cancelled, plan.request.legs)
            try:
                self._decode(cancelled, plan)
            except Stale as stale:
                stale.wait = not moved_away  # contended only on shards it leaves: no reason to wait
                raise
        return plan.postings

    def _target(self, leg: Leg, rounds: _Rounds) -> _Target:
        """What a leg reads: its account, or, on a hot account, the shards it may touch (every shard for a
        debit of a floored account, which must find one that covers it; else the posting's home shard)."""
        layout = self._layouts.get(leg.account_id)
        if layout is None:
            return _Target(leg, None, 0, (leg.account_id,))
        home = rounds.home(leg.account_id, layout.shards)
        read_all = leg.lowers_available and layout.floored
        numbers = range(layout.shards) if read_all else (home,)
        return _Target(leg, layout, home, tuple(shard_id(leg.account_id, number) for number in numbers))

    def _learned_layouts(self, targets: list[_Target], read: _Read) -> bool:
        """Whether an account read as an ordinary one turned out to be hot (now learned for every later posting)."""
        learned = False
        for target in targets:
            account = read.accounts.get(target.leg.account_id) if target.layout is None else None
            if account is not None and self._layouts.learn_item(target.leg.account_id, account) is not None:
                learned = True
        return learned

    def _on_shards(self, asked: tuple[Leg, ...], targets: list[_Target], read: _Read,
                   rounds: _Rounds) -> tuple[tuple[Leg, ...], list[AccountModel | None]]:
        """The legs as posted, each on one stored account: a hot account's leg becomes a leg on its home shard, on
        a shard that covers a debit, or on several shards that together cover it (see `shards.debit_parts`)."""
        legs: list[Leg] = []
        accounts: list[AccountModel | None] = []
        for leg, target in zip(asked, targets, strict=True):
            if target.layout is None:
                account = read.accounts[leg.account_id]
                if account is None and not leg.create:
                    raise NotFound(f"account {leg.account_id} not found")
                legs.append(leg)
                accounts.append(account)
                continue
            shards = {core_id: account for core_id in target.ids if (account := read.accounts[core_id]) is not None}
            if len(shards) != len(target.ids):
                raise NotFound(f"account {leg.account_id} not found")
            if leg.hold_change or leg.minimum is not None or leg.expected_seq is not None:
                raise InvalidRequest(f"account {leg.account_id} is hot: it takes no holds, minimums or expected "
                                     "seq (each shard has its own)", field="account_id")
            parts = [(target.home, leg.amount)]
            if leg.lowers_available and target.layout.floored:
                parts = self._covering(leg, [shards[core_id] for core_id in target.ids], target.home,
                                       several=len(asked) > 1)
            elif not INT64_MIN <= int(shards[target.ids[0]].balance) + leg.amount <= INT64_MAX:
                # This shard alone would leave int64 where the account need not (a system account's shards hold
                # minus what the others hold): another shard, until each was tried (then the plan refuses it).
                if rounds.hops.get(leg.account_id, 0) < target.layout.shards:
                    raise _ShardFull(leg.account_id)
            for number, amount in parts:
                core_id = shard_id(leg.account_id, number)
                legs.append(Leg(core_id, amount, create=False, shard=(leg.account_id, number)))
                accounts.append(shards[core_id])
        return tuple(legs), accounts

    def _covering(self, leg: Leg, shards: list, home: int, several: bool) -> list[tuple[int, int]]:
        """A floored hot account's debit, in parts that keep every shard at or above its own floor."""
        available = [int(shard.balance) - int(shard.held or 0) - int(shard.floor) for shard in shards]
        parts = debit_parts(-leg.amount, available, home)
        if parts is None:
            balance = sum(int(shard.balance) - int(shard.held or 0) for shard in shards)
            floor = sum(int(shard.floor) for shard in shards)
            raise self._below_floor(leg.account_id, balance + leg.amount, floor, held=False, several=several)
        return [(number, -amount) for number, amount in parts]

    def _read(self, account_ids: list[str], idempotency_key: str | None, scope: str | None = None) -> _Read:
        try:
            with TransactGet(connection=models.transaction_connection) as reads:
                account_futures = [reads.get(AccountModel, self._keys.account_key(account_id))
                                   for account_id in account_ids]
                record_future = (reads.get(IdempotencyModel, self._keys.idempotency_key(idempotency_key, scope))
                                 if idempotency_key else None)
                high_water_future = (reads.get(CounterModel, self._keys.high_water_name())
                                     if self._track_volume else None)
        except TransactGetError as error:
            if is_client_fault(error):
                raise
            raise Stale() from error  # cancelled by a concurrent write, throttled: read again
        accounts = {account_id: resolved(future) for account_id, future in zip(account_ids, account_futures,
                                                                                 strict=True)}
        return _Read(account_ids, accounts, resolved(record_future), resolved(high_water_future))

    def _plan(self, request: PostingRequest, accounts: list[AccountModel | None],
              high_water: CounterModel | None, recheck: bool) -> _Plan:
        now = self._clock()
        present = [account if account is not None
                   else AccountModel(self._keys.account_key(leg.account_id), balance=0, entry_count=0,
                                     floor=leg.floor)
                   for leg, account in zip(request.legs, accounts, strict=True)]
        created = now
        for account in present:
            # Entries of one account are stamped strictly in sequence order, so a time-index query and a sequence
            # query agree ("balance as of" is exact): after its last entry, and after the postings its log holds.
            last = placed(account)[-1].created_at if account.log else account.last_entry_at
            if last:
                created = max(created, parse_stamp(last) + timedelta(microseconds=1))
        created_at = stamp(created)  # every leg of a posting at one time
        planned = tuple(PlannedLeg(account, int(account.entry_count) + 1, leg.amount,
                                   int(account.balance) + leg.amount, created_at, recheck,
                                   int(account.held or 0) + leg.hold_change, leg.shard)
                        for leg, account in zip(request.legs, present, strict=True))
        for leg, plan in zip(request.legs, planned, strict=True):
            if not (INT64_MIN <= plan.balance_after <= INT64_MAX and INT64_MIN <= plan.held_after <= INT64_MAX):
                raise InvalidRequest(f"this posting would take the balance of {leg.account_id} outside the "
                                     f"64-bit range ({INT64_MIN} to {INT64_MAX})", field="amount")
        extension = request.extend(planned) if request.extend else Extension()
        for leg, plan in zip(request.legs, planned, strict=True):
            self._refuse_below_floor(leg, plan, several=len(request.legs) > 1)
        postings = [Posting(leg.account_id, plan.seq, leg.amount, plan.balance_after, created_at,
                            extra=extension.result, held_after=plan.held_after, resource=request.resource)
                    for leg, plan in zip(request.legs, planned, strict=True)]
        stored_key = (self._keys.idempotency_key(request.idempotency_key, request.scope)
                      if request.idempotency_key else None)
        record = None
        if stored_key:
            record = new_record(stored_key, request.fingerprint, postings, [plan.account.key for plan in planned],
                                now=now, key_ttl_seconds=request.key_ttl_seconds, resource=request.resource)
        top = max(postings, key=lambda posting: posting.seq)
        raise_high_water = self._track_volume and (high_water is None or top.seq > int(high_water.value))
        return _Plan(request, planned, postings, stored_key, record, raise_high_water, str(uuid.uuid4()), extension)

    def _refuse_below_floor(self, leg: Leg, plan: PlannedLeg, several: bool) -> None:
        """The floor as planned from the read; `_account_update` makes it the write's condition too."""
        required = _required(leg, plan)
        available_after = plan.balance_after - plan.held_after
        if leg.lowers_available and required is not None and available_after < required:
            raise self._below_floor(leg.account_id, available_after, required, held=plan.held_after != 0,
                                    several=several)

    def _below_floor(self, account_id: str, available_after: int, required: int, *, held: bool,
                     several: bool) -> FloorBreached:
        what = "available balance (balance less holds)" if held else "balance"
        whose = f" of {account_id}" if several else ""
        return FloorBreached(f"this debit would leave the {what}{whose} at {self._show(available_after)}, "
                             f"below the minimum {self._show(required)}")

    @staticmethod
    def _images(cancelled: Cancelled, plan: _Plan) -> dict[str, AccountModel]:
        """The accounts as the cancelled transaction found them (it asks for ALL_OLD), when all that failed is
        that their versions moved (an entry's seq taken goes with that): the next round re-plans from these
        instead of reading again. Empty when anything else failed: the next round reads."""
        images: dict[str, AccountModel] = {}
        for role in cancelled.failed or ():
            if role == "entry":
                continue
            reason = cancelled.reasons.get(role)
            if not role.startswith("account:") or reason is None or not reason.raw_item:
                return {}
            number = int(role.split(":", 1)[1])
            image = AccountModel.from_raw_data(reason.raw_item)
            if image.version == plan.planned[number].account.version and not image.log:
                return {}  # the version held, and no log waits: a floor failed, not a race
            images[plan.request.legs[number].account_id] = image
        return images

    def _write(self, plan: _Plan, writes: Writes) -> None:
        extension = plan.extension
        legs = list(zip(plan.request.legs, plan.planned, plan.postings, strict=True))
        for number, (leg, planned, _) in enumerate(legs):
            writes.put("entry", self._entry(plan, number, leg, planned), EntryModel.seq.does_not_exist())
        if plan.record is not None:
            writes.put("record", plan.record, IdempotencyModel.key.does_not_exist())
        for item, condition in extension.puts:
            writes.put("extension", item, condition)
        for number, (leg, planned, posting) in enumerate(legs):
            actions, condition = self._account_update(leg, planned, posting, extension if number == 0 else None)
            writes.update(f"account:{number}", planned.account, actions, condition, return_values="ALL_OLD")
        if plan.raise_high_water:
            top = max(plan.postings, key=lambda posting: posting.seq)
            writes.update("high_water", CounterModel(self._keys.high_water_name()),
                          [CounterModel.value.set(top.seq), CounterModel.holder.set(top.account_id)],
                          CounterModel.value.does_not_exist() | (CounterModel.value < top.seq))
        for item, item_actions, condition in extension.updates:
            writes.update("extension", item, item_actions, condition)

    @staticmethod
    def _entry(plan: _Plan, number: int, leg: Leg, planned: PlannedLeg) -> EntryModel:
        entry = EntryModel(planned.account.key, planned.seq, amount=leg.amount, balance_after=planned.balance_after,
                           created_at=planned.created_at, idempotency_key=plan.stored_key,
                           **{**plan.request.entry_attributes, **plan.extension.every_entry,
                              **(plan.extension.entry_attributes if number == 0 else {})})
        if planned.account.shard_of:
            entry.hot_account = planned.account.shard_of  # on `hot_by_time`, merged with the other shards
        entry.credited_after, entry.debited_after = _running_sums(planned)
        if leg.hold_change:
            entry.held_change = leg.hold_change
        if leg.hold_change or planned.held_after:
            entry.held_after = planned.held_after  # what stays reserved, on every entry while anything is
        return entry

    def _account_update(self, leg: Leg, planned: PlannedLeg, posting: Posting,
                        extension: Extension | None) -> tuple[list, Condition | None]:
        actions = [
            AccountModel.balance.set(posting.balance_after),
            AccountModel.available.set(posting.balance_after - posting.held_after),
            AccountModel.entry_count.set(posting.seq),
            AccountModel.last_entry_at.set(posting.created_at),
            AccountModel.created_at.set(AccountModel.created_at | posting.created_at),
        ]
        if planned.account.floor is not None:
            actions.append(AccountModel.floor.set(int(planned.account.floor)))
        credited, debited = _running_sums(planned)
        actions += [AccountModel.credited.set(credited), AccountModel.debited.set(debited)]
        if self._track_volume:
            actions.append(AccountModel.volume.set(posting.seq))
        condition = None
        if extension is not None:
            actions.extend(extension.account_actions)
            condition = extension.account_condition
        if leg.hold_change:
            actions.append(AccountModel.held.set(posting.held_after))
        if leg.expected_seq is not None:  # checked by the write itself, never before it
            condition &= AccountModel.entry_count == leg.expected_seq
        if planned.account.log:  # drained just before the write (`_attempt`): only once that drain landed
            condition &= size(AccountModel.log) == 0
        required = _required(leg, planned)
        if leg.lowers_available and required is not None:
            # The floor, enforced: available after = balance + amount - held after >= required, on the stored item.
            condition &= AccountModel.balance >= required + posting.held_after - posting.amount
            if posting.held_after:
                held_before = posting.held_after - leg.hold_change
                condition &= (AccountModel.held == held_before) if held_before else \
                    (AccountModel.held.does_not_exist() | (AccountModel.held == 0))
        return actions, condition

    @staticmethod
    def _refuse_moved(cancelled: Cancelled, plan: _Plan) -> None:
        """An `expected_seq` the account's image no longer has: AccountMoved, not a retry."""
        for number, leg in enumerate(plan.request.legs):
            reason = cancelled.reasons.get(f"account:{number}")
            if leg.expected_seq is None or reason is None or reason.code != "ConditionalCheckFailed":
                continue
            seq = (reason.raw_item or {}).get("entry_count", {}).get("N")
            if seq is not None and int(seq) != leg.expected_seq:
                raise AccountMoved(f"account {leg.account_id} is at seq {seq}, not the expected {leg.expected_seq}; "
                                   "nothing was written", field="expected_seq")

    @staticmethod
    def _decode(cancelled: Cancelled, plan: _Plan) -> None:
        """A floor breach, or Stale: what a cancellation means, read by the role of each failed item."""
        if cancelled.failed is None:
            raise Stale() from cancelled  # unexpected shape: a fresh read decides safely
        PostingEngine._refuse_moved(cancelled, plan)
        for number, planned in enumerate(plan.planned):
            reason = cancelled.reasons[f"account:{number}"]
            if reason is None or reason.code != "ConditionalCheckFailed":
                continue
            current_version = (reason.raw_item or {}).get("version", {}).get("N")
            read_version = planned.account.version
            if current_version is None or read_version is None or int(current_version) != read_version:
                continue
            if (reason.raw_item or {}).get("log", {}).get("L"):
                continue  # a drain before the write did not land: its log still waits, and a new round drains it
            if number == 0 and plan.extension.account_condition is not None:
                # The account read was current, so the extension's own conditions on it failed:
                # what it planned from its other reads (an index) was stale.
                raise Stale(recheck=True) from cancelled
            # Same version, so only the floor can have failed: the read was current.
            raise FloorBreached("this debit would take the balance below the minimum")
        # A moved version, a taken seq or key, a raised high-water mark, a conflict: re-plan.
        # Only an extension item that failed while the accounts held still says the service's own reads
        # were stale (a lagging index); with an account moved too, the fresh read explains both.
        accounts_failed = any(role.startswith("account:") for role in cancelled.failed)
        raise Stale(recheck="extension" in cancelled.failed and not accounts_failed) from cancelled
