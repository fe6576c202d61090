"""Tally's own API, /v1, as a client sees it (moto): accounts, postings, transfers, holds, reversals,
points with expiry, balance as of, history pages, and the verifier after each flow."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helpers import Clock, v1_ledger
from tools.verify import verify_tables

JSON = {"Content-Type": "application/json"}
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    """The services' time, moved by the test (expiry without waiting)."""
    return Clock(START)


def call(client, method: str, path: str, body=None, key: str | None = "auto"):
    headers = dict(JSON)
    if key == "auto":
        key = str(uuid.uuid4())
    if key is not None:
        headers["Idempotency-Key"] = key
    payload = body if isinstance(body, str) or body is None else json.dumps(body)
    return getattr(client.http, method.lower())(path, headers=headers, body=payload)


def ok(response, status: int = 201) -> dict:
    assert response.status_code == status, response.json_body
    return response.json_body


def open_account(client, account_id: str, unit: str = "USD", **fields) -> dict:
    return ok(call(client, "POST", "/v1/accounts", {"id": account_id, "unit": unit, **fields}))


def balance(client, account_id: str) -> dict:
    return ok(client.http.get(f"/v1/accounts/{account_id}"), 200)


def sweep(client) -> dict:
    """Run the scheduled function as Lambda would."""
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                            resources=[])
    return client.lambda_.invoke("expire_due", event).payload


def assert_verified():
    assert verify_tables().violations == []


# -- accounts ---------------------------------------------------------------------
def test_an_account_has_a_unit_a_floor_and_metadata(client, clock):
    account = open_account(client, "alice", metadata={"owner": "user-7"})
    assert account == {"id": "alice", "object": "account", "unit": "USD", "kind": "standard", "floor": 0,
                       "balance": 0, "held": 0, "available": 0, "metadata": {"owner": "user-7"},
                       "entry_count": 0, "shards": 1, "created_at": "2026-11-01T12:00:00.000000Z"}
    assert open_account(client, "credit", overdraft_limit=5000)["floor"] == -5000
    assert open_account(client, "world", floor=None)["floor"] is None
    generated = open_account(client, None)["id"]
    assert generated.startswith("acct_") and balance(client, generated)["unit"] == "USD"


def test_opening_is_idempotent_and_an_id_is_taken_once(client, clock):
    first = call(client, "POST", "/v1/accounts", {"id": "a", "unit": "USD"}, key="open-a")
    again = call(client, "POST", "/v1/accounts", {"id": "a", "unit": "USD"}, key="open-a")
    assert first.status_code == again.status_code == 201 and first.json_body == again.json_body
    taken = call(client, "POST", "/v1/accounts", {"id": "a", "unit": "USD"})
    assert taken.status_code == 409 and taken.json_body["code"] == "already_exists"
    reused = call(client, "POST", "/v1/accounts", {"id": "b", "unit": "USD"}, key="open-a")
    assert reused.status_code == 409 and reused.json_body["code"] == "idempotency_key_reused"


@pytest.mark.parametrize("body, field", [
    ({"unit": "USD", "id": "has space"}, "id"),
    ({"unit": "US D"}, "unit"),
    ({}, "unit"),
    ({"unit": "USD", "floor": 1.5}, "floor"),
    ({"unit": "USD", "floor": "0"}, "floor"),
    ({"unit": "USD", "overdraft_limit": -1}, "overdraft_limit"),
    ({"unit": "USD", "floor": 0, "overdraft_limit": 10}, "overdraft_limit"),
    ({"unit": "USD", "kind": "gold"}, "kind"),
    ({"unit": "points", "kind": "points", "floor": -5}, "floor"),
    ({"unit": "USD", "metadata": {"a": 1}}, "metadata.a"),
])
def test_a_bad_account_is_a_400_and_opens_nothing(client, clock, body, field):
    response = call(client, "POST", "/v1/accounts", body)
    assert response.status_code == 400, response.json_body
    assert field in response.json_body["error"]
    assert client.http.get("/v1/accounts/a").status_code == 404


