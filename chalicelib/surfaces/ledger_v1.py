"""Tally's own API, `/v1`: accounts, postings, transfers, reversals, holds, points with expiry, history.

Every route needs an API key (`Authorization: Bearer tk_...`): it acts in the key's tenant only, and each
route needs a scope (`chalicelib/core/api_keys.py`). Every write needs an `Idempotency-Key` (a retry with
it answers what the first request made; with another body it is a 409). Lists are cursor-paginated
(`limit`, `cursor`; `has_more`, `next_cursor`). Errors are `{"error", "code"}` like every surface. Amounts are
integers in the account's unit (minor units of money).
"""
from __future__ import annotations

import functools
from datetime import datetime, timedelta

from chalicelib.config import load
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.holds import HOLD_ENTRY_KINDS, Hold, Holds
from chalicelib.core.ledger import Posting, stamp, utc_now
from chalicelib.core.transactions import Account, Transaction, Transactions, book_of
from chalicelib.web import access
from chalicelib.web.errors import Response
from chalicelib.web.routing import REQUIRED_IDEMPOTENCY_KEY, Surface
from chalicelib.web.validation import parse_body, parse_int, parse_timestamp, required_idempotency

surface = Surface(__name__, tag="v1", schemas="chalicelib.surfaces.ledger_schemas", keyed=True, scope=None)
DEFAULT_HOLD = timedelta(days=7)
KEY = (REQUIRED_IDEMPOTENCY_KEY,)
TIME = {"type": "string", "format": "date-time"}
PAGE = (("limit", False, {"type": "integer", "minimum": 1, "maximum": 1000}), ("cursor", False, {"type": "string"}))


class Clock:
    """The /v1 ledgers' time: the wall clock, unless a test moves it."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now or utc_now()


clock = Clock()


@functools.lru_cache(maxsize=1024)
def services_of_book(book: str) -> tuple[Transactions, Holds]:
    """A book's services, built once per container (they hold no request state)."""
    ledger = Transactions(book, key_ttl_seconds=load().idempotency_key_ttl_seconds, clock=clock)
    return ledger, Holds(ledger)


def _tenant() -> tuple[Transactions, Holds]:
    """The services of the calling key's tenant: a request never sees another tenant's book."""
    return services_of_book(book_of(surface.caller().tenant))


def _ledger() -> Transactions:
    return _tenant()[0]


def _holds() -> Holds:
    return _tenant()[1]


def account_json(account: Account) -> dict:
    return {"id": account.id, "object": "account", "unit": account.unit, "kind": account.kind,
            "floor": account.floor, "balance": account.balance, "held": account.held,
            "available": account.available, "metadata": account.metadata, "entry_count": account.entry_count,
            "created_at": account.created_at}


def transaction_json(transaction: Transaction) -> dict:
    return {"id": transaction.id, "object": "transaction", "type": transaction.type, "amount": transaction.amount,
            "unit": transaction.unit,
            "entries": [{"account_id": leg.account_id, "seq": leg.seq, "amount": leg.amount,
                         "balance_after": leg.balance_after} for leg in transaction.legs],
            "reversed_amount": transaction.reversed, "reverses": transaction.reverses,
            "hold_id": transaction.hold_id, "payer": transaction.payer, "expires_at": transaction.expires_at,
            "metadata": transaction.metadata, "created_at": transaction.created_at}


def hold_json(hold: Hold) -> dict:
    return {"id": hold.id, "object": "hold", "account_id": hold.account_id, "amount": hold.amount,
            "unit": hold.unit, "status": hold.status, "captured_amount": hold.captured,
            "capture_transaction": hold.capture_transaction, "expires_at": hold.expires_at,
            "metadata": hold.metadata, "created_at": hold.created_at, "updated_at": hold.updated_at}


def entry_json(posting: Posting) -> dict:
    by_hold = posting.kind in HOLD_ENTRY_KINDS  # each reference names what resolves it
    return {"account_id": posting.account_id, "seq": posting.seq, "amount": posting.amount,
            "balance_after": posting.balance_after, "held_after": posting.held_after, "kind": posting.kind,
            "transaction": None if by_hold else posting.transaction,
            "hold_id": posting.transaction if by_hold else None, "created_at": posting.created_at}


