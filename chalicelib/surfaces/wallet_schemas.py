"""Request models of the wallet surfaces, seeds 002 and 003 (loaded on first use)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool, StrictInt

from chalicelib.web.schema_types import Money, MoneyOrZero, StrictBody

Id = Annotated[StrictInt, Field(ge=1, le=2**53)]


class RegisterRequest(StrictBody):
    phone_number: str


class WalletCreateRequest(StrictBody):
    """002: a typed wallet."""

    user_id: Id
    type: str


class TransactionRequest(StrictBody):
    user_id: Id
    wallet_id: Id
    amount: Money
    is_credit: StrictBool


class PeriodRequest(StrictBody):
    user_id: Id
    wallet_id: Id
    start_date: str
    end_date: str


class AsperWalletCreateRequest(StrictBody):
    """003: the user's `default` wallet."""

    user_id: Id


class CreditRequest(StrictBody):
    wallet_id: Id
    amount: Money


class DebitRequest(CreditRequest):
    minimum_balance: MoneyOrZero | None = None
