"""Issue 14: what a hostile or careless client sends is a 4xx `{"error", "code"}` that writes nothing, never a 5xx,
on every surface (moto; the over-long key against DynamoDB Local too, which refuses it where moto does not)."""
from __future__ import annotations

import base64
import json

import pytest

import app as tally
from helpers import v1_ledger, v1_request
from tools.request_counter import DynamoDBRequests

JSON = {"Content-Type": "application/json"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
LONG = "x" * 3000  # over DynamoDB's 2,048-byte key limit
TXN = {"Transaction-Id": "0b6e3a2c-5d0e-4b7a-9b1e-2f6d1f0c9a11"}


def send(client, method: str, path: str, body=None, headers=None):
    payload = body if isinstance(body, str) or body is None else json.dumps(body)
    return getattr(client.http, method.lower())(path, headers={**JSON, **(headers or {})}, body=payload)


def ledger_requests(requests) -> int:
    """Requests made to the ledger's tables: all but the authorizer's read of a /v1 key."""
    from chalicelib.core.models import ApiKeyModel

    return requests.total - requests.by_table[ApiKeyModel.Meta.table_name]


def refused(response, status: int = 400) -> dict:
    assert response.status_code == status, (response.status_code, response.body[:300])
    body = response.json_body
    # /v1 errors also carry their type and param
    assert set(body) - {"type", "param"} == {"error", "code"} and body["error"], body
    return body


def user_of_002(client) -> tuple[int, dict]:
    registered = send(client, "POST", "/api/v1/users", {"phone_number": "9886977544"}).json_body
    return registered["user_id"], {"Authorization": f"Bearer {registered['access_token']}"}


# Every route that reads a JSON body, with what else it needs (a 002 token is added by the test).
BODY_ROUTES = [
    ("POST", "/add", None), ("POST", "/spend", None), ("POST", "/transaction", None), ("PUT", "/spend_points", None),
    ("POST", "/api/v1/users", None), ("POST", "/api/v1/wallet/create", "002"),
    ("POST", "/api/v1/transactions/create", "002"), ("POST", "/api/v1/transactions/get/total_in_period", "002"),
    ("POST", "/register", None), ("POST", "/wallet/create", None), ("POST", "/wallet/credit", None),
    ("POST", "/wallet/debit", None), ("POST", "/amount", "004"),
    ("POST", "/v1/accounts", "v1"), ("POST", "/v1/postings", "v1"), ("POST", "/v1/transfers", "v1"),
    ("POST", "/v1/holds", "v1"), ("POST", "/v1/points/earn", "v1"), ("POST", "/v1/points/spend", "v1"),
]
DEEP_BODIES = {"arrays": "[" * 100_000, "objects": '{"a":' * 5_000,
               "33 levels, valid JSON": '{"a":' * 33 + "1" + "}" * 33}


@pytest.mark.parametrize("shape", DEEP_BODIES)
def test_deeply_nested_bodies_are_400_on_every_surface_and_write_nothing(client, shape):
    _user, bearer = user_of_002(client)
    extra = {"002": bearer, "004": TXN, "v1": {"Idempotency-Key": "deep-1"}}
    with DynamoDBRequests() as requests:
        for method, path, needs in BODY_ROUTES:
            body = refused(send(client, method, path, DEEP_BODIES[shape], extra.get(needs)))
            assert body["code"] == "invalid_request", (path, body)
    assert not ledger_requests(requests), dict(requests.calls)  # refused before any datastore request


def test_a_body_nested_32_levels_is_still_read(client):
    nested = "[" * 31 + "]" * 31  # with the body object itself, 32 levels
    response = send(client, "POST", "/register", f'{{"phone_number": "1234567", "note": {nested}}}')
    assert response.status_code == 201, response.json_body


OVERFLOWING = "1e999999999"


def test_an_overflowing_amount_or_minimum_is_400_and_writes_nothing(client):
    user_id, bearer = user_of_002(client)
    wallet = send(client, "POST", "/api/v1/wallet/create", {"user_id": user_id, "type": "t"}, bearer).json_body
    asper_user = send(client, "POST", "/register", {"phone_number": "5550001111"}).json_body["user_id"]
    asper_wallet = send(client, "POST", "/wallet/create", {"user_id": asper_user}).json_body["wallet_id"]
    assert send(client, "POST", "/wallet/credit", {"wallet_id": asper_wallet, "amount": 500}).status_code == 200
    bodies = [
        ("/api/v1/transactions/create", f'{{"user_id": {user_id}, "wallet_id": {wallet["wallet_id"]}, '
                                        f'"amount": {OVERFLOWING}, "is_credit": true}}', bearer),
        ("/api/v1/transactions/create", f'{{"user_id": {user_id}, "wallet_id": {wallet["wallet_id"]}, '
                                        f'"amount": -{OVERFLOWING}, "is_credit": false}}', bearer),
        ("/wallet/credit", f'{{"wallet_id": {asper_wallet}, "amount": {OVERFLOWING}}}', None),
        ("/wallet/debit", f'{{"wallet_id": {asper_wallet}, "amount": {OVERFLOWING}}}', None),
        ("/wallet/debit", f'{{"wallet_id": {asper_wallet}, "amount": 1, "minimum_balance": {OVERFLOWING}}}', None),
        ("/wallet/debit", f'{{"wallet_id": {asper_wallet}, "amount": 1, "minimum_balance": 1e-999999999}}', None),
        ("/amount", f'{{"account_id": "{TXN["Transaction-Id"]}", "amount": {OVERFLOWING}}}', TXN),
        ("/add", f'{{"payer": "A", "points": {OVERFLOWING}, "timestamp": "2024-01-01T00:00:00Z"}}', None),
    ]
    with DynamoDBRequests() as requests:
        for path, body, headers in bodies:
            assert refused(send(client, "POST", path, body, headers))["code"] == "invalid_request", (path, body)
    assert not WRITES & set(requests.calls), dict(requests.calls)
    wallets = tally.services.wallets
    assert wallets.get(asper_wallet).balance == 50000 and wallets.get(wallet["wallet_id"]).balance == 0


# -- ids longer than DynamoDB's key limit ----------------------------------------------------
V1_PATHS = [("GET", f"/v1/accounts/{LONG}"), ("GET", f"/v1/accounts/{LONG}/balance"),
            ("GET", f"/v1/accounts/{LONG}/balance?as_of=2026-01-01T00:00:00Z"),
            ("GET", f"/v1/accounts/{LONG}/entries"), ("GET", f"/v1/accounts/{LONG}/lots"),
            ("GET", f"/v1/transactions/{LONG}"), ("GET", f"/v1/holds/{LONG}"),
            ("POST", f"/v1/transactions/{LONG}/reversals"), ("POST", f"/v1/holds/{LONG}/capture"),
            ("POST", f"/v1/holds/{LONG}/void")]
SEED_PATHS = [f"/balance/{LONG}", f"/transaction/{LONG}"]  # 004 (002's below: it needs a token)


def test_ids_too_long_for_a_key_answer_404_as_unknown_ones_without_a_request(client):
    user_id, bearer = user_of_002(client)
    with DynamoDBRequests() as requests:
        for method, path in V1_PATHS:
            body = "{}" if method == "POST" else None
            assert refused(v1_request(client, method, path, body), 404)["code"] == "not_found", path
        for path in SEED_PATHS:
            assert refused(send(client, "GET", path), 404)["code"] == "not_found", path
        assert refused(send(client, "GET", f"/api/v1/wallet/get/{user_id}/{LONG}", headers=bearer), 404)
        # A multi-byte id over the limit in bytes (1,000 characters, 3,000 bytes) is as unknown.
        assert refused(v1_request(client, "GET", "/v1/accounts/" + "€" * 1000), 404)
    assert not ledger_requests(requests), dict(requests.calls)  # moto would answer 404 too: no request may reach it
    # The over-long id's answer is an unknown id's, but for the (shortened) id it names.
    unknown = v1_request(client, "GET", "/v1/accounts/nope").json_body
    assert v1_request(client, "GET", f"/v1/accounts/{LONG}").json_body == {
        **unknown, "error": unknown["error"].replace("nope", LONG[:64] + "...")}


# -- /v1 metadata --------------------------------------------------------------------------
@pytest.mark.parametrize("metadata", [
    {"k" * 500_000: "v"}, {"k" * 41: "v"}, {"": "v"}, {"k": "v" * 501},
    {f"k{number}": "v" for number in range(21)},
    {f"{number:02d}" + "k" * 38: "v" * 200 for number in range(20)},  # 20 x 240 bytes: over 4,096 in all
    {f"k{number}": "é" * 450 for number in range(5)},  # 450 characters, 900 bytes each: 4,510 bytes
])
def test_metadata_over_its_limits_is_400_and_writes_nothing(client, metadata):
    assert v1_request(client, "POST", "/v1/accounts", {"id": "alice", "unit": "USD", "floor": None}).status_code == 201
    with DynamoDBRequests() as requests:
        answers = [v1_request(client, "POST", "/v1/accounts", {"id": "bob", "unit": "USD", "metadata": metadata}),
                   v1_request(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 5,
                                                               "metadata": metadata}),
                   v1_request(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 5, "metadata": metadata})]
    for answer in answers:
        assert refused(answer)["code"] == "invalid_request"
    assert not WRITES & set(requests.calls), dict(requests.calls)
    assert v1_request(client, "GET", "/v1/accounts/bob").status_code == 404
    assert v1_ledger().account("alice").entry_count == 0


