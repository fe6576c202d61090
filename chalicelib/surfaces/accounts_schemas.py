"""Request models of seed 004 (loaded on first use by `accounts`)."""
from typing import Annotated
from uuid import UUID

from pydantic import Field

from chalicelib.web.schema_types import Int64, StrictBody


class AmountRequest(StrictBody):
    # Bodies are validated as parsed JSON (Python mode), where a strict UUID field refuses strings.
    account_id: Annotated[UUID, Field(strict=False)]
    amount: Int64
