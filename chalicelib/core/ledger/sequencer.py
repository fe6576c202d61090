"""Postings that do not read their account, and the drain that puts them in the journal.

A posting whose outcome depends on no read — a credit, or a debit whose floor the write's own condition can
check — is one TransactWriteItems and nothing else (`unread_update`):
- the account item updated by arithmetic (`ADD balance :amount`, the entry count plus one), under a condition on
  what must hold (the floor the service expects, the balance within int64, room in the log), never on a version;
- the entry appended to the item's `log`;
- the idempotency record put under attribute_not_exists.

DynamoDB applies one item's writes one after another, so the log is in commit order, and the item alone says
what each logged entry's seq, balance after, running sums and time are (`placed`): exactly what a read before the
write would have planned, decided by the store instead of by the first writer to read. A drain (`drain_writes`)
moves the oldest logged entries into the journal in one transaction — each entry put at its seq under
attribute_not_exists (so two drains never both apply), each record given its seq, the log shortened — and keeps
the numbers `placed` gave. Writers drain when the log is long; a reader of the journal drains it all first
(`Ledger.settle`), so every journal read, the verifier included, sees every answered posting.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pynamodb.expressions.condition import Condition, size

from chalicelib.core.ledger.legs import INT64_MAX, INT64_MIN, Leg, Posting
from chalicelib.core.ledger.runner import Writes
from chalicelib.core.ledger.stamps import parse_stamp, stamp
from chalicelib.core.models import (
    AccountLogModel,
    AccountModel,
    EntryModel,
    IdempotencyModel,
    TransactionModel,
    UnsequencedEntry,
)

# DynamoDB's limit on the items of one transaction.
MAX_TRANSACTION_ITEMS = 100
# Entries an account's log holds before a posting must wait for a drain. The log is rewritten with the item on
# every posting (on AWS a transactional write costs 2 units per KB), so it stays short; a drain of a full log is
# one transaction of an entry, a record and a /v1 transaction per logged posting, plus the account.
MAX_UNSEQUENCED = 32
# Every DRAIN_AT-th posting of an account drains its log, so that writers rarely meet a full one.
DRAIN_AT = 8
# A posting that came without an idempotency key gets a record of its own, kept this long. A record may expire
# before its posting is drained (an account nobody posts to or reads): the drain then leaves it out.
INTERNAL_KEY_TTL_SECONDS = 7 * 24 * 3600
assert 3 * MAX_UNSEQUENCED + 1 <= MAX_TRANSACTION_ITEMS
assert 0 < DRAIN_AT < MAX_UNSEQUENCED


@dataclass(frozen=True)
class Placed:
    """A logged posting as the journal will hold it."""

    key: str  # its stored idempotency key
    posting: str | None  # its own id (see `UnsequencedEntry.posting`; None if logged before postings had ids)
    seq: int
    amount: int
    balance_after: int
    created_at: str
    credited_after: int
    debited_after: int
    attributes: dict
    leg: int | None = None  # its number in a posting of several legs (see `UnsequencedEntry.leg`)
    held_change: int = 0
    held_after: int = 0  # what stays reserved on the account with this posting

    def as_posting(self, account_id: str, **fields) -> Posting:
        """This posting as the journal will hold it; `fields`: a Posting's others (resource, replayed)."""
        return Posting(account_id, self.seq, self.amount, self.balance_after, self.created_at,
                       credited_after=self.credited_after, debited_after=self.debited_after,
                       held_after=self.held_after, logged=self.attributes, **fields)


def placed(account: AccountModel) -> list[Placed]:
    """Every posting in the account's log, placed after the journal's last entry in log (commit) order. The
    account's numbers include the logged postings, so the journal's end is what they are without them."""
    log: list[UnsequencedEntry] = list(account.log or [])
    amounts = [int(entry.amount) for entry in log]
    held_changes = [int(entry.held_change or 0) for entry in log]
    seq = int(account.entry_count or 0) - len(log)
    balance = int(account.balance or 0) - sum(amounts)
    held = int(account.held or 0) - sum(held_changes)
    credited = int(account.credited or 0) - sum(max(amount, 0) for amount in amounts)
    debited = int(account.debited or 0) - sum(max(-amount, 0) for amount in amounts)
    last = parse_stamp(account.last_entry_at) if account.last_entry_at else None
    places = []
    for entry, amount, held_change in zip(log, amounts, held_changes, strict=True):
        seq, balance, held = seq + 1, balance + amount, held + held_change
        credited, debited = credited + max(amount, 0), debited + max(-amount, 0)
        # An account's entries are stamped strictly in seq order (as the read path stamps them), so a time-index
        # query and a seq query agree: a posting planned earlier but committed later takes the next microsecond.
        moment = parse_stamp(entry.created_at)
        if last is not None and moment <= last:
            moment = last + timedelta(microseconds=1)
        last = moment
        places.append(Placed(entry.key, entry.posting, seq, amount, balance, stamp(moment), credited, debited,
                             dict(entry.attributes or {}), None if entry.leg is None else int(entry.leg),
                             held_change, held))
    return places


def logged(account: AccountModel, record: IdempotencyModel) -> Placed | None:
    """The record's posting as placed in the account's log (None: not there, a drain moved it or never will): by
    the posting's id, or, for a record written before postings had ids, by its key."""
    return next((place for place in placed(account)
                 if (place.posting == record.posting if record.posting else place.key == record.key)), None)