def test_every_write_needs_an_idempotency_key(client, clock):
    for path, body in [("/v1/accounts", {"unit": "USD"}), ("/v1/postings", {"account_id": "a", "amount": 1}),
                       ("/v1/transfers", {"source": "a", "destination": "b", "amount": 1})]:
        response = call(client, "POST", path, body, key=None)
        assert response.status_code == 400 and "Idempotency-Key" in response.json_body["error"]
    assert client.http.get("/v1/accounts/a").status_code == 404


# -- postings and transfers ---------------------------------------------------------------
def test_postings_and_a_transfer_are_double_entry(client, clock):
    open_account(client, "alice")
    open_account(client, "bob")
    posted = ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 1000}))
    # From outside the ledger: from the tenant's system account of the unit, a hot account (no seq or
    # balance-after of its own on the entry: its shards keep theirs).
    assert posted["type"] == "posting" and posted["entries"] == [
        {"account_id": "alice", "seq": 1, "amount": 1000, "balance_after": 1000},
        {"account_id": "@world:USD", "seq": None, "amount": -1000, "balance_after": None}]
    transfer = ok(call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 300,
                                                          "metadata": {"order": "42"}}))
    assert transfer["type"] == "transfer" and transfer["amount"] == 300 and transfer["unit"] == "USD"
    assert [leg["amount"] for leg in transfer["entries"]] == [-300, 300]
    assert sum(leg["amount"] for leg in transfer["entries"]) == 0
    assert ok(client.http.get(f"/v1/transactions/{transfer['id']}"), 200) == transfer
    assert balance(client, "alice")["balance"] == 700 and balance(client, "bob")["balance"] == 300
    assert_verified()


def test_a_transfer_keeps_the_floor_and_the_unit(client, clock):
    open_account(client, "alice")
    open_account(client, "bob")
    open_account(client, "euro", unit="EUR")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 100}))
    short = call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 101})
    assert short.status_code == 400 and short.json_body["code"] == "insufficient_funds"
    units = call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "euro", "amount": 1})
    assert units.status_code == 400 and "different units" in units.json_body["error"]
    same = call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "alice", "amount": 1})
    assert same.status_code == 400
    missing = call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "ghost", "amount": 1})
    assert missing.status_code == 404
    for amount in (0, -5, 1.5, "5", True, None):
        assert call(client, "POST", "/v1/transfers",
                    {"source": "alice", "destination": "bob", "amount": amount}).status_code == 400
    assert balance(client, "alice")["balance"] == 100 and balance(client, "bob")["entry_count"] == 0
    assert_verified()


def test_an_overdraft_limit_lets_the_balance_go_that_far_below_zero(client, clock):
    open_account(client, "credit", overdraft_limit=500)
    ok(call(client, "POST", "/v1/postings", {"account_id": "credit", "amount": -500}))
    assert call(client, "POST", "/v1/postings", {"account_id": "credit", "amount": -1}).status_code == 400
    assert balance(client, "credit")["balance"] == -500


def test_a_retried_transfer_is_applied_once(client, clock):
    open_account(client, "alice")
    open_account(client, "bob")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 100}))
    body = {"source": "alice", "destination": "bob", "amount": 60}
    first = ok(call(client, "POST", "/v1/transfers", body, key="t-1"))
    assert ok(call(client, "POST", "/v1/transfers", body, key="t-1")) == first
    other = call(client, "POST", "/v1/transfers", {**body, "amount": 61}, key="t-1")
    assert other.status_code == 409
    assert balance(client, "alice")["balance"] == 40


# -- holds ----------------------------------------------------------------------------
def test_a_hold_reserves_the_available_balance_then_is_captured_in_part(client, clock):
    open_account(client, "alice")
    open_account(client, "shop")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 1000}))
    hold = ok(call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 700}))
    assert hold["status"] == "authorized" and hold["expires_at"] == "2026-11-08T12:00:00.000000Z"
    assert {key: balance(client, "alice")[key] for key in ("balance", "held", "available")} == {
        "balance": 1000, "held": 700, "available": 300}
    over = call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": -301})
    assert over.status_code == 400 and "available" in over.json_body["error"]
    assert call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 301}).status_code == 400
    captured = ok(call(client, "POST", f"/v1/holds/{hold['id']}/capture", {"amount": 500, "destination": "shop"}),
                  200)
    assert captured["hold"]["status"] == "captured" and captured["hold"]["captured_amount"] == 500
    assert captured["transaction"]["type"] == "capture" and captured["transaction"]["hold_id"] == hold["id"]
    assert [leg["amount"] for leg in captured["transaction"]["entries"]] == [-500, 500]
    alice = balance(client, "alice")
    assert (alice["balance"], alice["held"], alice["available"]) == (500, 0, 500)
    assert balance(client, "shop")["balance"] == 500
    again = call(client, "POST", f"/v1/holds/{hold['id']}/capture", {})
    assert again.status_code == 409 and again.json_body["code"] == "invalid_state"
    assert call(client, "POST", f"/v1/holds/{hold['id']}/void").status_code == 409
    assert_verified()


