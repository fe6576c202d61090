"""PynamoDB models: the only place that knows table layouts.

Tables (names from configuration, `<prefix>-<kind>`):
- accounts:    one item per account; balance, entry count, floor, version.
- entries:     the immutable journal, (account, seq); `by_time` GSI for time ranges.
- idempotency: one item per used idempotency key, pointing at the entry it produced.
- counters:    small named numbers (the max-volume high-water mark of a book).
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.connection import Connection
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.config import Settings, load


class VolumeIndex(GlobalSecondaryIndex):
    """Sparse: only accounts of books that track volume carry `volume_key`."""

    class Meta:
        index_name = "by_volume"
        projection = KeysOnlyProjection()

    volume_key = UnicodeAttribute(hash_key=True)


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
    # "<book>#<entry_count>": the account's place in its book's volume ranking.
    volume_key = UnicodeAttribute(null=True)
    version = VersionAttribute()

    by_volume = VolumeIndex()


class EntryTimeIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_time"
        projection = AllProjection()

    account = UnicodeAttribute(hash_key=True)
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

    by_time = EntryTimeIndex()


class IdempotencyModel(Model):
    class Meta:
        table_name = "idempotency"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    key = UnicodeAttribute(hash_key=True)  # "<book>:<client key>"
    fingerprint = UnicodeAttribute()
    account = UnicodeAttribute()
    seq = NumberAttribute()
    amount = NumberAttribute()
    balance_after = NumberAttribute()
    created_at = UnicodeAttribute()
    # Set only for keys that are mere retry tokens; transaction ids clients read back never expire.
    expires_at = TTLAttribute(null=True)


class CounterModel(Model):
    class Meta:
        table_name = "counters"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    name = UnicodeAttribute(hash_key=True)
    value = NumberAttribute(default=0)
    holder = UnicodeAttribute(null=True)


MODELS: dict[str, type[Model]] = {
    "accounts": AccountModel,
    "entries": EntryModel,
    "idempotency": IdempotencyModel,
    "counters": CounterModel,
}

# Connection for multi-table requests (TransactGet/TransactWrite); rebuilt by bind().
transaction_connection: Connection


def bind(settings: Settings) -> None:
    """Point every model (and the transaction connection) at the configured tables.

    PynamoDB caches a connection per model class; resetting it makes a new
    endpoint or table name take effect, which tests that switch between moto
    and DynamoDB Local rely on.
    """
    global transaction_connection
    for kind, model in MODELS.items():
        model.Meta.table_name = settings.table_name(kind)
        model.Meta.region = settings.region
        model.Meta.host = settings.dynamodb_endpoint
        model.Meta.max_pool_connections = 64
        model._connection = None
    transaction_connection = Connection(region=settings.region, host=settings.dynamodb_endpoint,
                                        max_pool_connections=64)


def create_tables() -> list[str]:
    """Create every missing table (idempotent); returns the names created."""
    created = []
    for model in MODELS.values():
        if not model.exists():
            model.create_table(wait=True)
            created.append(model.Meta.table_name)
    return created


bind(load())
