"""/v1's trust boundary (moto): API keys, scopes and tenants, as an attacker would probe them.

The 401/403/404 matrix is generated from the OpenAPI document: every operation that declares the API-key
scheme is tried with no key, malformed, unknown and revoked keys (401), a key without the operation's scope
(403), and another tenant's ids (404, exactly as an id that does not exist), and nothing is written.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace

import pytest

from chalicelib import composition
from chalicelib.core.api_keys import TOKEN, ApiKeys, effective
from chalicelib.core.errors import Unauthenticated
from chalicelib.core.models import MODELS, ApiKeyModel
from chalicelib.surfaces import docs
from chalicelib.web import access, openapi
from helpers import make_key, serving
from tools import infra
from tools import keys as keys_cli

JSON = {"Content-Type": "application/json"}
GUARDED = [(path, method, operation) for path, methods in openapi.document(docs.mounted)["paths"].items()
           for method, operation in methods.items() if {"apiKey": []} in operation.get("security", [])]


def send(client, method: str, path: str, body=None, token: str | None = None, key: str | None = None):
    headers = dict(JSON)
    headers["Idempotency-Key"] = key or str(uuid.uuid4())
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.raw_http.request(method.upper(), path, headers=headers,
                                   body=json.dumps(body) if body is not None else b"")


def stored_items() -> dict[str, int]:
    return {kind: model.count() for kind, model in MODELS.items() if kind != "keys"}


@pytest.fixture
def tenant_a(client):
    """Tenant A's key and a resource of each kind: accounts, a transaction, a hold, a points lot."""
    token = make_key("tenant-a")
    for body in ({"id": "alice", "unit": "USD"}, {"id": "bob", "unit": "USD"},
                 {"id": "member", "unit": "points", "kind": "points"}):
        assert send(client, "POST", "/v1/accounts", body, token).status_code == 201
    transfer = send(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 500}, token).json_body
    hold = send(client, "POST", "/v1/holds", {"account_id": "alice", "amount": 100}, token).json_body
    earn = send(client, "POST", "/v1/points/earn", {"account_id": "member", "payer": "P", "points": 50},
                token).json_body
    return {"token": token, "account_id": "alice", "transaction_id": transfer["id"], "hold_id": hold["id"],
            "points_account": "member", "earn_id": earn["id"]}


def request_for(path: str, operation: dict, ids: dict) -> tuple[str, dict | None]:
    """A concrete request of the operation naming `ids`' resources: its path, and a body from its schema."""
    points = path.startswith("/v1/points/") or path.endswith("/lots")
    concrete = re.sub(r"{(\w+)}", lambda match: ids["points_account" if points and match[1] == "account_id"
                                                      else match[1]], path)
    if "requestBody" not in operation:
        return concrete, None
    name = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    schema = openapi.document(docs.mounted)["components"]["schemas"][name]
    body = {}
    for field in schema.get("required", []):
        if field in ("account_id", "source"):
            body[field] = ids["points_account"] if points else ids["account_id"]
        elif field == "destination":
            body[field] = "bob"
        elif field in ("amount", "points"):
            body[field] = 1
        else:
            body[field] = "x"
    return concrete, body


def test_no_malformed_unknown_or_revoked_key_is_a_401_that_writes_nothing(client, tenant_a):
    revoked = make_key("tenant-a")
    ApiKeys(live=False).revoke(TOKEN.fullmatch(revoked).group(2))
    unknown = f"tk_test_key_{'0' * 16}_{'A' * 43}"
    forged = tenant_a["token"][:-1] + ("B" if tenant_a["token"][-1] != "B" else "C")
    before = stored_items()
    for path, method, operation in GUARDED:
        concrete, body = request_for(path, operation, tenant_a)
        for token in (None, "", "not-a-key", tenant_a["token"] + "x", unknown, forged, revoked):
            response = send(client, method, concrete, body, token)
            assert response.status_code == 401, (method, path, token, response.json_body)
            assert response.json_body == access.UNAUTHORIZED_BODY
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="tally"'
        basic = client.raw_http.request(method.upper(), concrete, headers={**JSON, "Authorization": "Basic dTpw"})
        assert basic.status_code == 401, (method, path)
    assert stored_items() == before


def test_a_key_without_the_operations_scope_is_a_403_that_writes_nothing(client, tenant_a):
    keys = {scope: make_key("tenant-a", [scope]) for scope in ("read", "write", "points:earn", "points:spend", "seed")}
    before = stored_items()
    for path, method, operation in GUARDED:
        scope = operation["x-required-scope"]
        lacking = [other for other in keys if scope not in effective([other])]
        assert lacking, (method, path)  # every operation needs more than some scope gives
        concrete, body = request_for(path, operation, tenant_a)
        for other in lacking:
            response = send(client, method, concrete, body, keys[other])
            assert response.status_code == 403, (method, path, other, response.json_body)
            assert response.json_body == {"error": f"this key lacks the {scope} scope", "code": "forbidden",
                                          "type": "permission_error", "param": None}
    assert stored_items() == before