def test_a_void_releases_and_an_expired_hold_is_released_by_the_sweep(client, clock):
    open_account(client, "alice")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 100}))
    voided = ok(call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 40}))
    assert ok(call(client, "POST", f"/v1/holds/{voided['id']}/void"), 200)["status"] == "voided"
    expiring = ok(call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 60,
                                                     "expires_at": "2026-11-01T13:00:00Z"}))
    assert balance(client, "alice")["available"] == 40
    clock.now = START + timedelta(hours=2)
    late = call(client, "POST", f"/v1/holds/{expiring['id']}/capture", {})
    assert late.status_code == 409 and "expired" in late.json_body["error"]
    assert sweep(client) == {"lots": 0, "holds": 1, "settled": 0}
    assert sweep(client) == {"lots": 0, "holds": 0, "settled": 0}  # found through the index only while due and open
    assert ok(client.http.get(f"/v1/holds/{expiring['id']}"), 200)["status"] == "expired"
    assert balance(client, "alice")["available"] == 100
    entries = ok(client.http.get("/v1/accounts/alice/entries?order=asc"), 200)["data"]
    assert [(entry["kind"], entry["amount"], entry["held_after"]) for entry in entries] == [
        ("posting", 100, 0), ("hold", 0, 40), ("void", 0, 0), ("hold", 0, 60), ("hold_expiry", 0, 0)]
    assert_verified()


def test_a_hold_in_the_past_or_on_a_missing_account_is_refused(client, clock):
    open_account(client, "alice")
    past = call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 1, "expires_at": "2020-01-01T00:00:00Z"})
    assert past.status_code == 400
    assert call(client, "POST", "/v1/holds", {"account_id": "ghost", "amount": 1}).status_code == 404
    assert client.http.get("/v1/holds/hold_nope").status_code == 404


# -- reversals --------------------------------------------------------------------------
def test_a_transfer_is_reversed_in_parts_never_beyond_its_amount(client, clock):
    open_account(client, "alice")
    open_account(client, "bob")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 100}))
    transfer = ok(call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 80}))
    part = ok(call(client, "POST", f"/v1/transactions/{transfer['id']}/reversals", {"amount": 30}, key="r-1"))
    assert part["type"] == "reversal" and part["reverses"] == transfer["id"]
    assert [leg["amount"] for leg in part["entries"]] == [30, -30]
    assert ok(call(client, "POST", f"/v1/transactions/{transfer['id']}/reversals", {"amount": 30}, key="r-1")) == part
    too_much = call(client, "POST", f"/v1/transactions/{transfer['id']}/reversals", {"amount": 51})
    assert too_much.status_code == 409
    rest = ok(call(client, "POST", f"/v1/transactions/{transfer['id']}/reversals", {}, key="r-2"))
    assert rest["amount"] == 50
    assert ok(call(client, "POST", f"/v1/transactions/{transfer['id']}/reversals", {}, key="r-2")) == rest
    assert ok(client.http.get(f"/v1/transactions/{transfer['id']}"), 200)["reversed_amount"] == 80
    assert balance(client, "alice")["balance"] == 100 and balance(client, "bob")["balance"] == 0
    reversal_of_reversal = call(client, "POST", f"/v1/transactions/{rest['id']}/reversals", {})
    assert reversal_of_reversal.status_code == 409
    assert call(client, "POST", "/v1/transactions/txn_nope/reversals", {}).status_code == 404
    assert_verified()


