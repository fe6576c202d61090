"""Issue 23, an auditor's second pass (moto): no money from nothing without the `issue` scope, a refused request
writes nothing, a replay with another body is a conflict on every idempotent route, a body that reads two ways is
refused, and text that acts on a terminal is neither stored nor printed."""
from __future__ import annotations

import json

import pytest
from tally_client.cli import terminal_safe
from test_hostile_input import BODY_ROUTES, TXN, ledger_requests, refused, send, user_of_002

from chalicelib.core import models
from helpers import make_key, v1_request
from tools.request_counter import DynamoDBRequests

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


def as_key(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def ok(response, status: int = 201) -> dict:
    assert response.status_code == status, response.json_body
    return response.json_body


def balance(client, account_id: str) -> int:
    return ok(v1_request(client, "GET", f"/v1/accounts/{account_id}"), 200)["balance"]


def item_counts() -> dict[str, int]:
    return {kind: model.count() for kind, model in models.MODELS.items()}


def writes_of(requests) -> int:
    return sum(requests.calls.get(operation, 0) for operation in WRITES)


@pytest.fixture
def accounts(client):
    """Two USD accounts with 100 in each (posted with the admin key)."""
    for account_id in ("a", "b"):
        ok(v1_request(client, "POST", "/v1/accounts", {"id": account_id, "unit": "USD"}))
        ok(v1_request(client, "POST", "/v1/postings", {"account_id": account_id, "amount": 100}))
    return client


# -- 1. minting needs the issue scope -----------------------------------------------------------------------------
MINTS = [
    ("/v1/postings", {"account_id": "a", "amount": 10**18}),
    ("/v1/postings", {"account_id": "a", "amount": 5, "counter_account": "@world:USD"}),
    ("/v1/transfers", {"source": "@world:USD", "destination": "b", "amount": 10**18}),
]


@pytest.mark.parametrize(("path", "body"), MINTS)
def test_a_write_key_cannot_make_money_from_nothing_and_writes_nothing(accounts, path, body):
    write = as_key(make_key(scopes=("write",)))
    with DynamoDBRequests() as requests:
        answer = refused(v1_request(accounts, "POST", path, body, headers=write), 403)
    assert answer["code"] == "forbidden" and "issue" in answer["error"]
    assert writes_of(requests) == 0, dict(requests.calls)
    assert (balance(accounts, "a"), balance(accounts, "b"), balance(accounts, "@world:USD")) == (100, 100, -200)


@pytest.mark.parametrize(("path", "body"), [MINTS[1], (MINTS[2][0], {**MINTS[2][1], "amount": 5})])
@pytest.mark.parametrize("scopes", [("issue",), ("admin",)])
def test_the_issue_scope_and_admin_may_mint(accounts, path, body, scopes):
    ok(v1_request(accounts, "POST", path, body, headers=as_key(make_key(scopes=scopes))))
    assert balance(accounts, "@world:USD") == -205


def test_a_key_mints_no_more_than_its_limit_per_request(accounts):
    limited = as_key(make_key(scopes=("issue",), issue_limit=50))
    answer = refused(v1_request(accounts, "POST", "/v1/postings", {"account_id": "a", "amount": 51}, headers=limited),
                     403)
    assert answer["code"] == "issue_limit_reached" and answer["param"] == "amount"
    ok(v1_request(accounts, "POST", "/v1/postings", {"account_id": "a", "amount": 50}, headers=limited))
    assert balance(accounts, "a") == 150


def test_a_key_mints_no_more_than_its_daily_limit_per_unit_and_a_replay_counts_once(accounts, clock):
    from datetime import UTC, datetime, timedelta

    # An hour before a UTC midnight, after the fixture's postings (a container never stamps before its last stamp).
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    clock.now = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 23, 0, tzinfo=UTC)
    limited = as_key(make_key(scopes=("issue",), daily_issue_limit=100))
    deposit = {"account_id": "a", "amount": 60}
    ok(v1_request(accounts, "POST", "/v1/postings", deposit, key="d-1", headers=limited))
    ok(v1_request(accounts, "POST", "/v1/postings", deposit, key="d-1", headers=limited))  # a replay: not counted
    ok(v1_request(accounts, "POST", "/v1/transfers", {"source": "@world:USD", "destination": "b", "amount": 40},
                  headers=limited))
    with DynamoDBRequests() as requests:
        answer = refused(v1_request(accounts, "POST", "/v1/postings", {"account_id": "a", "amount": 1},
                                    headers=limited), 403)
    assert answer["code"] == "issue_limit_reached" and "100" in answer["error"]
    assert writes_of(requests) == 0
    # Money moving between accounts or out is not minting: the limit does not count it.
    ok(v1_request(accounts, "POST", "/v1/postings", {"account_id": "a", "amount": -10}, headers=limited))
    clock.now += timedelta(hours=1)  # the next UTC day
    ok(v1_request(accounts, "POST", "/v1/postings", {"account_id": "a", "amount": 100}, headers=limited))
    assert (balance(accounts, "a"), balance(accounts, "b")) == (250, 140)


