"""`GET /openapi.json`: a valid OpenAPI 3.1 document of every route, whose schemas the answers keep (moto)."""
from __future__ import annotations

import json
import re

import jsonschema
import pytest
from openapi_spec_validator import validate

import app as tally
from chalicelib.web import access

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def document(client) -> dict:
    response = client.http.get("/openapi.json")
    assert response.status_code == 200
    return response.json_body


def test_the_document_is_valid_openapi_3_1(document):
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_route_is_in_the_document(document):
    served = {(path, method.lower()) for path, methods in tally.app.routes.items()
              for method, entry in methods.items()
              if not entry.view_name.endswith("__other_methods") and path != "/openapi.json"
              and method != "HEAD" and not path.startswith(("/docs", "/console"))}
    # HEAD mirrors each GET; /docs shows the document; /console is a page that reads /v1, not an operation
    assert all("GET" in methods for methods in tally.app.routes.values() if "HEAD" in methods)
    documented = {(path, method) for path, methods in document["paths"].items() for method in methods}
    assert documented == served


def test_request_schemas_are_the_validating_models(document):
    amount = document["components"]["schemas"]["AmountRequest"]
    assert amount["required"] == ["account_id", "amount"]
    assert amount["properties"]["amount"]["type"] == "integer"
    money = document["components"]["schemas"]["TransactionRequest"]["properties"]["amount"]
    assert {key: money[key] for key in ("type", "exclusiveMinimum", "multipleOf")} == {
        "type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01}
    spend = document["paths"]["/api/v1/transactions/create"]["post"]
    assert spend["security"] == [{"bearer": []}] and {"401", "403", "400", "415", "503"} <= set(spend["responses"])


def conforms(document: dict, path: str, method: str, status: int, body) -> None:
    """The answer matches the schema the document gives for it."""
    content = document["paths"][path][method]["responses"][str(status)].get("content")
    if content is None:
        return
    schema = {**content["application/json"]["schema"], "components": document["components"]}
    jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)


def test_answers_of_every_surface_keep_the_document(client, document):
    def call(method, path, template, body=None, headers=None):
        response = getattr(client.http, method)(path, headers={**JSON, **(headers or {})},
                                                body=None if body is None else json.dumps(body))
        conforms(document, template, method, response.status_code, response.json_body)
        return response.json_body

    account = "6f1c0e4e-1d7a-4b8e-9a0e-2f3b4c5d6e7f"
    call("post", "/amount", "/amount", {"account_id": account, "amount": 3},
         {"Transaction-Id": "0f8fad5b-d9cb-469f-a165-70867728950e"})
    call("post", "/amount", "/amount", {"account_id": account, "amount": "3"},
         {"Transaction-Id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"})  # 400
    call("get", f"/balance/{account}", "/balance/{account_id}")
    call("get", "/transaction/0f8fad5b-d9cb-469f-a165-70867728950e", "/transaction/{transaction_id}")
    call("get", "/max_transaction_volume", "/max_transaction_volume")
    call("get", "/ping", "/ping")
    call("post", "/add", "/add", {"payer": "A", "points": 10, "timestamp": "2022-01-01T00:00:00Z"})
    call("post", "/spend", "/spend", {"points": 4})
    call("post", "/spend", "/spend", {"points": 400})  # 400
    call("get", "/balance", "/balance")
    call("post", "/transaction", "/transaction", {"payer": "B", "points": 5})
    call("put", "/spend_points", "/spend_points", {"points": 2})
    call("get", "/", "/")
    user = call("post", "/api/v1/users", "/api/v1/users", {"phone_number": "5551234567"})
    bearer = {"Authorization": f"Bearer {user['access_token']}"}
    call("post", "/api/v1/token/refresh", "/api/v1/token/refresh", headers={
        "Authorization": f"Bearer {user['refresh_token']}"})
    wallet = call("post", "/api/v1/wallet/create", "/api/v1/wallet/create", {"user_id": 1, "type": "t"}, bearer)
    call("get", "/api/v1/wallet/get/1/t", "/api/v1/wallet/get/{user_id}/{wallet_type}", headers=bearer)
    call("post", "/api/v1/transactions/create", "/api/v1/transactions/create",
         {"user_id": 1, "wallet_id": wallet["wallet_id"], "amount": 10.5, "is_credit": True}, bearer)
    call("get", "/api/v1/transactions/get/1/1", "/api/v1/transactions/get/{user_id}/{wallet_id}", headers=bearer)
    call("get", "/api/v1/transactions/get/1/1", "/api/v1/transactions/get/{user_id}/{wallet_id}")  # 401
    call("post", "/api/v1/transactions/get/total_in_period", "/api/v1/transactions/get/total_in_period",
         {"user_id": 1, "wallet_id": 1, "start_date": "2020-01-01", "end_date": "2100-01-01"}, bearer)
    asper_user = call("post", "/register", "/register", {"phone_number": "5557654321"})
    asper = call("post", "/wallet/create", "/wallet/create", {"user_id": asper_user["user_id"]})
    call("post", "/wallet/credit", "/wallet/credit", {"wallet_id": asper["wallet_id"], "amount": 300})
    call("post", "/wallet/debit", "/wallet/debit", {"wallet_id": asper["wallet_id"], "amount": 250})  # 400
    call("get", f"/wallet/balance/{asper['wallet_id']}", "/wallet/balance/{wallet_id}")
    call("get", f"/wallet/transactions?wallet_id={asper['wallet_id']}", "/wallet/transactions")
    v1_answers_keep_the_document(call)


