"""PynamoDB models: the only place that knows table layouts.

Tables (names from configuration, `<prefix>-<kind>`):
- accounts:    one item per account; balance, entry count, floor, version, and the log of postings written
               without a read until a drain puts them in the journal (`ledger/sequencer.py`).
- entries:     the immutable journal, (account, seq); `by_time` GSI for time ranges; `hot_by_time` merges a hot
               account's shards.
- idempotency: one item per used idempotency key, pointing at the entry it produced.
- counters:    small named numbers (the max-volume high-water mark of a book).
- lots:        points lots of a holder, (holder, lot); sparse FIFO GSIs hold only open lots.
- payers:      a points holder's balance per payer, (holder, payer).
- links:       which lots paid for a points spend, in parts of up to 99 links, (posting, part).
- users:       users and what must be unique: `user#<id>`, `phone#<phone>`, `wallet#<user>#<type>`; used
               refresh tokens, `refresh#<token id>`, until they expire.
- transactions: /v1 transactions (postings, transfers, captures, reversals, earns, spends, expiries).
- holds:       /v1 holds (two-phase: authorized, then captured, voided or expired).
- keys:        /v1 API keys: the hash of each secret, its tenant and scopes; `by_tenant` GSI lists a tenant's.
- search:      /v1 accounts and transactions by a metadata key and value, (term, created_at#id).
/v1 accounts, transactions and holds carry their tenant's book on a sparse `by_book` index: a list page is one Query.
Expiring lots and open holds carry the keys of a sparse `by_expiry` index, sharded, oldest first.
The deployed entries table has a stream (tools/infra.py) that publishes the journal; local tables have none
(nothing polls it locally, and DynamoDB Local's writes slow down as its stream backlog grows).
"""
from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterator
from typing import TypeVar

import botocore.loaders
import botocore.session
from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection
from pynamodb.connection import base as pynamodb_connection
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.config import Settings


class PayerPoints(MapAttribute):
    payer = UnicodeAttribute()
    points = NumberAttribute()


class CountIndex(GlobalSecondaryIndex):
    """Sparse: only accounts of books that track volume carry `volume`, their entry count. A number, not a string
    naming the book: a posting that does not read its account sets it by arithmetic on the stored count
    (`ledger/sequencer.py`), and an update expression cannot build a string."""

    class Meta:
        index_name = "by_count"
        projection = KeysOnlyProjection()

    volume = NumberAttribute(hash_key=True)


class UnsequencedEntry(MapAttribute):
    """A posting committed without reading its account, in the account item's `log` in commit order, until a
    drain puts it in the journal with its seq and balance after (`ledger/sequencer.py`). Short attribute names:
    the log is rewritten with the item on every posting."""

    key = UnicodeAttribute(attr_name="k")  # the stored idempotency key: its record is updated by the drain
    # This posting's own id, also on its record: a key may be used again once its record expired, and the drain
    # must complete the record of this very posting, never a later one's.
    posting = UnicodeAttribute(attr_name="p", null=True)
    amount = NumberAttribute(attr_name="a")
    created_at = UnicodeAttribute(attr_name="t")  # when it was planned; the drain keeps the journal's order
    attributes = JSONAttribute(attr_name="x", null=True)  # the entry's other attributes
    # In a posting of several legs: this leg's number, by which the drain completes its record's (and its /v1
    # transaction's) line for this account.
    leg = NumberAttribute(attr_name="l", null=True)
    # How the amount held changes (a hold, its void or expiry, a capture's release): the drain keeps it on the entry.
    held_change = NumberAttribute(attr_name="h", null=True)


class PendingTakeIndex(GlobalSecondaryIndex):
    """Sparse: only holders with a take in parts still being applied (rare, short-lived) carry the key."""

    class Meta:
        index_name = "pending_takes"
        projection = KeysOnlyProjection()

    pending_shard = UnicodeAttribute(hash_key=True)


