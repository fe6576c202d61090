"""What the two points surfaces (seeds 000 and 001) shape alike."""
from __future__ import annotations

from chalicelib.core.points import PointsChange


def earned(payer: str, change: PointsChange, timestamp: str | None = None) -> dict:
    """The stored transaction: who, how many points (signed), when (the client's time, if it gave one)."""
    return {"payer": payer, "points": change.points, "timestamp": timestamp or change.timestamp}