def test_issue_limits_are_positive_and_only_for_keys_that_may_mint(aws):
    from chalicelib.core.api_keys import ApiKeys
    from chalicelib.core.errors import InvalidRequest

    for scopes, limits in [(["write"], {"issue_limit": 5}), (["issue"], {"issue_limit": 0}),
                           (["issue"], {"daily_issue_limit": True}), (["admin"], {"daily_issue_limit": 2**63})]:
        with pytest.raises(InvalidRequest):
            ApiKeys(live=False).create("t1", scopes, **limits)


def test_a_write_key_still_moves_money_between_accounts_and_out_of_the_ledger(accounts):
    write = as_key(make_key(scopes=("write",)))
    ok(v1_request(accounts, "POST", "/v1/transfers", {"source": "a", "destination": "b", "amount": 30}, headers=write))
    ok(v1_request(accounts, "POST", "/v1/postings", {"account_id": "a", "amount": -20}, headers=write))
    ok(v1_request(accounts, "POST", "/v1/transfers", {"source": "b", "destination": "@world:USD", "amount": 10},
                  headers=write))
    assert (balance(accounts, "a"), balance(accounts, "b"), balance(accounts, "@world:USD")) == (50, 120, -170)


def test_reversing_what_left_the_ledger_mints_so_it_needs_the_issue_scope_and_counts_against_its_limit(accounts):
    """A payout reversed brings money back from the system account: a write key may not (it could re-mint every
    payout of the tenant); an issue key may, within its limits."""
    write = as_key(make_key(scopes=("write",)))
    payout = ok(v1_request(accounts, "POST", "/v1/postings", {"account_id": "a", "amount": -60}, headers=write))
    ok(v1_request(accounts, "POST", "/v1/holds", {"account_id": "b", "amount": 40, "expires_at":
                                                  "2099-01-01T00:00:00Z"}, key="h-1"))
    hold = ok(v1_request(accounts, "GET", "/v1/holds"), 200)["data"][0]
    captured = ok(v1_request(accounts, "POST", f"/v1/holds/{hold['id']}/capture", {}, headers=write),
                  200)["transaction"]["id"]
    paid_out = [payout["id"], captured]
    with DynamoDBRequests() as requests:
        for transaction_id in paid_out:
            answer = refused(v1_request(accounts, "POST", f"/v1/transactions/{transaction_id}/reversals", {},
                                        headers=write), 403)
            assert answer["code"] == "forbidden" and "issue" in answer["error"]
    assert writes_of(requests) == 0
    limited = as_key(make_key(scopes=("issue",), daily_issue_limit=70))
    ok(v1_request(accounts, "POST", f"/v1/transactions/{payout['id']}/reversals", {}, headers=limited))
    answer = refused(v1_request(accounts, "POST", f"/v1/transactions/{captured}/reversals", {}, headers=limited), 403)
    assert answer["code"] == "issue_limit_reached"  # 60 of 70 minted today: 40 more would pass the limit
    ok(v1_request(accounts, "POST", f"/v1/transactions/{captured}/reversals", {"amount": 10}, headers=limited))
    assert (balance(accounts, "a"), balance(accounts, "b"), balance(accounts, "@world:USD")) == (100, 70, -170)


def test_reversing_a_points_spend_gives_points_back_from_the_issuer_so_it_needs_points_earn(client):
    ok(v1_request(client, "POST", "/v1/accounts", {"id": "m", "unit": "points", "kind": "points"}))
    ok(v1_request(client, "POST", "/v1/points/earn", {"account_id": "m", "payer": "brand", "points": 50}))
    spend = ok(v1_request(client, "POST", "/v1/points/spend", {"account_id": "m", "points": 20}))
    path = f"/v1/transactions/{spend['id']}/reversals"
    assert refused(v1_request(client, "POST", path, {}, headers=as_key(make_key(scopes=("write",)))), 403)
    ok(v1_request(client, "POST", path, {"amount": 5}, headers=as_key(make_key(scopes=("write", "points:earn")))))
    ok(v1_request(client, "POST", path, {}, headers=as_key(make_key(scopes=("issue",)))))
    assert balance(client, "m") == 50