class BookIndex(GlobalSecondaryIndex):
    """Sparse: only what a /v1 tenant lists carries `book`: its accounts (not their shards), transactions and
    holds, oldest first. A list page is one Query of it."""

    class Meta:
        index_name = "by_book"
        projection = AllProjection()

    book = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class AccountBookIndex(BookIndex):
    """`by_book` of accounts projects only what never changes (unit, kind): every posting updates an account's
    item, and an index that projected its balance would be written with it (on AWS, twice the write cost of
    each posting). A list page reads the items it names in one BatchGetItem."""

    class Meta:
        index_name = "by_book"
        projection = IncludeProjection(["unit", "kind"])


class AccountModel(Model):
    class Meta:
        table_name = "accounts"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    key = UnicodeAttribute(hash_key=True)  # "<book>:<account id>"
    balance = NumberAttribute(default=0)
    entry_count = NumberAttribute(default=0)
    floor = NumberAttribute(null=True)
    created_at = UnicodeAttribute()
    last_entry_at = UnicodeAttribute(null=True)
    # The entry count again, on the account's place in its book's volume ranking (books that track volume).
    volume = NumberAttribute(null=True)
    # Postings committed without a read, not yet in the journal, oldest first (`ledger/sequencer.py`).
    log = ListAttribute(of=UnsequencedEntry, null=True)
    # Points holders: the posting (`<key>#<seq>`) of a spend whose lot links are still being applied,
    # and the `pending_takes` key it carries meanwhile (so the sweep finds a spend a crash left unfinished).
    pending = UnicodeAttribute(null=True)
    pending_shard = UnicodeAttribute(null=True)
    # Wallets: the user who owns it and its type (one wallet per user and type).
    owner = NumberAttribute(null=True)
    wallet_type = UnicodeAttribute(null=True)
    # Wallets: the surface (seed) whose wallet it is; no other surface sees it (each keeps its own data).
    surface = UnicodeAttribute(null=True)
    # Holds: the amount reserved by open holds; the available balance is `balance - held`.
    held = NumberAttribute(null=True)
    # `balance - held`, kept by every write, so that a debit or a hold written without a read can be conditioned on
    # it (a condition compares an attribute with a value, and cannot subtract). Absent on items that predate it:
    # their next posting reads first, and its write sets it.
    available = NumberAttribute(null=True)
    # /v1 accounts: the unit amounts are in (a currency's minor units, or points), what kind of
    # account it is ("standard" or "points"), and the client's metadata.
    unit = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(null=True)
    # A system account: the kind of account whose counter it is ("standard" or "points"). A unit is one kind's:
    # were points accounts in USD, a points:earn key would mint USD.
    serves = UnicodeAttribute(null=True)
    metadata = JSONAttribute(null=True)
    # Hot accounts (`ledger/shards.py`): the account's item holds `shards`, the number of its balance shards,
    # and no balance of its own; each shard is an ordinary account item that names the account in `shard_of`.
    shards = NumberAttribute(null=True)
    shard_of = UnicodeAttribute(null=True)
    # Everything ever credited and debited (running sums, also on each entry): a statement's totals for any
    # period are two reads, whatever the period holds. Absent on accounts that predate them (0 then).
    credited = NumberAttribute(null=True)
    debited = NumberAttribute(null=True)
    book = UnicodeAttribute(null=True)  # /v1: the tenant's book, on `by_book` (a hot account's shards have none)
    version = VersionAttribute()

    by_count = CountIndex()
    pending_takes = PendingTakeIndex()
    by_book = AccountBookIndex()


class EntryTimeIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_time"
        projection = AllProjection()

    account = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class HotEntryTimeIndex(GlobalSecondaryIndex):
    """Sparse: only the entries of a hot account's shards carry `hot_account` (the account's key), so one Query
    reads the account's journal, every shard merged in time order."""

    class Meta:
        index_name = "hot_by_time"
        projection = AllProjection()

    hot_account = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class EntryModel(Model):
    """A journal entry. Written once with attribute_not_exists, never updated."""

    class Meta:
        table_name = "entries"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    account = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    amount = NumberAttribute()
    balance_after = NumberAttribute()
    created_at = UnicodeAttribute()
    idempotency_key = UnicodeAttribute(null=True)
    # Points: what each payer gained or lost, in the order they were touched.
    detail = ListAttribute(of=PayerPoints, null=True)
    # Points spends: how many `links` parts name the lots that paid for it.
    parts = NumberAttribute(null=True)
    # A points spend written without a read: its parts' key (it had no seq to name them by; else `<holder>#<seq>`).
    take = UnicodeAttribute(null=True)
    # Wallets: the owner, so a user's history query filters out any wallet that is not theirs.
    owner = NumberAttribute(null=True)
    # Wallets: the surface whose wallet it is, so a history query never shows another surface's entries.
    surface = UnicodeAttribute(null=True)
    # Holds: how this entry changed the amount held on the account, and what it left held.
    held_change = NumberAttribute(null=True)
    held_after = NumberAttribute(null=True)
    # /v1: the transaction this entry belongs to and its type (transfer, hold, capture, expiry, ...).
    transaction = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(null=True)
    # A hot account's shard: the account's key (see `hot_by_time`).
    hot_account = UnicodeAttribute(null=True)
    # The account's running sums of credits and debits, this entry included (see AccountModel.credited).
    credited_after = NumberAttribute(null=True)
    debited_after = NumberAttribute(null=True)

    by_time = EntryTimeIndex()
    hot_by_time = HotEntryTimeIndex()


class LegRecord(MapAttribute):
    account = UnicodeAttribute()
    seq = NumberAttribute(null=True)  # None while the leg waits in its account's log (see `ledger/sequencer.py`)
    amount = NumberAttribute()
    balance_after = NumberAttribute(null=True)


class IdempotencyModel(Model):
    class Meta:
        table_name = "idempotency"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    key = UnicodeAttribute(hash_key=True)  # "<book>:<client key>"
    fingerprint = UnicodeAttribute()
    account = UnicodeAttribute()
    # None while the posting waits in its account's log: the drain that puts it in the journal sets them.
    seq = NumberAttribute(null=True)
    amount = NumberAttribute()
    balance_after = NumberAttribute(null=True)
    created_at = UnicodeAttribute()
    # Set only for keys that are mere retry tokens; transaction ids clients read back never expire.
    expires_at = TTLAttribute(null=True)
    # A posting written without a read: its id in its account's log (`UnsequencedEntry.posting`).
    posting = UnicodeAttribute(null=True)
    # What the request made (a /v1 transaction id), and every leg of a posting of more than one.
    resource = UnicodeAttribute(null=True)
    legs = ListAttribute(of=LegRecord, null=True)


class CounterModel(Model):
    class Meta:
        table_name = "counters"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    name = UnicodeAttribute(hash_key=True)
    value = NumberAttribute(default=0)
    holder = UnicodeAttribute(null=True)


class OpenLotIndex(GlobalSecondaryIndex):
    """Sparse: only open lots (remaining > 0) carry `open_holder`; oldest first by `fifo`."""

    class Meta:
        index_name = "open_fifo"
        projection = AllProjection()

    open_holder = UnicodeAttribute(hash_key=True)
    fifo = UnicodeAttribute(range_key=True)


class OpenPayerLotIndex(GlobalSecondaryIndex):
    """Sparse, like `open_fifo`, per payer of a holder (negative adds are payer-scoped)."""

    class Meta:
        index_name = "open_payer_fifo"
        projection = AllProjection()

    open_payer = UnicodeAttribute(hash_key=True)
    fifo = UnicodeAttribute(range_key=True)


class ExpiryIndex(GlobalSecondaryIndex):
    """Sparse: only what is open and will expire carries the keys; a few shards spread the writes,
    each ordered by expiry time, so a sweep reads only what is due."""

    class Meta:
        index_name = "by_expiry"
        projection = KeysOnlyProjection()

    expiry_shard = UnicodeAttribute(hash_key=True)
    expiry = UnicodeAttribute(range_key=True)


EXPIRY_SHARDS = 4  # `by_expiry` hash keys per kind: writes of many holders spread over a few partitions


