"""Seed 000, the Fetch-style points tracker: `POST /add`, `POST /spend`, `GET /balance`.

One holder, in a book of its own. See `shared/seeds/contracts.md` ("000 points tracker")."""
from __future__ import annotations

from chalicelib.core.ledger import stamp
from chalicelib.core.points import PointsBook
from chalicelib.surfaces import points_common
from chalicelib.web.routing import IDEMPOTENCY_KEY, Surface
from chalicelib.web.validation import parse_timestamp

surface = Surface(__name__, tag="seed 000: Points tracker", schemas="chalicelib.surfaces.points_schemas")
HOLDER = "holder"


def _book() -> PointsBook:
    """One holder, in a book of its own."""
    return surface.services.tracker


@surface.route("/add", "POST", request="AddRequest", response="Earned", errors=(409,), headers=(IDEMPOTENCY_KEY,))
def add_points(body):
    timestamp = parse_timestamp("timestamp", body.timestamp)
    change = _book().add(HOLDER, body.payer, body.points, timestamp=timestamp, **surface.idempotency())
    return points_common.earned(body.payer, change, stamp(timestamp))


@surface.route("/spend", "POST", request="SpendRequest", response="SpentByPayer", errors=(409,),
               headers=(IDEMPOTENCY_KEY,))
def spend_points(body):
    change = _book().spend(HOLDER, body.points, **surface.idempotency())
    return [{"payer": payer, "points": points} for payer, points in change.by_payer]


@surface.route("/balance", "GET", response="Balances")
def balances():
    return _book().balances(HOLDER)
