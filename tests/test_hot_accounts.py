"""Zero-sum /v1 and hot accounts, as a client sees them (moto): system accounts take the other side of money and
points from or to outside the ledger and are readable like any account; a hot account keeps its balance in
shards the API never shows; the verifier (every transaction sums to zero, every unit of a tenant sums to zero,
shard floors sum to the floor) after each flow. Races are in test_v1_concurrency.py, on DynamoDB Local."""
from __future__ import annotations

from datetime import timedelta

import pytest
from test_ledger_v1_api import START, call, ok, open_account, sweep

from chalicelib.core.ledger import Extension, Ledger, PlannedLeg
from chalicelib.core.ledger.shards import debit_parts, split_floor
from chalicelib.core.models import AccountModel, TransactionModel
from helpers import Clock, make_key, v1_ledger
from tools.request_counter import DynamoDBRequests
from tools.verify import verify_tables


@pytest.fixture
def clock():
    """The services' time, moved by the test."""
    return Clock(START)


def entries_sum_to_zero(transaction: dict) -> bool:
    return sum(entry["amount"] for entry in transaction["entries"]) == 0


def shard_balances(account_id: str) -> list[int]:
    return [int(shard.balance) for shard in v1_ledger().ledger.stored(account_id)[1]]


# -- zero sum ---------------------------------------------------------------------------------------
def test_a_wallet_flow_sums_to_zero_with_the_system_account_on_the_other_side(client, clock):
    open_account(client, "alice")
    open_account(client, "shop")
    made = [ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 5000})),  # a deposit
            ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": -700})),  # a withdrawal
            ok(call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "shop", "amount": 300}))]
    hold = ok(call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 400}))
    made.append(ok(call(client, "POST", f"/v1/holds/{hold['id']}/capture", {"amount": 250}), 200)["transaction"])
    made.append(ok(call(client, "POST", f"/v1/transactions/{made[0]['id']}/reversals", {"amount": 100})))
    assert all(entries_sum_to_zero(transaction) for transaction in made)
    assert [entry["account_id"] for entry in made[3]["entries"]] == ["alice", "@world:USD"]  # captured out
    world = ok(client.http.get("/v1/accounts/@world:USD"), 200)
    assert (world["kind"], world["floor"], world["shards"]) == ("system", None, 32)
    # The system account holds minus everything the tenant's accounts hold in the unit.
    alice, shop = (ok(client.http.get(f"/v1/accounts/{name}"), 200)["balance"] for name in ("alice", "shop"))
    assert (alice, shop) == (5000 - 700 - 300 - 250 - 100, 300) and world["balance"] == -(alice + shop)
    assert ok(client.http.get("/v1/accounts/@world:USD/balance"), 200)["balance"] == world["balance"]
    page = ok(client.http.get("/v1/accounts/@world:USD/entries?order=asc"), 200)
    assert [entry["amount"] for entry in page["data"]] == [-5000, 700, 250, 100]
    assert {entry["seq"] for entry in page["data"]} == {None} and page["data"][0]["transaction"] == made[0]["id"]
    assert verify_tables().violations == []


def test_a_loyalty_flow_sums_to_zero_through_the_issuer(client, clock):
    open_account(client, "member", unit="points", kind="points")
    earned = ok(call(client, "POST", "/v1/points/earn", {"account_id": "member", "payer": "brand", "points": 500,
                                                         "expires_at": (START + timedelta(days=1)).isoformat()}))
    spent = ok(call(client, "POST", "/v1/points/spend", {"account_id": "member", "points": 120}))
    refunded = ok(call(client, "POST", f"/v1/transactions/{spent['id']}/reversals", {"amount": 20}))
    clock.now = START + timedelta(days=2)
    sweep(client)  # the rest of the earn expires
    assert [entry["account_id"] for entry in earned["entries"]] == ["member", "@world:points"]
    assert all(entries_sum_to_zero(transaction) for transaction in (earned, spent, refunded))
    issuer = ok(client.http.get("/v1/accounts/@world:points"), 200)
    assert issuer["balance"] == 0 and ok(client.http.get("/v1/accounts/member"), 200)["balance"] == 0
    types = [entry["kind"] for entry in ok(client.http.get("/v1/accounts/@world:points/entries?order=asc"),
                                            200)["data"]]
    assert types == ["earn", "spend", "reversal", "expiry"]
    assert verify_tables().violations == []