def test_metadata_at_its_limits_is_kept(client):
    metadata = {f"{number:02d}" + "k" * 38: "v" * 164 for number in range(20)}  # 20 x 204 = 4,080 bytes
    created = v1_request(client, "POST", "/v1/accounts", {"id": "alice", "unit": "USD", "metadata": metadata})
    assert created.status_code == 201 and created.json_body["metadata"] == metadata


# -- money: exact at any size, balances within int64 ------------------------------------------
def test_wallet_money_renders_exactly_beyond_2_to_the_53_minor_units(client):
    user_id, bearer = user_of_002(client)
    wallet = send(client, "POST", "/api/v1/wallet/create", {"user_id": user_id, "type": "t"}, bearer).json_body

    def credit(amount: str):
        body = f'{{"user_id": {user_id}, "wallet_id": {wallet["wallet_id"]}, "amount": {amount}, "is_credit": true}}'
        return send(client, "POST", "/api/v1/transactions/create", body, bearer)
    for _ in range(10):
        assert credit("10000000000000").status_code == 201  # the largest amount: 10^15 minor units
    last = credit("0.01")
    assert b'"balance":100000000000000.01' in last.body  # 10,000,000,000,000,001 minor units; a float says .02
    got = send(client, "GET", f"/api/v1/wallet/get/{user_id}/t", headers=bearer)
    assert b'"balance":100000000000000.01' in got.body
    totals = send(client, "POST", "/api/v1/transactions/get/total_in_period",
                  {"user_id": user_id, "wallet_id": wallet["wallet_id"], "start_date": "2020-01-01",
                   "end_date": "2100-01-01"}, bearer)
    assert totals.body == b'{"total_credit":100000000000000.01,"total_debit":0,"count":11}'

    asper_user = send(client, "POST", "/register", {"phone_number": "5550001111"}).json_body["user_id"]
    asper_wallet = send(client, "POST", "/wallet/create", {"user_id": asper_user}).json_body["wallet_id"]
    for _ in range(10):
        send(client, "POST", "/wallet/credit", {"wallet_id": asper_wallet, "amount": 10000000000000})
    credited = send(client, "POST", "/wallet/credit", f'{{"wallet_id": {asper_wallet}, "amount": 0.05}}')
    assert credited.body == b'{"new_balance":100000000000000.05}'
    assert send(client, "GET", f"/wallet/balance/{asper_wallet}").body == b'{"balance":100000000000000.05}'
    history = send(client, "GET", f"/wallet/transactions?wallet_id={asper_wallet}")
    assert b'"total_credit":100000000000000.05' in history.body