def expiry_shard(kind: str, key: str) -> str:
    """The `by_expiry` hash key of an item of `kind` ("lots", "holds"): a shard that is stable per key."""
    return f"{kind}#{zlib.crc32(key.encode()) % EXPIRY_SHARDS}"


Swept = TypeVar("Swept", "LotModel", "HoldModel")  # the items on a `by_expiry` index


def due(model: type[Swept], kind: str, now: str) -> Iterator[Swept]:
    """Items of `model` on `by_expiry` whose expiry stamp is at or before `now` (a stamp), oldest first across the
    shards (their queries merged by expiry, each of the due range only), so a sweep's limit is spent on the items
    due longest, whichever shard holds them: a backlog in one shard cannot starve the others."""
    queries = [model.by_expiry.query(f"{kind}#{shard}", model.expiry < f"{now}$")  # '$' sorts after '#'
               for shard in range(EXPIRY_SHARDS)]
    yield from heapq.merge(*queries, key=lambda item: item.expiry)


class LotModel(Model):
    """Points earned from one payer in one add; `remaining` only falls (spends, negative adds)."""

    class Meta:
        table_name = "lots"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    holder = UnicodeAttribute(hash_key=True)  # the holder's account key
    lot = NumberAttribute(range_key=True)  # the seq of the holder's journal entry that earned it
    payer = UnicodeAttribute()
    points = NumberAttribute()
    remaining = NumberAttribute()
    timestamp = UnicodeAttribute()  # when the points were earned (the client's time, for seed 000)
    fifo = UnicodeAttribute()  # "<timestamp>#<lot>": oldest first, arrival order breaks ties
    open_holder = UnicodeAttribute(null=True)
    open_payer = UnicodeAttribute(null=True)
    expires_at = UnicodeAttribute(null=True)  # a stamp; from then on the lot is never spent
    # `by_expiry` keys, only while the lot is open and expires.
    expiry_shard = UnicodeAttribute(null=True)
    expiry = UnicodeAttribute(null=True)  # "<expires_at>#<holder>#<lot>"

    open_fifo = OpenLotIndex()
    open_payer_fifo = OpenPayerLotIndex()
    by_expiry = ExpiryIndex()


class PayerModel(Model):
    """A points holder's balance from one payer (their sum is the holder's balance). One item per payer, not a
    list on the holder: the holder item stays the same size however many payers there are, so a posting costs
    the same at 10 payers as at 10,000 (a list of 1,500 long payers reached DynamoDB's 400 KB item limit).
    Written only in the transaction that moves the holder's version, so the version brackets a snapshot."""

    class Meta:
        table_name = "payers"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    holder = UnicodeAttribute(hash_key=True)  # the holder's account key
    payer = UnicodeAttribute(range_key=True)  # up to 256 characters: 1,024 bytes, DynamoDB's range key limit
    points = NumberAttribute()
    first = NumberAttribute()  # the holder's entry that first touched the payer: balances list payers in this order


class LotLink(MapAttribute):
    lot = NumberAttribute()
    payer = UnicodeAttribute()
    points = NumberAttribute()  # taken from the lot
    exhausts = BooleanAttribute()  # the take empties the lot (it leaves the open indexes)


class LinkPartModel(Model):
    """Part of a spend's lot links; `applied` once its lots were decremented."""

    class Meta:
        table_name = "links"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    posting = UnicodeAttribute(hash_key=True)  # "<account key>#<seq>" of the spend's journal entry
    part = NumberAttribute(range_key=True)
    links = ListAttribute(of=LotLink)
    applied = BooleanAttribute(null=True)


class DirectoryModel(Model):
    """Users, and the items that make a phone number and a user's wallet type unique (put in the
    same transaction as what they guard, under attribute_not_exists)."""

    class Meta:
        table_name = "users"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    key = UnicodeAttribute(hash_key=True)
    user_id = NumberAttribute()
    phone_number = UnicodeAttribute(null=True)
    wallet_id = NumberAttribute(null=True)
    created_at = UnicodeAttribute()
    # `family#<id>`: seed 002's refresh-token family (chalicelib/core/tokens.py), kept until its newest token
    # expires; `refresh#<token id>`: a used refresh token from before families, kept until it expires.
    expires_at = TTLAttribute(null=True)
    token_id = UnicodeAttribute(null=True)  # a family's current refresh token (its `jti`)
    revoked_at = UnicodeAttribute(null=True)  # a family revoked when one of its used tokens came back
    # Users: the surface that registered them; their id means nothing to another surface.
    surface = UnicodeAttribute(null=True)