# -- points ---------------------------------------------------------------------------
def test_an_entry_says_what_was_held_when_it_was_made(client, clock):
    open_account(client, "alice")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 100}))
    ok(call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 30}))
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": -20}))
    latest = ok(client.http.get("/v1/accounts/alice/entries?limit=1"), 200)["data"][0]
    assert (latest["balance_after"], latest["held_after"]) == (80, 30)


def earn(client, payer, points, **fields):
    return ok(call(client, "POST", "/v1/points/earn", {"account_id": "member", "payer": payer, "points": points,
                                                        **fields}))


def lots(client, state="open") -> list[tuple]:
    body = ok(client.http.get(f"/v1/accounts/member/lots?state={state}"), 200)
    return [(lot["payer"], lot["remaining"]) for lot in body["lots"]]


def test_points_spend_oldest_first_and_a_refund_restores_the_very_lots(client, clock):
    open_account(client, "member", unit="points", kind="points")
    earn(client, "DANNON", 300)
    clock.now += timedelta(minutes=1)
    earn(client, "UNILEVER", 200)
    clock.now += timedelta(minutes=1)
    earn(client, "MILLER", 1000)
    spend = ok(call(client, "POST", "/v1/points/spend", {"account_id": "member", "points": 600}))
    assert spend["type"] == "spend" and spend["entries"][0]["amount"] == -600
    assert lots(client) == [("MILLER", 900)]
    refund = ok(call(client, "POST", f"/v1/transactions/{spend['id']}/reversals", {"amount": 250}))
    assert refund["entries"][0]["amount"] == 250
    # Given back newest take first: MILLER's 100, then 150 of UNILEVER's 200, each in its own FIFO place.
    assert lots(client) == [("UNILEVER", 150), ("MILLER", 1000)]
    assert ok(client.http.get("/v1/accounts/member/lots"), 200)["balances"] == {
        "DANNON": 0, "UNILEVER": 150, "MILLER": 1000}
    rest = ok(call(client, "POST", f"/v1/transactions/{spend['id']}/reversals", {}))
    assert rest["amount"] == 350
    assert lots(client) == [("DANNON", 300), ("UNILEVER", 200), ("MILLER", 1000)]
    again = ok(call(client, "POST", "/v1/points/spend", {"account_id": "member", "points": 301}))
    assert again["entries"][0]["balance_after"] == 1199
    assert lots(client) == [("UNILEVER", 199), ("MILLER", 1000)]
    assert_verified()


def test_an_earn_is_reversed_from_its_own_lot_only_while_its_points_are_there(client, clock):
    open_account(client, "member", unit="points", kind="points")
    first = earn(client, "A", 100)
    earn(client, "B", 100)
    ok(call(client, "POST", "/v1/points/spend", {"account_id": "member", "points": 60}))
    taken_back = call(client, "POST", f"/v1/transactions/{first['id']}/reversals", {"amount": 41})
    assert taken_back.status_code == 409 and "40" in taken_back.json_body["error"]
    ok(call(client, "POST", f"/v1/transactions/{first['id']}/reversals", {"amount": 40}))
    assert lots(client) == [("B", 100)]
    assert_verified()


def test_expired_points_are_never_spent_and_the_sweep_journals_them(client, clock):
    open_account(client, "member", unit="points", kind="points")
    assert earn(client, "OLD", 100, expires_at="2026-11-02T00:00:00Z")["expires_at"] == "2026-11-02T00:00:00.000000Z"
    clock.now += timedelta(minutes=1)
    earn(client, "NEW", 50)
    clock.now = datetime(2026, 11, 3, tzinfo=UTC)
    short = call(client, "POST", "/v1/points/spend", {"account_id": "member", "points": 51})
    assert short.status_code == 400 and short.json_body["code"] == "insufficient_points"
    entries = ok(client.http.get("/v1/accounts/member/entries"), 200)["data"]
    assert (entries[0]["kind"], entries[0]["amount"], entries[0]["balance_after"]) == ("expiry", -100, 50)
    expiry = ok(client.http.get(f"/v1/transactions/{entries[0]['transaction']}"), 200)
    assert (expiry["type"], expiry["amount"]) == ("expiry", 100)
    assert sweep(client) == {"lots": 0, "holds": 0, "settled": 0}
    ok(call(client, "POST", "/v1/points/spend", {"account_id": "member", "points": 50}))
    assert_verified()