def test_points_are_earned_with_points_earn_alone(client):
    ok(v1_request(client, "POST", "/v1/accounts", {"id": "m", "unit": "points", "kind": "points"}))
    earn = as_key(make_key(scopes=("points:earn",)))
    ok(v1_request(client, "POST", "/v1/points/earn", {"account_id": "m", "payer": "brand", "points": 50},
                  headers=earn))
    assert balance(client, "m") == 50


def test_a_unit_is_one_kinds_so_points_earn_never_mints_money(accounts):
    """Were a points account in USD, a points:earn key's earn would come from @world:USD: money from nothing."""
    answer = refused(v1_request(accounts, "POST", "/v1/accounts", {"id": "p", "unit": "USD", "kind": "points"}))
    assert answer["param"] == "unit" and "standard" in answer["error"]
    ok(v1_request(accounts, "POST", "/v1/accounts", {"id": "m", "unit": "points", "kind": "points"}))
    assert refused(v1_request(accounts, "POST", "/v1/accounts", {"id": "s", "unit": "points"}))["param"] == "unit"
    # Known from the store too, not only from what this container opened.
    from chalicelib.core.transactions import Transactions, book_of
    from helpers import TENANT

    fresh = Transactions(book_of(TENANT))
    with pytest.raises(Exception, match="a unit of its own"):
        fresh.open_account("q", "USD", kind="points", floor=0, idempotency_key="fresh-1")


# -- 2. a refused request writes nothing --------------------------------------------------------------------------
def test_a_refused_open_writes_no_system_account(client):
    ok(v1_request(client, "POST", "/v1/accounts", {"id": "a", "unit": "USD"}, key="open-a"))
    before = item_counts()
    assert refused(v1_request(client, "POST", "/v1/accounts", {"id": "a", "unit": "EUR"}), 409)
    assert refused(v1_request(client, "POST", "/v1/accounts", {"id": "c", "unit": "GBP"}, key="open-a"), 409)
    assert item_counts() == before
    for unit in ("EUR", "GBP"):
        refused(v1_request(client, "GET", f"/v1/accounts/@world:{unit}"), 404)
    listed = ok(v1_request(client, "GET", "/v1/accounts"), 200)["data"]
    assert sorted(account["id"] for account in listed) == ["@world:USD", "a"]


def test_a_fresh_container_finds_the_system_account_with_a_read_and_writes_only_the_posting(accounts):
    """A container that has not met a unit's system account reads it (one GetItem) rather than trying to open it:
    that was a cancelled transaction of every shard, and the sweep, which may not write accounts, would be refused."""
    from chalicelib.core.transactions import Transactions, book_of
    from helpers import TENANT

    fresh = Transactions(book_of(TENANT))
    for account_id in ("a", "@world:USD"):  # their journals read: the fixture's postings out of their logs
        assert accounts.http.get(f"/v1/accounts/{account_id}/entries").status_code == 200
    with DynamoDBRequests() as requests:
        fresh.post("a", 5, idempotency_key="fresh-post")
    assert requests.calls.get("TransactWriteItems") == 1, dict(requests.calls)
    assert balance(accounts, "a") == 105


# -- 3. a replay with another body is a conflict -----------------------------------------------------------------
@pytest.mark.parametrize("second", [{"amount": 6}, {"amount": 5, "metadata": {"why": "other"}}, {}])
def test_a_reversal_replayed_with_another_body_is_a_conflict(accounts, second):
    posting = ok(v1_request(accounts, "POST", "/v1/postings", {"account_id": "a", "amount": 5}))
    path = f"/v1/transactions/{posting['id']}/reversals"
    first = ok(v1_request(accounts, "POST", path, {"amount": 5}, key="rev-1"))
    again = v1_request(accounts, "POST", path, {"amount": 5}, key="rev-1")
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json_body["id"] == first["id"]
    with DynamoDBRequests() as requests:
        assert refused(v1_request(accounts, "POST", path, second, key="rev-1"), 409)["code"] == "idempotency_key_reused"
    assert writes_of(requests) == 0
    assert balance(accounts, "a") == 100


