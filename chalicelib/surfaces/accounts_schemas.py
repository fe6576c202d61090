"""Request models of seed 004 (loaded on first use by `accounts`)."""
from uuid import UUID

from chalicelib.web.schema_types import Int64, StrictBody


class AmountRequest(StrictBody):
    account_id: UUID
    amount: Int64