def test_the_sweep_expires_lots_nobody_spends(client, clock):
    open_account(client, "member", unit="points", kind="points")
    earn(client, "A", 10, expires_at="2026-11-01T12:30:00Z")
    earn(client, "B", 20, expires_at="2026-11-01T13:30:00Z")
    earn(client, "C", 30)
    clock.now = START + timedelta(hours=1)
    assert sweep(client) == {"lots": 1, "holds": 0, "settled": 0}
    assert balance(client, "member")["balance"] == 50
    clock.now = START + timedelta(hours=2)
    assert sweep(client) == {"lots": 1, "holds": 0, "settled": 0}
    assert lots(client) == [("C", 30)]
    past = call(client, "POST", "/v1/points/earn", {"account_id": "member", "payer": "D", "points": 1,
                                                      "expires_at": "2026-11-01T13:00:00Z"})
    assert past.status_code == 400
    assert_verified()


@pytest.mark.slow
def test_a_spend_behind_many_expired_lots_expires_a_few_itself_and_leaves_the_rest_to_the_sweep(client, clock):
    from chalicelib.core.points import MAX_INLINE_EXPIRIES
    from tools.request_counter import DynamoDBRequests

    open_account(client, "member", unit="points", kind="points")
    for number in range(150):  # through the core: the set-up is not what is measured
        v1_ledger().earn("member", f"P{number}", 1, expires_at=START + timedelta(minutes=30),
                         idempotency_key=f"e{number}")
    earn(client, "FRESH", 5)
    clock.now = START + timedelta(hours=1)
    with DynamoDBRequests() as requests:
        spent = ok(call(client, "POST", "/v1/points/spend", {"account_id": "member", "points": 1}))
    # 10 inline expiries of 3 requests; two plans of the spend, each a read and the index pages over 151 lots
    # (10, then 50 a page); the spend's write; and the authorizer's read of the key. 458 requests before the bound.
    assert requests.total <= 3 * MAX_INLINE_EXPIRIES + 12, dict(requests.calls)
    assert spent["amount"] == 1 and lots(client)[-1] == ("FRESH", 4)  # never from an expired lot
    assert balance(client, "member")["balance"] == 150 - MAX_INLINE_EXPIRIES + 4
    too_much = call(client, "POST", "/v1/points/spend", {"account_id": "member", "points": 5})
    assert too_much.status_code == 400 and "has 4, 5 asked" in too_much.json_body["error"]  # expired do not count
    assert sweep(client) == {"lots": 150 - MAX_INLINE_EXPIRIES - MAX_INLINE_EXPIRIES, "holds": 0, "settled": 0}
    assert balance(client, "member")["balance"] == 4 and lots(client) == [("FRESH", 4)]
    assert_verified()


def test_an_earn_or_spend_key_reused_with_other_metadata_is_a_409(client, clock):
    open_account(client, "member", "points", kind="points")
    for path, body in (("/v1/points/earn", {"account_id": "member", "payer": "D", "points": 5}),
                       ("/v1/points/spend", {"account_id": "member", "points": 1})):
        key = f"k-{path[-5:]}"
        first = ok(call(client, "POST", path, {**body, "metadata": {"order": "1"}}, key=key))
        assert ok(call(client, "POST", path, {**body, "metadata": {"order": "1"}}, key=key))["id"] == first["id"]
        reused = call(client, "POST", path, {**body, "metadata": {"order": "2"}}, key=key)
        assert reused.status_code == 409, reused.json_body
        assert reused.json_body["error"] == f"idempotency key {key} was already used with a different request"
    assert balance(client, "member")["balance"] == 4
    assert verify_tables().violations == []


def test_points_and_money_accounts_do_not_mix(client, clock):
    open_account(client, "member", unit="points", kind="points")
    open_account(client, "alice")
    assert call(client, "POST", "/v1/postings", {"account_id": "member", "amount": 5}).status_code == 400
    for account_id, status in (("alice", 400), ("ghost", 404)):
        earned = call(client, "POST", "/v1/points/earn", {"account_id": account_id, "payer": "A", "points": 5})
        assert earned.status_code == status
    assert call(client, "POST", "/v1/holds", {"account_id": "member", "amount": 1}).status_code == 400