def test_a_posting_names_its_counter_account(client, clock):
    open_account(client, "cash", floor=None, shards=4)
    open_account(client, "alice")
    open_account(client, "euro", unit="EUR")
    posted = ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 900,
                                                      "counter_account": "cash"}))
    assert [(entry["account_id"], entry["amount"]) for entry in posted["entries"]] == [("alice", 900), ("cash", -900)]
    for counter, code in (("euro", 400), ("@world:EUR", 400), ("alice", 400), ("nobody", 404), ("@world", 400)):
        response = call(client, "POST", "/v1/postings",
                        {"account_id": "alice", "amount": 1, "counter_account": counter})
        assert response.status_code == code, (counter, response.json_body)
    explicit = ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": -100,
                                                        "counter_account": "@world:USD"}))
    assert explicit["entries"][1]["account_id"] == "@world:USD"
    assert ok(client.http.get("/v1/accounts/alice"), 200)["balance"] == 800
    assert verify_tables().violations == []


def test_system_accounts_are_per_tenant(client, clock):
    open_account(client, "alice")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 10}))
    mine = client.http.get("/v1/accounts/@world:USD")
    other = client.http.get("/v1/accounts/@world:USD", headers={"Authorization": f"Bearer {make_key('t2')}"})
    assert mine.status_code == 200 and other.status_code == 404


# -- hot accounts -------------------------------------------------------------------------------------
def test_a_hot_account_reads_as_one_account(client, clock):
    opened = open_account(client, "revenue", shards=8, metadata={"team": "sales"})
    assert (opened["shards"], opened["balance"], opened["floor"]) == (8, 0, 0)
    open_account(client, "alice")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 10_000}))
    for amount in range(1, 21):
        clock.now = START + timedelta(minutes=amount)
        ok(call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "revenue", "amount": amount}))
    account = ok(client.http.get("/v1/accounts/revenue"), 200)
    assert (account["balance"], account["entry_count"], account["metadata"]) == (210, 20, {"team": "sales"})
    assert sum(shard_balances("revenue")) == 210 and sum(1 for balance in shard_balances("revenue") if balance) > 1
    # The journal, merged from every shard in time order, paged.
    first = ok(client.http.get("/v1/accounts/revenue/entries?order=asc&limit=15"), 200)
    rest = ok(client.http.get(f"/v1/accounts/revenue/entries?order=asc&limit=15&cursor={first['next_cursor']}"), 200)
    assert [entry["amount"] for entry in first["data"] + rest["data"]] == list(range(1, 21)) and not rest["has_more"]
    assert {entry["balance_after"] for entry in first["data"]} == {None}
    # Balance as of a moment: every shard's last entry then, added up.
    as_of = ok(client.http.get("/v1/accounts/revenue/balance?as_of=2026-11-01T12:10:30Z"), 200)
    assert (as_of["balance"], as_of["seq"]) == (55, None)
    ranged = ok(client.http.get("/v1/accounts/revenue/entries?start=2026-11-01T12:05:00Z&end=2026-11-01T12:07:00Z"),
                200)
    assert [entry["amount"] for entry in ranged["data"]] == [7, 6, 5]
    assert verify_tables().violations == []


def test_a_debit_no_single_shard_covers_takes_from_several_in_one_transaction(client, clock):
    open_account(client, "merchant", shards=4, overdraft_limit=400)
    assert [int(shard.floor) for shard in v1_ledger().ledger.stored("merchant")[1]] == [-100] * 4
    short = call(client, "POST", "/v1/postings", {"account_id": "merchant", "amount": -401})
    assert short.status_code == 400 and short.json_body["code"] == "insufficient_funds"
    assert "-401" in short.json_body["error"] and "-400" in short.json_body["error"]
    debit = ok(call(client, "POST", "/v1/postings", {"account_id": "merchant", "amount": -400}))
    assert [(entry["account_id"], entry["amount"]) for entry in debit["entries"]] == [
        ("merchant", -400), ("@world:USD", 400)]
    stored = TransactionModel.get(debit["id"])
    assert sorted(leg.shard for leg in stored.legs if leg.account_id == "merchant") == [0, 1, 2, 3]
    assert shard_balances("merchant") == [-100] * 4  # each shard at its own floor, none below
    assert ok(client.http.get("/v1/accounts/merchant"), 200)["balance"] == -400
    assert ok(call(client, "POST", f"/v1/transactions/{debit['id']}/reversals", {}))["amount"] == 400
    assert ok(client.http.get("/v1/accounts/merchant"), 200)["balance"] == 0
    assert verify_tables().violations == []


