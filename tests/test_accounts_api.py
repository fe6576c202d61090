"""Seed 004, the Account Management API, as `shared/seeds/account-management-api.md` states it (moto)."""
from __future__ import annotations

import json
import uuid

import pytest

from tools.request_counter import DynamoDBRequests

JSON = {"Content-Type": "application/json"}


def new_id() -> str:
    return str(uuid.uuid4())


def post_amount(client, account_id, amount, transaction_id=None, headers=None, body=None):
    transaction_id = transaction_id or new_id()
    request_headers = {**JSON, "Transaction-Id": transaction_id, **(headers or {})}
    payload = body if body is not None else json.dumps({"account_id": account_id, "amount": amount})
    return client.http.post("/amount", headers=request_headers, body=payload)


def balance(client, account_id):
    return client.http.get(f"/balance/{account_id}")


def assert_nothing_written(client, account_id=None):
    if account_id:
        assert balance(client, account_id).status_code == 404
    assert client.http.get("/max_transaction_volume").json_body == {"maxVolume": 0, "accounts": []}


def test_ping(client):
    assert client.http.get("/ping").status_code == 200


def test_a_transaction_creates_the_account_and_can_be_read_back(client):
    account, transaction = new_id(), new_id()
    response = post_amount(client, account, 30, transaction)
    assert response.status_code == 200
    assert response.json_body["balance"] == 30
    assert balance(client, account).json_body == {"balance": 30}
    read = client.http.get(f"/transaction/{transaction}")
    assert read.status_code == 200
    assert read.json_body == {"account_id": account, "amount": 30}


def test_negative_and_zero_amounts_are_accepted_and_balances_may_go_negative(client):
    account = new_id()
    for amount in (10, -25, 0):
        assert post_amount(client, account, amount).status_code == 200
    assert balance(client, account).json_body == {"balance": -15}
    assert client.http.get("/max_transaction_volume").json_body == {"maxVolume": 3, "accounts": [account]}


def test_unknown_account_and_transaction_are_404_with_an_error_body(client):
    missing_balance = balance(client, new_id())
    assert missing_balance.status_code == 404
    assert "error" in missing_balance.json_body
    assert client.http.get(f"/transaction/{new_id()}").status_code == 404
    assert balance(client, "not-a-uuid").status_code == 404


def test_same_transaction_id_and_body_is_applied_once_and_answered_alike(client):
    account, transaction = new_id(), new_id()
    first = post_amount(client, account, 7, transaction)
    again = post_amount(client, account, 7, transaction)
    assert first.status_code == again.status_code == 200
    assert first.json_body == again.json_body
    assert balance(client, account).json_body == {"balance": 7}
    assert client.http.get("/max_transaction_volume").json_body["maxVolume"] == 1


def test_reused_transaction_id_with_another_body_is_409_and_changes_nothing(client):
    account, transaction = new_id(), new_id()
    post_amount(client, account, 7, transaction)
    for other_account, amount in ((account, 8), (new_id(), 7)):
        conflict = post_amount(client, other_account, amount, transaction)
        assert conflict.status_code == 409
        assert conflict.json_body["code"] == "idempotency_key_reused"
    assert balance(client, account).json_body == {"balance": 7}
    assert client.http.get(f"/transaction/{transaction}").json_body == {"account_id": account, "amount": 7}


@pytest.mark.parametrize("body, field", [
    ({"account_id": 12345, "amount": 5}, "account_id"),
    ({"account_id": "not-a-uuid", "amount": 5}, "account_id"),
    ({"amount": 5}, "account_id"),
    ({"account_id": "UUID", "amount": "5"}, "amount"),
    ({"account_id": "UUID", "amount": 5.0}, "amount"),
    ({"account_id": "UUID", "amount": 5.5}, "amount"),
    ({"account_id": "UUID", "amount": True}, "amount"),
    ({"account_id": "UUID", "amount": None}, "amount"),
    ({"account_id": "UUID"}, "amount"),
    ({"account_id": "UUID", "amount": 2**63}, "amount"),
])
def test_ill_typed_or_missing_fields_are_400_naming_the_field_and_write_nothing(client, body, field):
    account = new_id()
    body = {key: account if value == "UUID" else value for key, value in body.items()}
    response = post_amount(client, account, None, body=json.dumps(body))
    assert response.status_code == 400
    assert field in response.json_body["error"]
    assert_nothing_written(client, account)


