"""Tally's own ledger (/v1): accounts with a unit, a floor and metadata; postings, transfers, reversals,
points earned (with expiry) and spent. Every write is one posting of the core (one consistent read, one
transaction) that also puts the transaction's record, under the client's required idempotency key.

- Every transaction sums to zero (double entry). A transfer is two legs, -amount and +amount, between two
  accounts of one unit. Money or points from or to outside the ledger (a posting, an earn, a spend, an expiry, a
  capture with no destination) come from or go to a counter account: by default the tenant's system account of
  the unit, `@world:<unit>`, made on first use and hot (its balance in shards, see `ledger/shards.py`). Its
  balance is minus what the tenant's accounts hold in that unit: the books of a unit sum to zero.
- A reversal is the transaction's legs with signs turned, for all or part of its amount; the reversed
  total is kept on the original under a condition on the value read, so two reversals never give back
  more than there was. Reversing a points spend gives the points back to the very lots it took them
  from; reversing an earn takes them back from its lot.
- Points accounts change only by earn, spend, expiry and reversal (their lots must agree with them).
"""
from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from chalicelib.core.api_keys import Caller
from chalicelib.core.errors import (
    AlreadyExists,
    Forbidden,
    IdempotencyConflict,
    InvalidRequest,
    InvalidState,
    IssueLimitReached,
    NotFound,
)
from chalicelib.core.guard import datastore_guarded
from chalicelib.core.ledger import (
    Extension,
    Ledger,
    Leg,
    Page,
    PlannedLeg,
    Posting,
    Snapshot,
    findable,
    require_int,
    stamp,
)
from chalicelib.core.ledger.idempotency import fingerprint as request_fingerprint
from chalicelib.core.ledger.posting import WithoutRead
from chalicelib.core.ledger.runner import Writes
from chalicelib.core.ledger.shards import check_shards, shard_id
from chalicelib.core.listing import MAX_SEARCHABLE_KEYS, Lists, search_items
from chalicelib.core.models import AccountModel, CounterModel, SearchModel, TransactionLeg, TransactionModel
from chalicelib.core.points import PointsBook, PointsChange
from chalicelib.core.text import check_name, check_text

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BOOK = "v1"  # the book of /v1 data written before tenants; each tenant's is `book_of(tenant)`
# Ids and units: these characters, this long. The request models' patterns are built from the same constants.
ACCOUNT_ID_CHARACTERS, MAX_ACCOUNT_ID_LENGTH = "[A-Za-z0-9_.-]", 64
UNIT_CHARACTERS, MAX_UNIT_LENGTH = "[A-Za-z0-9_]", 16
ACCOUNT_ID = re.compile(f"{ACCOUNT_ID_CHARACTERS}{{1,{MAX_ACCOUNT_ID_LENGTH}}}")
UNIT = re.compile(f"{UNIT_CHARACTERS}{{1,{MAX_UNIT_LENGTH}}}")
KINDS = ("standard", "points")  # what a client opens; system accounts are of kind "system"
SYSTEM_PREFIX = "@world:"
SYSTEM_ACCOUNT = re.compile(f"{SYSTEM_PREFIX}{UNIT_CHARACTERS}{{1,{MAX_UNIT_LENGTH}}}")
MAX_CACHED_ACCOUNTS = 10_000  # accounts whose unit, kind and floor a container remembers (they never change)
REVERSIBLE = ("posting", "transfer", "capture", "earn", "spend")
# Metadata is the client's notes, not a datastore: Stripe's shape (keys up to 40 characters, values up to
# 500), fewer keys, and a total cap. It is stored on the account item, which every posting rewrites (1 write
# unit per KB), and on each transaction and hold; DynamoDB refuses an item over 400 KB (a 500 before this).
MAX_METADATA_KEYS = 20
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
MAX_METADATA_BYTES = 4096  # keys and values together, as UTF-8


def book_of(tenant: str) -> str:
    """A tenant's own book: its accounts, entries, lots and idempotency keys are named inside it, and its
    transactions and holds carry it, so no other tenant can name them."""
    return f"{BOOK}.{tenant}"


def is_v1_book(book: str) -> bool:
    return book == BOOK or book.startswith(f"{BOOK}.")


def requested_floor(floor: int | None, overdraft_limit: int | None, *, floor_given: bool) -> int | None:
    """A new account's floor: `floor` as given (None: no floor), or an overdraft limit as a negative floor."""
    if overdraft_limit is None:
        return floor
    if floor_given:
        raise InvalidRequest("give floor or overdraft_limit, not both", field="overdraft_limit")
    return -overdraft_limit


def lends(floor: int | None) -> bool:
    """An overdraft lends, and no floor makes money from nothing: the operator's decision, not a writer's."""
    return floor is None or floor < 0


def mints(*legs: tuple[str | None, int]) -> bool:
    """Whether a write makes money or points from nothing: a leg (account, amount) that debits a system account,
    whose balance is minus what the tenant holds. `None` is the default counter account, the system account of
    the unit. A write key must not mint (a till's or a partner's key could print money); the `issue` scope may
    (api_keys.py). Money leaving the ledger credits a system account, and a reversal gives back no more than its
    transaction moved: neither mints."""
    return any(amount < 0 and (account is None or is_system(account)) for account, amount in legs)


def system_account(unit: str) -> str:
    """The tenant's system account of a unit: where money and points come from and go to outside the ledger."""
    return f"{SYSTEM_PREFIX}{unit}"