def test_what_a_hot_account_refuses(client, clock):
    open_account(client, "hot", shards=2)
    open_account(client, "alice")
    hold = call(client, "POST", "/v1/holds", {"account_id": "hot", "amount": 1})
    assert hold.status_code == 400 and "hot" in hold.json_body["error"]
    # A container that remembers the account (its unit, kind and floor) but has forgotten it is hot: the write
    # without a read finds it is, and the hold goes to the read path, which refuses it; nothing is written.
    v1_ledger().ledger._layouts._known.clear()
    hold = call(client, "POST", "/v1/holds", {"account_id": "hot", "amount": 1})
    assert hold.status_code == 400 and "hot" in hold.json_body["error"]
    assert ok(client.http.get("/v1/holds?status=authorized"), 200)["data"] == []
    for body, field in (({"shards": 0}, "shards"), ({"shards": 33}, "shards"), ({"shards": "2"}, "shards"),
                        ({"shards": True}, "shards"), ({"shards": 1.5}, "shards"),
                        ({"shards": 2, "kind": "points", "unit": "points"}, "shards"),
                        ({"shards": 2, "floor": 1}, "floor")):
        response = call(client, "POST", "/v1/accounts", {"id": "x", "unit": "USD", **body})
        assert response.status_code == 400 and response.json_body["param"] == field, (body, response.json_body)
    assert client.http.get("/v1/accounts/x").status_code == 404
    assert AccountModel.count() == 1 + 2 + 1 + 1 + 32  # hot, its shards, alice, @world:USD and its shards


@pytest.mark.parametrize("floor, shards", [(None, 3), (0, 1), (0, 8), (-100, 4), (-101, 4), (-7, 3), (-1, 32)])
def test_shard_floors_sum_to_the_floor(floor, shards):
    floors = split_floor(floor, shards)
    assert len(floors) == shards
    if floor is None:
        assert floors == [None] * shards
    else:  # and every shard, starting at 0, starts at or above its own
        assert sum(floors) == floor and all(shard_floor <= 0 for shard_floor in floors)


def test_a_debit_goes_to_the_first_shard_that_covers_it_else_the_largest_first():
    assert debit_parts(5, [0, 4, 9, 5], home=1) == [(2, 5)]
    assert debit_parts(5, [6, 4, 9, 5], home=3) == [(3, 5)]
    assert debit_parts(12, [6, 4, 9, 5], home=0) == [(2, 9), (0, 3)]
    assert debit_parts(25, [6, 4, 9, 5], home=0) is None
    assert debit_parts(24, [6, 4, 9, 5], home=0) == [(2, 9), (0, 6), (3, 5), (1, 4)]


# -- contention: a retry re-plans from what the cancellation returned (DynamoDB Local: moto's images differ) --
def test_a_moved_version_is_replanned_from_the_cancellation_without_reading_again(local_tables):
    rival = Ledger("allold", settings=local_tables)
    rival.post("a", 100)
    moved: list[int] = []

    def move_it_first(planned: PlannedLeg) -> Extension:
        if not moved:  # another writer commits between this posting's read and its write
            moved.append(rival.post("a", 1).seq)
        return Extension()

    ledger = Ledger("allold", settings=local_tables, sleep=lambda _: None)
    with DynamoDBRequests() as requests:
        posting = ledger.post("a", -50, extend=move_it_first)
    assert (posting.seq, posting.balance_after) == (3, 51)
    # The rival's read and write, and this posting's one read and two writes: no second read.
    assert dict(requests.calls) == {"TransactGetItems": 2, "TransactWriteItems": 3}
    assert ledger.balance("a").balance == 51


def test_a_system_account_is_opened_only_for_a_unit_the_tenant_uses(client, clock):
    open_account(client, "alice")
    open_account(client, "bob")
    for body in ({"source": "@world:XYZ", "destination": "alice"}, {"source": "alice", "destination": "@world:EUR"},
                 {"source": "@world:USD", "destination": "@world:USD"}):
        response = call(client, "POST", "/v1/transfers", {**body, "amount": 1})
        assert response.status_code == 400, (body, response.json_body)
    posting = call(client, "POST", "/v1/postings",
                   {"account_id": "alice", "amount": 1, "counter_account": "@world:XYZ"})
    assert posting.status_code == 400 and posting.json_body["param"] == "counter_account"
    assert client.http.get("/v1/accounts/@world:XYZ").status_code == 404
    assert client.http.get("/v1/accounts/@world:EUR").status_code == 404
    deposit = ok(call(client, "POST", "/v1/transfers", {"source": "@world:USD", "destination": "alice", "amount": 7}))
    assert [entry["amount"] for entry in deposit["entries"]] == [-7, 7]
    # An ordinary account's balance now and as of a moment: no look for shards beyond its one item.
    with DynamoDBRequests() as requests:
        assert ok(client.http.get("/v1/accounts/alice/balance"), 200)["seq"] == 1
        assert ok(client.http.get("/v1/accounts/alice/balance?as_of=2026-11-02T00:00:00Z"), 200)["balance"] == 7
        assert ok(client.http.get("/v1/accounts/bob/entries"), 200)["data"] == []
    # Each: the key's read, the account's (which settles the as-of read's journal: one drain of the deposit, which
    # waited in alice's log); the page of bob's entries settles first (a read of his log).
    assert dict(requests.calls) == {"GetItem": 3 + 3 + 1, "TransactWriteItems": 1, "Query": 2}
    assert ok(client.http.get("/v1/accounts/@world:USD/balance"), 200)["seq"] is None
    assert verify_tables().violations == []