def test_a_partial_reversal_replayed_with_another_amount_is_a_conflict(accounts):
    posting = ok(v1_request(accounts, "POST", "/v1/postings", {"account_id": "a", "amount": 10}))
    path = f"/v1/transactions/{posting['id']}/reversals"
    ok(v1_request(accounts, "POST", path, {"amount": 3}, key="rev-2"))
    assert refused(v1_request(accounts, "POST", path, {"amount": 4}, key="rev-2"), 409)["code"] == \
        "idempotency_key_reused"
    assert balance(accounts, "a") == 107


def test_a_points_reversal_replayed_with_another_body_is_a_conflict(client):
    ok(v1_request(client, "POST", "/v1/accounts", {"id": "m", "unit": "points", "kind": "points"}))
    ok(v1_request(client, "POST", "/v1/points/earn", {"account_id": "m", "payer": "brand", "points": 50}))
    spend = ok(v1_request(client, "POST", "/v1/points/spend", {"account_id": "m", "points": 20}))
    path = f"/v1/transactions/{spend['id']}/reversals"
    ok(v1_request(client, "POST", path, {}, key="rev-3"))
    assert refused(v1_request(client, "POST", path, {"metadata": {"a": "b"}}, key="rev-3"), 409)["code"] == \
        "idempotency_key_reused"
    assert v1_request(client, "POST", path, {}, key="rev-3").status_code == 201
    assert balance(client, "m") == 50


def test_a_key_used_for_a_hold_cannot_replay_as_a_reversal(accounts):
    posting = ok(v1_request(accounts, "POST", "/v1/postings", {"account_id": "a", "amount": 5}))
    ok(v1_request(accounts, "POST", f"/v1/transactions/{posting['id']}/reversals", {}))
    ok(v1_request(accounts, "POST", "/v1/holds", {"account_id": "a", "amount": 1}, key="hold-1"))
    answer = refused(v1_request(accounts, "POST", f"/v1/transactions/{posting['id']}/reversals", {}, key="hold-1"),
                     409)
    assert answer["code"] == "idempotency_key_reused"


# -- 4. a key given twice ---------------------------------------------------------------------------------------
def test_a_body_with_a_key_given_twice_is_400_naming_it_on_every_surface(client):
    _user, bearer = user_of_002(client)
    extra = {"002": bearer, "004": TXN, "v1": {"Idempotency-Key": "twice-1"}}
    with DynamoDBRequests() as requests:
        for method, path, needs in BODY_ROUTES:
            body = refused(send(client, method, path, '{"account_id": "c1", "amount": 5, "amount": -7}',
                                extra.get(needs)))
            assert body["code"] == "invalid_request" and "amount" in body["error"], (path, body)
            nested = refused(send(client, method, path, '{"metadata": {"k": "1", "k": "2"}}', extra.get(needs)))
            assert "k" in nested["error"], (path, nested)
    assert not ledger_requests(requests), dict(requests.calls)


def test_the_key_given_twice_is_the_param_of_a_v1_answer(client):
    answer = refused(send(client, "POST", "/v1/postings", '{"account_id": "c1", "amount": 5, "amount": -7}',
                          {"Idempotency-Key": "twice-2"}))
    assert answer["param"] == "amount"


# -- 5. text that acts on a terminal ------------------------------------------------------------------------------
ESCAPES = ["\u001b]0;pwned\u0007\u001b[2J", "a\u0000b", "\u202eevil", "x\u0085y", "line\u2028break", "tab\tand\nline",
           "bra\u200bnd", "x\ufeffy", "rlm\u200f"]


@pytest.mark.parametrize("text", ESCAPES)
def test_control_characters_are_refused_in_names_and_written_nowhere(client, text):
    _user, bearer = user_of_002(client)
    ok(v1_request(client, "POST", "/v1/accounts", {"id": "m", "unit": "points", "kind": "points"}))
    attempts = [
        ("POST", "/add", {"payer": text, "points": 10, "timestamp": "2020-11-02T14:00:00Z"}, None),
        ("POST", "/transaction", {"payer": text, "points": 10, "timestamp": "2020-11-02T14:00:00Z"}, None),
        ("POST", "/v1/points/earn", {"account_id": "m", "payer": text, "points": 10}, {"Idempotency-Key": "e-1"}),
        ("POST", "/v1/accounts", {"unit": "USD", "metadata": {text: "v"}}, {"Idempotency-Key": "o-1"}),
        ("POST", "/v1/accounts", {"id": text, "unit": "USD"}, {"Idempotency-Key": "o-2"}),
        ("POST", "/v1/accounts", {"unit": text}, {"Idempotency-Key": "o-3"}),
        ("POST", "/api/v1/wallet/create", {"type": text, "user_id": _user}, bearer),
    ]
    with DynamoDBRequests() as requests:
        for method, path, body, headers in attempts:
            answer = refused(send(client, method, path, body, headers))
            assert answer["code"] == "invalid_request", (path, answer)
    assert writes_of(requests) == 0, dict(requests.calls)