def test_another_tenants_ids_answer_404_exactly_as_ids_that_do_not_exist(client, tenant_a):
    other = make_key("tenant-b")
    ghosts = {name: f"ghost-{name}" if name.endswith("account") or name == "account_id" else f"{name[:4]}_ghost"
              for name in tenant_a if name != "token"}
    before = stored_items()
    for path, method, operation in GUARDED:
        if path == "/v1/accounts" and method.upper() == "POST":
            continue  # opening names no existing resource
        if method.upper() == "GET" and "{" not in path:  # a list: another tenant's shows none of tenant a's
            listed = send(client, method, path, None, other)
            assert listed.status_code == 200 and listed.json_body["data"] == [], (path, listed.json_body)
            continue
        foreign = send(client, method, *request_for(path, operation, tenant_a), other)
        missing = send(client, method, *request_for(path, operation, ghosts), other)
        assert foreign.status_code == missing.status_code == 404, (method, path, foreign.json_body)
        # The same words for another tenant's id as for a made-up one: nothing says the id exists elsewhere.
        assert foreign.json_body["code"] == missing.json_body["code"] == "not_found"
        assert foreign.json_body["error"].split()[0] == missing.json_body["error"].split()[0]
    assert stored_items() == before


def test_each_tenant_has_its_own_accounts_transactions_and_idempotency_keys(client, tenant_a):
    other = make_key("tenant-b")
    # The same account id is another account in another tenant.
    assert send(client, "POST", "/v1/accounts", {"id": "alice", "unit": "EUR"}, other).status_code == 201
    mine = send(client, "GET", "/v1/accounts/alice", token=tenant_a["token"]).json_body
    theirs = send(client, "GET", "/v1/accounts/alice", token=other).json_body
    assert (mine["unit"], mine["balance"], theirs["unit"], theirs["balance"]) == ("USD", 500, "EUR", 0)
    # Tenant B reusing tenant A's Idempotency-Key gets a fresh result of its own, never A's.
    first = send(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 7}, tenant_a["token"], "shared")
    again = send(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 7}, other, "shared")
    assert first.status_code == again.status_code == 201 and first.json_body["id"] != again.json_body["id"]
    replay = send(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 7}, other, "shared")
    assert replay.json_body == again.json_body  # and B's own replay answers B's result
    conflict = send(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 8}, other, "shared")
    assert conflict.status_code == 409 and "tenant-a" not in conflict.json_body["error"]
    # The entries and lots of A's accounts are A's alone.
    entries = send(client, "GET", "/v1/accounts/alice/entries", token=other).json_body["data"]
    assert [entry["amount"] for entry in entries] == [7]
    assert send(client, "GET", "/v1/accounts/member/lots", token=other).status_code == 404


def test_a_revoked_key_stops_working_and_the_others_go_on(client, tenant_a):
    spare = make_key("tenant-a", ["read"])
    assert send(client, "GET", "/v1/accounts/alice", token=spare).status_code == 200
    key_id = TOKEN.fullmatch(spare).group(2)
    revoked = ApiKeys(live=False).revoke(key_id)
    assert revoked.revoked_at is not None and ApiKeys(live=False).revoke(key_id).revoked_at == revoked.revoked_at
    assert send(client, "GET", "/v1/accounts/alice", token=spare).status_code == 401
    assert send(client, "GET", "/v1/accounts/alice", token=tenant_a["token"]).status_code == 200


# API Gateway caches the authorizer's answer by the exact Authorization value: each spelling that the function
# accepted would be its own Allow, kept TTL_SECONDS after a revocation. Only `Bearer <token>` may be allowed.
SPELLINGS = ("bearer {}", "BEARER {}", "BeArEr {}", "Bearer  {}", "Bearer {} ", " Bearer {}", "Bearer\t{}",
             "Bearer {}\n", "Bearer\u00a0{}", "Bearer {} {}", "{}")


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_key_is_allowed_in_one_spelling_only_so_one_key_is_one_cache_entry(client, tenant_a, spelling):
    token = tenant_a["token"]
    header = spelling.format(token, token)
    with pytest.raises(Exception, match="^Unauthorized$"):  # the function itself, as API Gateway calls it
        access.authenticate(header)
    response = client.raw_http.request("GET", "/v1/accounts/alice", headers={**JSON, "Authorization": header})
    assert response.status_code == 401 and response.json_body == access.UNAUTHORIZED_BODY, repr(header)
    assert access.authenticate(f"Bearer {token}")["context"]["tenant"] == "tenant-a"
    assert send(client, "GET", "/v1/accounts/alice", token=token).status_code == 200


