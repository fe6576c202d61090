"""Building blocks of request models (pydantic). Imported only by schema modules, which
surfaces load on first use, so pydantic stays off the cold import path."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

INT64_MAX = 2**63 - 1
# Integers only (no float, string or bool), within the int64 range clients' stores use.
Int64 = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX, strict=True)]


class StrictBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ClosedBody(StrictBody):
    """A /v1 request: a field it does not have is refused (400 naming it), so a typo like `ammount` is never
    silently dropped. (The seed surfaces ignore unknown fields, as their contracts' servers did.)"""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


MAX_MONEY_UNITS = 10**15  # 10 trillion in currency: every amount below renders exactly as a JSON number


def _minor_units(lowest: int):
    def parse(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ValueError("must be a number")
        try:
            units = Decimal(value) * 100
            exact = units == units.to_integral_value()
        except InvalidOperation:
            raise ValueError("must be a number") from None
        if not exact:
            raise ValueError("must have at most two decimal places")
        if units < lowest:
            raise ValueError("must be greater than 0" if lowest > 0 else "must not be negative")
        if units > MAX_MONEY_UNITS:
            raise ValueError(f"must be at most {MAX_MONEY_UNITS // 100}")
        return int(units)
    return parse


# Currency with at most two decimals, as integer minor units: 10, 10.5 and 10.25, not 10.255.
Money = Annotated[int, PlainValidator(_minor_units(1)),
                  WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01})]
MoneyOrZero = Annotated[int, PlainValidator(_minor_units(0)),
                        WithJsonSchema({"type": "number", "minimum": 0, "multipleOf": 0.01})]