@pytest.mark.parametrize("text", ESCAPES[:5])
def test_control_characters_are_refused_in_metadata_values(client, text):
    answer = refused(v1_request(client, "POST", "/v1/accounts", {"unit": "USD", "metadata": {"note": text}}))
    assert answer["param"] == "metadata.note"


def test_free_text_may_hold_tabs_line_breaks_joiners_and_direction_marks(client):
    note = "one\ttwo\nthree \U0001f469\u200d\U0001f4bb \u05e9\u05dc\u05d5\u05dd\u200f"
    made = ok(v1_request(client, "POST", "/v1/accounts", {"unit": "USD", "metadata": {"note": note}}))
    assert made["metadata"] == {"note": note}


def test_the_cli_shows_what_acts_on_a_terminal_escaped():
    shown = terminal_safe("m  \u001b]0;pwned\u0007\u001b[2J \u202eevil \u0085 x\ty bra\u200bnd \u2028")
    assert shown.isascii() and shown.isprintable()
    assert shown == "m  \\x1b]0;pwned\\x07\\x1b[2J \\u202eevil \\x85 x\\ty bra\\u200bnd \\u2028"


def test_the_cli_prints_an_answer_escaped(capsys):
    from tally_client import cli

    cli.Output(as_json=False)({"id": "x"}, lambda _value: ["payer \u001b[2Jbrand"])
    assert capsys.readouterr().out == "payer \\x1b[2Jbrand\n"
    cli.Output(as_json=True)({"payer": "\u001b[2J\u202e"}, lambda _value: [])
    assert json.loads(capsys.readouterr().out) == {"payer": "\u001b[2J\u202e"}  # escaped by json.dumps


@pytest.mark.parametrize("query", ["start=0001-01-01T00:00:00Z", "start=0001-01-01T00:00:00Z&end=0001-01-01T00:00:00Z",
                                   "end=9999-12-31T23:59:59Z"])
def test_a_statement_of_the_edges_of_time_is_answered_not_a_500(accounts, query):
    statement = ok(v1_request(accounts, "GET", f"/v1/accounts/a/statement?{query}"), 200)
    assert statement["opening_balance"] == 0


def test_an_open_without_an_id_retried_with_its_key_answers_the_account_it_opened(client):
    first = ok(v1_request(client, "POST", "/v1/accounts", {"unit": "USD"}, key="open-anon"))
    again = v1_request(client, "POST", "/v1/accounts", {"unit": "USD"}, key="open-anon")
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json_body["id"] == first["id"]
    assert refused(v1_request(client, "POST", "/v1/accounts", {"unit": "EUR"}, key="open-anon"), 409)


@pytest.mark.parametrize("path", ["/v1/accounts?limit=5&limit=1000", "/v1/accounts?limit=1000&limit=5",
                                  "/v1/transactions?type=posting&type=transfer"])
def test_a_query_parameter_given_twice_is_400_naming_it(client, path):
    answer = refused(v1_request(client, "GET", path))
    assert answer["param"] in ("limit", "type") and "more than once" in answer["error"]


def test_a_long_key_given_twice_is_named_cut_short(client):
    key = "k" * 5000
    answer = refused(send(client, "POST", "/v1/postings", f'{{"{key}": 1, "{key}": 2}}', {"Idempotency-Key": "long-1"}))
    assert len(answer["param"]) < 100 and len(answer["error"]) < 200


def test_a_hold_without_expires_at_retried_with_its_key_answers_the_hold_it_made(accounts, clock):
    """Its default expiry is made from the time, so it differs on each retry: the key compares what was asked."""
    from datetime import UTC, datetime, timedelta

    clock.now = datetime(2030, 1, 1, tzinfo=UTC)
    first = ok(v1_request(accounts, "POST", "/v1/holds", {"account_id": "a", "amount": 5}, key="hold-default"))
    clock.now += timedelta(seconds=3)
    again = v1_request(accounts, "POST", "/v1/holds", {"account_id": "a", "amount": 5}, key="hold-default")
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json_body["id"] == first["id"]
    assert ok(v1_request(accounts, "GET", "/v1/accounts/a"), 200)["held"] == 5