@pytest.mark.parametrize("payload", ["{not json", "[1, 2]", "", "null", '"text"', "12"])
def test_a_body_that_is_not_a_json_object_is_400(client, payload):
    response = post_amount(client, new_id(), None, body=payload)
    assert response.status_code == 400
    assert response.json_body["error"]
    assert_nothing_written(client)


@pytest.mark.parametrize("headers", [{"Transaction-Id": ""}, {"Transaction-Id": "abc"}, {"Transaction-Id": "12"}])
def test_missing_or_non_uuid_transaction_id_is_400(client, headers):
    account = new_id()
    response = post_amount(client, account, 5, headers=headers)
    assert response.status_code == 400
    assert "Transaction-Id" in response.json_body["error"]
    assert_nothing_written(client, account)


def test_absent_transaction_id_header_is_400(client):
    account = new_id()
    response = client.http.post("/amount", headers=JSON, body=json.dumps({"account_id": account, "amount": 1}))
    assert response.status_code == 400
    assert_nothing_written(client, account)


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "application/x-www-form-urlencoded"])
def test_other_content_types_are_415_before_the_body_is_read(client, content_type):
    account = new_id()
    response = post_amount(client, account, 5, headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert response.json_body["code"] == "unsupported_media_type"
    assert_nothing_written(client, account)


def test_json_with_a_charset_is_accepted(client):
    account = new_id()
    response = post_amount(client, account, 5, headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200


@pytest.mark.parametrize("method, path", [
    ("GET", "/amount"), ("PUT", "/amount"), ("DELETE", "/amount"), ("PATCH", "/amount"),
    ("POST", "/balance/x"), ("DELETE", "/transaction/x"), ("POST", "/max_transaction_volume"), ("POST", "/ping"),
])
def test_other_methods_on_known_routes_are_405(client, method, path):
    response = client.http.request(method, path, headers={"Content-Type": "text/plain"}, body=b"")
    assert response.status_code == 405
    assert response.json_body["code"] == "method_not_allowed"
    assert response.headers["Allow"]


def test_max_volume_is_empty_before_any_transaction(client):
    assert client.http.get("/max_transaction_volume").json_body == {"maxVolume": 0, "accounts": []}


def test_max_volume_lists_every_account_tied_at_the_maximum(client):
    first, second, third = new_id(), new_id(), new_id()
    for account, count in ((first, 3), (second, 1), (third, 3)):
        for _ in range(count):
            post_amount(client, account, 1)
    answer = client.http.get("/max_transaction_volume").json_body
    assert answer["maxVolume"] == 3
    assert sorted(answer["accounts"]) == sorted([first, third])
    post_amount(client, second, 0)
    post_amount(client, second, 0)
    post_amount(client, second, 0)
    assert client.http.get("/max_transaction_volume").json_body == {"maxVolume": 4, "accounts": [second]}


def test_uuid_letter_case_does_not_make_another_account(client):
    account = new_id()
    post_amount(client, account.upper(), 5)
    assert balance(client, account).json_body == {"balance": 5}
    assert balance(client, account.upper()).json_body == {"balance": 5}


def test_request_budgets_hold_whatever_the_number_of_accounts(client):
    accounts = [new_id() for _ in range(30)]
    for index, account in enumerate(accounts):
        for _ in range(1 + index % 3):
            post_amount(client, account, 1)
    transaction = new_id()
    with DynamoDBRequests() as requests:
        post_amount(client, accounts[0], 1, transaction)
        assert requests.total == 2  # one consistent read, one transaction
        requests.reset()
        balance(client, accounts[0])
        assert requests.total == 1
        requests.reset()
        client.http.get(f"/transaction/{transaction}")
        assert requests.total == 1
        requests.reset()
        client.http.get("/max_transaction_volume")
        assert requests.total == 2


def test_each_request_leaves_one_json_log_line_with_its_request_id(client, capsys):
    from chalicelib.web import logs

    logs.configure("INFO")
    try:
        client.http.get("/ping")
        client.http.get(f"/balance/{new_id()}")
    finally:
        logs.configure("WARNING")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["method"], line["route"], line["status"]) for line in lines] == [
        ("GET", "/ping", 200), ("GET", "/balance/{account_id}", 404)]
    # API Gateway's id (`request_id`) is absent under the test client; Lambda's is always there.
    assert all("request_id" in line and line["lambda_request_id"] for line in lines)
    assert all(line["level"] == "INFO" and line["ms"] >= 0 for line in lines)
    assert lines[1]["error_code"] == "not_found"
