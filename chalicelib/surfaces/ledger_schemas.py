"""Request and response models of Tally's own API, /v1 (loaded on first use).

They check types and shapes; the rules on values (positive, same unit, enough balance) are the core's."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chalicelib.core.ledger.shards import MAX_SHARDS
from chalicelib.core.transactions import (
    ACCOUNT_ID_CHARACTERS,
    MAX_ACCOUNT_ID_LENGTH,
    MAX_METADATA_BYTES,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_LENGTH,
    MAX_UNIT_LENGTH,
    SYSTEM_PREFIX,
    UNIT_CHARACTERS,
)
from chalicelib.web.schema_types import ClosedBody, Int64, StrictBody

AccountId = Annotated[str, Field(min_length=1, max_length=MAX_ACCOUNT_ID_LENGTH,
                                 pattern=f"^{ACCOUNT_ID_CHARACTERS}+$")]
# The shape here; the limits are the core's (`check_metadata`), only documented.
Metadata = Annotated[dict[str, str], Field(json_schema_extra={
    "maxProperties": MAX_METADATA_KEYS,
    "propertyNames": {"minLength": 1, "maxLength": MAX_METADATA_KEY_LENGTH},
    "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE_LENGTH},
    "description": f"at most {MAX_METADATA_BYTES} bytes of keys and values (UTF-8)"})]
Timestamp = Annotated[str, Field(description="ISO 8601 date-time; without a zone, UTC")]
# An account the client opened, or a system account (`@world:<unit>`, where money and points from or to outside
# the ledger come from and go to): what a transfer or a counter account may name.
AnyAccountId = Annotated[str, Field(min_length=1, max_length=MAX_ACCOUNT_ID_LENGTH, pattern=(
    f"^({ACCOUNT_ID_CHARACTERS}{{1,{MAX_ACCOUNT_ID_LENGTH}}}|{SYSTEM_PREFIX}{UNIT_CHARACTERS}{{1,{MAX_UNIT_LENGTH}}})$"))]


class AccountCreate(ClosedBody):
    id: AccountId | None = None
    unit: Annotated[str, Field(min_length=1, max_length=MAX_UNIT_LENGTH, pattern=f"^{UNIT_CHARACTERS}+$",
                               description="ISO 4217 code for money in minor units, or e.g. points")]
    kind: Literal["standard", "points"] = "standard"
    floor: Int64 | None = Field(default=0, description="lowest available balance; null for none")
    overdraft_limit: Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)] | None = Field(
        default=None, description="instead of floor: the balance may go this far below zero")
    shards: Annotated[int, Field(ge=1, le=MAX_SHARDS, strict=True)] = Field(
        default=1, description="more than 1: a hot account, its balance kept in this many shards "
                               "(docs/design/hot-accounts.md)")
    metadata: Metadata | None = None


ExpectedSeq = Annotated[dict[AccountId, Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)]], Field(
    max_length=2, description="per account of the request: apply only if its last entry's seq (its entry count) is "
                              "still this; else 409 account_moved and nothing is written")]


class PostingCreate(ClosedBody):
    account_id: AccountId
    amount: Int64 = Field(description="minor units: > 0 credits, < 0 debits")
    expected_seq: ExpectedSeq | None = None
    counter_account: AnyAccountId | None = Field(
        default=None, description="where the amount comes from (a credit) or goes to (a debit); default: the "
                                  "system account of the unit, @world:<unit>")
    metadata: Metadata | None = None


class TransferCreate(ClosedBody):
    source: AnyAccountId
    destination: AnyAccountId
    amount: Int64
    expected_seq: ExpectedSeq | None = None
    metadata: Metadata | None = None


class ReversalCreate(ClosedBody):
    amount: Int64 | None = Field(default=None, description="default: all that is not reversed yet")
    metadata: Metadata | None = None


class HoldCreate(ClosedBody):
    account_id: AccountId
    amount: Int64
    expected_seq: ExpectedSeq | None = None
    expires_at: Timestamp | None = Field(default=None, description="default: 7 days from now")
    metadata: Metadata | None = None


class CaptureCreate(ClosedBody):
    amount: Int64 | None = Field(default=None, description="default: the whole hold")
    destination: AnyAccountId | None = Field(default=None, description="default: out of the ledger, to the "
                                                                       "system account of the unit")
    metadata: Metadata | None = None


class EarnCreate(ClosedBody):
    account_id: AccountId
    payer: Annotated[str, Field(min_length=1, max_length=256)]
    points: Int64
    expires_at: Timestamp | None = None
    metadata: Metadata | None = None


class SpendCreate(ClosedBody):
    account_id: AccountId
    points: Int64
    metadata: Metadata | None = None


class LedgerAccount(StrictBody):
    id: str
    object: Literal["account"]
    unit: str
    kind: Literal["standard", "points", "system"]
    floor: int | None
    balance: int
    held: int
    available: int
    metadata: dict[str, str]
    entry_count: int
    shards: int = Field(description="1: an ordinary account; more: a hot one, its balance in this many shards")
    created_at: str


HOT_ENTRY = "null on a hot account's entry: each of its shards keeps its own sequence and running balance"


class LedgerEntryRef(StrictBody):
    account_id: str
    seq: int | None = Field(description=HOT_ENTRY)
    amount: int
    balance_after: int | None = Field(description=HOT_ENTRY)


class LedgerTransaction(StrictBody):
    id: str
    object: Literal["transaction"]
    type: Literal["posting", "transfer", "capture", "reversal", "earn", "spend", "expiry"]
    amount: int = Field(description="the transaction's size, always positive; its entries carry the signs")
    unit: str
    entries: list[LedgerEntryRef]
    reversed_amount: int
    reverses: str | None
    hold_id: str | None
    payer: str | None
    expires_at: str | None
    metadata: dict[str, str]
    created_at: str


class LedgerHold(StrictBody):
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


class LedgerCapture(StrictBody):
    hold: LedgerHold
    transaction: LedgerTransaction


class LedgerEntry(StrictBody):
    account_id: str
    seq: int | None = Field(description=HOT_ENTRY)
    amount: int
    balance_after: int | None = Field(description=HOT_ENTRY)
    held_after: int
    kind: str | None
    transaction: str | None = Field(description="the transaction that made it (GET /v1/transactions/{id})")
    hold_id: str | None = Field(description="the hold that made it: an authorization, void or hold expiry "
                                            "(GET /v1/holds/{id}); such entries move no money")
    created_at: str


class LedgerEntryPage(StrictBody):
    object: Literal["list"]
    data: list[LedgerEntry]
    has_more: bool
    next_cursor: str | None


class LedgerAccountPage(StrictBody):
    object: Literal["list"]
    data: list[LedgerAccount]
    has_more: bool
    next_cursor: str | None


class LedgerTransactionPage(StrictBody):
    object: Literal["list"]
    data: list[LedgerTransaction]
    has_more: bool
    next_cursor: str | None


class LedgerHoldPage(StrictBody):
    object: Literal["list"]
    data: list[LedgerHold]
    has_more: bool
    next_cursor: str | None


class LedgerStatement(StrictBody):
    object: Literal["statement"]
    account_id: str
    unit: str
    start: str
    end: str
    opening_balance: int = Field(description="the balance right before start")
    closing_balance: int = Field(description="the balance right after the last entry at or before end")
    credits: int = Field(description="credited between start and end (closing - opening = credits - debits)")
    debits: int
    count: int = Field(description="entries between start and end")
    entries: LedgerEntryPage = Field(description="the period's first entries, oldest first")


class LedgerBalance(StrictBody):
    account_id: str
    unit: str
    balance: int
    held: int | None = Field(description="now only; null for a past moment")
    available: int | None
    as_of: str
    seq: int | None = Field(description="the last entry counted (0: none; null on a hot account)")


class PointsLot(StrictBody):
    lot: int
    payer: str
    points: int
    remaining: int
    earned_at: str
    expires_at: str | None


class PointsLots(StrictBody):
    account_id: str
    balances: dict[str, int]
    lots: list[PointsLot]