def is_system(account_id: str) -> bool:
    return SYSTEM_ACCOUNT.fullmatch(account_id) is not None


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Account:
    id: str
    unit: str
    kind: str
    floor: int | None
    balance: int
    held: int
    metadata: dict
    entry_count: int
    created_at: str
    shards: int = 1  # more than 1: a hot account, its balance kept in this many shards

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(frozen=True)
class Statement:
    account: Account
    start: datetime
    end: datetime
    opening: Snapshot
    closing: Snapshot
    page: Page  # the period's first entries, oldest first

    @property
    def credits(self) -> int:
        return self.closing.credited - self.opening.credited

    @property
    def debits(self) -> int:
        return self.closing.debited - self.opening.debited

    @property
    def count(self) -> int:
        return self.closing.entries - self.opening.entries


@dataclass(frozen=True)
class TransactionEntry:
    """A transaction's entry on one account, as the API shows it: a hot account's parts on its shards are one
    entry, whose seq and balance after are None (each shard has its own)."""

    account_id: str
    amount: int
    seq: int | None
    balance_after: int | None


@dataclass(frozen=True)
class Transaction:
    id: str
    type: str
    amount: int
    unit: str
    legs: list[TransactionEntry]
    reversed: int
    reverses: str | None
    hold_id: str | None
    payer: str | None
    expires_at: str | None
    metadata: dict
    created_at: str
    replayed: bool = False  # this answer replays what an earlier request with the same idempotency key made


def check_metadata(metadata: dict | None) -> dict:
    """Up to 20 keys of 1-40 characters, values strings of up to 500, 4,096 bytes in all (see above); keys
    without control characters, values with none but tabs and line breaks (`core/text.py`)."""
    metadata = metadata or {}
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be an object of strings", field="metadata")
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidRequest(f"metadata has at most {MAX_METADATA_KEYS} keys", field="metadata")
    size = 0
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH:
            raise InvalidRequest(f"metadata keys are 1 to {MAX_METADATA_KEY_LENGTH} characters", field="metadata")
        check_name("metadata", key)  # the field is named by where it is: the key itself cannot be shown
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE_LENGTH:
            raise InvalidRequest(f"metadata.{key} must be a string of at most {MAX_METADATA_VALUE_LENGTH} "
                                 "characters", field=f"metadata.{key}")
        check_text(f"metadata.{key}", value)
        try:
            size += len(key.encode("utf-8")) + len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidRequest("metadata must be UTF-8 text", field="metadata") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidRequest(f"metadata is at most {MAX_METADATA_BYTES} bytes (UTF-8) of keys and values",
                             field="metadata")
    return metadata


def preconditions(expected_seq: dict | None, *accounts: str | None) -> dict[str, int]:
    """`expected_seq`: per account the request names, the seq of its last entry (its entry count) it must still
    have when the write lands (Modern Treasury's `lock_version`); checked by the write's condition."""
    expected = expected_seq or {}
    if not isinstance(expected, dict):
        raise InvalidRequest("expected_seq must be an object of account ids and seqs", field="expected_seq")
    for account_id, seq in expected.items():
        if account_id not in accounts:
            raise InvalidRequest(f"expected_seq names {str(account_id)[:64]}, an account this request does not move",
                                 field="expected_seq")
        if require_int("expected_seq", seq) < 0:
            raise InvalidRequest("expected_seq values are seqs: 0 or more", field="expected_seq")
    return expected


def metadata_filter(value: str | None) -> tuple[str, str] | None:
    """`key:value` (a list's query parameter `metadata`) as a pair, within the limits of stored metadata: a key or
    value no object can have is a 400, and a search term stays far below DynamoDB's 2,048-byte key."""
    if value is None:
        return None
    key, colon, wanted = value.partition(":")
    if not colon or not key:
        raise InvalidRequest("metadata is key:value (one pair)", field="metadata")
    try:
        check_metadata({key: wanted})
    except InvalidRequest as invalid:
        raise InvalidRequest(invalid.message, field="metadata") from None
    return key, wanted


def positive(name: str, value: object) -> int:
    value = require_int(name, value)
    if value <= 0:
        raise InvalidRequest(f"{name} must be a positive integer", field=name)
    return value


def account_of(model: AccountModel, shards: list[AccountModel] | None = None) -> Account:
    """The account as the API shows it: a hot account's balance, held and entries are its shards' sums."""
    counted = shards or [model]
    return Account(model.key.split(":", 1)[1], model.unit or "", model.kind or "standard",
                   None if model.floor is None else int(model.floor), sum(int(item.balance) for item in counted),
                   sum(int(item.held or 0) for item in counted), model.metadata or {},
                   sum(int(item.entry_count) for item in counted), model.created_at, int(model.shards or 1))


def entries_of(model: TransactionModel) -> list[TransactionEntry]:
    """One entry per account, in the order of the legs: a hot account's shard legs added up. A leg still waiting in
    its account's log (not filled, `Transactions.transactions_as_listed`) has no seq or balance after yet."""
    merged: dict[str, TransactionEntry] = {}
    for leg in model.legs:
        earlier = merged.get(leg.account_id)
        if leg.shard is None:
            merged[leg.account_id] = TransactionEntry(
                leg.account_id, int(leg.amount), None if leg.seq is None else int(leg.seq),
                None if leg.balance_after is None else int(leg.balance_after))
        else:
            merged[leg.account_id] = TransactionEntry(leg.account_id, int(leg.amount) + (earlier.amount if earlier
                                                                                          else 0), None, None)
    return list(merged.values())


def _placed(model: TransactionModel, postings: list[Posting]) -> TransactionModel:
    """The transaction with each leg that has no seq yet given its posting's seq and balance after (its postings,
    leg by leg, as committed or replayed)."""
    for line, posting in zip(model.legs, postings, strict=True):
        if line.seq is None:
            line.seq, line.balance_after = posting.seq, posting.balance_after
    return model


