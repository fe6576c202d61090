"""Building blocks of request models (pydantic). Imported only by schema modules, which
surfaces load on first use, so pydantic stays off the cold import path."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

from chalicelib.core.ledger import INT64_MAX

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
        if isinstance(value, bool) or not isinstance(value, int | Decimal) or \
                (isinstance(value, Decimal) and not value.is_finite()):
            raise ValueError("must be a number")
        # Decided without Decimal arithmetic, which overflows past 1e999999 (a 500 for `1e999999999`):
        # comparisons and the digits themselves are exact at any size.
        if isinstance(value, Decimal):
            _sign, digits, exponent = value.as_tuple()
            if isinstance(exponent, int) and exponent < -2 and any(digits[max(0, len(digits) + exponent + 2):]):
                raise ValueError("must have at most two decimal places")
        if value < 0 or (lowest > 0 and value == 0):
            raise ValueError("must be greater than 0" if lowest > 0 else "must not be negative")
        if value > MAX_MONEY_UNITS // 100:
            raise ValueError(f"must be at most {MAX_MONEY_UNITS // 100}")
        units = int(value.scaleb(2)) if isinstance(value, Decimal) else value * 100  # in range: exact
        if units < lowest:
            raise ValueError("must be greater than 0")
        return units
    return parse


# Currency with at most two decimals, as integer minor units: 10, 10.5 and 10.25, not 10.255.
Money = Annotated[int, PlainValidator(_minor_units(1)),
                  WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01})]
MoneyOrZero = Annotated[int, PlainValidator(_minor_units(0)),
                        WithJsonSchema({"type": "number", "minimum": 0, "multipleOf": 0.01})]