def unread_update(leg: Leg, entry: UnsequencedEntry, *, track_volume: bool) -> tuple[list, Condition]:
    """The account's update and condition for a posting of `leg` that did not read the account (the version's
    increment is PynamoDB's: the caller updates an `AccountModel` with a version and no version condition, so that a
    plan of the read path sees that the account moved). `leg.floor` is the
    floor the caller expects the account to have (None: none), `leg.minimum` a higher one of this posting's; a
    debit is checked against them, and refused by the condition when the account has another floor (the caller
    then reads). Seq and balance after come from `placed`."""
    amount = leg.amount
    actions = [
        AccountModel.balance.add(amount),
        AccountModel.available.add(amount - leg.hold_change),
        AccountModel.entry_count.set((AccountModel.entry_count | 0) + 1),
        AccountModel.credited.add(max(amount, 0)),
        AccountModel.debited.add(max(-amount, 0)),
        AccountModel.log.set((AccountModel.log | []).append([entry])),
        AccountModel.created_at.set(AccountModel.created_at | entry.created_at),
    ]
    if track_volume:
        actions.append(AccountModel.volume.set((AccountModel.entry_count | 0) + 1))
    if leg.create and leg.floor is not None:
        actions.append(AccountModel.floor.set(AccountModel.floor | leg.floor))
    if leg.hold_change:
        actions.append(AccountModel.held.add(leg.hold_change))
    condition = AccountModel.log.does_not_exist() | (size(AccountModel.log) < MAX_UNSEQUENCED)
    # An item that predates `available` (and is not new) is refused here, and its posting reads first: the read
    # path's write sets it.
    condition &= AccountModel.available.exists() | AccountModel.key.does_not_exist()
    if not leg.create:
        condition &= AccountModel.key.exists()
    if amount > 0:
        condition &= AccountModel.balance.does_not_exist() | (AccountModel.balance <= INT64_MAX - amount)
    elif amount < 0:
        condition &= AccountModel.balance.does_not_exist() | (AccountModel.balance >= INT64_MIN - amount)
    if leg.hold_change > 0:
        condition &= AccountModel.held.does_not_exist() | (AccountModel.held <= INT64_MAX - leg.hold_change)
    if leg.lowers_available:
        condition &= AccountModel.floor.does_not_exist() if leg.floor is None else AccountModel.floor == leg.floor
        required = max((limit for limit in (leg.floor, leg.minimum) if limit is not None), default=None)
        if required is not None:
            # available + amount - hold change >= the floor (or the higher minimum), whatever else is held.
            condition &= AccountModel.available >= required - (amount - leg.hold_change)
    return actions, condition


def drain_writes(account: AccountModel, skip_records: frozenset[str] = frozenset()) -> Callable[[Writes], None] | None:
    """The transaction that moves every logged posting of `account` (as read) into the journal; None when the log
    is empty. `skip_records`: records found gone (expired, or their key used again since) by an earlier try."""
    places = placed(account)
    if not places:
        return None
    # What the account says of every entry of its own (a wallet's owner and surface, on which its history filters; a
    # shard's hot account, on whose index its shards' entries merge): never changed once opened, so a posting that
    # did not read the account need not know it.
    owned = {name: value for name, value in (("owner", account.owner), ("surface", account.surface),
                                             ("hot_account", account.shard_of)) if value is not None}

    def build(writes: Writes) -> None:
        for place in places:
            entry = EntryModel(account.key, place.seq, amount=place.amount, balance_after=place.balance_after,
                               created_at=place.created_at, idempotency_key=place.key,
                               credited_after=place.credited_after, debited_after=place.debited_after,
                               **{**owned, **place.attributes})
            if place.held_change:
                entry.held_change = place.held_change
            if place.held_change or place.held_after:
                entry.held_after = place.held_after  # as the read path writes it: on every entry while anything is
            writes.put("entry", entry, EntryModel.seq.does_not_exist())
        # One update a key (a key used again after its record expired names one record: the newer posting's), and
        # only the record of this very posting (its id): an expired one is not brought back, a newer one not touched.
        newest = {place.key: place for place in places}
        for place in newest.values():
            if place.key in skip_records:
                continue
            # A log entry written before postings had ids: its record, if it still waits for its seq.
            own = (IdempotencyModel.posting == place.posting if place.posting is not None
                   else IdempotencyModel.key.exists() & IdempotencyModel.seq.does_not_exist())
            writes.update(f"record:{place.key}", IdempotencyModel(place.key), _record_completed(place), own)
        for place in places:
            transaction = place.attributes.get("transaction")
            if transaction is not None and place.leg is not None:
                # A /v1 transaction written without a read: this leg's line in it, as the journal now holds it.
                line: Any = TransactionModel.legs[place.leg]  # a path to the leg, typed by PynamoDB as a Path
                writes.update("transaction", TransactionModel(transaction),
                              [line.seq.set(place.seq), line.balance_after.set(place.balance_after)],
                              TransactionModel.id.exists())
        # No condition on the account: the entries' seqs, free only until a drain took them, say this drain is
        # the one that moves these postings (and only drains remove from the log, always its oldest entries). Nor a
        # new version (`AccountLogModel`): a read path's plan of the account is as right after as before.
        writes.update("account", AccountLogModel(account.key),
                      [*(AccountLogModel.log[number].remove() for number in range(len(places))),
                       AccountLogModel.last_entry_at.set(places[-1].created_at)])
    return build


def _record_completed(place: Placed) -> list:
    """A record's seq and balance after for a logged posting: of its one leg, or of this leg of several (the first
    leg's also at the top, as every record keeps its first posting)."""
    completed = []
    if place.leg is not None:
        line: Any = IdempotencyModel.legs[place.leg]  # a path to the leg, typed by PynamoDB as a Path
        completed += [line.seq.set(place.seq), line.balance_after.set(place.balance_after)]
    if not place.leg:
        completed += [IdempotencyModel.seq.set(place.seq), IdempotencyModel.balance_after.set(place.balance_after),
                      IdempotencyModel.created_at.set(place.created_at)]
    return completed
