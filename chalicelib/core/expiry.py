"""The scheduled sweep. It completes spends a crash left in parts (found through the sparse
`pending_takes` index), then expires what is due, found through the sparse `by_expiry` indexes (only open,
expiring lots and authorized holds carry their keys, sorted by expiry time), so a sweep reads what is due and
nothing else. Each expiry is its own journal entry, so balances stay exact and the journal says why points or
a reservation went away. Safe to run concurrently with itself and with spends: every step is conditioned on
what it read."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.core.holds import Holds
from chalicelib.core.ledger import stamp
from chalicelib.core.models import LotModel, due
from chalicelib.core.points import PointsBook
from chalicelib.core.transactions import Transactions


@dataclass(frozen=True)
class Swept:
    lots: int
    holds: int
    settled: int = 0  # spends in parts a crash left unfinished, completed


def due_lots(book: str, now: datetime):
    """(holder, lot) of every open lot of `book` whose expiry has come, oldest first per shard."""
    prefix = f"{book}:"
    for item in due(LotModel, "lots", stamp(now)):
        if item.holder.startswith(prefix):
            yield item.holder[len(prefix):], int(item.lot)


def sweep(transactions: Transactions, holds: Holds, now: datetime, limit: int = 1000) -> Swept:
    """Complete unfinished spends in parts (their lots are fenced until then), then expire up to `limit` due
    lots and `limit` due holds (the next run takes the rest)."""
    settled = sum(PointsBook(book).settle(holder) for book, holder in list(PointsBook.pending_holders())[:limit])
    lots = 0
    for count, (holder, lot) in enumerate(due_lots(transactions.ledger.book, now)):
        if count >= limit:
            break
        lots += transactions.points.expire(holder, lot) is not None
    released = 0
    for count, hold_id in enumerate(holds.due(now)):
        if count >= limit:
            break
        released += holds.expire(hold_id)
    return Swept(lots, released, settled)
