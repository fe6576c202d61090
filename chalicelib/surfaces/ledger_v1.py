"""Tally's own API, `/v1`: accounts, postings, transfers, transactions and reversals, with their history.
Holds and points are in `holds_points_v1.py`, mounted with it.

Every route needs an API key (`Authorization: Bearer tk_...`): it acts in the key's tenant only, and each
route needs a scope (`chalicelib/core/api_keys.py`). Every write needs an `Idempotency-Key` (a retry with
it answers what the first request made; with another body it is a 409). Lists are cursor-paginated
(`limit`, `cursor`; `has_more`, `next_cursor`). Errors are `{"error", "code"}` like every surface. Amounts are
integers in the account's unit (minor units of money).
"""
from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.core.errors import InvalidRequest
from chalicelib.core.listing import ACCOUNT_KINDS, MAX_LIST_LIMIT, TRANSACTION_TYPES, ListPage
from chalicelib.core.transactions import Transactions, lends, metadata_filter, requested_floor, transaction_of
from chalicelib.surfaces import ledger_json as shape
from chalicelib.web import access
from chalicelib.web.routing import REQUIRED_IDEMPOTENCY_KEY, Surface, Written
from chalicelib.web.validation import parse_int, parse_timestamp

surface = Surface(__name__, tag="v1", schemas="chalicelib.surfaces.ledger_schemas", keyed=True, scope=None)
KEY = (REQUIRED_IDEMPOTENCY_KEY,)
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)  # a statement's default start: before any entry
TIME = {"type": "string", "format": "date-time"}
PAGE = (("limit", False, {"type": "integer", "minimum": 1, "maximum": 1000}), ("cursor", False, {"type": "string"}))
LIST_PAGE = (("limit", False, {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT}), PAGE[1])
# One metadata pair a list is filtered by (among an object's first searchable pairs: docs/api/v1.md).
METADATA = ("metadata", False, {"type": "string", "pattern": "^[^:]+:.*$", "description": "key:value"})


def _ledger() -> Transactions:
    return surface.services.v1_of(surface.caller().tenant)[0]


def _time(name: str):
    value = surface.query(name)
    return None if value is None else parse_timestamp(name, value)


def _listing() -> dict:
    """The paging and metadata parameters every list takes."""
    limit = surface.query("limit")
    return {"limit": parse_int("limit", limit) if limit is not None else MAX_LIST_LIMIT,
            "cursor": surface.query("cursor")}


@surface.route("/v1/accounts", "GET", response="LedgerAccountPage", scope="read",
               query=(("unit", False, {"type": "string"}), ("kind", False, {"type": "string",
                                                                            "enum": list(ACCOUNT_KINDS)}),
                      ("start", False, TIME), ("end", False, TIME), METADATA, *LIST_PAGE))
def list_accounts():
    """The tenant's accounts, oldest first: by unit, kind, when created (start, end), one metadata pair"""
    ledger = _ledger()
    page = ledger.lists.accounts(unit=surface.query("unit"), kind=surface.query("kind"), start=_time("start"),
                                 end=_time("end"), metadata=metadata_filter(surface.query("metadata")), **_listing())
    return shape.listed(ListPage(ledger.accounts_as_listed(page.items), page.next_cursor), shape.account)


@surface.route("/v1/transactions", "GET", response="LedgerTransactionPage", scope="read",
               query=(("type", False, {"type": "string", "enum": list(TRANSACTION_TYPES)}),
                      ("account_id", False, {"type": "string"}),
                      ("start", False, TIME), ("end", False, TIME), METADATA, *LIST_PAGE))
def list_transactions():
    """The tenant's transactions, oldest first: by type, account, time (start, end), one metadata pair"""
    page = _ledger().lists.transactions(type_=surface.query("type"), account=surface.query("account_id"),
                                        start=_time("start"), end=_time("end"),
                                        metadata=metadata_filter(surface.query("metadata")), **_listing())
    listed = ListPage(_ledger().transactions_as_listed(page.items), page.next_cursor)
    return shape.listed(listed, lambda model: shape.transaction(transaction_of(model)))


# -- accounts -------------------------------------------------------------------------
@surface.route("/v1/accounts", "POST", status=201, request="AccountCreate", response="LedgerAccount",
               errors=(409,), headers=KEY, scope="write")
def create_account(body):
    """Open an account"""
    floor = requested_floor(body.floor, body.overdraft_limit, floor_given="floor" in body.model_fields_set)
    if lends(floor):
        access.require(surface.caller(), "admin")
    account, replayed = _ledger().open_account(body.id, body.unit, kind=body.kind, floor=floor, shards=body.shards,
                                               metadata=body.metadata, idempotency_key=surface.idempotency_key())
    return Written(shape.account(account), replayed)