class TransactionLeg(MapAttribute):
    account_id = UnicodeAttribute()
    shard = NumberAttribute(null=True)  # a hot account's leg: the shard whose journal holds the entry
    # None while the leg waits in its account's log: the drain that puts it in the journal sets both.
    seq = NumberAttribute(null=True)
    amount = NumberAttribute()
    balance_after = NumberAttribute(null=True)


class TransactionModel(Model):
    """A /v1 transaction: what a client asked for, and the journal entries it made (its legs).
    Only `reversed` ever changes, under a condition on its value read; and a leg's seq and balance after, set
    once by the drain when the transaction was written without a read (`ledger/sequencer.py`)."""

    class Meta:
        table_name = "transactions"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    id = UnicodeAttribute(hash_key=True)
    book = UnicodeAttribute(null=True)  # the tenant's book ("v1.<tenant>"); another book's reader sees a 404
    type = UnicodeAttribute()
    amount = NumberAttribute()  # positive: what moved
    unit = UnicodeAttribute()
    legs = ListAttribute(of=TransactionLeg)
    reversed = NumberAttribute(default=0)
    reverses = UnicodeAttribute(null=True)  # a reversal: the transaction it reverses
    hold_id = UnicodeAttribute(null=True)  # a capture: its hold
    payer = UnicodeAttribute(null=True)  # an earn: who granted the points
    expires_at = UnicodeAttribute(null=True)  # an earn: when its lot expires
    # A reversal: its request's fingerprint. A replay of its key that finds nothing left to reverse is told from
    # another request with the same key by this, as the idempotency record tells it for every other write.
    request_fingerprint = UnicodeAttribute(null=True)
    metadata = JSONAttribute(null=True)
    created_at = UnicodeAttribute()

    by_book = BookIndex()


class SearchModel(Model):
    """What finds /v1 accounts and transactions by a metadata key and value without a scan: one item per
    searchable pair of each, put in the same transaction as what it names, never changed."""

    class Meta:
        table_name = "search"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    term = UnicodeAttribute(hash_key=True)  # "<book>|<kind>|<key length>:<key>=<value>" (a long value by its SHA-256)
    order = UnicodeAttribute(range_key=True)  # "<created_at>#<id>": oldest first
    id = UnicodeAttribute()


class TenantKeyIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_tenant"
        projection = AllProjection()

    tenant = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class ApiKeyModel(Model):
    """A /v1 API key. Only a hash of its secret is kept: the secret is shown once, when it is made."""

    class Meta:
        table_name = "keys"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    id = UnicodeAttribute(hash_key=True)  # "key_<hex>", also written in the token, so a check is one GetItem
    secret_hash = UnicodeAttribute()  # SHA-256 of the whole token
    tenant = UnicodeAttribute()
    scopes = ListAttribute(of=UnicodeAttribute)
    label = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    revoked_at = UnicodeAttribute(null=True)
    # A deployed stage's API Gateway API key of the tenant (its usage plan throttles the tenant).
    usage_key = UnicodeAttribute(null=True)
    issue_limit = NumberAttribute(null=True)  # the most one request may mint (api_keys.Caller)
    daily_issue_limit = NumberAttribute(null=True)  # the most it may mint in one unit in one UTC day

    by_tenant = TenantKeyIndex()


