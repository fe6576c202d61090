"""Idle logs drained: a posting written without a read reaches the journal, and the event bus, even when its
account goes quiet.

A posting without a read waits in its account item's log until a drain moves it into the journal
(`ledger/sequencer.py`): writers drain every `DRAIN_AT`-th posting and readers of the journal drain first, so an
account nobody posts to or reads again would keep its last postings out of the entries table, and of its stream
and the event bus. The accounts table's stream hands every write of an account item to `drain_logs` (app.py),
which settles each item whose newest image in the batch still holds a log: the drain's own write comes back on
the stream with an empty log, so it stops there. A drain is safe to repeat (the entries' seqs are free only until
one drain takes them), so a batch delivered again drains nothing twice.

An item too busy to settle is left after a short try when its version moved meanwhile: some write landed, and it is
a record later in the stream, which brings the item back. When nothing landed (the drain was throttled, or lost
to writes that were refused), no record would: the batch fails, and Lambda delivers it again, as it does a batch
that runs out of time (what it drained is then a read each).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chalicelib.core.errors import Contention
from chalicelib.core.ledger import RetryBudget
from chalicelib.core.ledger.posting import settle
from chalicelib.core.models import AccountModel

# What Lambda may hand the function at once (the event source's batch size): each item is one GetItem and at most a
# drain.
BATCH_SIZE = 100
# One item's try: a drain is nobody's request, and a client's retry budget would let one busy item hold the batch.
ITEM_ATTEMPTS = 3
ITEM_SECONDS = 1.0
# A batch starts no item past this: within the function's timeout, with room for the item in flight
# (tests/test_package.py holds the deployed timeout to it).
BATCH_SECONDS = 20.0


class DrainUnfinished(Exception):
    """The batch ran out of time with items left: Lambda delivers it again."""


@dataclass(frozen=True)
class Drained:
    settled: int  # items whose log the batch's newest image showed: read, and drained where postings still waited
    busy: int  # items left to the later record of a write that landed meanwhile (see above)


def waiting_items(records: Iterable[dict]) -> list[str]:
    """The keys of the account items whose newest image in the batch (stream records as Lambda gets them, in the
    order of each item's writes) holds logged postings."""
    newest: dict[str, bool] = {}
    for record in records:
        image = record.get("dynamodb", {}).get("NewImage")
        if record.get("eventName") not in ("INSERT", "MODIFY") or not image or "S" not in image.get("key", {}):
            continue
        key = image["key"]["S"]
        newest.pop(key, None)  # insertion order is the order of each item's newest write
        newest[key] = bool(image.get("log", {}).get("L"))
    return [key for key, waiting in newest.items() if waiting]


def drain_logs(records: Iterable[dict], budget: Callable[[], RetryBudget],
               monotonic: Callable[[], float] = time.monotonic) -> Drained:
    """Settle every account item of a stream batch that still holds logged postings, each within a fresh `budget`
    (an item's: `ITEM_ATTEMPTS`, `ITEM_SECONDS`), starting none after `BATCH_SECONDS`."""
    settled = busy = 0
    stuck: list[str] = []
    started = monotonic()
    waiting = waiting_items(records)
    for number, key in enumerate(waiting):
        if monotonic() - started > BATCH_SECONDS:
            raise DrainUnfinished(f"{len(waiting) - number} of {len(waiting)} items left after {BATCH_SECONDS:g} s")
        read: list[AccountModel] = []
        try:
            settle(key, budget(), lambda _account: True, read.append)
        except Contention:
            if read and _moved(key, read[0].version):
                busy += 1
            else:
                stuck.append(key)
            continue
        settled += 1
    if stuck:
        raise DrainUnfinished(f"{len(stuck)} of {len(waiting)} items could not be drained, and nothing wrote them "
                              "since")
    return Drained(settled, busy)


def _moved(key: str, version: int | None) -> bool:
    """Whether the item's version moved since the drain's first read of it (every posting moves it)."""
    try:
        return AccountModel.get(key, attributes_to_get=["version"], consistent_read=True).version != version
    except AccountModel.DoesNotExist:
        return False