def transaction_of(model: TransactionModel) -> Transaction:
    legs = entries_of(model)
    return Transaction(model.id, model.type, int(model.amount), model.unit, legs, int(model.reversed or 0),
                       model.reverses, model.hold_id, model.payer, model.expires_at, model.metadata or {},
                       model.created_at)


def accounts_agree(planned_legs: tuple[PlannedLeg, ...], kind: str) -> str:
    """Every leg's account is of `kind` or a system account (the counter of money or points from or to outside the
    ledger), and all share one unit (a transfer never converts): that unit."""
    units: dict[str, str] = {}
    for planned in planned_legs:
        account_kind = planned.account.kind or "standard"
        if account_kind not in (kind, "system"):
            why = ("its balance changes only by earning and spending points" if account_kind == "points"
                   else "points are earned and spent only on points accounts")
            raise InvalidRequest(f"account {_named(planned)} is a {account_kind} account; {why}", field="account_id")
        units[_named(planned)] = planned.account.unit or ""
    if len(set(units.values())) > 1:
        names = ", ".join(f"{name} ({unit})" for name, unit in units.items())
        raise InvalidRequest(f"the accounts are in different units: {names}", field="account_id")
    return next(iter(units.values()))


def _named(planned: PlannedLeg) -> str:
    """The account a planned leg is on, as the client names it (a hot account, not its shard)."""
    return planned.shard[0] if planned.shard else account_of(planned.account).id


# What counts a key's minting inside the write (see `Transactions._issuing`): of a unit, on a UTC day. Its read of
# today's total refuses a request past the limit before anything is written, also without the posting's read.
Count = Callable[[str, str], Extension]


@dataclass(frozen=True)
class _Known:
    """What never changes about an account once opened, as a container remembers it: enough to post to it without
    reading it. Each is also the write's condition there, so a memory that is wrong refuses nothing that would
    pass: the posting then reads."""

    unit: str
    kind: str
    floor: int | None