def test_a_posting_past_int64_is_400_and_writes_nothing_on_every_surface(client):
    top = 2**63 - 1
    assert v1_request(client, "POST", "/v1/accounts", {"id": "big", "unit": "USD", "floor": None}).status_code == 201
    assert v1_request(client, "POST", "/v1/postings", {"account_id": "big", "amount": top}).status_code == 201
    over = v1_request(client, "POST", "/v1/postings", {"account_id": "big", "amount": 1})
    assert refused(over)["code"] == "invalid_request" and "64-bit" in over.json_body["error"]
    assert v1_ledger().account("big").balance == top
    # Down to -2^63 exactly, and not one below.
    v1_request(client, "POST", "/v1/postings", {"account_id": "big", "amount": -top})
    v1_request(client, "POST", "/v1/postings", {"account_id": "big", "amount": -top})
    assert v1_ledger().account("big").balance == -top
    assert v1_request(client, "POST", "/v1/postings", {"account_id": "big", "amount": -1}).status_code == 201
    refused(v1_request(client, "POST", "/v1/postings", {"account_id": "big", "amount": -1}))
    assert v1_ledger().account("big").balance == -2**63
    # Seed 004 (no floor) through the same core.
    account = "5b1e0c1c-4f8e-4a0e-9a51-6a3f8c1d2e3f"
    ids = ["1f0e0c1c-4f8e-4a0e-9a51-6a3f8c1d2e3f", "2f0e0c1c-4f8e-4a0e-9a51-6a3f8c1d2e3f"]
    assert send(client, "POST", "/amount", {"account_id": account, "amount": top},
                {"Transaction-Id": ids[0]}).status_code in (200, 201)
    refused(send(client, "POST", "/amount", {"account_id": account, "amount": 1}, {"Transaction-Id": ids[1]}))
    assert tally.services.accounts.balance(account).balance == top
    assert send(client, "GET", f"/transaction/{ids[1]}").status_code == 404


