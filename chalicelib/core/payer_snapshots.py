"""A container's snapshots of points holders' balances by payer, each exact at one version of the holder.

A holder's payer items change only in the transactions that move its version (`PayerModel`), so the balances
read at version v are the balances for as long as the holder is at v: a read of the holder (one GetItem) that finds
v answers from the snapshot instead of querying every payer between two reads of the holder. A change this
container commits from version v (conditioned on it, so it made v + 1) moves a snapshot of v to v + 1 by its own
amounts per payer, so the balances after it need no read at all. A change made elsewhere (another container, the
sweep) only makes the snapshot miss: it is keyed by a version that no longer is.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

# Holders remembered per book, least recently used out: the seed books have one holder each.
MAX_HOLDERS = 16
# A holder with more payers is not remembered (a snapshot is copied for every answer it gives).
MAX_PAYERS = 1000


class PayerSnapshots:
    def __init__(self) -> None:
        self._by_holder: OrderedDict[str, tuple[int, dict[str, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def at(self, holder_key: str, version: int | None) -> dict[str, int] | None:
        """The holder's balances by payer (in the order payers first came) at `version`, if remembered."""
        with self._lock:
            found = self._by_holder.get(holder_key)
            if found is None or version is None or found[0] != version:
                return None
            self._by_holder.move_to_end(holder_key)
            return dict(found[1])

    def remember(self, holder_key: str, version: int | None, balances: dict[str, int]) -> None:
        """Balances read at `version` (between two reads of the holder that both found it)."""
        if version is None or len(balances) > MAX_PAYERS:
            return
        with self._lock:
            self._by_holder[holder_key] = (version, dict(balances))
            self._by_holder.move_to_end(holder_key)
            while len(self._by_holder) > MAX_HOLDERS:
                self._by_holder.popitem(last=False)

    def advance(self, holder_key: str, read_version: int | None, by_payer: list[tuple[str, int]]) -> int | None:
        """A change committed from `read_version` with these signed amounts per payer: the snapshot of that version,
        if remembered, moved to the next. Returns the version the change made (None when not known)."""
        if read_version is None:
            return None
        with self._lock:
            found = self._by_holder.get(holder_key)
            if found is not None and found[0] == read_version:
                balances = dict(found[1])
                for payer, points in by_payer:
                    balances[payer] = balances.get(payer, 0) + points  # a payer new to the holder comes last
                if len(balances) <= MAX_PAYERS:
                    self._by_holder[holder_key] = (read_version + 1, balances)
                else:
                    del self._by_holder[holder_key]
        return read_version + 1
