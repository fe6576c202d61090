"""Seeds 000 (points tracker) and 001 (points app), as their READMEs and `contracts.md` state them (moto)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

import app as tally
from chalicelib.core.points import PointsBook
from chalicelib.core.verify import check_points_holder
from chalicelib.surfaces import points_app, points_tracker
from tools.request_counter import DynamoDBRequests

JSON = {"Content-Type": "application/json"}
# The Fetch exercise's transactions, in the order it lists them.
FETCH_EXAMPLE = [
    {"payer": "DANNON", "points": 300, "timestamp": "2022-10-31T10:00:00Z"},
    {"payer": "UNILEVER", "points": 200, "timestamp": "2022-10-31T11:00:00Z"},
    {"payer": "DANNON", "points": -200, "timestamp": "2022-10-31T15:00:00Z"},
    {"payer": "MILLER COORS", "points": 10000, "timestamp": "2022-11-01T14:00:00Z"},
    {"payer": "DANNON", "points": 1000, "timestamp": "2022-11-02T14:00:00Z"},
]


def send(client, method: str, path: str, body=None, headers=None):
    payload = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    return getattr(client.http, method.lower())(path, headers={**JSON, **(headers or {})}, body=payload)


def add(client, payer, points, timestamp, headers=None):
    return send(client, "POST", "/add", {"payer": payer, "points": points, "timestamp": timestamp}, headers)


def tracker_balances(client) -> dict:
    response = client.http.get("/balance")
    assert response.status_code == 200
    return response.json_body


def app_balances(client) -> dict:
    response = client.http.get("/")
    assert response.status_code == 200
    return response.json_body


def assert_consistent():
    assert check_points_holder(tally.services.tracker, points_tracker.HOLDER) == []
    assert check_points_holder(tally.services.points, points_app.HOLDER) == []


# -- seed 000 ---------------------------------------------------------------------
def test_the_fetch_example_spends_exactly_as_its_readme_shows(client):
    assert tracker_balances(client) == {}
    for transaction in FETCH_EXAMPLE:
        assert add(client, **transaction).status_code == 200
    spent = send(client, "POST", "/spend", {"points": 5000})
    assert spent.status_code == 200
    assert spent.json_body == [{"payer": "DANNON", "points": -100}, {"payer": "UNILEVER", "points": -200},
                               {"payer": "MILLER COORS", "points": -4700}]
    balances = tracker_balances(client)
    assert balances == {"DANNON": 1000, "UNILEVER": 0, "MILLER COORS": 5300}
    assert list(balances) == ["DANNON", "UNILEVER", "MILLER COORS"]  # payers at zero stay, in first-seen order
    assert_consistent()


def test_spends_follow_lot_timestamps_not_arrival_and_arrival_breaks_ties(client):
    add(client, "LATE", 100, "2022-11-02T00:00:00Z")
    add(client, "EARLY", 100, "2022-11-01T00:00:00Z")
    add(client, "TIE_FIRST", 50, "2022-10-01T00:00:00+02:00")  # 2022-09-30T22:00Z, the oldest
    add(client, "TIE_SECOND", 50, "2022-09-30T22:00:00")  # no zone: UTC, the same instant, arrived later
    spent = send(client, "POST", "/spend", {"points": 180}).json_body
    assert spent == [{"payer": "TIE_FIRST", "points": -50}, {"payer": "TIE_SECOND", "points": -50},
                     {"payer": "EARLY", "points": -80}]
    assert tracker_balances(client) == {"LATE": 100, "EARLY": 20, "TIE_FIRST": 0, "TIE_SECOND": 0}
    assert_consistent()


def test_one_entry_per_payer_in_the_order_payers_were_first_touched(client):
    add(client, "A", 10, "2022-01-01T00:00:00Z")
    add(client, "B", 10, "2022-01-02T00:00:00Z")
    add(client, "A", 10, "2022-01-03T00:00:00Z")
    assert send(client, "POST", "/spend", {"points": 25}).json_body == [
        {"payer": "A", "points": -15}, {"payer": "B", "points": -10}]


def test_add_answers_the_stored_transaction(client):
    response = add(client, "DANNON", 300, "2022-10-31T10:00:00Z")
    assert response.status_code == 200
    assert response.json_body == {"payer": "DANNON", "points": 300, "timestamp": "2022-10-31T10:00:00.000000Z"}


def test_a_negative_add_takes_from_that_payers_oldest_lots_only(client):
    add(client, "DANNON", 300, "2022-10-31T10:00:00Z")
    add(client, "OTHER", 50, "2022-10-01T00:00:00Z")
    add(client, "DANNON", 200, "2022-11-01T10:00:00Z")
    taken = add(client, "DANNON", -400, "2022-11-02T10:00:00Z")
    assert taken.status_code == 200
    assert taken.json_body == {"payer": "DANNON", "points": -400, "timestamp": "2022-11-02T10:00:00.000000Z"}
    assert tracker_balances(client) == {"DANNON": 100, "OTHER": 50}
    # DANNON's oldest lot went first, so the 100 left is from the 2022-11-01 lot: a spend reaches OTHER first.
    assert send(client, "POST", "/spend", {"points": 60}).json_body == [
        {"payer": "OTHER", "points": -50}, {"payer": "DANNON", "points": -10}]
    assert_consistent()


@pytest.mark.parametrize("payer, points", [("DANNON", -301), ("NOBODY", -1)])
def test_a_negative_add_beyond_the_payers_points_is_400_and_writes_nothing(client, payer, points):
    add(client, "DANNON", 300, "2022-10-31T10:00:00Z")
    response = add(client, payer, points, "2022-11-01T00:00:00Z")
    assert response.status_code == 400
    assert response.json_body["code"] == "insufficient_points"
    assert payer in response.json_body["error"]
    assert tracker_balances(client) == {"DANNON": 300}
    assert_consistent()


def test_spending_more_than_the_holder_has_is_400_and_spends_nothing(client):
    add(client, "A", 100, "2022-01-01T00:00:00Z")
    add(client, "B", 100, "2022-01-02T00:00:00Z")
    response = send(client, "POST", "/spend", {"points": 201})
    assert response.status_code == 400
    assert response.json_body["code"] == "insufficient_points"
    assert tracker_balances(client) == {"A": 100, "B": 100}
    assert send(client, "POST", "/spend", {"points": 200}).status_code == 200
    assert send(client, "POST", "/spend", {"points": 1}).status_code == 400
    assert_consistent()


def test_spending_from_nothing_is_400_and_creates_nothing(client):
    assert send(client, "POST", "/spend", {"points": 1}).status_code == 400
    assert tracker_balances(client) == {}


@pytest.mark.parametrize("body, field", [
    ({"points": 10, "timestamp": "2022-10-31T10:00:00Z"}, "payer"),
    ({"payer": "A", "timestamp": "2022-10-31T10:00:00Z"}, "points"),
    ({"payer": "A", "points": 10}, "timestamp"),
    ({"payer": "A", "points": 0, "timestamp": "2022-10-31T10:00:00Z"}, "points"),
    ({"payer": "A", "points": 10.0, "timestamp": "2022-10-31T10:00:00Z"}, "points"),
    ({"payer": "A", "points": 10.5, "timestamp": "2022-10-31T10:00:00Z"}, "points"),
    ({"payer": "A", "points": "10", "timestamp": "2022-10-31T10:00:00Z"}, "points"),
    ({"payer": "A", "points": True, "timestamp": "2022-10-31T10:00:00Z"}, "points"),
    ({"payer": "A", "points": None, "timestamp": "2022-10-31T10:00:00Z"}, "points"),
    ({"payer": "A", "points": 2**63, "timestamp": "2022-10-31T10:00:00Z"}, "points"),
    ({"payer": "", "points": 10, "timestamp": "2022-10-31T10:00:00Z"}, "payer"),
    ({"payer": "   ", "points": 10, "timestamp": "2022-10-31T10:00:00Z"}, "payer"),
    ({"payer": 7, "points": 10, "timestamp": "2022-10-31T10:00:00Z"}, "payer"),
    ({"payer": "A", "points": 10, "timestamp": "yesterday"}, "timestamp"),
    ({"payer": "A", "points": 10, "timestamp": 1667210400}, "timestamp"),
    ({"payer": "A", "points": 10, "timestamp": "2022-13-01T00:00:00Z"}, "timestamp"),
])
def test_a_malformed_add_is_400_naming_the_field_and_writes_nothing(client, body, field):
    response = send(client, "POST", "/add", body)
    assert response.status_code == 400
    assert field in response.json_body["error"]
    assert tracker_balances(client) == {}


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", "", "null", '"points"'])
def test_a_body_that_is_not_a_json_object_is_400(client, raw):
    for path in ("/add", "/spend"):
        response = send(client, "POST", path, raw)
        assert response.status_code == 400
        assert "error" in response.json_body
    assert tracker_balances(client) == {}


@pytest.mark.parametrize("points", [0, -5, 5.0, "5", True, None])
def test_a_spend_of_anything_but_a_positive_integer_is_400(client, points):
    add(client, "A", 100, "2022-01-01T00:00:00Z")
    response = send(client, "POST", "/spend", {"points": points})
    assert response.status_code == 400
    assert "points" in response.json_body["error"]
    assert tracker_balances(client) == {"A": 100}


def test_wrong_method_is_405_and_wrong_content_type_415(client):
    assert client.http.get("/add").status_code == 405
    assert client.http.put("/spend", headers=JSON, body="{}").status_code == 405
    assert client.http.post("/balance", headers=JSON, body="{}").status_code == 405
    response = client.http.post("/spend", headers={"Content-Type": "application/xml"}, body='{"points": 1}')
    assert response.status_code == 415
    assert "error" in response.json_body


def test_an_idempotency_key_applies_a_spend_once_and_answers_alike(client):
    add(client, "A", 100, "2022-01-01T00:00:00Z")
    key = {"Idempotency-Key": "spend-0001"}
    first = send(client, "POST", "/spend", {"points": 30}, key)
    again = send(client, "POST", "/spend", {"points": 30}, key)
    assert first.status_code == again.status_code == 200
    assert first.json_body == again.json_body == [{"payer": "A", "points": -30}]
    assert tracker_balances(client) == {"A": 70}
    conflict = send(client, "POST", "/spend", {"points": 31}, key)
    assert conflict.status_code == 409
    assert tracker_balances(client) == {"A": 70}
    assert_consistent()


def test_an_idempotency_key_applies_an_add_once(client):
    key = {"Idempotency-Key": "add-0001"}
    first = add(client, "A", 100, "2022-01-01T00:00:00Z", key)
    again = add(client, "A", 100, "2022-01-01T00:00:00Z", key)
    assert first.json_body == again.json_body
    assert tracker_balances(client) == {"A": 100}
    assert add(client, "A", 100, "2022-01-02T00:00:00Z", key).status_code == 409


@pytest.mark.parametrize("key", ["", "has space", "é", "x" * 256])
def test_a_malformed_idempotency_key_is_400(client, key):
    response = add(client, "A", 100, "2022-01-01T00:00:00Z", {"Idempotency-Key": key})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json_body["error"]
    assert tracker_balances(client) == {}


def test_request_budgets(client):
    add(client, "A", 100, "2022-01-01T00:00:00Z")
    with DynamoDBRequests() as requests:
        add(client, "B", 100, "2022-01-02T00:00:00Z")
        assert dict(requests.calls) == {"TransactGetItems": 1, "TransactWriteItems": 1}
        requests.reset()
        send(client, "POST", "/spend", {"points": 150})
        # The lots' index, the one transaction, the holder read for the answer: no read before the write.
        assert dict(requests.calls) == {"Query": 1, "TransactWriteItems": 1, "GetItem": 1}
        requests.reset()
        tracker_balances(client)
        # The payers' items between two reads of the holder's version: a snapshot, however many payers.
        assert dict(requests.calls) == {"GetItem": 2, "Query": 1}


def test_balances_come_from_a_snapshot_of_the_holders_version_while_it_holds(client):
    add(client, "A", 100, "2022-01-01T00:00:00Z")
    add(client, "B", 50, "2022-01-02T00:00:00Z")
    with DynamoDBRequests() as requests:
        assert tracker_balances(client) == {"A": 100, "B": 50}
        assert dict(requests.calls) == {"GetItem": 2, "Query": 1}  # none yet: read, and remembered
        requests.reset()
        assert tracker_balances(client) == {"A": 100, "B": 50}
        assert dict(requests.calls) == {"GetItem": 1}  # the holder's version unmoved: the snapshot answers
        requests.reset()
        assert send(client, "POST", "/spend", {"points": 30}).status_code == 200
        add(client, "B", -10, "2022-01-03T00:00:00Z")  # its payer's points from the snapshot, not a GetItem
        # The spend without a read (its answer's read finds the version it made); the negative add with one, which
        # drains the spend from the holder's log first.
        assert dict(requests.calls) == {"GetItem": 1, "TransactGetItems": 1, "Query": 2, "TransactWriteItems": 3}
        requests.reset()
        assert tracker_balances(client) == {"A": 70, "B": 40}  # moved by this container's own changes
        assert dict(requests.calls) == {"GetItem": 1}
    # Another container's change: the snapshot is of a version the holder no longer has, and the store answers.
    other = PointsBook("tracker", settings=tally.services.settings, clock=tally.services.clock, snapshots=True)
    other.add(points_tracker.HOLDER, "C", 5, timestamp=datetime(2022, 1, 4, tzinfo=UTC))
    with DynamoDBRequests() as requests:
        assert tracker_balances(client) == {"A": 70, "B": 40, "C": 5}
        assert dict(requests.calls) == {"GetItem": 2, "Query": 1}
    uncached = PointsBook("tracker", settings=tally.services.settings, clock=tally.services.clock)
    assert uncached.balances(points_tracker.HOLDER) == {"A": 70, "B": 40, "C": 5}


def test_seed_001_answers_a_spend_with_the_balances_after_it_without_reading_them(client):
    send(client, "POST", "/transaction", {"payer": "A", "points": 10})
    send(client, "POST", "/transaction", {"payer": "B", "points": 10})
    assert app_balances(client) == {"A": 10, "B": 10}  # read once: this container remembers the version
    with DynamoDBRequests() as requests:
        spent = send(client, "PUT", "/spend_points", {"points": 15})
    assert spent.status_code == 200
    # The lots' index, the one transaction, the holder's read for the answer, which finds the version the spend made:
    # the snapshot moves to it.
    assert dict(requests.calls) == {"Query": 1, "TransactWriteItems": 1, "GetItem": 1}
    fresh = PointsBook("points", settings=tally.services.settings, clock=tally.services.clock)
    assert spent.json_body == fresh.balances(points_app.HOLDER) == {"A": 0, "B": 5}


@pytest.mark.slow
def test_a_spend_over_hundreds_of_lots_is_all_or_nothing(client):
    start = datetime(2022, 1, 1, tzinfo=UTC)
    for number in range(260):
        add(client, f"P{number % 4}", 2, (start + timedelta(minutes=number)).isoformat())
    assert send(client, "POST", "/spend", {"points": 521}).status_code == 400  # one more than all
    assert sum(tracker_balances(client).values()) == 520
    spent = send(client, "POST", "/spend", {"points": 515})  # 258 lots: three link parts
    assert spent.status_code == 200
    assert sorted(item["points"] for item in spent.json_body) == [-130, -129, -128, -128]
    assert tracker_balances(client) == {"P0": 0, "P1": 1, "P2": 2, "P3": 2}  # lot 257 (P1) keeps 1
    assert_consistent()


# -- seed 001 ---------------------------------------------------------------------
def test_points_app_flow(client):
    assert app_balances(client) == {}
    before = datetime.now(UTC)
    created = send(client, "POST", "/transaction", {"payer": "DANNON", "points": 1000})
    assert created.status_code == 201
    assert created.json_body["payer"] == "DANNON" and created.json_body["points"] == 1000
    stamped = datetime.fromisoformat(created.json_body["timestamp"])
    assert before <= stamped <= datetime.now(UTC)  # the server stamps the time, in UTC
    send(client, "POST", "/transaction", {"payer": "UNILEVER", "points": 200})
    send(client, "POST", "/transaction", {"payer": "DANNON", "points": -200})
    assert app_balances(client) == {"DANNON": 800, "UNILEVER": 200}
    spent = send(client, "PUT", "/spend_points", {"points": 900})
    assert spent.status_code == 200
    assert spent.json_body == {"DANNON": 0, "UNILEVER": 100}  # the balances after the spend
    assert app_balances(client) == {"DANNON": 0, "UNILEVER": 100}
    assert_consistent()


def test_points_app_refusals_write_nothing(client):
    send(client, "POST", "/transaction", {"payer": "A", "points": 10})
    for body in ({"payer": "A", "points": -11}, {"payer": "B", "points": -1}, {"payer": "A", "points": 0},
                 {"payer": "A", "points": 1.5}, {"payer": "A"}, {"points": 3}, {"payer": "", "points": 3}):
        assert send(client, "POST", "/transaction", body).status_code == 400, body
    for body in ({"points": 11}, {"points": 0}, {"points": -1}, {"points": "1"}, {}):
        assert send(client, "PUT", "/spend_points", body).status_code == 400, body
    assert app_balances(client) == {"A": 10}
    assert client.http.post("/spend_points", headers=JSON, body='{"points": 1}').status_code == 405
    assert client.http.post("/", headers=JSON, body="{}").status_code == 405
    assert_consistent()


def test_the_points_surfaces_keep_their_own_holders(client):
    add(client, "A", 100, "2022-01-01T00:00:00Z")
    send(client, "POST", "/transaction", {"payer": "B", "points": 5})
    assert tracker_balances(client) == {"A": 100}
    assert app_balances(client) == {"B": 5}
    assert send(client, "PUT", "/spend_points", {"points": 6}).status_code == 400
