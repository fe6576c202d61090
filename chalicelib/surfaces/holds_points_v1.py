"""Tally's own API, `/v1`: holds (authorize, capture, void; the sweep expires them) and points with expiry.
Mounted with `ledger_v1.py`, whose rules it follows: an API key with a scope, an `Idempotency-Key` per write."""
from __future__ import annotations

from chalicelib.core.holds import Holds, hold_of
from chalicelib.core.listing import HOLD_STATUSES, MAX_LIST_LIMIT
from chalicelib.core.transactions import Transactions
from chalicelib.surfaces import ledger_json as shape
from chalicelib.web.routing import REQUIRED_IDEMPOTENCY_KEY, Surface, Written
from chalicelib.web.validation import parse_int, parse_timestamp

surface = Surface(__name__, tag="v1", schemas="chalicelib.surfaces.ledger_schemas", keyed=True, scope=None)
KEY = (REQUIRED_IDEMPOTENCY_KEY,)


def _tenant() -> tuple[Transactions, Holds]:
    return surface.services.v1_of(surface.caller().tenant)


def _expires_at(body):
    return parse_timestamp("expires_at", body.expires_at) if body.expires_at else None


# -- holds --------------------------------------------------------------------------------
@surface.route("/v1/holds", "POST", status=201, request="HoldCreate", response="LedgerHold", errors=(404, 409),
               headers=KEY, scope="write")
def create_hold(body):
    """Reserve an amount of an account's available balance until captured, voided or expired"""
    expires_at = _expires_at(body)  # none: the core's default hold
    return Written.of(_tenant()[1].authorize(body.account_id, body.amount, expires_at, metadata=body.metadata,
                                             expected_seq=body.expected_seq,
                                             idempotency_key=surface.idempotency_key()), shape.hold)


@surface.route("/v1/holds", "GET", response="LedgerHoldPage", scope="read",
               query=(("status", False, {"type": "string", "enum": list(HOLD_STATUSES)}),
                      ("account_id", False, {"type": "string"}),
                      ("expires_before", False, {"type": "string", "format": "date-time"}),
                      ("limit", False, {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT}),
                      ("cursor", False, {"type": "string"})))
def list_holds():
    """The tenant's holds, oldest first: by status, account, expiring before a time"""
    before = surface.query("expires_before")
    limit = surface.query("limit")
    page = _tenant()[0].lists.holds(status=surface.query("status"), account=surface.query("account_id"),
                                    expires_before=parse_timestamp("expires_before", before) if before else None,
                                    limit=parse_int("limit", limit) if limit is not None else MAX_LIST_LIMIT,
                                    cursor=surface.query("cursor"))
    return shape.listed(page, lambda model: shape.hold(hold_of(model)))


@surface.route("/v1/holds/{hold_id}", "GET", response="LedgerHold", errors=(404,), scope="read")
def get_hold(hold_id: str):
    """A hold"""
    return shape.hold(_tenant()[1].get(hold_id))


@surface.route("/v1/holds/{hold_id}/capture", "POST", request="CaptureCreate", response="LedgerCapture",
               errors=(404, 409), headers=KEY, scope="write")
def capture_hold(hold_id: str, body):
    """Capture all or part of a hold (to a destination account, if given); the rest is released"""
    hold, transaction = _tenant()[1].capture(hold_id, body.amount, destination=body.destination,
                                             metadata=body.metadata, idempotency_key=surface.idempotency_key())
    return Written({"hold": shape.hold(hold), "transaction": shape.transaction(transaction)}, transaction.replayed)


@surface.route("/v1/holds/{hold_id}/void", "POST", response="LedgerHold", errors=(404, 409, 415), headers=KEY,
               scope="write")
def void_hold(hold_id: str):
    """Release a hold without moving anything"""
    return Written.of(_tenant()[1].void(hold_id, idempotency_key=surface.idempotency_key()), shape.hold)


# -- points -------------------------------------------------------------------------------
@surface.route("/v1/points/earn", "POST", status=201, request="EarnCreate", response="LedgerTransaction",
               errors=(404, 409), headers=KEY, scope="points:earn")
def earn_points(body):
    """Earn points from a payer into a points account; with expires_at they expire then"""
    expires_at = _expires_at(body)
    return Written.of(_tenant()[0].earn(body.account_id, body.payer, body.points, expires_at=expires_at,
                                        metadata=body.metadata, idempotency_key=surface.idempotency_key()),
                      shape.transaction)


@surface.route("/v1/points/spend", "POST", status=201, request="SpendCreate", response="LedgerTransaction",
               errors=(404, 409), headers=KEY, scope="points:spend")
def spend_points(body):
    """Spend points, oldest unexpired lots first"""
    return Written.of(_tenant()[0].spend(body.account_id, body.points, metadata=body.metadata,
                                         idempotency_key=surface.idempotency_key()), shape.transaction)
