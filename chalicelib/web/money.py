"""Money on the wire, without pydantic (the cold path): integer minor units back to a JSON number."""
from __future__ import annotations


def money_json(units: int) -> int | float:
    """Minor units back as a JSON number: 1050 -> 10.5, 10000 -> 100."""
    return units // 100 if units % 100 == 0 else units / 100