def _body(model_name: str):
    from chalicelib.surfaces import ledger_schemas

    return parse_body(getattr(ledger_schemas, model_name), surface.request.raw_body)


def _query(name: str) -> str | None:
    return (surface.request.query_params or {}).get(name)


def _time(name: str):
    value = _query(name)
    return None if value is None else parse_timestamp(name, value)


def _answer(body: dict, replayed: bool, status: int = 201) -> Response:
    """A write's answer; a replay of an earlier request with the same key says so in a header."""
    headers = {"Content-Type": "application/json"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(body=body, status_code=status, headers=headers)


def _made(shape, made, status: int = 201) -> Response:
    return _answer(shape(made), made.replayed, status)


def _keyed() -> dict:
    return {"idempotency_key": required_idempotency(surface.request.headers)["idempotency_key"]}


# -- accounts -------------------------------------------------------------------------
@surface.route("/v1/accounts", "POST", status=201, request="AccountCreate", response="LedgerAccount",
               errors=(409,), headers=KEY, scope="write")
def create_account():
    """Open an account"""
    body = _body("AccountCreate")
    floor = body.floor
    if body.overdraft_limit is not None:
        if "floor" in body.model_fields_set:
            raise InvalidRequest("give floor or overdraft_limit, not both", field="overdraft_limit")
        floor = -body.overdraft_limit
    if floor is None or floor < 0:
        # An overdraft lends, and no floor makes money from nothing: the operator's decision, not a writer's.
        access.require(surface.caller(), "admin")
    account, replayed = _ledger().open_account(body.id, body.unit, kind=body.kind, floor=floor,
                                               metadata=body.metadata, **_keyed())
    return _answer(account_json(account), replayed)


@surface.route("/v1/accounts/{account_id}", "GET", response="LedgerAccount", errors=(404,), scope="read")
def get_account(account_id: str):
    """An account: balance, held, available"""
    return account_json(_ledger().account(account_id))


@surface.route("/v1/accounts/{account_id}/balance", "GET", response="LedgerBalance", errors=(404,),
               query=(("as_of", False, TIME),), scope="read")
def get_balance(account_id: str):
    """The balance now, or as of a moment (one Query of the journal's time index)"""
    as_of = _time("as_of")
    if as_of is None:
        account = _ledger().account(account_id)
        return {"account_id": account.id, "unit": account.unit, "balance": account.balance, "held": account.held,
                "available": account.available, "as_of": stamp(clock()), "seq": account.entry_count}
    account, last = _ledger().balance_as_of(account_id, as_of)
    return {"account_id": account.id, "unit": account.unit, "balance": last.balance_after if last else 0, "held": None,
            "available": None, "as_of": stamp(as_of), "seq": last.seq if last else 0}


@surface.route("/v1/accounts/{account_id}/entries", "GET", response="LedgerEntryPage", errors=(404,),
               query=(("start", False, TIME), ("end", False, TIME),
                      ("order", False, {"type": "string", "enum": ["asc", "desc"]}), *PAGE), scope="read")
def list_entries(account_id: str):
    """The account's journal, newest first (order=asc for oldest first), between start and end if given"""
    order = _query("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc", field="order")
    limit = parse_int("limit", _query("limit")) if _query("limit") is not None else 100
    page = _ledger().entries(account_id, limit=limit, cursor=_query("cursor"), newest_first=order == "desc",
                          start=_time("start"), end=_time("end"))
    return {"object": "list", "data": [entry_json(posting) for posting in page.postings],
            "has_more": page.next_cursor is not None, "next_cursor": page.next_cursor}


@surface.route("/v1/accounts/{account_id}/lots", "GET", response="PointsLots", errors=(404,),
               query=(("state", False, {"type": "string", "enum": ["open", "all"]}),), scope="read")
def list_lots(account_id: str):
    """A points account's balance per payer and its lots, oldest first (the order spends take them)"""
    ledger = _ledger()
    account = ledger.account(account_id)
    lots = ledger.points.lots(account_id, open_only=(_query("state") or "open") == "open")
    return {"account_id": account.id, "balances": ledger.points.balances(account_id),
            "lots": [{"lot": lot.lot, "payer": lot.payer, "points": lot.points, "remaining": lot.remaining,
                      "earned_at": lot.earned_at, "expires_at": lot.expires_at} for lot in lots]}


# -- money movement -----------------------------------------------------------------------
@surface.route("/v1/postings", "POST", status=201, request="PostingCreate", response="LedgerTransaction",
               errors=(404, 409), headers=KEY, scope="write")
def create_posting():
    """Credit (amount > 0) or debit (amount < 0) one account"""
    body = _body("PostingCreate")
    return _made(transaction_json, _ledger().post(body.account_id, body.amount, metadata=body.metadata, **_keyed()))


@surface.route("/v1/transfers", "POST", status=201, request="TransferCreate", response="LedgerTransaction",
               errors=(404, 409), headers=KEY, scope="write")
def create_transfer():
    """Move an amount between two accounts of one unit, in one transaction"""
    body = _body("TransferCreate")
    return _made(transaction_json, _ledger().transfer(body.source, body.destination, body.amount,
                                                      metadata=body.metadata, **_keyed()))


@surface.route("/v1/transactions/{transaction_id}", "GET", response="LedgerTransaction", errors=(404,), scope="read")
def get_transaction(transaction_id: str):
    """A transaction and its entries"""
    return transaction_json(_ledger().transaction(transaction_id))


@surface.route("/v1/transactions/{transaction_id}/reversals", "POST", status=201, request="ReversalCreate",
               response="LedgerTransaction", errors=(404, 409), headers=KEY, scope="write")
def reverse_transaction(transaction_id: str):
    """Reverse a transaction in full or in part (a points spend gives the points back to its lots)"""
    body = _body("ReversalCreate")
    return _made(transaction_json, _ledger().reverse(transaction_id, body.amount, metadata=body.metadata, **_keyed()))


# -- holds --------------------------------------------------------------------------------
@surface.route("/v1/holds", "POST", status=201, request="HoldCreate", response="LedgerHold", errors=(404, 409),
               headers=KEY, scope="write")
def create_hold():
    """Reserve an amount of an account's available balance until captured, voided or expired"""
    body = _body("HoldCreate")
    expires_at = (parse_timestamp("expires_at", body.expires_at) if body.expires_at
                  else clock() + DEFAULT_HOLD)
    return _made(hold_json, _holds().authorize(body.account_id, body.amount, expires_at, metadata=body.metadata,
                                               **_keyed()))


@surface.route("/v1/holds/{hold_id}", "GET", response="LedgerHold", errors=(404,), scope="read")
def get_hold(hold_id: str):
    """A hold"""
    return hold_json(_holds().get(hold_id))


@surface.route("/v1/holds/{hold_id}/capture", "POST", request="CaptureCreate", response="LedgerCapture",
               errors=(404, 409), headers=KEY, scope="write")
def capture_hold(hold_id: str):
    """Capture all or part of a hold (to a destination account, if given); the rest is released"""
    body = _body("CaptureCreate")
    hold, transaction = _holds().capture(hold_id, body.amount, destination=body.destination, metadata=body.metadata,
                                      **_keyed())
    return _answer({"hold": hold_json(hold), "transaction": transaction_json(transaction)}, transaction.replayed,
                   status=200)


@surface.route("/v1/holds/{hold_id}/void", "POST", response="LedgerHold", errors=(404, 409, 415), headers=KEY,
               scope="write")
def void_hold(hold_id: str):
    """Release a hold without moving anything"""
    return _made(hold_json, _holds().void(hold_id, **_keyed()), status=200)


# -- points -------------------------------------------------------------------------------
@surface.route("/v1/points/earn", "POST", status=201, request="EarnCreate", response="LedgerTransaction",
               errors=(404, 409), headers=KEY, scope="points:earn")
def earn_points():
    """Earn points from a payer into a points account; with expires_at they expire then"""
    body = _body("EarnCreate")
    expires_at = parse_timestamp("expires_at", body.expires_at) if body.expires_at else None
    return _made(transaction_json, _ledger().earn(body.account_id, body.payer, body.points, expires_at=expires_at,
                                                  metadata=body.metadata, **_keyed()))


@surface.route("/v1/points/spend", "POST", status=201, request="SpendCreate", response="LedgerTransaction",
               errors=(404, 409), headers=KEY, scope="points:spend")
def spend_points():
    """Spend points, oldest unexpired lots first"""
    body = _body("SpendCreate")
    return _made(transaction_json, _ledger().spend(body.account_id, body.points, metadata=body.metadata, **_keyed()))
