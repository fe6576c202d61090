"""Request models of the wallet surfaces, seeds 002 and 003 (loaded on first use)."""
from __future__ import annotations

from typing import Annotated, Literal

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


class Registered(StrictBody):
    user_id: int
    phone_number: str
    access_token: str
    refresh_token: str


class AccessToken(StrictBody):
    access_token: str
    refresh_token: str  # beyond the contract's {access_token}: the one sent is used up, so a new one comes back


class WalletOut(StrictBody):
    wallet_id: int
    user_id: int
    type: str
    balance: float


class TransactionOut(StrictBody):
    transaction_id: str
    wallet_id: int
    amount: float
    is_credit: bool
    balance: float
    created_at: str


class TransactionPage(StrictBody):
    transactions: list[TransactionOut]
    next_cursor: str | None


class Totals(StrictBody):
    total_credit: float
    total_debit: float
    count: int


class AsperRegistered(StrictBody):
    message: str
    user_id: int


class WalletId(StrictBody):
    wallet_id: int


class NewBalance(StrictBody):
    new_balance: float


class AsperBalance(StrictBody):
    balance: float


class HistoryItem(StrictBody):
    amount: float
    type: Literal["credit", "debit"]
    date: str


class AsperHistory(StrictBody):
    total_credit: float
    total_debit: float
    history: list[HistoryItem]
