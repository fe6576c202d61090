"""Request models of seed 004 (loaded on first use by `accounts`)."""
from typing import Annotated
from uuid import UUID

from pydantic import Field

from chalicelib.web.schema_types import Int64, StrictBody


class AmountRequest(StrictBody):
    # Bodies are validated as parsed JSON (Python mode), where a strict UUID field refuses strings.
    account_id: Annotated[UUID, Field(strict=False)]
    amount: Int64


class Ping(StrictBody):
    status: str


class AmountTransaction(StrictBody):
    transaction_id: UUID
    account_id: UUID
    amount: int
    balance: int
    created_at: str


class TransactionRead(StrictBody):
    account_id: UUID
    amount: int


class BalanceOut(StrictBody):
    balance: int


class MaxVolume(StrictBody):
    maxVolume: int  # noqa: N815 - the contract's name
    accounts: list[UUID]
