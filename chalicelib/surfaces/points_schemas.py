"""Request models of the points surfaces, seeds 000 and 001 (loaded on first use).

They check types only; the rules on values (non-zero, positive, enough points) are the core's."""
from typing import Annotated

from pydantic import Field, RootModel

from chalicelib.core.points import MAX_PAYER_LENGTH
from chalicelib.web.schema_types import Int64, StrictBody

Payer = Annotated[str, Field(min_length=1, max_length=MAX_PAYER_LENGTH)]


class EarnRequest(StrictBody):
    """Seed 001 `POST /transaction`: the server stamps the time."""

    payer: Payer
    points: Int64


class AddRequest(EarnRequest):
    """Seed 000 `POST /add`: the client says when the points were earned."""

    timestamp: str


class SpendRequest(StrictBody):
    points: Int64


class Earned(StrictBody):
    payer: str
    points: int
    timestamp: str


class PayerPoints(StrictBody):
    payer: str
    points: int


class SpentByPayer(RootModel[list[PayerPoints]]):
    """One entry per payer, points negative, in the order the payers were touched."""


class Balances(RootModel[dict[str, int]]):
    """Every payer's balance, zeros included."""