@datastore_guarded
class Transactions:
    """The /v1 book: accounts, and the transactions that move their balances."""

    def __init__(self, book: str = BOOK, key_ttl_seconds: int | None = None, unread_writes: bool = False,
                 **ledger_options) -> None:
        """`unread_writes`: postings and transfers of accounts this container knows go without a read
        (`Settings.v1_writes_without_read`)."""
        self.ledger = Ledger(book, hot_accounts=True, unread_writes=unread_writes, **ledger_options)
        self.points = PointsBook(book, ledger=self.ledger, on_expiry=self._expiry_record, counter=self.counter_of,
                                 reserved_items=MAX_SEARCHABLE_KEYS)
        self.lists = Lists(self.ledger, self.ledger.settings)
        self.key_ttl_seconds = key_ttl_seconds
        self._known: OrderedDict[str, _Known] = OrderedDict()  # least recently used first out
        self._systems: set[str] = set()  # system accounts known to exist
        self._serves: dict[str, str] = {}  # unit -> the kind of its accounts (never changes)

    # -- accounts ---------------------------------------------------------------
    def open_account(self, account_id: str | None, unit: str, *, kind: str = "standard", floor: int | None = 0,
                     metadata: dict | None = None, idempotency_key: str, shards: int = 1) -> tuple[Account, bool]:
        """A new account (its id given, or made up); True with it when the key replayed an earlier request.
        With `shards` > 1 it is hot (see `ledger/shards.py`)."""
        given = account_id  # what identifies the request: an id made up here differs on each retry
        account_id = account_id if account_id is not None else new_id("acct")
        if not ACCOUNT_ID.fullmatch(account_id):
            raise InvalidRequest("id must be 1-64 letters, digits, '_', '.' or '-'", field="id")
        if not UNIT.fullmatch(unit):
            raise InvalidRequest("unit must be 1-16 letters, digits or '_' (a currency code, or e.g. points)",
                                 field="unit")
        if kind not in KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}", field="kind")
        if floor is not None:
            floor = require_int("floor", floor)
        if kind == "points" and floor != 0:
            raise InvalidRequest("a points account never goes below zero: its floor is 0", field="floor")
        shards = check_shards(shards)
        if kind == "points" and shards > 1:
            raise InvalidRequest("a points account is never hot: its lots are one holder's", field="shards")
        metadata = check_metadata(metadata)
        self._refuse_other_kind(unit, kind)
        fingerprint = {"op": "open", "id": given, "unit": unit, "kind": kind, "floor": floor,
                       "metadata": metadata}
        if shards > 1:
            fingerprint["shards"] = shards  # absent for an ordinary account: keys stored before shards still replay
        model, replayed = self.ledger.open(
            account_id, floor=floor, attributes={"unit": unit, "kind": kind, "metadata": metadata,
                                                 "book": self.ledger.book},
            requires=lambda account, writes: self._searchable(writes, "accounts", account_id, account.created_at,
                                                              metadata),
            idempotency_key=idempotency_key, key_ttl_seconds=self.key_ttl_seconds, fingerprint=fingerprint,
            shards=shards, shard_attributes={"unit": unit, "kind": kind})
        # Only once the account is there: a refused open (its id taken, its key used for another request) writes
        # nothing, not even the system account of a unit the tenant may never hold.
        self._ensure_system(unit, serves=kind)
        if replayed:  # the account the first request opened, as it is now
            return self.account(account_of(model).id), True
        self._remember(account_id, model)  # its first posting need not read what its opening wrote
        return account_of(model), False

    def account(self, account_id: str) -> Account:
        """One strongly consistent GetItem (a hot account: one BatchGetItem of it and its shards)."""
        return account_of(*self.ledger.stored(account_id))

    def _settled_account(self, account_id: str) -> tuple[Account, list[Posting]]:
        """The account, and its journal settled for the reads that follow, by one read of an ordinary account."""
        model, shards, settled = self.ledger.stored_and_settled(account_id)
        return account_of(model, shards or None), settled

    def accounts_as_listed(self, models: list[AccountModel]) -> list[Account]:
        """Accounts a list found, as their items say; a hot one's balance from its shards, all read in one
        BatchGetItem per 100 shards (none when the page has no hot account)."""
        keys = [key for model in models if model.shards
                for key in self.ledger.shard_keys(account_of(model).id, int(model.shards))]
        shards: dict[str, list[AccountModel]] = {}
        for shard in (AccountModel.batch_get(keys) if keys else ()):
            shards.setdefault(shard.shard_of or "", []).append(shard)
        return [account_of(model, shards.get(model.key) if model.shards else None) for model in models]

    def entries(self, account_id: str, **query) -> Page:
        """A page of the account's journal (see `Ledger.history`); 404 for an account that does not exist."""
        page = self.ledger.history(account_id, **query)
        if not page.postings and query.get("cursor") is None:
            # Only an empty first page costs the existence check; it also finds a hot account not known here
            # yet, whose own item has no entries: its page comes from its shards.
            if self.account(account_id).shards > 1:
                page = self.ledger.history(account_id, hot=True, **query)
        return page

    def balance_as_of(self, account_id: str, moment: datetime) -> tuple[Account, Snapshot]:
        """The account (404 if none) and what it was right after its last entry at or before `moment` (zeros
        before its first). One GetItem (which also settles its journal), one Query (see `Ledger.as_of`)."""
        account, settled = self._settled_account(account_id)
        return account, self.ledger.as_of(account_id, moment, shards=account.shards, settled=settled)

    def statement(self, account_id: str, start: datetime, end: datetime, *, limit: int = 100) -> Statement:
        """The account over start <= time <= end: its balance before and after, the credits, debits and entries
        in between (differences of the running sums, exact however many entries the period holds), and the first
        page of those entries, oldest first. A fixed number of requests: the account's read, which settles its
        journal (`Ledger.stored_and_settled`), two as-of Queries (on a hot account, up to one more per shard each),
        one page."""
        if end < start:
            raise InvalidRequest("end must not be before start", field="end")
        account, settled = self._settled_account(account_id)
        # Just before start; no entry is older than the epoch (and a start of year 1 has no moment before it).
        before_start = max(start, EPOCH) - timedelta(microseconds=1)
        opening = self.ledger.as_of(account_id, before_start, shards=account.shards, settled=settled)
        closing = self.ledger.as_of(account_id, end, shards=account.shards, settled=settled)
        page = self.ledger.history(account_id, limit=limit, newest_first=False, start=start, end=end,
                                   hot=account.shards > 1, settled=settled)
        return Statement(account, start, end, opening, closing, page)

    def _unit_of(self, account_id: str) -> str:
        """An account's unit, which never changes: remembered per container, else one GetItem (404 if none)."""
        known = self._known_of(account_id)
        if known is None:
            try:
                model = AccountModel.get(self.ledger.account_key(account_id), consistent_read=True,
                                         attributes_to_get=["unit", "kind", "floor"])
            except AccountModel.DoesNotExist:
                raise NotFound(f"account {account_id} not found") from None
            known = self._remember(account_id, model)
        return known.unit

    def _known_of(self, account_id: str) -> _Known | None:
        """What this container remembers of an account (a system account's unit and kind are its name's)."""
        if is_system(account_id):
            return _Known(account_id[len(SYSTEM_PREFIX):], "system", None)
        known = self._known.get(account_id)
        if known is not None:
            self._known.move_to_end(account_id)
        return known

    def _remember(self, account_id: str, model: AccountModel) -> _Known:
        known = _Known(model.unit or "", model.kind or "standard", None if model.floor is None else int(model.floor))
        self._known[account_id] = known
        self._known.move_to_end(account_id)
        while len(self._known) > MAX_CACHED_ACCOUNTS:
            self._known.popitem(last=False)
        return known

    def counter_of(self, account_id: str) -> str:
        """The account on the other side of money or points from or to outside the ledger: the system account of
        the account's unit, opened on first use."""
        counter = system_account(self._unit_of(account_id))
        self._ensure_system(counter[len(SYSTEM_PREFIX):])
        return counter

    def _refuse_other_kind(self, unit: str, kind: str) -> None:
        """A unit is one kind's: refuse to open a points account in a unit standard accounts use, or the other way
        round (the system account of the unit says whose it is). One GetItem per unit and container at most. (Two
        first accounts of a unit, of two kinds, opened at once could both pass: there is no such unit before.)"""
        if unit not in self._serves:
            self._system_exists(unit)
        serves = self._serves.get(unit)
        if serves is not None and serves != kind:
            raise InvalidRequest(f"{unit} is a unit of this tenant's {serves} accounts; a {kind} account takes a "
                                 "unit of its own", field="unit")

    def _system_exists(self, unit: str) -> bool:
        """Whether the tenant's system account of `unit` is there (one GetItem; remembered with whose it is)."""
        account_id = system_account(unit)
        try:
            system = AccountModel.get(self.ledger.account_key(account_id), consistent_read=True,
                                      attributes_to_get=["serves", "shards", "floor"])
        except AccountModel.DoesNotExist:
            return False
        self._systems.add(account_id)
        self.ledger.learn_layout(account_id, system)  # so that its first posting goes to a shard directly
        if system.serves is not None:
            self._serves[unit] = system.serves
        return True

    def _ensure_system(self, unit: str, serves: str | None = None) -> None:
        """Open the tenant's system account of `unit` (hot, no floor) unless it is there: known in this container,
        else one GetItem finds it, and only the first account of a unit pays the transaction that opens it (a
        container asking by opening would pay a cancelled transaction of every shard per unit, and a function
        that only reads accounts, the sweep, may not write them). `serves`: the kind of the account it is opened
        for (see `_refuse_other_kind`)."""
        account_id = system_account(unit)
        if account_id in self._systems or self._system_exists(unit):
            return
        try:
            self.ledger.open(account_id, floor=None, attributes={"unit": unit, "kind": "system", "metadata": {},
                                                                 "book": self.ledger.book, "serves": serves},
                             idempotency_key=None, fingerprint={}, shards=self.ledger.settings.system_account_shards,
                             shard_attributes={"unit": unit, "kind": "system"})
        except AlreadyExists:
            pass
        self._systems.add(account_id)
        if serves is not None:
            self._serves.setdefault(unit, serves)

    # -- transactions -------------------------------------------------------------
    def transaction(self, transaction_id: str) -> Transaction:
        return transaction_of(self._stored(transaction_id))

    def post(self, account_id: str, amount: int, *, metadata: dict | None = None, idempotency_key: str,
             counter_account: str | None = None, expected_seq: dict | None = None,
             caller: Caller | None = None) -> Transaction:
        """Money in (amount > 0) or out (amount < 0) of one account, from or to `counter_account` (by default the
        system account of its unit). `expected_seq`: see `preconditions`. `caller`: the API key it acts for, which
        must be let mint when the posting does (`mints`); None for an operator's own tools."""
        amount = require_int("amount", amount)
        if amount == 0:
            raise InvalidRequest("amount must not be zero", field="amount")
        metadata = check_metadata(metadata)
        issued = self._issuing(caller, amount, (account_id, amount), (counter_account, -amount))
        expected = preconditions(expected_seq, account_id, counter_account)
        counter = (self.counter_of(account_id) if counter_account is None
                   else self.named_counter(counter_account, beside=account_id))
        if counter == account_id:
            raise InvalidRequest("the counter account is the account itself", field="counter_account")
        fingerprint = {"op": "posting", "account": account_id, "amount": amount, "metadata": metadata}
        if counter_account is not None:
            fingerprint["counter"] = counter_account
        if expected:
            fingerprint["expected_seq"] = expected
        legs = (Leg(account_id, amount, create=False, expected_seq=expected.get(account_id)),
                Leg(counter, -amount, create=False, expected_seq=expected.get(counter)))
        return self.record("posting", legs, abs(amount), metadata=metadata, idempotency_key=idempotency_key,
                           fingerprint=fingerprint, count=issued)

    def transfer(self, source: str, destination: str, amount: int, *, metadata: dict | None = None,
                 idempotency_key: str, expected_seq: dict | None = None, caller: Caller | None = None) -> Transaction:
        """`amount` from `source` to `destination`, both of one unit; `caller` as for `post`."""
        amount = positive("amount", amount)
        if source == destination:
            raise InvalidRequest("a transfer moves between two different accounts", field="destination")
        metadata = check_metadata(metadata)
        issued = self._issuing(caller, amount, (source, -amount), (destination, amount))
        expected = preconditions(expected_seq, source, destination)
        if is_system(source):
            self.named_counter(source, beside=destination, field="source")
        elif is_system(destination):
            self.named_counter(destination, beside=source, field="destination")
        legs = (Leg(source, -amount, create=False, expected_seq=expected.get(source)),
                Leg(destination, amount, create=False, expected_seq=expected.get(destination)))
        fingerprint = {"op": "transfer", "source": source, "destination": destination, "amount": amount,
                       "metadata": metadata}
        if expected:
            fingerprint["expected_seq"] = expected
        return self.record("transfer", legs, amount, metadata=metadata, idempotency_key=idempotency_key,
                           fingerprint=fingerprint, count=issued)

    def _issuing(self, caller: Caller | None, amount: int, *legs: tuple[str | None, int],
                 points: bool = False) -> Count | None:
        """For a write that mints (`mints`): refuse a caller without the `issue` scope (for points, `points:earn`
        will do: the issuer's) or past its limit per request, before anything is read; with a daily limit, what
        counts today's minting inside the write. The count is one item per key, unit and UTC day, updated in the
        posting's transaction under the condition that it stays within the limit, so racing requests of one key
        never mint past it together."""
        if caller is None or not mints(*legs):
            return None
        if not (caller.may("issue") or (points and caller.may("points:earn"))):
            raise Forbidden("this key may not make money from nothing (a leg debits a system account): that needs "
                            "the issue scope")
        minted, daily = abs(amount), caller.daily_issue_limit
        if caller.issue_limit is not None and minted > caller.issue_limit:
            raise IssueLimitReached(f"this key mints at most {caller.issue_limit} in one request", field="amount")
        if daily is None:
            return None

        def count(unit: str, day: str) -> Extension:
            name = f"issued|{self.ledger.book}|{caller.key_id}|{unit}|{day}"
            try:
                issued = int(CounterModel.get(name, consistent_read=True).value)
            except CounterModel.DoesNotExist:
                issued = 0
            if issued + minted > daily:
                raise IssueLimitReached(f"this key mints at most {daily} {unit} a day (UTC); {issued} today",
                                        field="amount")
            within = CounterModel.value.does_not_exist() | (CounterModel.value <= daily - minted)
            return Extension(updates=[(CounterModel(name), [CounterModel.value.add(minted)], within)])
        return count

    def named_counter(self, account_id: str, *, beside: str, field: str = "counter_account") -> str:
        """A counter account the client named, on the other side of `beside`: one of its own, or the system
        account of `beside`'s unit (opened on first use: never for a unit no account of the tenant has, nor for
        another system account)."""
        if is_system(account_id):
            unit = account_id[len(SYSTEM_PREFIX):]
            if is_system(beside) or self._unit_of(beside) != unit:
                raise InvalidRequest(f"{account_id} is the system account of {unit}; the other side is "
                                     f"{beside}", field=field)
            self._ensure_system(unit)
        return account_id

    def record(self, type_: str, legs: tuple[Leg, ...], amount: int, *, idempotency_key: str, fingerprint: dict,
               metadata: dict, extend: Callable[[tuple[PlannedLeg, ...], TransactionModel], Extension] | None = None,
               extend_unread: Callable[[str, TransactionModel], Extension | None] | None = None,
               transaction_id: str | None = None, count: Count | None = None, **fields) -> Transaction:
        """Post `legs` with the transaction's record in the same transaction. `extend` adds the caller's items
        (a hold's update, a reversed transaction's total) planned from the planned legs and the record; `count`
        what counts the minting. The legs may be posted without a read when this container knows their accounts
        (`without_read`) and there is no `extend`, or `extend_unread` plans the same items from the posting's time
        and the record (None: the service would refuse, and the read path says so)."""
        transaction_id = transaction_id or new_id("txn")
        made: list[TransactionModel] = []

        def recorded(lines: list[TransactionLeg], created_at: str, unit: str) -> Extension:
            """The transaction's record, its search items and the minting's count, planned either way."""
            stored = self._new_record(transaction_id, type_, amount, unit, lines, created_at, metadata, **fields)
            made[:] = [stored]
            extension = self._recorded(stored)
            return extension if count is None else extension.merged(count(unit, created_at[:10]))

        def plan(planned_legs: tuple[PlannedLeg, ...]) -> Extension:
            unit = accounts_agree(planned_legs, "standard")
            for planned in planned_legs:
                if planned.shard is None and planned.account.kind != "system":
                    self._remember(_named(planned), planned.account)
            extension = recorded(_lines(planned_legs), planned_legs[0].created_at, unit)
            return extension.merged(extend(planned_legs, made[0]) if extend else None)

        def unplanned(posted: tuple[Leg, ...], created_at: str, unit: str) -> Extension | None:
            lines = [TransactionLeg(account_id=leg.shard[0] if leg.shard else leg.account_id,
                                    shard=leg.shard[1] if leg.shard else None, amount=leg.amount) for leg in posted]
            try:
                extension = recorded(lines, created_at, unit)
                more = extend_unread(created_at, made[0]) if extend_unread is not None else Extension()
            except IssueLimitReached:
                return None  # a replay of a request that was counted passes: the read path finds its key first
            return None if more is None else extension.merged(more)

        without_read = None
        if (extend is None or extend_unread is not None) and self.ledger.unread_writes:
            legs, without_read = self.without_read(legs, unplanned)
        postings = self.ledger.post_legs(legs, idempotency_key=idempotency_key, fingerprint=fingerprint,
                                         key_ttl_seconds=self.key_ttl_seconds, extend=plan, resource=transaction_id,
                                         entry_attributes={"transaction": transaction_id, "kind": type_},
                                         without_read=without_read)
        if postings[0].replayed:
            # Its legs as the replay found them (in the journal, or still in their accounts' logs): not read again.
            return replace(transaction_of(self._stored(postings[0].made(), placed=postings)), replayed=True)
        return transaction_of(_placed(made[0], postings))  # a leg without a read: where the store put it

    def without_read(self, legs: tuple[Leg, ...],
                      unplanned: Callable[[tuple[Leg, ...], str, str], Extension | None],
                      ) -> tuple[tuple[Leg, ...], WithoutRead | None]:
        """The legs, each with the floor its account has, and what the posting asks of the accounts (their unit and
        kind, as `accounts_agree` checks them from a read) and adds (`unplanned`), when this container knows every
        account and they agree; else the legs as they are and None (the posting reads)."""
        known: list[_Known] = []
        for leg in legs:
            item = self._known_of(leg.account_id)
            if item is None or item.kind not in ("standard", "system") or leg.expected_seq is not None:
                return legs, None
            known.append(item)
        units = {item.unit for item in known}
        if len(units) != 1:
            return legs, None
        unit = units.pop()
        conditions = tuple((AccountModel.unit == unit) & (AccountModel.kind == item.kind) for item in known)
        expecting = tuple(replace(leg, floor=item.floor) for leg, item in zip(legs, known, strict=True))
        return expecting, WithoutRead(conditions, lambda posted, created_at: unplanned(posted, created_at, unit))

    def _recorded(self, stored: TransactionModel) -> Extension:
        """The transaction's record and its search items, put in the transaction that makes it."""
        return Extension(puts=[(stored, TransactionModel.id.does_not_exist()), *self._search_puts(stored)])

    # -- points -------------------------------------------------------------------
    def earn(self, account_id: str, payer: str, points: int, *, expires_at: datetime | None = None,
             metadata: dict | None = None, idempotency_key: str) -> Transaction:
        points = positive("points", points)
        metadata = check_metadata(metadata)
        transaction_id = new_id("txn")
        recorded, made = self._points_record(transaction_id, "earn", points, metadata, payer=payer,
                                             expires_at=stamp(expires_at) if expires_at else None)

        def attach(planned_legs: tuple[PlannedLeg, ...]) -> Extension:
            # Checked when the earn is planned, after its key was looked up: a retry that comes once expires_at
            # has passed replays the first answer.
            if expires_at is not None and expires_at <= self.ledger.now():
                raise InvalidRequest("expires_at must be in the future", field="expires_at")
            return recorded(planned_legs)

        change = self.points.add(account_id, payer, points, expires_at=expires_at, idempotency_key=idempotency_key,
                                 key_ttl_seconds=self.key_ttl_seconds, attach=attach, create=False,
                                 resource=transaction_id, fingerprint={"metadata": metadata})
        return self._points_answer(change, made)

    def spend(self, account_id: str, points: int, *, metadata: dict | None = None,
              idempotency_key: str) -> Transaction:
        """Points from the account's oldest unexpired lots; the transaction's legs say how much, and
        `GET .../transactions/{id}` plus the account's entries say from which payers."""
        points = positive("points", points)
        metadata = check_metadata(metadata)
        transaction_id = new_id("txn")
        attach, made = self._points_record(transaction_id, "spend", points, metadata)
        change = self.points.spend(account_id, points, idempotency_key=idempotency_key,
                                   key_ttl_seconds=self.key_ttl_seconds, attach=attach, create=False,
                                   resource=transaction_id, fingerprint={"metadata": metadata})
        return self._points_answer(change, made)

    def _points_record(self, transaction_id: str, type_: str, amount: int | None, metadata: dict,
                       reversal_of: Callable[[tuple[PlannedLeg, ...]], Extension] | None = None, **fields):
        made: list[TransactionModel] = []

        def attach(planned_legs: tuple[PlannedLeg, ...]) -> Extension:
            unit = accounts_agree(planned_legs, "points")
            stored = self._new_record(transaction_id, type_, amount or abs(planned_legs[0].amount), unit,
                                      _lines(planned_legs), planned_legs[0].created_at, metadata, **fields)
            made[:] = [stored]
            extension = self._recorded(stored)
            extension.every_entry = {"transaction": transaction_id, "kind": type_}
            return extension.merged(reversal_of(planned_legs) if reversal_of else None)

        return attach, made

    def _points_answer(self, change: PointsChange, made: list[TransactionModel]) -> Transaction:
        if change.replayed and change.resource is not None:
            return replace(self.transaction(change.resource), replayed=True)
        return transaction_of(made[0])

    def _expiry_record(self):
        attach, _ = self._points_record(new_id("txn"), "expiry", None, {})  # as many points as the lot had left
        return attach

    # -- reversals ----------------------------------------------------------------
    def reverse(self, transaction_id: str, amount: int | None = None, *, metadata: dict | None = None,
                idempotency_key: str, caller: Caller | None = None) -> Transaction:
        """Reverse all that is left of a transaction (or `amount` of it): a new transaction of type reversal.
        Reversing what left the ledger (a payout, a capture out of it, a points spend) brings it back from the
        system account: that mints, so `caller` must be let mint (`_issuing`; a points spend's: `points:earn`
        will do, as for an earn)."""
        metadata = check_metadata(metadata)
        if amount is not None:
            amount = positive("amount", amount)
        fingerprint = {"op": "reversal", "of": transaction_id, "amount": amount, "metadata": metadata}
        budget = self.ledger.retry_budget()
        while True:
            original = self._stored(transaction_id, complete=False)  # its legs' accounts and amounts are enough
            if original.type not in REVERSIBLE:
                raise InvalidState(f"a transaction of type {original.type} cannot be reversed")
            left = int(original.amount) - int(original.reversed or 0)
            wanted = left if amount is None else amount
            if left <= 0 or wanted > left:
                # A replay of the request that reversed it answers as the first time.
                replay = self._replayed(idempotency_key, transaction_id, fingerprint)
                if replay is not None:
                    return replay
                raise InvalidState(f"only {left} of transaction {transaction_id} is left to reverse")
            turned = ((entry.account_id, -entry.amount) for entry in entries_of(original))
            issued = self._issuing(caller, wanted, *turned, points=original.type in ("earn", "spend"))
            try:
                return self._reverse(original, wanted, metadata, idempotency_key, fingerprint, issued)
            except _ReversedMeanwhile:
                if not budget.retry():
                    raise InvalidState("the transaction is being reversed by another request; retry") from None

    def _reverse(self, original: TransactionModel, amount: int, metadata: dict, idempotency_key: str,
                 fingerprint: dict, issued: Count | None) -> Transaction:
        reversed_read = int(original.reversed or 0)

        def counted(unit: str, created_at: str) -> Extension:
            # Under the total this plan was made from: a reversal that committed meanwhile refuses this one.
            extension: Extension = Extension(updates=[(TransactionModel(original.id),
                                                       [TransactionModel.reversed.set(reversed_read + amount)],
                                                       TransactionModel.reversed == reversed_read)])
            return extension.merged(issued(unit, created_at[:10]) if issued else None)

        def count_reversal(planned_legs: tuple[PlannedLeg, ...]) -> Extension:
            # The total reversed must still be what this plan was made from (a points reversal's lots depend on it).
            if int(self._stored(original.id, complete=False).reversed or 0) != reversed_read:
                raise _ReversedMeanwhile()
            return counted(planned_legs[0].account.unit or "", planned_legs[0].created_at)

        fields: dict[str, str] = {"reverses": original.id, "request_fingerprint": request_fingerprint(fingerprint)}
        if original.type in ("earn", "spend"):
            holder = original.legs[0].account_id
            transaction_id = new_id("txn")
            attach, made = self._points_record(transaction_id, "reversal", amount, metadata,
                                               reversal_of=count_reversal, **fields)
            options = dict(attach=attach, idempotency_key=idempotency_key, key_ttl_seconds=self.key_ttl_seconds,
                           resource=transaction_id, request=fingerprint)
            if original.type == "spend":
                change = self.points.return_to_lots(holder, int(original.legs[0].seq), amount, reversed_read,
                                                    **options)
            else:
                change = self.points.take_back_earn(holder, int(original.legs[0].seq), amount, **options)
            return self._points_answer(change, made)
        legs = tuple(Leg(entry.account_id, amount if entry.amount < 0 else -amount, create=False)
                     for entry in entries_of(original))
        # Without a read, the total's condition alone says whether another reversal came first (the read path then
        # says which: a replay, or what is left).
        return self.record("reversal", legs, amount, metadata=metadata, idempotency_key=idempotency_key,
                           fingerprint=fingerprint, extend=_beside_record(count_reversal),
                           extend_unread=lambda created_at, _stored: counted(original.unit, created_at),
                           reverses=fields["reverses"], request_fingerprint=fields["request_fingerprint"])

    # -- helpers -------------------------------------------------------------------
    def _searchable(self, writes: Writes, kind: str, object_id: str, created_at: str, metadata: dict) -> None:
        """An account's search items, in the transaction that opens it (see `listing.py`)."""
        for item in search_items(self.ledger.book, kind, object_id, created_at, metadata):
            writes.put("search", item, SearchModel.term.does_not_exist())

    def _search_puts(self, stored: TransactionModel) -> list:
        """A transaction's search items, in the transaction that makes it."""
        return [(item, SearchModel.term.does_not_exist())
                for item in search_items(self.ledger.book, "transactions", stored.id, stored.created_at,
                                         stored.metadata or {})]

    def _stored(self, transaction_id: str, placed: list[Posting] | None = None,
                complete: bool = True) -> TransactionModel:
        """The transaction, if it is this book's: another tenant's answers exactly as one that does not exist. Its
        legs are complete: waiting ones from `placed` (its postings, leg by leg, as a replay found them), else
        from their logs (`transactions_as_listed`); unless not `complete`, for a caller that needs no leg's seq."""
        try:
            model = TransactionModel.get(findable("transaction", transaction_id), consistent_read=True)
        except TransactionModel.DoesNotExist:
            model = None
        if model is None or (model.book or BOOK) != self.ledger.book:
            raise NotFound(f"transaction {transaction_id} not found")
        if placed is not None and len(placed) == len(model.legs):
            _placed(model, placed)
        return self.transactions_as_listed([model])[0] if complete else model

    def transactions_as_listed(self, models: list[TransactionModel]) -> list[TransactionModel]:
        """Transactions as stored, each leg with its seq and balance after. A leg written without a read has them
        only once a drain put it in the journal; until then its account's log says them: the accounts of such legs
        are read (one BatchGetItem per 100), and the transactions whose legs a drain moved meanwhile read again
        (one more). A read, never a write; nothing when no leg waits."""
        waiting = [model for model in models if any(leg.seq is None for leg in model.legs)]
        if not waiting:
            return models
        places = self.ledger.logged_legs({leg_account(leg) for model in waiting for leg in model.legs
                                          if leg.seq is None})

        def filled(model: TransactionModel) -> bool:
            """Its waiting legs filled from the logs; whether every leg now has its seq."""
            for number, leg in enumerate(model.legs):
                if leg.seq is None and (model.id, number) in places:
                    leg.seq, leg.balance_after = places[(model.id, number)]
            return all(leg.seq is not None for leg in model.legs)

        moved = [model.id for model in waiting if not filled(model)]
        if not moved:
            return models
        again = {model.id: model for model in TransactionModel.batch_get(moved, consistent_read=True)}
        for model in again.values():  # a leg drained, another still waiting: the one from the record, the other the log
            filled(model)
        return [again.get(model.id, model) for model in models]

    def _replayed(self, idempotency_key: str, original_id: str, fingerprint: dict) -> Transaction | None:
        """What an earlier use of the key made, if it was this very reversal of `original_id`: the same amount and
        metadata (else the key is reused)."""
        try:
            posting = self.ledger.posting_by_key(idempotency_key)
        except NotFound:
            return None
        try:
            made = self._stored(posting.resource) if posting.resource else None
        except NotFound:  # the key made something else (a hold, say)
            made = None
        if made is None or made.reverses != original_id or made.request_fingerprint != request_fingerprint(fingerprint):
            raise IdempotencyConflict.reused(idempotency_key)
        return replace(transaction_of(made), replayed=True)

    def _new_record(self, transaction_id: str, type_: str, amount: int, unit: str, lines: list[TransactionLeg],
                    created_at: str, metadata: dict, **fields) -> TransactionModel:
        return TransactionModel(transaction_id, book=self.ledger.book, type=type_, amount=amount, unit=unit, reversed=0,
                                metadata=metadata, created_at=created_at, legs=lines, **fields)


def leg_account(leg: TransactionLeg) -> str:
    """The account of the core a transaction's leg is on: a hot account's shard, or the account."""
    return leg.account_id if leg.shard is None else shard_id(leg.account_id, int(leg.shard))


def _lines(planned_legs: tuple[PlannedLeg, ...]) -> list[TransactionLeg]:
    """A transaction's legs as planned from a read."""
    return [TransactionLeg(account_id=_named(planned), shard=planned.shard[1] if planned.shard else None,
                           seq=planned.seq, amount=planned.amount, balance_after=planned.balance_after)
            for planned in planned_legs]


def _beside_record(extend: Callable[[tuple[PlannedLeg, ...]], Extension] | None,
                   ) -> Callable[[tuple[PlannedLeg, ...], TransactionModel], Extension] | None:
    """An extension planned from the legs alone, as `Transactions.record` takes one (beside the record it makes)."""
    if extend is None:
        return None
    return lambda planned_legs, _stored: extend(planned_legs)


class _ReversedMeanwhile(Exception):
    """Another reversal of the same transaction committed between our read and our plan."""

