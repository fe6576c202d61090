"""Money on the wire, without pydantic (the cold path): integer minor units back to an exact JSON number."""
from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal


def money_json(units: int) -> int | Decimal:
    """Minor units back as a JSON number, exactly at any size: 1050 -> 10.5, 10000 -> 100,
    10000000000000001 -> 100000000000000.01 (a float would say 100000000000000.02). Whole amounts are
    ints; the others Decimals built from their digits (no rounding context), which `dumps` writes as is."""
    whole, cents = divmod(abs(units), 100)
    if cents == 0:
        return units // 100
    return Decimal(f"{'-' if units < 0 else ''}{whole}.{cents:02d}".rstrip("0"))


def dumps(body: object) -> str:
    """`body` as compact JSON text, as Chalice writes it, except that a Decimal is written exactly (Chalice's
    encoder, like json's, would go through a float). json cannot emit raw text for an object, so each Decimal
    is first written as a string naming it under a per-call random nonce (which no client string can carry,
    not knowing it), then that string is replaced by the number."""
    numbers: list[str] = []
    nonce = uuid.uuid4().hex

    def number(value: object) -> str:
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        numbers.append(str(value))
        return f"{nonce}{len(numbers) - 1}"

    text = json.dumps(body, separators=(",", ":"), default=number)
    if not numbers:
        return text
    return re.sub(f'"{nonce}([0-9]+)"', lambda match: numbers[int(match[1])], text)
