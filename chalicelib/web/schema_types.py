"""Building blocks of request models (pydantic). Imported only by schema modules, which
surfaces load on first use, so pydantic stays off the cold import path."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

INT64_MAX = 2**63 - 1
# Integers only (no float, string or bool), within the int64 range clients' stores use.
Int64 = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX, strict=True)]


class StrictBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