def test_api_gateway_refuses_every_other_spelling_before_the_function_runs():
    """The deployed stage's identityValidationExpression (a Java regex; this one means the same in Python)."""
    live = f"tk_live_key_{'0' * 16}_{'A' * 43}"
    expression = re.compile(access.IDENTITY_VALIDATION_EXPRESSION)
    assert expression.search(f"Bearer {live}")
    # `$` (Java's as Python's) admits a final newline, which no HTTP header value can hold; the function refuses it.
    assert [spelling for spelling in SPELLINGS if expression.search(spelling.format(live, live))] == ["Bearer {}\n"]
    assert not expression.search(f"Bearer {live.replace('live', 'test', 1)}")  # a deployed stage's keys are live
    template = json.loads((infra.ROOT / "infra" / "prod.json").read_text())
    security = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["securityDefinitions"]
    assert security[access.AUTHORIZER_NAME]["x-amazon-apigateway-authorizer"] == {
        "identityValidationExpression": access.IDENTITY_VALIDATION_EXPRESSION}


def test_an_account_below_zero_or_with_no_floor_needs_admin(client):
    writer, admin = make_key("tenant-a", ["write"]), make_key("tenant-a", ["admin"])
    before = stored_items()
    for lending in ({"floor": None}, {"overdraft_limit": 2**63 - 1}, {"overdraft_limit": 500}, {"floor": -1}):
        refused = send(client, "POST", "/v1/accounts", {"id": "mint", "unit": "USD", **lending}, writer)
        assert refused.status_code == 403 and refused.json_body["error"] == "this key lacks the admin scope", lending
    assert stored_items() == before
    assert send(client, "POST", "/v1/accounts", {"id": "ok", "unit": "USD", "floor": 5}, writer).status_code == 201
    assert send(client, "POST", "/v1/accounts", {"id": "mint", "unit": "USD", "floor": None}, admin).status_code == 201


def test_admin_is_every_v1_scope_but_not_the_seeds_whose_data_every_tenant_shares():
    assert effective(["admin"]) == {"admin", "read", "write", "issue", "points:earn", "points:spend"}
    assert effective(["issue"]) == {"issue", "write", "read"}  # minting: writes that may debit a system account
    assert "seed" in effective(["seed"]) and "seed" not in effective(["admin", "write"])


def test_a_stage_takes_its_own_kind_of_key_only(client):
    live = ApiKeys(live=True).create("tenant-a", ["admin"])[1]  # a deployed stage's key, shown to a test stage
    assert send(client, "GET", "/v1/accounts/x", token=live).status_code == 401
    with pytest.raises(Unauthenticated):
        ApiKeys(live=False).authenticate(live)
    assert ApiKeys(live=True).authenticate(live)[0].tenant == "tenant-a"


def test_points_keys_earn_or_spend_and_read_but_nothing_else(client, tenant_a):
    till = make_key("tenant-a", ["points:spend"])
    assert send(client, "POST", "/v1/points/spend", {"account_id": "member", "points": 5}, till).status_code == 201
    assert send(client, "GET", "/v1/accounts/member", token=till).status_code == 200
    assert send(client, "POST", "/v1/points/earn", {"account_id": "member", "payer": "P", "points": 5},
                till).status_code == 403
    assert send(client, "POST", "/v1/postings", {"account_id": "alice", "amount": 5}, till).status_code == 403


def test_only_a_hash_is_stored_and_tokens_carry_a_readable_prefix(client):
    key, token = ApiKeys(live=False).create("tenant-a", ["read"], label="ci")
    live_key, live_token = ApiKeys(live=True).create("tenant-a", ["read"])
    assert token.startswith("tk_test_key_") and live_token.startswith("tk_live_key_")
    assert len(TOKEN.fullmatch(token).group(3)) == 43  # 32 random bytes
    stored = ApiKeyModel.get(key.id)
    assert token not in json.dumps(stored.serialize()) and stored.secret_hash != token
    assert [listed.id for listed in ApiKeys(live=False).of_tenant("tenant-a")] == [key.id, live_key.id]


def test_the_public_routes_need_no_key_and_the_document_declares_the_scheme(client):
    assert client.raw_http.get("/openapi.json").status_code == 200
    assert client.raw_http.get("/ping").status_code == 200
    document = openapi.document(docs.mounted)
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert {path for path, _, _ in GUARDED} == {path for path in document["paths"] if path.startswith("/v1/")}


def cli(argv: list[str]) -> int:
    """`python -m tools.keys ARGV` on the tables this test's models are bound to (moto)."""
    return keys_cli.run(keys_cli.parse(argv))


