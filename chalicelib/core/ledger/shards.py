"""Hot accounts: one account's balance kept in K shards, so that postings to it stop queueing on one item.

An account everything touches (the issuer of points, a merchant's revenue, the cash account) is the one item
every posting's transaction must update under its version: one writer wins a round, the others re-plan. A hot
account's item holds only what describes it (unit, kind, floor, metadata, `shards = K`); its balance lives in K
shard items, each an ordinary core account (`<id>#<n>`, with its own version, floor and journal chain), so a
posting to a shard keeps every guarantee a posting to any account has.

- A credit goes to one shard, chosen by the posting's id: concurrent credits spread over K items.
- A debit goes to one shard that can cover it (the posting's own shard first, then the next ones in turn); when
  no single shard can, it takes from several, largest first, in the one transaction.
- The floor: shard floors sum to the account's floor (`split_floor`), and each shard keeps its own under its
  write's condition, so the sum of the shards never goes below the account's floor. That holds only if every
  shard is at or above its floor from the start: shards start at 0, so a hot account's floor is 0, negative (an
  overdraft, split over the shards) or none; a positive floor is refused. A debit is refused only when all the
  shards together cannot cover it: what a single account would do.
- The balance is the sum of the shards, read in one BatchGetItem; the journal is merged through `hot_by_time`.

What never changes once an account is opened (its shard count, whether it has a floor) is kept per container in
`Layouts`, so a posting reads only the shards it may touch, without reading the account's own item first.
"""
from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.core.errors import InvalidRequest

if TYPE_CHECKING:
    from chalicelib.core.models import AccountModel

# At most 32 shards: a debit spread over all of them is 64 items (an update and an entry each) of a transaction's
# 100, which leaves room for the other legs and the records; the balance read is one BatchGetItem of K + 1 keys.
MAX_SHARDS = 32
SHARD_MARK = "#"  # never in an account id the API accepts (/v1 ids and system ids), nor in a seed's key prefix
MAX_CACHED_LAYOUTS = 4096  # hot accounts remembered per container (each a few dozen bytes)


def check_shards(shards: object) -> int:
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise InvalidRequest(f"shards must be an integer from 1 (an ordinary account) to {MAX_SHARDS}",
                             field="shards")
    return shards


def shard_id(account_id: str, shard: int) -> str:
    """The core account id of a hot account's shard."""
    return f"{account_id}{SHARD_MARK}{shard}"


def split_shard(core_id: str) -> tuple[str, int | None]:
    """(account id, shard) of a core account id; the shard is None for an ordinary account."""
    account_id, mark, shard = core_id.rpartition(SHARD_MARK)
    if mark and shard.isdigit():
        return account_id, int(shard)
    return core_id, None


def split_floor(floor: int | None, shards: int) -> list[int | None]:
    """Shard floors that sum exactly to the account's floor (None: no floor, on every shard)."""
    if floor is None:
        return [None] * shards
    base, extra = divmod(floor, shards)
    return [base + (1 if shard < extra else 0) for shard in range(shards)]


def home_shard(posting_id: str, shards: int) -> int:
    """The shard a posting goes to first: spread by its id, the same on every retry of the request."""
    return zlib.crc32(posting_id.encode()) % shards


def debit_parts(amount: int, available: list[int], home: int) -> list[tuple[int, int]] | None:
    """(shard, amount) parts of a debit of `amount` (> 0) from shards with `available` above their floors: one
    shard that covers it (home first, then the next ones in turn, so concurrent debits spread), else the largest
    first. None when all of them together cannot cover it."""
    count = len(available)
    for step in range(count):
        shard = (home + step) % count
        if available[shard] >= amount:
            return [(shard, amount)]
    parts, left = [], amount
    for shard in sorted(range(count), key=lambda index: -available[index]):
        if left == 0 or available[shard] <= 0:
            break
        take = min(available[shard], left)
        parts.append((shard, take))
        left -= take
    return parts if left == 0 else None


@dataclass(frozen=True)
class Layout:
    """What never changes about a hot account once opened."""

    shards: int
    floored: bool  # it has a floor: a debit must read every shard to find one that covers it


class Layouts:
    """The layouts of the hot accounts this container has met, least recently used forgotten first. Only hot
    accounts are kept: an account not here is read as an ordinary one, and its item says if it is hot."""

    def __init__(self, limit: int = MAX_CACHED_LAYOUTS) -> None:
        self._known: OrderedDict[str, Layout] = OrderedDict()
        self._limit = limit

    def get(self, account_id: str) -> Layout | None:
        layout = self._known.get(account_id)
        if layout is not None:
            self._known.move_to_end(account_id)
        return layout

    def learn_item(self, account_id: str, account: AccountModel) -> Layout | None:
        """What an account's item, as read, says of its layout: learned when it is hot (it has `shards`); None for an
        ordinary account."""
        if not account.shards:
            return None
        layout = Layout(int(account.shards), account.floor is not None)
        self.learn(account_id, layout)
        return layout

    def learn(self, account_id: str, layout: Layout) -> None:
        self._known[account_id] = layout
        self._known.move_to_end(account_id)
        while len(self._known) > self._limit:
            self._known.popitem(last=False)
