"""The scheduled sweep. It completes spends a crash left in parts (found through the sparse
`pending_takes` index), then expires what is due, found through the sparse `by_expiry` indexes (only open,
expiring lots and authorized holds carry their keys, sorted by expiry time), so a sweep reads what is due and
nothing else. Each expiry is its own journal entry, so balances stay exact and the journal says why points or
a reservation went away. Safe to run concurrently with itself and with spends: every step is conditioned on
what it read."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.core.errors import NotFound
from chalicelib.core.holds import Holds, due_holds, stored_hold
from chalicelib.core.ledger import stamp
from chalicelib.core.models import LotModel, due
from chalicelib.core.points import PointsBook
from chalicelib.core.transactions import BOOK, Transactions, is_v1_book


@dataclass(frozen=True)
class Swept:
    lots: int
    holds: int
    settled: int = 0  # spends in parts a crash left unfinished, completed


def due_lots(now: datetime):
    """(book, holder, lot) of every open /v1 lot whose expiry has come, in any tenant's book, oldest first
    per shard."""
    for item in due(LotModel, "lots", stamp(now)):
        book, holder = item.holder.split(":", 1)
        if is_v1_book(book):
            yield book, holder, int(item.lot)


def sweep(services: Callable[[str], tuple[Transactions, Holds]], now: datetime, limit: int = 1000,
          points_book: Callable[[str], PointsBook] = PointsBook) -> Swept:
    """Complete unfinished spends in parts (their lots are fenced until then), then expire up to `limit` due
    lots and `limit` due holds (the next run takes the rest). `services(book)` gives a tenant's services,
    `points_book(book)` the points holders of any book."""
    pending = list(PointsBook.pending_holders())[:limit]
    settled = sum(points_book(book).settle(holder) for book, holder in pending)
    lots = 0
    for count, (book, holder, lot) in enumerate(due_lots(now)):
        if count >= limit:
            break
        lots += services(book)[0].points.expire(holder, lot) is not None
    released = 0
    for count, hold_id in enumerate(due_holds(now)):
        if count >= limit:
            break
        try:
            book = stored_hold(hold_id).book or BOOK
        except NotFound:
            continue
        released += services(book)[1].expire(hold_id)
    return Swept(lots, released, settled)
