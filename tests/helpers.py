"""Helpers shared by the test modules."""
from __future__ import annotations

from chalicelib.core.ledger import Ledger
from chalicelib.core.models import EntryModel


def journal(book: Ledger, account_id: str) -> list[EntryModel]:
    """An account's journal entries, oldest first, read consistently."""
    return list(EntryModel.query(book.account_key(account_id), consistent_read=True))
