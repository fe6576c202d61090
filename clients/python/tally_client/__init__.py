"""A typed Python client of Tally's own API, `/v1`, and the `tally` command line on it. Standard library only."""
from tally_client.client import DEFAULT, DEFAULT_URL, Tally, Transport, __version__, urllib_transport
from tally_client.errors import (
    Conflict,
    Forbidden,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    RateLimited,
    TallyError,
    Unauthorized,
    Unavailable,
)
from tally_client.types import (
    Account,
    Balance,
    Capture,
    Entry,
    EntryRef,
    Hold,
    Lot,
    Lots,
    Page,
    Statement,
    Transaction,
)

__all__ = ["DEFAULT", "DEFAULT_URL", "Account", "Balance", "Capture", "Conflict", "Entry", "EntryRef", "Forbidden",
           "Hold", "InsufficientFunds", "InvalidRequest", "Lot", "Lots", "NotFound", "Page", "RateLimited",
           "Statement", "Tally", "TallyError", "Transaction", "Transport", "Unauthorized", "Unavailable",
           "__version__", "urllib_transport"]