def test_the_key_cli_creates_lists_and_revokes(client, capsys):
    assert cli(["create", "--tenant", "acme", "--scopes", "read,write", "--label", "till"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["tenant"] == "acme" and made["scopes"] == ["read", "write"] and TOKEN.fullmatch(made["token"])
    assert send(client, "GET", "/v1/accounts/nobody", token=made["token"]).status_code == 404
    assert cli(["list", "--tenant", "acme"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [key["id"] for key in listed] == [made["id"]] and "token" not in listed[0]
    assert cli(["revoke", made["id"]]) == 0
    assert send(client, "GET", "/v1/accounts/nobody", token=made["token"]).status_code == 401
    assert cli(["create", "--tenant", "Bad Tenant", "--scopes", "read"]) == 2
    assert cli(["create", "--tenant", "acme", "--scopes", "root"]) == 2


def test_a_deployed_tenant_gets_one_usage_plan_key_that_the_authorizer_answers_with(client, services, monkeypatch):
    import boto3

    gateway = boto3.client("apigateway", region_name="us-east-1")
    api = gateway.create_rest_api(name="tally")
    plan = gateway.create_usage_plan(name="tally-prod-tenants")
    monkeypatch.setenv("TALLY_STAGE", "prod")
    assert cli(["create", "--tenant", "acme", "--scopes", "read"]) == 2  # a deployed tenant needs its plan key
    for _ in range(2):
        assert cli(["create", "--tenant", "acme", "--scopes", "read", "--usage-plan", plan["id"],
                              "--token-only"]) == 0
    plan_keys = gateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    assert len(plan_keys) == 1 and plan_keys[0]["name"] == "tally-prod-acme"  # one per tenant: one budget
    stored = list(ApiKeyModel.by_tenant.query("acme"))
    assert {key.usage_key for key in stored} == {plan_keys[0]["value"]}
    token = ApiKeys(live=True).create("acme", ["read"], usage_key=stored[0].usage_key)[1]
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {token}",
             "methodArn": f"arn:aws:execute-api:us-east-1:123456789012:{api['id']}/api/GET/v1/accounts/x"}
    with serving(composition.build(replace(services.settings, deployed=True))):  # as a deployed stage's root
        answer = access.key_authorizer(event, None)
        assert answer["usageIdentifierKey"] == plan_keys[0]["value"]
        assert answer["context"]["tenant"] == "acme" and answer["principalId"] == TOKEN.fullmatch(token).group(2)
        with pytest.raises(Exception, match="^Unauthorized$"):
            access.key_authorizer({**event, "authorizationToken": "Bearer nope"}, None)


def test_a_verified_key_is_remembered_as_long_as_api_gateway_keeps_its_answer_and_no_longer(aws):
    """`make run` measures what a deployed stage serves: a key is read once per TTL, as API Gateway's cache does;
    revoked, it works until that time is up, then not."""
    from datetime import UTC, datetime, timedelta

    from chalicelib.config import KEY_CACHE_SECONDS
    from helpers import Clock
    from tools.request_counter import DynamoDBRequests

    clock = Clock(datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    keys = ApiKeys(live=False, clock=clock, remember_seconds=KEY_CACHE_SECONDS)
    token = make_key("tenant-a", ["write"])
    with DynamoDBRequests() as requests:
        first = keys.authenticate(token)
        assert keys.authenticate(token) == first
    assert requests.total == 1
    ApiKeys(live=False).revoke(TOKEN.fullmatch(token).group(2))
    clock.now += timedelta(seconds=KEY_CACHE_SECONDS - 1)
    assert keys.authenticate(token)[0].tenant == "tenant-a"  # within the TTL, as deployed
    clock.now += timedelta(seconds=1)
    with pytest.raises(Unauthenticated):
        keys.authenticate(token)


def test_the_test_stage_remembers_no_key_and_no_stage_longer_than_the_authorizer_ttl():
    from chalicelib.config import load
    from chalicelib.web.access import TTL_SECONDS

    assert load({"TALLY_STAGE": "test"}).key_cache_seconds == 0
    assert load({"TALLY_STAGE": "local"}).key_cache_seconds == TTL_SECONDS
    # Deployed, API Gateway's cache is the only one: the function's own would double a revoked key's time.
    deployed = {"TALLY_STAGE": "local", "AWS_LAMBDA_FUNCTION_NAME": "tally-prod-api", "TALLY_KEY_CACHE_SECONDS": "60"}
    assert load(deployed).key_cache_seconds == 0
    with pytest.raises(ValueError, match="TALLY_KEY_CACHE_SECONDS"):
        load({"TALLY_STAGE": "local", "TALLY_KEY_CACHE_SECONDS": str(TTL_SECONDS + 1)})