@surface.route("/v1/accounts/{account_id}", "GET", response="LedgerAccount", errors=(404,), scope="read")
def get_account(account_id: str):
    """An account: balance, held, available"""
    return shape.account(_ledger().account(account_id))


@surface.route("/v1/accounts/{account_id}/balance", "GET", response="LedgerBalance", errors=(404,),
               query=(("as_of", False, TIME),), scope="read")
def get_balance(account_id: str):
    """The balance now, or as of a moment (one Query of the journal's time index)"""
    as_of = _time("as_of")
    if as_of is None:
        return shape.balance(_ledger().account(account_id), surface.services.clock())
    return shape.balance_as_of(*_ledger().balance_as_of(account_id, as_of), as_of)


@surface.route("/v1/accounts/{account_id}/statement", "GET", response="LedgerStatement", errors=(404,),
               query=(("start", False, TIME), ("end", False, TIME), PAGE[0]), scope="read")
def get_statement(account_id: str):
    """Opening and closing balance, credits, debits and count between start (default: the beginning) and end
    (default now), and the period's first entries, oldest first (page on with /entries?start=&end=&order=asc)"""
    start = _time("start") or BEGINNING
    end = _time("end") or surface.services.clock()
    limit = parse_int("limit", surface.query("limit")) if surface.query("limit") is not None else 100
    return shape.statement(_ledger().statement(account_id, start, end, limit=limit))


@surface.route("/v1/accounts/{account_id}/entries", "GET", response="LedgerEntryPage", errors=(404,),
               query=(("start", False, TIME), ("end", False, TIME),
                      ("order", False, {"type": "string", "enum": ["asc", "desc"]}), *PAGE), scope="read")
def list_entries(account_id: str):
    """The account's journal, newest first (order=asc for oldest first), between start and end if given"""
    order = surface.query("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc", field="order")
    limit = parse_int("limit", surface.query("limit")) if surface.query("limit") is not None else 100
    return shape.page(_ledger().entries(account_id, limit=limit, cursor=surface.query("cursor"),
                                        newest_first=order == "desc", start=_time("start"), end=_time("end")))


@surface.route("/v1/accounts/{account_id}/lots", "GET", response="PointsLots", errors=(404,),
               query=(("state", False, {"type": "string", "enum": ["open", "all"]}),), scope="read")
def list_lots(account_id: str):
    """A points account's balance per payer and its lots, oldest first (the order spends take them)"""
    ledger = _ledger()
    account = ledger.account(account_id)
    lots = ledger.points.lots(account_id, open_only=(surface.query("state") or "open") == "open")
    return shape.lots(account, ledger.points.balances(account_id), lots)


# -- money movement -----------------------------------------------------------------------
@surface.route("/v1/postings", "POST", status=201, request="PostingCreate", response="LedgerTransaction",
               errors=(404, 409), headers=KEY, scope="write")
def create_posting(body):
    """Credit (amount > 0) or debit (amount < 0) one account, from or to its counter account (@world:<unit>)"""
    return Written.of(_ledger().post(body.account_id, body.amount, metadata=body.metadata,
                                     counter_account=body.counter_account, expected_seq=body.expected_seq,
                                     idempotency_key=surface.idempotency_key(), caller=surface.caller()),
                      shape.transaction)


@surface.route("/v1/transfers", "POST", status=201, request="TransferCreate", response="LedgerTransaction",
               errors=(404, 409), headers=KEY, scope="write")
def create_transfer(body):
    """Move an amount between two accounts of one unit, in one transaction"""
    return Written.of(_ledger().transfer(body.source, body.destination, body.amount, metadata=body.metadata,
                                         expected_seq=body.expected_seq, idempotency_key=surface.idempotency_key(),
                                         caller=surface.caller()), shape.transaction)


@surface.route("/v1/transactions/{transaction_id}", "GET", response="LedgerTransaction", errors=(404,), scope="read")
def get_transaction(transaction_id: str):
    """A transaction and its entries"""
    return shape.transaction(_ledger().transaction(transaction_id))


@surface.route("/v1/transactions/{transaction_id}/reversals", "POST", status=201, request="ReversalCreate",
               response="LedgerTransaction", errors=(404, 409), headers=KEY, scope="write")
def reverse_transaction(transaction_id: str, body):
    """Reverse a transaction in full or in part (a points spend gives the points back to its lots)"""
    return Written.of(_ledger().reverse(transaction_id, body.amount, metadata=body.metadata,
                                        idempotency_key=surface.idempotency_key(), caller=surface.caller()),
                      shape.transaction)