# -- history and balance as of -----------------------------------------------------------
def test_balance_as_of_and_history_pages(client, clock):
    open_account(client, "alice")
    for day in range(5):
        clock.now = START + timedelta(days=day)
        ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 10 * (day + 1)}))
    as_of = ok(client.http.get("/v1/accounts/alice/balance?as_of=2026-11-03T00:00:00Z"), 200)
    assert (as_of["balance"], as_of["seq"]) == (30, 2)
    before = ok(client.http.get("/v1/accounts/alice/balance?as_of=2026-10-01T00:00:00Z"), 200)
    assert (before["balance"], before["seq"]) == (0, 0)
    now = ok(client.http.get("/v1/accounts/alice/balance"), 200)
    assert (now["balance"], now["available"], now["seq"]) == (150, 150, 5)
    seen, cursor = [], None
    while True:
        page = ok(client.http.get("/v1/accounts/alice/entries?limit=2" + (f"&cursor={cursor}" if cursor else "")),
                  200)
        seen += [entry["seq"] for entry in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [5, 4, 3, 2, 1]
    window = ok(client.http.get("/v1/accounts/alice/entries?order=asc&start=2026-11-02T00:00:00Z"
                                "&end=2026-11-04T00:00:00Z"), 200)
    assert [entry["balance_after"] for entry in window["data"]] == [30, 60]
    assert client.http.get("/v1/accounts/ghost/entries").status_code == 404
    assert client.http.get("/v1/accounts/ghost/balance?as_of=2026-11-03T00:00:00Z").status_code == 404
    assert client.http.get("/v1/accounts/alice/entries?cursor=nonsense").status_code == 400
    assert client.http.get("/v1/accounts/alice/balance?as_of=yesterday").status_code == 400


def test_a_cursor_is_signed_and_good_only_for_the_query_that_made_it(client, clock):
    import base64

    for account_id in ("alice", "bob"):
        open_account(client, account_id)
        for amount in (1, 2, 3):
            ok(call(client, "POST", "/v1/postings", {"account_id": account_id, "amount": amount}))
    cursor = ok(client.http.get("/v1/accounts/alice/entries?limit=1"), 200)["next_cursor"]
    payload, mac = cursor.split(".")
    key, binding = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert binding[0].endswith(":alice")
    # The same key, pointed at bob's account by a client: the signature no longer matches.
    key["account"] = {"S": key["account"]["S"].replace("alice", "bob")}
    forged = base64.urlsafe_b64encode(json.dumps([key, binding]).encode()).decode().rstrip("=")
    tampered_mac = ("B" if mac[0] == "A" else "A") + mac[1:]  # always differs from the real one
    for bad in (f"{forged}.{mac}", f"{payload}.{tampered_mac}", payload, "nonsense", "a.b.c", "." * 3000):
        answer = client.http.get(f"/v1/accounts/alice/entries?limit=1&cursor={bad}")
        assert answer.status_code == 400 and answer.json_body["code"] == "invalid_request", bad
    for other_query in ("/v1/accounts/bob/entries?limit=1", "/v1/accounts/alice/entries?limit=1&order=asc",
                        "/v1/accounts/alice/entries?limit=1&start=2026-01-01T00:00:00Z"):
        answer = client.http.get(f"{other_query}&cursor={cursor}")
        assert answer.status_code == 400 and "another query" in answer.json_body["error"], other_query
    assert [entry["seq"] for entry in ok(client.http.get(f"/v1/accounts/alice/entries?limit=1&cursor={cursor}"),
                                         200)["data"]] == [2]


def test_spending_points_from_a_funded_standard_account_is_an_immediate_400_like_earning(client, clock):
    open_account(client, "alice")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 500}))
    attempts = []  # retries, counted: a retry budget is spent only on contention
    from chalicelib.core.ledger import RetryBudget

    original = RetryBudget.retry
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RetryBudget, "retry", lambda self: attempts.append(1) or original(self))
        spend = call(client, "POST", "/v1/points/spend", {"account_id": "alice", "points": 5})
        earn = call(client, "POST", "/v1/points/earn", {"account_id": "alice", "payer": "P", "points": 5})
    assert spend.status_code == earn.status_code == 400 and attempts == []
    assert spend.json_body["error"] == earn.json_body["error"]
    assert balance(client, "alice")["balance"] == 500


