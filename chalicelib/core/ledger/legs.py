"""A leg, one account's line of a posting, at each stage: asked (`Leg`), planned (`PlannedLeg`), committed
(`Posting`); and the numbers every leg must keep."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from chalicelib.core.errors import InvalidRequest
from chalicelib.core.models import AccountModel

# Balances (and amounts held) stay within int64, the integers clients' stores and languages hold exactly.
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def require_int(name: str, value: object) -> int:
    """Points and money are integers in the core; bool is not a number here."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer", field=name)
    return value


@dataclass(frozen=True)
class Leg:
    """One account's part of a posting as asked: its amount and the limits it must keep.

    The available balance is `balance - held`. A leg that lowers it must leave it at or above
    the account's floor, and at or above `minimum` (this posting's own, which may only raise it)."""

    account_id: str
    amount: int
    hold_change: int = 0  # how the amount held on the account (open holds) changes
    floor: int | None = None  # the floor of an account this posting creates
    minimum: int | None = None
    create: bool = True
    # (hot account id, shard number) when this leg is on a hot account's shard (see `shards.py`).
    shard: tuple[str, int] | None = None
    # A precondition: the account's entry count (its last seq) must still be this when the write lands.
    expected_seq: int | None = None

    @property
    def lowers_available(self) -> bool:
        return self.amount - self.hold_change < 0


@dataclass(frozen=True)
class PlannedLeg:
    """One leg as planned from a consistent read, before it commits: what an extension plans around."""

    account: AccountModel  # as read, consistently (a new, unsaved item for a new account)
    seq: int
    amount: int
    balance_after: int
    created_at: str
    # An earlier plan of this request failed on an extension item: re-read such items consistently.
    recheck: bool = False
    held_after: int = 0
    shard: tuple[str, int] | None = None  # (hot account id, shard number): see `Leg.shard`


# What a service's extension of a posting planned (a hold, a points plan), handed back on the committed Posting.
Result = TypeVar("Result")


@dataclass(frozen=True)
class Posting(Generic[Result]):
    """One leg as committed (or as first committed, when replayed), or as the journal holds it."""

    account_id: str
    seq: int
    amount: int
    balance_after: int
    created_at: str
    replayed: bool = False
    # What the posting's extension planned (see `Extension.result`); None when replayed.
    extra: Result | None = None
    held_after: int = 0
    # What the posting made, for a service to find on a replay (a transaction's id, say).
    resource: str | None = None
    # As the journal says, in history: the /v1 transaction or hold of the entry, and its kind.
    transaction: str | None = None
    kind: str | None = None
    # In a hot account's history: the shard whose journal holds the entry (its seq and balance_after are the
    # shard's; the account's own running balance does not exist between shards).
    shard: int | None = None
    # As the journal says: the account's running sums of credits and debits with this entry (see AccountModel).
    credited_after: int = 0
    debited_after: int = 0
    # The account's version this posting made, when the answer knows it (written without a read: read after it, with
    # nothing written since).
    version: int | None = None
    # While it waits in its account's log (written without a read): its entry's other attributes, as logged.
    logged: dict | None = None

    def planned(self) -> Result:
        """What this posting's extension planned (never on a replay, which answers from what was stored)."""
        if self.extra is None:
            raise LookupError("a replayed posting carries no plan: read what its resource names")
        return self.extra

    def made(self) -> str:
        """What the first request with this posting's key made: a replay finds its answer there."""
        if self.resource is None:
            raise LookupError("this posting names no resource")
        return self.resource
