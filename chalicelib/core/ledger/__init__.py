"""The ledger core: one book's accounts, postings, journal and idempotency, behind `Ledger`.

Modules, one concern each (see docs/architecture.md):
- `book`: `Ledger`, the face: opening accounts, balances, the volume ranking; delegates the rest.
- `posting`: the posting engine: read, plan (floors), one transaction, decode a cancellation.
- `runner`: the one transaction runner: roles, cancellation reasons, retry budget, resend rule.
- `idempotency`: fingerprints, the records keys keep, replay or conflict.
- `journal`: pages of entries under signed cursors, a period's totals.
- `legs`: a leg at each stage (asked, planned, committed) and the integer rules.
- `keys`: how a book's items are named.
- `stamps`: time stamps.
"""
from chalicelib.core.ledger.book import AccountBalance, Ledger, VolumeLeaders
from chalicelib.core.ledger.journal import Page, Snapshot, Totals
from chalicelib.core.ledger.keys import findable
from chalicelib.core.ledger.legs import INT64_MAX, INT64_MIN, Leg, PlannedLeg, Posting, require_int
from chalicelib.core.ledger.posting import Extend, ExtendLegs, Extension, WithoutRead
from chalicelib.core.ledger.runner import RetryBudget, Stale, resolved
from chalicelib.core.ledger.stamps import parse_stamp, stamp, utc_now

__all__ = [
    "INT64_MAX", "INT64_MIN", "AccountBalance", "Extend", "ExtendLegs", "Extension", "Leg", "Ledger", "Page",
    "PlannedLeg", "Posting", "RetryBudget", "Snapshot", "Stale", "Totals", "VolumeLeaders", "WithoutRead", "findable",
    "parse_stamp", "require_int", "resolved", "stamp", "utc_now",
]
