"""Seed 004, the Account Management API: `/ping`, `/amount`, `/transaction`, `/balance`,
`/max_transaction_volume`. See `shared/seeds/account-management-api.md`."""
from __future__ import annotations

from uuid import UUID

from chalicelib.core.ledger import Ledger, Posting
from chalicelib.web.routing import Surface
from chalicelib.web.validation import parse_uuid

surface = Surface(__name__, tag="seed 004: Account Management API", schemas="chalicelib.surfaces.accounts_schemas")


def _ledger() -> Ledger:
    """Its own book of accounts, which ranks accounts by transaction count."""
    return surface.services.accounts


def _transaction(posting: Posting, transaction_id: str) -> dict:
    return {"transaction_id": transaction_id, "account_id": posting.account_id,
            "amount": posting.amount, "balance": posting.balance_after, "created_at": posting.created_at}


@surface.route("/ping", "GET", response="Ping", scope=None)  # public: on access.PUBLIC_ROUTES
def ping():
    return {"status": "ok"}


@surface.route("/amount", "POST", request="AmountRequest", response="AmountTransaction", errors=(409,),
               headers=(("Transaction-Id", True, {"type": "string", "format": "uuid"}),))
def create_transaction(body):
    transaction_id = parse_uuid("Transaction-Id", surface.request.headers.get("transaction-id"))
    posting = _ledger().post(str(body.account_id), body.amount, idempotency_key=transaction_id)
    return _transaction(posting, transaction_id)


@surface.route("/transaction/{transaction_id}", "GET", response="TransactionRead", errors=(404,))
def get_transaction(transaction_id: str):
    account_id, amount = _ledger().movement_by_key(_path_uuid(transaction_id))
    return {"account_id": account_id, "amount": amount}


@surface.route("/balance/{account_id}", "GET", response="BalanceOut", errors=(404,))
def get_balance(account_id: str):
    return {"balance": _ledger().balance(_path_uuid(account_id)).balance}


@surface.route("/max_transaction_volume", "GET", response="MaxVolume")
def max_transaction_volume():
    leaders = _ledger().volume_leaders()
    return {"maxVolume": leaders.max_volume, "accounts": leaders.account_ids}


def _path_uuid(value: str) -> str:
    """A path id that is not a UUID names nothing that exists: the lookup answers 404."""
    try:
        return str(UUID(value))
    except ValueError:
        return value
