"""Finding things in /v1 (moto): lists of accounts, transactions and holds with their filters, paged to the end
and compared with what was written; metadata search; statements; `expected_seq` preconditions. Each list page
and each statement is a fixed number of DynamoDB requests. The race of `expected_seq` is in
test_v1_concurrency.py (DynamoDB Local)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from test_ledger_v1_api import START, call, ok, open_account

from chalicelib.core.models import EntryModel
from helpers import Clock
from tools.request_counter import DynamoDBRequests
from tools.verify import verify_tables


@pytest.fixture
def clock():
    return Clock(START)


def every_page(client, path: str, limit: int = 7) -> list[dict]:
    """Every item of a list, following its cursors."""
    items, cursor, pages = [], None, 0
    while True:
        separator = "&" if "?" in path else "?"
        url = f"{path}{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = ok(client.http.get(url), 200)
        items += page["data"]
        pages += 1
        assert pages < 100
        if not page["has_more"]:
            return items
        cursor = page["next_cursor"]


def at(clock, minutes: int) -> None:
    clock.now = START + timedelta(minutes=minutes)


# -- lists ------------------------------------------------------------------------------------
def test_accounts_are_listed_and_filtered_by_unit_kind_time_and_metadata(client, clock):
    made = []
    for number in range(20):
        at(clock, number)
        unit, kind = ("points", "points") if number % 5 == 0 else (("EUR", "standard") if number % 2 else
                                                                   ("USD", "standard"))
        made.append(open_account(client, f"a{number}", unit=unit, kind=kind,
                                 metadata={"team": "red" if number % 3 == 0 else "blue", "n": str(number)}))
    listed = every_page(client, "/v1/accounts")
    assert [account["id"] for account in listed if not account["id"].startswith("@")] == [a["id"] for a in made]
    assert {account["id"] for account in listed if account["id"].startswith("@")} == {
        "@world:USD", "@world:EUR", "@world:points"}  # the system accounts are the tenant's accounts too
    euros = [a["id"] for a in every_page(client, "/v1/accounts?unit=EUR")]
    assert [name for name in euros if name != "@world:EUR"] == [a["id"] for a in made if a["unit"] == "EUR"]
    assert "@world:EUR" in euros  # opened with the first EUR account
    assert [a["id"] for a in every_page(client, "/v1/accounts?kind=points")] == [a["id"] for a in made
                                                                               if a["kind"] == "points"]
    red = [a["id"] for a in made if a["metadata"]["team"] == "red"]
    assert [a["id"] for a in every_page(client, "/v1/accounts?metadata=team:red", limit=3)] == red
    assert [a["id"] for a in every_page(client, "/v1/accounts?metadata=team:red&unit=USD")] == [
        a["id"] for a in made if a["metadata"]["team"] == "red" and a["unit"] == "USD"]
    window = every_page(client, "/v1/accounts?start=2026-11-01T12:05:00Z&end=2026-11-01T12:09:00Z&kind=standard")
    assert [a["id"] for a in window] == ["a6", "a7", "a8", "a9"]
    assert every_page(client, "/v1/accounts?metadata=team:green") == []
    bad = client.http.get("/v1/accounts?metadata=nocolon")
    assert bad.status_code == 400 and bad.json_body["param"] == "metadata"


def test_transactions_are_listed_by_type_account_time_and_metadata(client, clock):
    open_account(client, "alice")
    open_account(client, "bob")
    made = []
    for number in range(12):
        at(clock, number)
        if number % 3 == 0:
            made.append(ok(call(client, "POST", "/v1/postings", {"account_id": "bob", "amount": 100,
                                                                 "metadata": {"order": f"o{number % 2}"}})))
        else:
            made.append(ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 50 + number,
                                                                 "metadata": {"order": f"o{number % 2}"}})))
    at(clock, 20)
    made.append(ok(call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 5})))
    ids = [transaction["id"] for transaction in made]
    assert [t["id"] for t in every_page(client, "/v1/transactions")] == ids
    assert [t["id"] for t in every_page(client, "/v1/transactions?type=transfer")] == ids[-1:]
    assert [t["id"] for t in every_page(client, "/v1/transactions?account_id=bob")] == [
        t["id"] for t in made if any(entry["account_id"] == "bob" for entry in t["entries"])]
    assert [t["id"] for t in every_page(client, "/v1/transactions?metadata=order:o1", limit=2)] == [
        t["id"] for t in made if t["metadata"].get("order") == "o1"]
    assert [t["id"] for t in every_page(client, "/v1/transactions?start=2026-11-01T12:03:00Z"
                                                "&end=2026-11-01T12:05:00Z")] == ids[3:6]
    assert [t["id"] for t in every_page(client, "/v1/transactions?account_id=alice&type=posting&metadata=order:o0")
            ] == [t["id"] for t in made if t["type"] == "posting" and t["metadata"]["order"] == "o0"
                  and t["entries"][0]["account_id"] == "alice"]
    assert verify_tables().violations == []


def test_holds_are_listed_by_status_account_and_expiry(client, clock):
    open_account(client, "alice")
    open_account(client, "bob")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 1000}))
    ok(call(client, "POST", "/v1/postings", {"account_id": "bob", "amount": 1000}))
    holds = []
    for days, name in ((1, "alice"), (2, "bob"), (3, "alice"), (4, "bob")):
        at(clock, days)
        holds.append(ok(call(client, "POST", "/v1/holds", {"account_id": name, "amount": 10 + days,
                                                            "expires_at": (START + timedelta(days=days)).isoformat()})))
    ok(call(client, "POST", f"/v1/holds/{holds[0]['id']}/void", {}), 200)
    ok(call(client, "POST", f"/v1/holds/{holds[1]['id']}/capture", {}), 200)
    ids = [hold["id"] for hold in holds]
    assert [h["id"] for h in every_page(client, "/v1/holds", limit=3)] == ids
    assert [h["id"] for h in every_page(client, "/v1/holds?status=authorized")] == ids[2:]
    assert [h["status"] for h in every_page(client, "/v1/holds")] == ["voided", "captured", "authorized",
                                                                     "authorized"]
    assert [h["id"] for h in every_page(client, "/v1/holds?account_id=alice&status=authorized")] == [ids[2]]
    assert [h["id"] for h in every_page(client, "/v1/holds?expires_before=2026-11-04T00:00:00Z")] == ids[:2]
    assert client.http.get("/v1/holds?status=gone").status_code == 400


def test_a_list_page_is_a_fixed_number_of_requests(client, clock):
    open_account(client, "alice", metadata={"team": "red"})
    open_account(client, "hot", shards=4, floor=None)
    for _ in range(3):
        ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 10, "metadata": {"k": "v"}}))
    # A page of accounts: the index, the items it names, and the hot accounts' shards in one batch.
    cases = [("/v1/accounts", {"Query": 1, "BatchGetItem": 2}),
             ("/v1/accounts?kind=standard&unit=USD", {"Query": 1, "BatchGetItem": 2}),
             ("/v1/accounts?metadata=team:red", {"Query": 1, "BatchGetItem": 1}),
             # The postings' legs still in their accounts' logs: filled from the accounts, in one batch.
             ("/v1/transactions?type=posting", {"Query": 1, "BatchGetItem": 1}),
             ("/v1/transactions?metadata=k:v", {"Query": 1, "BatchGetItem": 2}),
             # Alice's journal settled first (her log's read, and its drain), her transactions, and their legs that
             # still wait in the system account's logs.
             ("/v1/transactions?account_id=alice", {"GetItem": 2, "TransactWriteItems": 1, "Query": 1,
                                                    "BatchGetItem": 2}),
             ("/v1/holds?status=authorized", {"Query": 1}),
             # The account's read, which also settles its journal; two as-of Queries, one page.
             ("/v1/accounts/alice/statement?start=2026-11-01T00:00:00Z", {"GetItem": 1, "Query": 3})]
    for path, calls in cases:
        with DynamoDBRequests() as requests:
            ok(client.http.get(path), 200)
        calls = {**calls, "GetItem": calls.get("GetItem", 0) + 1}  # and the authorizer's read of the key
        assert dict(requests.calls) == calls, path


# -- statements --------------------------------------------------------------------------------
def test_a_statement_adds_up_to_its_entries(client, clock):
    open_account(client, "alice")
    amounts = [500, -120, 300, -80, 40, -200, 60]
    for minute, amount in enumerate(amounts):
        at(clock, minute * 10)
        ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": amount}))
    at(clock, 100)
    statement = ok(client.http.get("/v1/accounts/alice/statement?start=2026-11-01T12:15:00Z"
                                   "&end=2026-11-01T12:45:00Z&limit=2"), 200)
    period = amounts[2:5]  # at minutes 20, 30 and 40
    assert (statement["opening_balance"], statement["closing_balance"]) == (380, 380 + sum(period))
    assert (statement["credits"], statement["debits"], statement["count"]) == (340, 80, 3)
    assert [entry["amount"] for entry in statement["entries"]["data"]] == period[:2]
    rest = ok(client.http.get("/v1/accounts/alice/entries?order=asc&start=2026-11-01T12:15:00Z"
                              f"&end=2026-11-01T12:45:00Z&limit=2&cursor={statement['entries']['next_cursor']}"), 200)
    assert [entry["amount"] for entry in rest["data"]] == period[2:]
    whole = ok(client.http.get("/v1/accounts/alice/statement?start=2026-10-01T00:00:00Z"), 200)
    assert (whole["opening_balance"], whole["closing_balance"], whole["count"]) == (0, sum(amounts), 7)
    assert whole["credits"] - whole["debits"] == whole["closing_balance"] - whole["opening_balance"]
    entries = EntryModel.query(v1_key("alice"))
    assert sum(int(entry.amount) for entry in entries) == whole["closing_balance"]
    everything = ok(client.http.get("/v1/accounts/alice/statement"), 200)  # from the beginning to now
    assert (everything["opening_balance"], everything["count"]) == (0, 7)
    for query in ("?start=2026-11-02T00:00:00Z&end=2026-11-01T00:00:00Z", "?start=yesterday"):
        assert client.http.get(f"/v1/accounts/alice/statement{query}").status_code == 400, query
    assert client.http.get("/v1/accounts/nobody/statement?start=2026-10-01T00:00:00Z").status_code == 404


def test_a_hot_account_statement_adds_its_shards(client, clock):
    open_account(client, "revenue", shards=4)
    open_account(client, "alice")
    ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 10_000}))
    for minute in range(1, 9):
        at(clock, minute)
        ok(call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "revenue", "amount": minute}))
    statement = ok(client.http.get("/v1/accounts/revenue/statement?start=2026-11-01T12:03:00Z"
                                   "&end=2026-11-01T12:06:00Z"), 200)
    assert (statement["opening_balance"], statement["closing_balance"]) == (3, 21)
    assert (statement["credits"], statement["debits"], statement["count"]) == (18, 0, 4)
    assert [entry["amount"] for entry in statement["entries"]["data"]] == [3, 4, 5, 6]


def v1_key(account_id: str) -> str:
    from helpers import v1_ledger
    return v1_ledger().ledger.account_key(account_id)


# -- preconditions -------------------------------------------------------------------------------
def test_a_write_applies_only_while_the_account_is_at_the_expected_seq(client, clock):
    open_account(client, "alice")
    open_account(client, "bob")
    first = ok(call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 100,
                                                     "expected_seq": {"alice": 0}}))
    assert first["entries"][0]["seq"] == 1
    moved = call(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 100, "expected_seq": {"alice": 0}})
    assert moved.status_code == 409 and moved.json_body["code"] == "account_moved"
    assert moved.json_body["param"] == "expected_seq"
    transfer = call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 10,
                                                      "expected_seq": {"alice": 1, "bob": 5}})
    assert transfer.status_code == 409
    ok(call(client, "POST", "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 10,
                                              "expected_seq": {"alice": 1, "bob": 0}}))
    hold = call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 5, "expected_seq": {"alice": 1}})
    assert hold.status_code == 409
    ok(call(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 5, "expected_seq": {"alice": 2}}))
    assert ok(client.http.get("/v1/accounts/alice"), 200)["entry_count"] == 3  # nothing else was written
    open_account(client, "hot", shards=2)
    for body in ({"account_id": "alice", "amount": 1, "expected_seq": {"bob": 1}},
                 {"account_id": "alice", "amount": 1, "expected_seq": {"alice": -1}},
                 {"account_id": "alice", "amount": 1, "expected_seq": {"alice": "3"}},
                 {"account_id": "hot", "amount": 1, "expected_seq": {"hot": 0}}):
        response = call(client, "POST", "/v1/postings", body)
        assert response.status_code == 400, (body, response.json_body)
    assert verify_tables().violations == []


@pytest.mark.parametrize("path, param", [("/v1/accounts?kind=gold", "kind"), ("/v1/transactions?type=gift", "type"),
                                         ("/v1/holds?status=gone", "status"), ("/v1/accounts?limit=101", "limit"),
                                         ("/v1/accounts?limit=0", "limit"), ("/v1/holds?expires_before=soon",
                                                                             "expires_before"),
                                         ("/v1/accounts?cursor=forged.AAAA", "cursor")])
def test_a_bad_list_query_is_a_400(client, clock, path, param):
    response = client.http.get(path)
    assert response.status_code == 400 and response.json_body["param"] == param, response.json_body


def test_a_metadata_filter_no_object_could_match_is_a_400_before_any_read(client, clock):
    # A key over 40 characters or a value over 500 names nothing stored; unchecked, a long key made a search term
    # past DynamoDB's documented 2,048-byte key limit (DynamoDB Local and moto answered an empty page).
    for query in (f"{'k' * 3000}:v", f"{'k' * 41}:v", f"k:{'v' * 501}"):
        with DynamoDBRequests() as requests:
            response = client.http.get(f"/v1/transactions?metadata={query}")
        assert response.status_code == 400 and response.json_body["param"] == "metadata", response.json_body
        assert set(requests.calls) <= {"GetItem"}  # the authorizer's read of the key, nothing else


@pytest.mark.parametrize("path", ["/v1/transactions", "/v1/accounts", "/v1/accounts/alice/entries"])
def test_a_range_that_ends_before_it_starts_is_a_400_not_a_500(client, path):
    """Found by the fuzzer: DynamoDB refuses a BETWEEN whose bounds are the wrong way round."""
    open_account(client, "alice")
    response = call(client, "GET", f"{path}?start=2026-02-01T00:00:00Z&end=2026-01-01T00:00:00Z")
    assert response.status_code == 400 and response.json_body["param"] == "end", response.json_body
