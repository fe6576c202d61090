"""What /v1 answers, as TypedDicts: plain dicts at run time, typed for editors and type checkers.

Each mirrors a response schema of `GET /openapi.json` field for field (tests/test_client_drift.py holds them to
it). Amounts are integers in the account's unit; times are ISO 8601 strings in UTC.
"""
from __future__ import annotations

from typing import Generic, Literal, TypedDict, TypeVar

T = TypeVar("T")


class Page(TypedDict, Generic[T]):
    """One page of a list: the client's iterators follow `next_cursor` while `has_more` for you."""

    object: Literal["list"]
    data: list[T]
    has_more: bool
    next_cursor: str | None


class Account(TypedDict):
    id: str
    object: Literal["account"]
    unit: str
    kind: Literal["standard", "points", "system"]
    floor: int | None  # the lowest available balance; None: no floor
    balance: int
    held: int
    available: int  # balance - held
    metadata: dict[str, str]
    entry_count: int
    shards: int  # 1: an ordinary account; more: a hot one
    created_at: str


class EntryRef(TypedDict):
    """One leg of a transaction (its `entries` sum to zero)."""

    account_id: str
    seq: int | None  # None on a hot account's entry
    amount: int  # signed: + credits the account, - debits it
    balance_after: int | None


class Transaction(TypedDict):
    id: str
    object: Literal["transaction"]
    type: Literal["posting", "transfer", "capture", "reversal", "earn", "spend", "expiry"]
    amount: int  # the size, always positive; the entries carry the signs
    unit: str
    entries: list[EntryRef]
    reversed_amount: int
    reverses: str | None
    hold_id: str | None
    payer: str | None
    expires_at: str | None
    metadata: dict[str, str]
    created_at: str


class Hold(TypedDict):
    id: str
    object: Literal["hold"]
    account_id: str
    amount: int
    unit: str
    status: Literal["authorized", "captured", "voided", "expired"]
    captured_amount: int
    capture_transaction: str | None
    expires_at: str
    metadata: dict[str, str]
    created_at: str
    updated_at: str


class Capture(TypedDict):
    hold: Hold  # as the capture leaves it
    transaction: Transaction


class Entry(TypedDict):
    """One entry of an account's journal (its history)."""

    account_id: str
    seq: int | None
    amount: int
    balance_after: int | None
    held_after: int
    kind: str | None
    transaction: str | None  # the transaction that made it
    hold_id: str | None  # the hold that made it (an authorization, void or hold expiry: no money moved)
    created_at: str


class Balance(TypedDict):
    account_id: str
    unit: str
    balance: int
    held: int | None  # None for a past moment
    available: int | None
    as_of: str
    seq: int | None  # the last entry counted (0: none; None on a hot account)


class Statement(TypedDict):
    object: Literal["statement"]
    account_id: str
    unit: str
    start: str
    end: str
    opening_balance: int
    closing_balance: int
    credits: int
    debits: int
    count: int
    entries: Page[Entry]  # the period's first entries, oldest first


class Lot(TypedDict):
    lot: int
    payer: str
    points: int
    remaining: int
    earned_at: str
    expires_at: str | None


class Lots(TypedDict):
    account_id: str
    balances: dict[str, int]  # per payer
    lots: list[Lot]