def test_every_reference_of_an_entry_resolves(client, clock):
    open_account(client, "alice")
    open_account(client, "shop")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 500}))
    hold = ok(call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 100}))
    ok(call(client, "POST", f"/v1/holds/{hold['id']}/capture", {"amount": 60, "destination": "shop"}), 200)
    other = ok(call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 10}))
    ok(call(client, "POST", f"/v1/holds/{other['id']}/void"), 200)
    entries = ok(client.http.get("/v1/accounts/alice/entries"), 200)["data"]
    assert [entry["kind"] for entry in entries] == ["void", "hold", "capture", "hold", "posting"]
    for entry in entries:
        assert (entry["transaction"] is None) != (entry["hold_id"] is None), entry
        path = f"/v1/transactions/{entry['transaction']}" if entry["transaction"] else f"/v1/holds/{entry['hold_id']}"
        assert client.http.get(path).status_code == 200, entry


def test_errors_name_their_param_and_type_and_unknown_fields_are_refused(client, clock):
    open_account(client, "alice")
    typo = call(client, "POST", "/v1/postings", {"account_id": "alice", "ammount": 5})
    assert typo.status_code == 400
    assert typo.json_body["param"] in ("amount", "ammount") and typo.json_body["type"] == "invalid_request_error"
    extra = call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 5, "ammount": 5})
    assert extra.json_body == {"error": "ammount is not a field of this request", "code": "invalid_request",
                               "type": "invalid_request_error", "param": "ammount"}
    assert balance(client, "alice")["entry_count"] == 0
    broke = call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": -5})
    assert (broke.json_body["type"], broke.json_body["code"]) == ("balance_error", "insufficient_funds")
    missing = client.http.get("/v1/accounts/ghost")
    assert (missing.json_body["type"], missing.json_body["code"]) == ("invalid_request_error", "not_found")


def test_every_answer_has_the_request_id_of_its_log_line_and_a_replay_says_so(client, clock):
    import logging

    from chalicelib.web import logs

    class Lines(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.fields: list[dict] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.fields.append(record.msg)

    lines = Lines()
    logs.logger.addHandler(lines)
    level = logs.logger.level
    logs.logger.setLevel(logging.INFO)  # the tests run at WARNING; a request's line is INFO
    try:
        opened = call(client, "POST", "/v1/accounts", {"id": "alice", "unit": "USD"}, key="open-alice")
        again = call(client, "POST", "/v1/accounts", {"id": "alice", "unit": "USD"}, key="open-alice")
        first = call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 5}, key="p-1")
        replay = call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 5}, key="p-1")
        refused = client.http.get("/v1/accounts/ghost")
    finally:
        logs.logger.removeHandler(lines)
        logs.logger.setLevel(level)
    answers = [opened, again, first, replay, refused]
    assert [answer.headers["X-Request-Id"] for answer in answers] == [line["request_id"] for line in lines.fields]
    assert len({answer.headers["X-Request-Id"] for answer in answers}) == len(answers)
    assert [answer.headers.get("Idempotent-Replayed") for answer in answers] == [None, "true", None, "true", None]
    assert (again.status_code, again.json_body) == (opened.status_code, opened.json_body)
    assert (replay.status_code, replay.json_body) == (first.status_code, first.json_body)
    assert all(line["tenant"] == "t1" and line["key_id"].startswith("key_") for line in lines.fields)


def test_due_holds_come_oldest_first_across_the_expiry_shards(client, clock):
    from chalicelib.core.holds import due_holds
    from chalicelib.core.models import EXPIRY_SHARDS, HoldModel

    open_account(client, "alice")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 1000}))
    made = [ok(call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 1,
                                                  "expires_at": (START + timedelta(minutes=12 - number)).isoformat()}))
            for number in range(12)]
    assert len({HoldModel.get(hold["id"]).expiry_shard for hold in made}) > 1  # spread over several shards
    due = list(due_holds(START + timedelta(hours=1)))
    assert due == [hold["id"] for hold in reversed(made)] and EXPIRY_SHARDS > 1  # the longest due first
