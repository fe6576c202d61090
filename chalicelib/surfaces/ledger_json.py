"""The JSON shapes of /v1's resources: accounts, balances, journal pages, lots, transactions and holds."""
from __future__ import annotations

from datetime import datetime

from chalicelib.core.holds import HOLD_ENTRY_KINDS, Hold
from chalicelib.core.ledger import Page, Posting, Snapshot, stamp
from chalicelib.core.listing import ListPage
from chalicelib.core.points import Lot
from chalicelib.core.transactions import Account, Statement, Transaction


def account(account: Account) -> dict:
    return {"id": account.id, "object": "account", "unit": account.unit, "kind": account.kind,
            "floor": account.floor, "balance": account.balance, "held": account.held,
            "available": account.available, "metadata": account.metadata, "entry_count": account.entry_count,
            "shards": account.shards, "created_at": account.created_at}


def transaction(transaction: Transaction) -> dict:
    return {"id": transaction.id, "object": "transaction", "type": transaction.type, "amount": transaction.amount,
            "unit": transaction.unit,
            "entries": [{"account_id": entry.account_id, "seq": entry.seq, "amount": entry.amount,
                         "balance_after": entry.balance_after} for entry in transaction.legs],
            "reversed_amount": transaction.reversed, "reverses": transaction.reverses,
            "hold_id": transaction.hold_id, "payer": transaction.payer, "expires_at": transaction.expires_at,
            "metadata": transaction.metadata, "created_at": transaction.created_at}


def hold(hold: Hold) -> dict:
    return {"id": hold.id, "object": "hold", "account_id": hold.account_id, "amount": hold.amount,
            "unit": hold.unit, "status": hold.status, "captured_amount": hold.captured,
            "capture_transaction": hold.capture_transaction, "expires_at": hold.expires_at,
            "metadata": hold.metadata, "created_at": hold.created_at, "updated_at": hold.updated_at}


def entry(posting: Posting) -> dict:
    by_hold = posting.kind in HOLD_ENTRY_KINDS  # each reference names what resolves it
    on_shard = posting.shard is not None  # a hot account's: no running balance between its shards
    return {"account_id": posting.account_id, "seq": None if on_shard else posting.seq, "amount": posting.amount,
            "balance_after": None if on_shard else posting.balance_after, "held_after": posting.held_after,
            "kind": posting.kind,
            "transaction": None if by_hold else posting.transaction,
            "hold_id": posting.transaction if by_hold else None, "created_at": posting.created_at}


def balance(account: Account, as_of: datetime) -> dict:
    """The balance now (`as_of` is the service's clock)."""
    return {"account_id": account.id, "unit": account.unit, "balance": account.balance, "held": account.held,
            "available": account.available, "as_of": stamp(as_of),
            "seq": None if account.shards > 1 else account.entry_count}  # a hot account's shards count their own


def balance_as_of(account: Account, then: Snapshot, as_of: datetime) -> dict:
    """The balance after the last entry at or before `as_of` (its seq; None on a hot account, whose shards each
    have their own); what was held then is not kept."""
    return {"account_id": account.id, "unit": account.unit, "balance": then.balance, "held": None,
            "available": None, "as_of": stamp(as_of), "seq": then.seq}


def statement(statement: Statement) -> dict:
    return {"object": "statement", "account_id": statement.account.id, "unit": statement.account.unit,
            "start": stamp(statement.start), "end": stamp(statement.end),
            "opening_balance": statement.opening.balance, "closing_balance": statement.closing.balance,
            "credits": statement.credits, "debits": statement.debits, "count": statement.count,
            "entries": page(statement.page)}


def page(page: Page) -> dict:
    return {"object": "list", "data": [entry(posting) for posting in page.postings],
            "has_more": page.next_cursor is not None, "next_cursor": page.next_cursor}


def lots(account: Account, balances: dict[str, int], lots: list[Lot]) -> dict:
    return {"account_id": account.id, "balances": balances,
            "lots": [{"lot": lot.lot, "payer": lot.payer, "points": lot.points, "remaining": lot.remaining,
                      "earned_at": lot.earned_at, "expires_at": lot.expires_at} for lot in lots]}


def listed(page: ListPage, shaped) -> dict:
    """A list page of `/v1`'s resources, each shaped by `shaped`."""
    return {"object": "list", "data": [shaped(item) for item in page.items], "has_more": page.next_cursor is not None,
            "next_cursor": page.next_cursor}
