"""Seed 001, the points app: `POST /transaction`, `PUT /spend_points`, `GET /`.

One holder, in a book of its own. See `shared/seeds/contracts.md` ("001 points app")."""
from __future__ import annotations

from chalicelib.core.points import PointsBook
from chalicelib.surfaces import points_common
from chalicelib.web.routing import IDEMPOTENCY_KEY, Surface

surface = Surface(__name__, tag="seed 001: Points app", schemas="chalicelib.surfaces.points_schemas")
HOLDER = "holder"


def _book() -> PointsBook:
    """One holder, in a book of its own."""
    return surface.services.points


@surface.route("/transaction", "POST", status=201, request="EarnRequest", response="Earned", errors=(409,),
               headers=(IDEMPOTENCY_KEY,))
def add_transaction(body):
    change = _book().add(HOLDER, body.payer, body.points, **surface.idempotency())
    return points_common.earned(body.payer, change)


@surface.route("/spend_points", "PUT", request="SpendRequest", response="Balances", errors=(409,),
               headers=(IDEMPOTENCY_KEY,))
def spend_points(body):
    spent = _book().spend(HOLDER, body.points, **surface.idempotency())
    # The balances right after the spend (a replayed request: as they are now): from the container's snapshot when
    # it holds the version the spend started from, else read after, not planned with the spend, so a spend costs the
    # same however many payers the holder has.
    return _book().balances(HOLDER, after=spent)


@surface.route("/", "GET", response="Balances")
def balances():
    return _book().balances(HOLDER)
