"""What the two points surfaces (seeds 000 and 001) shape alike."""
from __future__ import annotations

from chalicelib.config import load
from chalicelib.core.points import PointsChange
from chalicelib.web.validation import parse_idempotency_key

_KEY_TTL_SECONDS = load().idempotency_key_ttl_seconds


def idempotency(request) -> dict:
    """The optional `Idempotency-Key` header, as keyword arguments of a points write."""
    return {"idempotency_key": parse_idempotency_key(request.headers), "key_ttl_seconds": _KEY_TTL_SECONDS}


def earned(payer: str, change: PointsChange, timestamp: str | None = None) -> dict:
    """The stored transaction: who, how many points (signed), when (the client's time, if it gave one)."""
    return {"payer": payer, "points": change.points, "timestamp": timestamp or change.timestamp}