def v1_answers_keep_the_document(call):
    """Every /v1 operation, its successes and a failure of each kind."""
    keys = iter(range(1000))

    def write(path, template, body=None):
        return call("post", path, template, body, {"Idempotency-Key": f"openapi-{next(keys)}"})

    write("/v1/accounts", "/v1/accounts", {"id": "alice", "unit": "USD", "metadata": {"k": "v"}})
    write("/v1/accounts", "/v1/accounts", {"id": "bob", "unit": "USD", "floor": None})
    write("/v1/accounts", "/v1/accounts", {"id": "member", "unit": "points", "kind": "points"})
    write("/v1/accounts", "/v1/accounts", {"id": "alice", "unit": "USD"})  # 409
    call("post", "/v1/accounts", "/v1/accounts", {"unit": "USD"})  # 400: no key
    write("/v1/postings", "/v1/postings", {"account_id": "alice", "amount": 500})
    transfer = write("/v1/transfers", "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 200})
    write("/v1/transfers", "/v1/transfers", {"source": "alice", "destination": "ghost", "amount": 1})  # 404
    call("get", f"/v1/transactions/{transfer['id']}", "/v1/transactions/{transaction_id}")
    write(f"/v1/transactions/{transfer['id']}/reversals", "/v1/transactions/{transaction_id}/reversals",
          {"amount": 50})
    hold = write("/v1/holds", "/v1/holds", {"account_id": "alice", "amount": 100})
    call("get", f"/v1/holds/{hold['id']}", "/v1/holds/{hold_id}")
    write(f"/v1/holds/{hold['id']}/capture", "/v1/holds/{hold_id}/capture", {"amount": 60, "destination": "bob"})
    write(f"/v1/holds/{hold['id']}/void", "/v1/holds/{hold_id}/void")  # 409
    other = write("/v1/holds", "/v1/holds", {"account_id": "alice", "amount": 10})
    write(f"/v1/holds/{other['id']}/void", "/v1/holds/{hold_id}/void")
    write("/v1/points/earn", "/v1/points/earn", {"account_id": "member", "payer": "A", "points": 10,
                                                 "expires_at": "2100-01-01T00:00:00Z"})
    spend = write("/v1/points/spend", "/v1/points/spend", {"account_id": "member", "points": 4})
    write(f"/v1/transactions/{spend['id']}/reversals", "/v1/transactions/{transaction_id}/reversals", {})
    call("get", "/v1/accounts/alice", "/v1/accounts/{account_id}")
    call("get", "/v1/accounts/alice/balance", "/v1/accounts/{account_id}/balance")
    call("get", "/v1/accounts/alice/balance?as_of=2000-01-01T00:00:00Z", "/v1/accounts/{account_id}/balance")
    call("get", "/v1/accounts/alice/entries?limit=2", "/v1/accounts/{account_id}/entries")
    call("get", "/v1/accounts/member/lots?state=all", "/v1/accounts/{account_id}/lots")
    call("get", "/v1/accounts/ghost", "/v1/accounts/{account_id}")  # 404


def test_head_answers_wherever_get_does_and_an_unknown_path_is_a_404_in_tallys_shape(client):
    document = client.raw_http.request("HEAD", "/openapi.json")
    assert (document.status_code, document.body) == (200, b"")
    assert document.headers["Content-Type"] == "application/json"
    assert client.http.request("HEAD", "/v1/accounts/nobody").status_code == 404
    assert client.raw_http.request("HEAD", "/ping").status_code == 200
    for path in ("/nope", "/v1/nope", "/v1/accounts/a/b/c"):
        missing = client.raw_http.get(path)
        assert (missing.status_code, missing.json_body) == access.GATEWAY_RESPONSES["MISSING_AUTHENTICATION_TOKEN"]


def test_the_document_is_browsable_locally_with_files_served_from_here(client):
    page = client.raw_http.get("/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.body.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(source.startswith("/docs/assets/") for source in sources)  # no CDN, no other site
    for source in sources:
        asset = client.raw_http.get(source)
        assert asset.status_code == 200 and len(asset.body) > 10_000, source
    assert "validatorUrl: null" in html  # Swagger UI would otherwise call its online validator
    assert client.raw_http.get("/docs/assets/..%2F..%2Fsetup.py").status_code == 404
    document = client.raw_http.get("/openapi.json").json_body
    assert {tag["name"] for tag in document["tags"]} >= {"v1", "seed 004: Account Management API"}
    assert document["servers"][0]["url"] == "http://127.0.0.1:8000"
    created = document["paths"]["/v1/postings"]["post"]["responses"]["201"]
    assert created["description"] == "Created"