# -- cursors ---------------------------------------------------------------------------------
def test_a_cursor_we_did_not_issue_is_400(client):
    for account in ("alice", "bob"):
        v1_request(client, "POST", "/v1/accounts", {"id": account, "unit": "USD", "floor": None})
        for amount in (1, 2, 3):
            v1_request(client, "POST", "/v1/postings", {"account_id": account, "amount": amount})
    issued = v1_request(client, "GET", "/v1/accounts/bob/entries?limit=1").json_body["next_cursor"]
    assert v1_request(client, "GET", f"/v1/accounts/bob/entries?limit=1&cursor={issued}").status_code == 200

    def encoded(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode()
    for cursor in [issued,  # bob's cursor, for alice
                   encoded("[" * 5000), encoded('{"account": {"S": "v1:alice"}}'),
                   encoded('{"account": {"S": "v1:alice"}, "seq": {"N": "1e9"}}'),
                   encoded('{"account": {"S": "v1:alice"}, "seq": 1}'), encoded('{"a": 1}')]:
        response = v1_request(client, "GET", f"/v1/accounts/alice/entries?cursor={cursor}")
        assert refused(response)["code"] == "invalid_request", cursor
    assert refused(v1_request(client, "GET", f"/v1/accounts/alice/entries?cursor={issued}&start=2020-01-01"))


# -- DynamoDB Local: the real key limit ------------------------------------------------------
@pytest.mark.dynamodb_local
def test_ids_too_long_for_a_key_are_404_on_dynamodb_local(live_server):
    from tools.local_http import request_json as http

    status, user = http("POST", f"{live_server}/api/v1/users", {"phone_number": "9886977544"})
    assert status == 201
    bearer = {"Authorization": f"Bearer {user['access_token']}"}
    for method, path in V1_PATHS:
        status, body = http(method, f"{live_server}{path}", {} if method == "POST" else None,
                            {"Idempotency-Key": "long-1"})
        assert (status, body["code"]) == (404, "not_found"), (path, status, body)
    for path in SEED_PATHS:
        assert http("GET", f"{live_server}{path}")[0] == 404, path
    assert http("GET", f"{live_server}/api/v1/wallet/get/{user['user_id']}/{LONG}", None, bearer)[0] == 404
