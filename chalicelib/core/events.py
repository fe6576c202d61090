"""Journal events: every entry written to the `entries` table reaches EventBridge, from the table's stream.

The stream delivers each new entry at least once (a failed batch is delivered again). A marker per
published entry (`events:<entry id>` in the idempotency table, kept 48 h, longer than the stream keeps
records) makes a redelivered batch skip what was already sent, so an entry is published once; the one
window left (sent, then the marker write failed) yields a duplicate with the same `id`, which a
consumer drops. Events of one account carry its gapless `seq`, so order and gaps are visible too (a hot
account's events carry their `shard`, whose seq is gapless).
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.core.holds import HOLD_ENTRY_KINDS
from chalicelib.core.ledger import utc_now
from chalicelib.core.ledger.shards import split_shard
from chalicelib.core.models import EntryModel, IdempotencyModel
from chalicelib.core.transactions import BOOK as V1_BOOK

SOURCE = "tally.ledger"
DETAIL_TYPE = "journal.entry"
MARKER_HOURS = 48
PUT_EVENTS_BATCH = 10  # EventBridge's limit per PutEvents call
# The publisher's markers' keys begin with this, and its role may read and write no other item of the
# idempotency table (an IAM condition on the partition key: tools/infra.py).
MARKER_PREFIX = "events:"


class PublishFailed(Exception):
    """EventBridge refused some events: the stream batch is retried (what was sent is marked)."""


@dataclass(frozen=True)
class Published:
    sent: int
    skipped: int  # published before (a redelivered batch)


def entry_event(new_image: dict) -> dict:
    """An entry as its event's detail, from the stream record's DynamoDB JSON."""
    entry = EntryModel.from_raw_data(new_image)
    book, account_id = (entry.hot_account or entry.account).split(":", 1)
    detail = {"id": f"{entry.account}#{int(entry.seq)}", "book": book, "account_id": account_id,
              "seq": int(entry.seq), "amount": int(entry.amount), "balance_after": int(entry.balance_after),
              "created_at": entry.created_at}
    if entry.hot_account:  # a hot account's entry: seq and balance_after are its shard's
        detail["shard"] = split_shard(entry.account.split(":", 1)[1])[1]
    if book.startswith(f"{V1_BOOK}."):
        detail["tenant"] = book[len(V1_BOOK) + 1:]  # a rule on the bus can route each tenant's events apart
    for name in ("kind", "transaction", "held_change", "held_after"):
        value = getattr(entry, name)
        if value is not None:
            detail[name] = int(value) if name.startswith("held") else value
    if entry.kind in HOLD_ENTRY_KINDS and "transaction" in detail:
        detail["hold_id"] = detail.pop("transaction")  # what it names: a hold, not a transaction
    return detail


def publish(records: Iterable[dict], client, bus: str, now: datetime | None = None) -> Published:
    """Send the entries inserted in a stream batch (records as Lambda gets them) to `bus`, once each."""
    events = [entry_event(record["dynamodb"]["NewImage"]) for record in records
              if record.get("eventName") == "INSERT" and "NewImage" in record.get("dynamodb", {})]
    if not events:
        return Published(0, 0)
    marked = {marker.key for marker in IdempotencyModel.batch_get([_marker(event) for event in events],
                                                                  consistent_read=True)}
    fresh = [event for event in events if _marker(event) not in marked]
    expires = (now or utc_now()) + timedelta(hours=MARKER_HOURS)
    sent = 0
    for start in range(0, len(fresh), PUT_EVENTS_BATCH):
        chunk = fresh[start:start + PUT_EVENTS_BATCH]
        answer = client.put_events(Entries=[{"Source": SOURCE, "DetailType": DETAIL_TYPE, "EventBusName": bus,
                                             "Detail": json.dumps(event, separators=(",", ":"))} for event in chunk])
        delivered = [event for event, result in zip(chunk, answer["Entries"], strict=True) if "EventId" in result]
        with IdempotencyModel.batch_write() as markers:
            for event in delivered:
                markers.save(IdempotencyModel(_marker(event), fingerprint="published",
                                              account=event["id"].rpartition("#")[0], seq=event["seq"],
                                              amount=event["amount"],
                                              balance_after=event["balance_after"], created_at=event["created_at"],
                                              expires_at=expires))
        sent += len(delivered)
        if len(delivered) != len(chunk):
            raise PublishFailed(f"EventBridge refused {len(chunk) - len(delivered)} of {len(chunk)} events")
    return Published(sent, len(events) - len(fresh))


def _marker(event: dict) -> str:
    return f"{MARKER_PREFIX}{event['id']}"


@functools.cache
def client(region: str):
    """The EventBridge client (botocore: boto3 is not in the Lambda package)."""
    import botocore.session

    return botocore.session.get_session().create_client("events", region_name=region)