class HoldModel(Model):
    """A /v1 hold. Its amount counts in the account's `held` while `status` is authorized."""

    class Meta:
        table_name = "holds"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    id = UnicodeAttribute(hash_key=True)
    book = UnicodeAttribute(null=True)  # the tenant's book ("v1.<tenant>"); another book's reader sees a 404
    account_id = UnicodeAttribute()
    amount = NumberAttribute()
    unit = UnicodeAttribute()
    status = UnicodeAttribute()  # authorized, captured, voided, expired
    captured = NumberAttribute(default=0)
    capture_transaction = UnicodeAttribute(null=True)
    expires_at = UnicodeAttribute()
    metadata = JSONAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    # `by_expiry` keys, only while authorized.
    expiry_shard = UnicodeAttribute(null=True)
    expiry = UnicodeAttribute(null=True)  # "<expires_at>#<id>"

    by_expiry = ExpiryIndex()
    by_book = BookIndex()


class AccountLogModel(Model):
    """The accounts table as a drain writes it (`ledger/sequencer.py`): the log and the last entry's time, and no
    version. A drain moves postings the account's balance and entry count already hold, so a plan read before it
    stays right: it must not move the version a posting of the read path is conditioned on."""

    class Meta:
        table_name = "accounts"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    key = UnicodeAttribute(hash_key=True)
    log = ListAttribute(of=UnsequencedEntry, null=True)
    last_entry_at = UnicodeAttribute(null=True)


MODELS: dict[str, type[Model]] = {
    "accounts": AccountModel,
    "entries": EntryModel,
    "idempotency": IdempotencyModel,
    "counters": CounterModel,
    "lots": LotModel,
    "payers": PayerModel,
    "links": LinkPartModel,
    "users": DirectoryModel,
    "transactions": TransactionModel,
    "holds": HoldModel,
    "keys": ApiKeyModel,
    "search": SearchModel,
}
# Other views of a table above, bound with it (none of them creates a table).
VIEWS: dict[str, tuple[type[Model], ...]] = {"accounts": (AccountLogModel,)}

# Connection for multi-table requests (TransactGet/TransactWrite); made by bind(), which the composition root
# or a tool calls before any request, and kept while it points at the same place.
transaction_connection: Connection | None = None


_BOTOCORE_DATA = botocore.loaders.create_loader()


def _session_sharing_botocore_data() -> botocore.session.Session:
    """PynamoDB makes a botocore session per model connection, and each session parses botocore's endpoint and
    DynamoDB model files again: about 0.27 s per table touched, on every Lambda cold start (and 3 s per test
    that binds eleven tables). The parsed files are read-only, so every session shares one loader."""
    session = botocore.session.Session()
    session.register_component("data_loader", _BOTOCORE_DATA)
    return session


pynamodb_connection.get_session = _session_sharing_botocore_data


def bind(settings: Settings) -> None:
    """Point every model (and the transaction connection) at the configured tables.

    PynamoDB caches a connection per model class, made for one table, region and endpoint; it is dropped when
    any of them changes, which tests that switch between moto and DynamoDB Local rely on. Binding to the same
    place again keeps the connections and their botocore clients, which are slow to make.
    """
    global transaction_connection
    bound = [(kind, model) for kind, model in MODELS.items()]
    bound += [(kind, view) for kind, views in VIEWS.items() for view in views]
    for kind, model in bound:
        model.Meta.table_name = settings.table_name(kind)
        model.Meta.region = settings.region
        model.Meta.host = settings.dynamodb_endpoint
        model.Meta.max_pool_connections = 64
        if not _connected_to(getattr(model, "_connection", None), settings, model.Meta.table_name):
            model._connection = None
    if not _connected_to(transaction_connection, settings):
        transaction_connection = Connection(region=settings.region, host=settings.dynamodb_endpoint,
                                            max_pool_connections=64)


def _connected_to(connection, settings: Settings, table_name: str | None = None) -> bool:
    if connection is None:
        return False
    if table_name is not None:
        if connection.table_name != table_name:
            return False
        connection = connection.connection
    return connection.host == settings.dynamodb_endpoint and connection.region == settings.region


def create_tables() -> list[str]:
    """Create every missing table (idempotent); returns the names created."""
    created = []
    for model in MODELS.values():
        if not model.exists():
            model.create_table(wait=True)
            created.append(model.Meta.table_name)
    return created

