"""Seeds 002 (Wallet App, JWT) and 003 (Asper-Wallet), as their READMEs and `contracts.md` state them (moto)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

import app as tally
from chalicelib.core.verify import check_account
from tools.request_counter import DynamoDBRequests

JSON = {"Content-Type": "application/json"}
TODAY = datetime.now(UTC).date().isoformat()


def send(client, method: str, path: str, body=None, token: str | None = None, headers=None):
    payload = body if isinstance(body, str) or body is None else json.dumps(body)
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return getattr(client.http, method.lower())(path, headers={**JSON, **auth, **(headers or {})}, body=payload)


def register(client, phone: str = "9886977544") -> dict:
    response = send(client, "POST", "/api/v1/users", {"phone_number": phone})
    assert response.status_code == 201, response.json_body
    return response.json_body


def wallet_of(client, user: dict, wallet_type: str = "type1") -> dict:
    response = send(client, "POST", "/api/v1/wallet/create", {"user_id": user["user_id"], "type": wallet_type},
                    user["access_token"])
    assert response.status_code == 201, response.json_body
    return response.json_body


def transact(client, user: dict, wallet: dict, amount, is_credit: bool = True, headers=None):
    return send(client, "POST", "/api/v1/transactions/create",
                {"user_id": user["user_id"], "wallet_id": wallet["wallet_id"], "amount": amount,
                 "is_credit": is_credit}, user["access_token"], headers)


def token(user_id: int, kind: str = "access", minutes: int = 5, secret: str | None = None) -> str:
    now = datetime.now(UTC)
    return jwt.encode({"sub": str(user_id), "type": kind, "iat": now, "exp": now + timedelta(minutes=minutes)},
                      secret or tally.services.settings.jwt_secret, algorithm="HS256")


# -- seed 002 -----------------------------------------------------------------------
def test_the_wallet_app_flow_from_its_readme(client):
    user = register(client)
    assert user["user_id"] == 1 and user["phone_number"] == "9886977544"
    assert user["access_token"] and user["refresh_token"]
    wallet = wallet_of(client, user)
    assert wallet == {"wallet_id": 1, "user_id": 1, "type": "type1", "balance": 0}
    credited = transact(client, user, wallet, 20)
    assert credited.status_code == 201
    body = credited.json_body
    assert (body["transaction_id"], body["wallet_id"], body["amount"], body["is_credit"], body["balance"]) == (
        "1-1", 1, 20, True, 20)
    assert transact(client, user, wallet, 100.5).json_body["balance"] == 120.5
    assert transact(client, user, wallet, 0.25, is_credit=False).json_body["balance"] == 120.25
    got = send(client, "GET", "/api/v1/wallet/get/1/type1", token=user["access_token"])
    assert got.status_code == 200 and got.json_body["balance"] == 120.25
    listed = send(client, "GET", "/api/v1/transactions/get/1/1", token=user["access_token"]).json_body
    assert [item["amount"] for item in listed["transactions"]] == [0.25, 100.5, 20]  # newest first
    assert [item["balance"] for item in listed["transactions"]] == [120.25, 120.5, 20]
    assert listed["next_cursor"] is None
    totals = send(client, "POST", "/api/v1/transactions/get/total_in_period",
                  {"user_id": 1, "wallet_id": 1, "start_date": "2024-04-19T05:27:13", "end_date": f"{TODAY}T23:59:59"},
                  user["access_token"])
    assert totals.status_code == 200
    assert totals.json_body == {"total_credit": 120.5, "total_debit": 0.25, "count": 3}
    assert check_account(tally.services.wallets.ledger, "1") == []


def test_ids_are_integers_from_one_and_phones_and_wallet_types_are_unique(client):
    first, second = register(client, "+4915112345678"), register(client, "1234567")
    assert (first["user_id"], second["user_id"]) == (1, 2)
    taken = send(client, "POST", "/api/v1/users", {"phone_number": "1234567"})
    assert taken.status_code == 409 and "phone" in taken.json_body["error"]
    assert wallet_of(client, first)["wallet_id"] == 1
    assert wallet_of(client, second)["wallet_id"] == 2
    assert wallet_of(client, first, "savings")["wallet_id"] == 3
    again = send(client, "POST", "/api/v1/wallet/create", {"user_id": 1, "type": "type1"}, first["access_token"])
    assert again.status_code == 409
    assert register(client, "7654321")["user_id"] == 3


@pytest.mark.parametrize("body", [{}, {"phone_number": "12345"}, {"phone_number": "1234567890123456"},
                                  {"phone_number": "98869abc44"}, {"phone_number": 9886977544},
                                  {"phone_number": "+"}, {"phone_number": "98 86 97"}])
def test_a_bad_phone_number_is_400(client, body):
    response = send(client, "POST", "/api/v1/users", body)
    assert response.status_code == 400
    assert "phone_number" in response.json_body["error"]


def test_auth_failures_are_401_and_another_users_token_is_403(client):
    owner, other = register(client, "1111111"), register(client, "2222222")
    wallet = wallet_of(client, owner)
    paths = [("GET", "/api/v1/wallet/get/1/type1", None),
             ("POST", "/api/v1/wallet/create", {"user_id": 1, "type": "other"}),
             ("POST", "/api/v1/transactions/create", {"user_id": 1, "wallet_id": 1, "amount": 5, "is_credit": True}),
             ("GET", "/api/v1/transactions/get/1/1", None),
             ("POST", "/api/v1/transactions/get/total_in_period",
              {"user_id": 1, "wallet_id": 1, "start_date": "2024-01-01", "end_date": "2030-01-01"})]
    bad_tokens = [None, "not-a-jwt", token(1, minutes=-1), token(1, kind="refresh"),
                  token(1, secret="another-secret-of-thirty-two-bytes!"), owner["refresh_token"]]
    for method, path, body in paths:
        for bad in bad_tokens:
            response = send(client, method, path, body, bad)
            assert response.status_code == 401, (path, bad, response.json_body)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        forbidden = send(client, method, path, body, other["access_token"])
        assert forbidden.status_code == 403, (path, forbidden.json_body)
    assert send(client, "GET", "/api/v1/wallet/get/1/type1", token=owner["access_token"]).json_body["balance"] == 0
    # With their own user id in the body, another user still cannot touch this wallet: to them it is not there.
    theirs = transact(client, other, wallet, 5)
    assert theirs.status_code == 404
    assert send(client, "GET", f"/api/v1/transactions/get/2/{wallet['wallet_id']}",
                token=other["access_token"]).status_code == 404


def probes(user_id: int, wallet_id: int) -> list[tuple[str, str, dict | None]]:
    """Every seed-002 request that names a wallet id, as `user_id` would send it."""
    return [("POST", "/api/v1/transactions/create",
             {"user_id": user_id, "wallet_id": wallet_id, "amount": 5, "is_credit": True}),
            ("POST", "/api/v1/transactions/create",
             {"user_id": user_id, "wallet_id": wallet_id, "amount": 5, "is_credit": False}),
            ("GET", f"/api/v1/transactions/get/{user_id}/{wallet_id}", None),
            ("POST", "/api/v1/transactions/get/total_in_period",
             {"user_id": user_id, "wallet_id": wallet_id, "start_date": "2020-01-01", "end_date": "2100-01-01"})]


def answer(client, method: str, path: str, body, access_token: str, wallet_id: int):
    """Status, body (the id asked for written as "<id>") and the DynamoDB requests it took."""
    with DynamoDBRequests() as requests:
        response = send(client, method, path, body, access_token)
    text = json.dumps(response.json_body).replace(str(wallet_id), "<id>")
    return response.status_code, text, dict(requests.calls)


@pytest.mark.parametrize("entries", [0, 2])  # another user's empty wallet, and one with a history
def test_another_users_wallet_answers_exactly_as_a_missing_one(client, entries):
    """Wallet ids are sequential: another user's must not tell itself from a free id (status, body or reads)."""
    owner, other = register(client, "1111111"), register(client, "2222222")
    theirs = wallet_of(client, owner)
    for _ in range(entries):
        assert transact(client, owner, theirs, 30).status_code == 201
    wallet_of(client, other)  # the prober has a wallet of their own too
    missing = 99
    for (method, path, body), (_, missing_path, missing_body) in zip(
            probes(other["user_id"], theirs["wallet_id"]), probes(other["user_id"], missing), strict=True):
        probed = answer(client, method, path, body, other["access_token"], theirs["wallet_id"])
        absent = answer(client, method, missing_path, missing_body, other["access_token"], missing)
        assert probed[0] == 404 and probed == absent, (path, probed, absent)
    assert send(client, "GET", "/api/v1/wallet/get/1/type1", token=owner["access_token"]).json_body["balance"] == (
        30 * entries)


def test_another_users_id_is_403_whether_or_not_that_user_exists(client):
    """The contract's 403 for a token of another user than the path's or body's, before any read."""
    register(client, "1111111")
    prober = register(client, "2222222")
    for user_id in (1, 99):
        requests = [("GET", f"/api/v1/wallet/get/{user_id}/type1", None),
                    ("POST", "/api/v1/wallet/create", {"user_id": user_id, "type": "t"}),
                    *probes(user_id, 1)]
        for method, path, body in requests:
            status, text, reads = answer(client, method, path, body, prober["access_token"], user_id)
            assert (status, reads) == (403, {}), (path, status, text, reads)
            assert json.loads(text)["error"] == "this token is not user <id>'s"


def test_the_refresh_token_gives_a_working_access_token(client):
    user = register(client)
    refreshed = send(client, "POST", "/api/v1/token/refresh", token=user["refresh_token"])
    assert refreshed.status_code == 200
    assert wallet_of(client, {**user, "access_token": refreshed.json_body["access_token"]})["wallet_id"] == 1
    assert send(client, "POST", "/api/v1/token/refresh", token=user["access_token"]).status_code == 401


def refresh(client, refresh_token: str):
    return send(client, "POST", "/api/v1/token/refresh", token=refresh_token)


def test_a_refresh_token_is_good_once_and_its_use_gives_a_new_pair(client):
    user = register(client)
    first = refresh(client, user["refresh_token"])
    assert first.status_code == 200 and set(first.json_body) == {"access_token", "refresh_token"}
    second = refresh(client, first.json_body["refresh_token"])
    assert second.status_code == 200 and second.json_body["refresh_token"] != first.json_body["refresh_token"]
    assert wallet_of(client, {**user, "access_token": second.json_body["access_token"]})["wallet_id"] == 1


def test_a_refresh_token_reused_after_rotation_revokes_its_whole_family(client):
    """The thief's and the owner's next refresh both fail (401) once either presents a used refresh token."""
    victim, bystander = register(client, "1111111"), register(client, "2222222")
    stolen = victim["refresh_token"]
    rotated = refresh(client, stolen).json_body["refresh_token"]  # the owner's rotation
    reused = refresh(client, stolen)  # the thief's, later
    assert reused.status_code == 401 and reused.json_body["error"] == "this refresh token was already used"
    assert reused.headers["WWW-Authenticate"].startswith("Bearer")
    revoked = refresh(client, rotated)
    assert revoked.status_code == 401 and revoked.json_body["error"] == "this refresh token was revoked"
    assert refresh(client, stolen).status_code == 401
    # The thief rotating first is the same: the owner's use of the used token revokes the thief's new one.
    thief = refresh(client, bystander["refresh_token"]).json_body["refresh_token"]
    assert refresh(client, bystander["refresh_token"]).status_code == 401
    assert refresh(client, thief).status_code == 401
    # Another user's family is not touched.
    fresh = register(client, "3333333")
    assert refresh(client, fresh["refresh_token"]).status_code == 200


def test_two_refreshes_of_one_token_one_wins_and_the_losers_reuse_revokes_the_family(client):
    """Both read the token as current; the rotation is one conditional write, so the second finds it used."""
    from chalicelib.core.errors import Unauthenticated

    tokens = tally.services.refresh_tokens
    family = tokens.start(7, "t0", datetime.now(UTC) + timedelta(days=1))
    outcomes = []
    for new_id in ("winner", "loser"):  # the two requests' writes, in whichever order DynamoDB applies them
        try:
            tokens.rotate(family, 7, "t0", new_id, datetime.now(UTC) + timedelta(days=1))
            outcomes.append(new_id)
        except Unauthenticated as refused:
            outcomes.append(str(refused))
    assert outcomes == ["winner", "this refresh token was already used"]
    with pytest.raises(Unauthenticated, match="^this refresh token was revoked$"):
        tokens.rotate(family, 7, "winner", "next", datetime.now(UTC) + timedelta(days=1))


def test_a_family_is_one_item_however_often_it_rotates_and_expires_with_its_newest_token(client):
    from chalicelib.core.models import DirectoryModel

    user = register(client)
    current = user["refresh_token"]
    for _ in range(5):
        current = refresh(client, current).json_body["refresh_token"]
    stored = [item for item in DirectoryModel.scan() if not item.key.startswith(("user#", "phone#", "wallet#"))]
    assert len(stored) == 1, [item.key for item in stored]
    newest = jwt.decode(current, options={"verify_signature": False})
    assert int(stored[0].expires_at.timestamp()) == newest["exp"]


def test_a_refresh_token_from_before_families_is_used_once_and_starts_one(client):
    user = register(client)
    now = datetime.now(UTC)
    legacy = jwt.encode({"sub": str(user["user_id"]), "type": "refresh", "iat": now, "exp": now + timedelta(days=1),
                         "jti": "legacy-token"}, tally.services.settings.jwt_secret, algorithm="HS256")
    first = refresh(client, legacy)
    assert first.status_code == 200
    assert refresh(client, legacy).status_code == 401
    assert refresh(client, first.json_body["refresh_token"]).status_code == 200


def test_a_debit_below_the_minimum_balance_is_400_and_writes_nothing(client):
    user = register(client)
    wallet = wallet_of(client, user)
    transact(client, user, wallet, 100)
    refused = transact(client, user, wallet, 80.01, is_credit=False)  # would leave 19.99 < 20
    assert refused.status_code == 400
    assert refused.json_body["error"] == "this debit would leave the balance at 19.99, below the minimum 20.00"
    assert transact(client, user, wallet, 80, is_credit=False).json_body["balance"] == 20
    assert transact(client, user, wallet, 0.01, is_credit=False).status_code == 400
    listed = send(client, "GET", "/api/v1/transactions/get/1/1", token=user["access_token"]).json_body
    assert len(listed["transactions"]) == 2
    assert check_account(tally.services.wallets.ledger, "1") == []


@pytest.mark.parametrize("amount", [10.255, 0, -5, "10", None, True, 1e300, "NaN", 10**14])
def test_bad_money_is_400_and_writes_nothing(client, amount):
    user = register(client)
    wallet = wallet_of(client, user)
    response = transact(client, user, wallet, amount)
    assert response.status_code == 400
    assert "amount" in response.json_body["error"]
    assert send(client, "GET", "/api/v1/wallet/get/1/type1", token=user["access_token"]).json_body["balance"] == 0


def test_money_keeps_exact_cents(client):
    user = register(client)
    wallet = wallet_of(client, user)
    for amount in (0.1, 0.2, 10.25, 1e2, 99999999999.99):
        assert transact(client, user, wallet, amount).status_code == 201
    assert send(client, "GET", "/api/v1/wallet/get/1/type1",
                token=user["access_token"]).json_body["balance"] == 100000000110.54


@pytest.mark.parametrize("body", [
    {"user_id": 1, "wallet_id": 1, "amount": 5},
    {"user_id": 1, "wallet_id": 1, "amount": 5, "is_credit": "true"},
    {"user_id": 1, "wallet_id": 1, "amount": 5, "is_credit": 1},
    {"user_id": "1", "wallet_id": 1, "amount": 5, "is_credit": True},
    {"user_id": 1, "wallet_id": 1.0, "amount": 5, "is_credit": True},
    {"user_id": 1, "amount": 5, "is_credit": True},
])
def test_a_malformed_transaction_is_400(client, body):
    user = register(client)
    wallet_of(client, user)
    response = send(client, "POST", "/api/v1/transactions/create", body, user["access_token"])
    assert response.status_code == 400, response.json_body


def test_unknown_wallets_and_types_are_404(client):
    user = register(client)
    assert send(client, "GET", "/api/v1/wallet/get/1/nope", token=user["access_token"]).status_code == 404
    assert transact(client, user, {"wallet_id": 99}, 5).status_code == 404
    assert send(client, "GET", "/api/v1/transactions/get/1/99", token=user["access_token"]).status_code == 404
    assert send(client, "GET", "/api/v1/transactions/get/1/x", token=user["access_token"]).status_code == 404
    bad_type = send(client, "POST", "/api/v1/wallet/create", {"user_id": 1, "type": "no spaces"}, user["access_token"])
    assert bad_type.status_code == 400


def test_history_pages_newest_first_with_a_cursor(client):
    user = register(client)
    wallet = wallet_of(client, user)
    for amount in range(1, 6):
        transact(client, user, wallet, amount)
    seen, cursor = [], None
    while True:
        path = "/api/v1/transactions/get/1/1?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = send(client, "GET", path, token=user["access_token"]).json_body
        seen += [item["amount"] for item in page["transactions"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [5, 4, 3, 2, 1]
    for query in ("limit=0", "limit=1001", "limit=x", "cursor=!!!"):
        assert send(client, "GET", f"/api/v1/transactions/get/1/1?{query}",
                    token=user["access_token"]).status_code == 400, query


def test_totals_cover_only_the_period(client):
    user = register(client)
    wallet = wallet_of(client, user)
    transact(client, user, wallet, 50)
    transact(client, user, wallet, 5, is_credit=False)

    def totals(start, end):
        return send(client, "POST", "/api/v1/transactions/get/total_in_period",
                    {"user_id": 1, "wallet_id": 1, "start_date": start, "end_date": end}, user["access_token"])
    assert totals("2020-01-01", "2020-12-31").json_body == {"total_credit": 0, "total_debit": 0, "count": 0}
    assert totals("2020-01-01T00:00:00+05:00", "2100-01-01").json_body == {
        "total_credit": 50, "total_debit": 5, "count": 2}
    assert totals("yesterday", "2100-01-01").status_code == 400


def test_a_period_reads_at_most_its_newest_entries_in_one_query(client, monkeypatch):
    from chalicelib.core.ledger import journal
    from tools.request_counter import DynamoDBRequests

    monkeypatch.setattr(journal, "MAX_PERIOD_ENTRIES", 3)  # 1,000 in service
    user = register(client)
    wallet = wallet_of(client, user)
    for amount in (100, 200, 300, 400):
        transact(client, user, wallet, amount)
    period = {"user_id": 1, "wallet_id": 1, "start_date": "2020-01-01", "end_date": "2100-01-01"}
    with DynamoDBRequests() as requests:
        totals = send(client, "POST", "/api/v1/transactions/get/total_in_period", period, user["access_token"])
        # The postings went without a read: the first journal read puts them in the journal (one transaction).
        assert dict(requests.calls) == {"GetItem": 1, "TransactWriteItems": 1, "Query": 1}
        requests.reset()
        again = send(client, "POST", "/api/v1/transactions/get/total_in_period", period, user["access_token"])
    assert totals.json_body == again.json_body == {"total_credit": 900, "total_debit": 0, "count": 3}  # the newest 3
    assert dict(requests.calls) == {"GetItem": 1, "Query": 1}  # the log, found empty; the period
    asper = send(client, "POST", "/register", {"phone_number": "5550009999"}).json_body["user_id"]  # 003's own
    asper_wallet = send(client, "POST", "/wallet/create", {"user_id": asper}).json_body["wallet_id"]
    for amount in (100, 200, 300, 400):
        send(client, "POST", "/wallet/credit", {"wallet_id": asper_wallet, "amount": amount})
    send(client, "GET", f"/wallet/transactions?wallet_id={asper_wallet}")  # puts the logged postings in the journal
    with DynamoDBRequests() as requests:
        history = send(client, "GET", f"/wallet/transactions?wallet_id={asper_wallet}").json_body
    assert [item["amount"] for item in history["history"]] == [200, 300, 400]  # the newest 3, oldest first
    assert history["total_credit"] == 900
    assert dict(requests.calls) == {"GetItem": 2, "Query": 1}  # the wallet, its log (empty), the period


def test_an_idempotency_key_applies_a_transaction_once(client):
    user = register(client)
    wallet = wallet_of(client, user)
    key = {"Idempotency-Key": "pay-42"}
    first, again = transact(client, user, wallet, 30, headers=key), transact(client, user, wallet, 30, headers=key)
    assert first.json_body == again.json_body
    reused = transact(client, user, wallet, 31, headers=key)
    assert reused.status_code == 409
    # The key as the client sent it, not as stored (book and user namespaces).
    assert "idempotency key pay-42 was" in reused.json_body["error"] and "/" not in reused.json_body["error"]
    assert send(client, "GET", "/api/v1/wallet/get/1/type1", token=user["access_token"]).json_body["balance"] == 30


def test_wallet_request_budgets(client):
    user = register(client)
    wallet = wallet_of(client, user)
    transact(client, user, wallet, 30)
    # One transaction without a read, then the account read for the answer (seq and balance after).
    posting = {"TransactWriteItems": 1, "GetItem": 1}
    with DynamoDBRequests() as requests:
        for call, expected in [
            (lambda: transact(client, user, wallet, 5), posting),
            (lambda: transact(client, user, wallet, 5, is_credit=False), posting),
            # The first journal read puts the logged postings in the journal: their log, the drain.
            (lambda: send(client, "GET", "/api/v1/transactions/get/1/1", token=user["access_token"]),
             {"GetItem": 1, "TransactWriteItems": 1, "Query": 1}),
            (lambda: send(client, "POST", "/api/v1/transactions/get/total_in_period",
                          {"user_id": 1, "wallet_id": 1, "start_date": "2020-01-01", "end_date": "2100-01-01"},
                          user["access_token"]), {"GetItem": 1, "Query": 1}),
        ]:
            requests.reset()
            assert call().status_code in (200, 201)
            assert dict(requests.calls) == expected


# -- seed 003 -----------------------------------------------------------------------
def test_the_asper_wallet_flow_from_its_readme(client):
    registered = send(client, "POST", "/register", {"phone_number": "1234567890"})
    assert registered.status_code == 201
    assert registered.json_body["user_id"] == 1 and registered.json_body["message"]
    created = send(client, "POST", "/wallet/create", {"user_id": 1})
    assert created.status_code == 201 and created.json_body == {"wallet_id": 1}
    assert send(client, "POST", "/wallet/credit", {"wallet_id": 1, "amount": 1000}).json_body == {"new_balance": 1000}
    debited = send(client, "POST", "/wallet/debit", {"wallet_id": 1, "amount": 500})
    assert debited.status_code == 200 and debited.json_body == {"new_balance": 500}
    assert send(client, "GET", "/wallet/balance/1").json_body == {"balance": 500}
    history = send(client, "GET", f"/wallet/transactions?wallet_id=1&start_date=2024-01-01&end_date={TODAY}")
    assert history.status_code == 200
    body = history.json_body
    assert (body["total_credit"], body["total_debit"]) == (1000, 500)
    assert [(item["amount"], item["type"]) for item in body["history"]] == [(1000, "credit"), (500, "debit")]
    assert all(item["date"].startswith(TODAY) for item in body["history"])
    assert check_account(tally.services.wallets.ledger, "1") == []


def test_asper_refusals_are_400_and_write_nothing(client):
    assert send(client, "POST", "/register", {}).status_code == 400
    send(client, "POST", "/register", {"phone_number": "1234567890"})
    assert send(client, "POST", "/register", {"phone_number": "1234567890"}).status_code == 400  # taken
    assert send(client, "POST", "/wallet/create", {"user_id": 9}).status_code == 400  # unknown user
    send(client, "POST", "/wallet/create", {"user_id": 1})
    assert send(client, "POST", "/wallet/create", {"user_id": 1}).status_code == 400  # a second wallet
    send(client, "POST", "/wallet/credit", {"wallet_id": 1, "amount": 150})
    below = send(client, "POST", "/wallet/debit", {"wallet_id": 1, "amount": 50.01})  # 99.99 < 100
    assert below.status_code == 400 and "minimum 100.00" in below.json_body["error"]
    for body in ({"wallet_id": 1, "amount": 10.255}, {"wallet_id": 1}, {"amount": 5}, {"wallet_id": 2, "amount": 5}):
        assert send(client, "POST", "/wallet/credit", body).status_code == 400, body
    assert send(client, "GET", "/wallet/balance/2").status_code == 400
    assert send(client, "GET", "/wallet/balance/abc").status_code == 400
    assert send(client, "GET", "/wallet/transactions").status_code == 400  # no wallet_id
    assert send(client, "GET", "/wallet/transactions?wallet_id=1&start_date=soon").status_code == 400
    assert send(client, "GET", "/wallet/balance/1").json_body == {"balance": 150}


def test_a_requested_minimum_may_raise_the_floor_never_lower_it(client):
    send(client, "POST", "/register", {"phone_number": "1234567890"})
    send(client, "POST", "/wallet/create", {"user_id": 1})
    send(client, "POST", "/wallet/credit", {"wallet_id": 1, "amount": 1000})
    raised = send(client, "POST", "/wallet/debit", {"wallet_id": 1, "amount": 600, "minimum_balance": 500})
    assert raised.status_code == 400 and "minimum 500.00" in raised.json_body["error"]
    lowered = send(client, "POST", "/wallet/debit", {"wallet_id": 1, "amount": 950, "minimum_balance": 0})
    assert lowered.status_code == 400 and "minimum 100.00" in lowered.json_body["error"]
    assert send(client, "POST", "/wallet/debit", {"wallet_id": 1, "amount": 900, "minimum_balance": 50}).json_body == {
        "new_balance": 100}


def test_the_history_date_range_includes_the_whole_end_day(client):
    send(client, "POST", "/register", {"phone_number": "1234567890"})
    send(client, "POST", "/wallet/create", {"user_id": 1})
    send(client, "POST", "/wallet/credit", {"wallet_id": 1, "amount": 10})
    today = send(client, "GET", f"/wallet/transactions?wallet_id=1&start_date={TODAY}&end_date={TODAY}").json_body
    assert today["total_credit"] == 10 and len(today["history"]) == 1
    past = send(client, "GET", "/wallet/transactions?wallet_id=1&start_date=2020-01-01&end_date=2020-12-31").json_body
    assert past == {"total_credit": 0, "total_debit": 0, "history": []}


def test_the_wallet_surfaces_share_phone_numbers_and_nothing_else(client):
    """One phone number, one user (contracts.md); but a user's id and wallets mean nothing to the other surface."""
    user = register(client, "1234567890")
    assert send(client, "POST", "/register", {"phone_number": "1234567890"}).status_code == 400
    typed = wallet_of(client, user, "type1")
    assert send(client, "GET", f"/wallet/balance/{typed['wallet_id']}").status_code == 400
    assert send(client, "POST", "/wallet/credit", {"wallet_id": typed["wallet_id"], "amount": 5}).status_code == 400
    refused = send(client, "POST", "/wallet/create", {"user_id": user["user_id"]})
    assert refused.status_code == 400 and refused.json_body["code"] == "not_found"
    assert send(client, "GET", f"/api/v1/wallet/get/{user['user_id']}/default",
                token=user["access_token"]).status_code == 404


def stored_items() -> dict:
    """Every item of the tables a wallet posting writes, as stored."""
    from chalicelib.core.models import AccountModel, EntryModel, IdempotencyModel
    return {model.__name__: sorted(json.dumps(item.to_simple_dict(), sort_keys=True, default=str)
                                   for item in model.scan())
            for model in (AccountModel, EntryModel, IdempotencyModel)}


def test_a_002_wallet_is_invisible_to_003_even_of_type_default(client):
    """Issue 14: a JWT-guarded wallet read, listed and debited through 003 with no token (ids are sequential)."""
    user = register(client)
    wallet = wallet_of(client, user, "default")
    assert transact(client, user, wallet, 500).status_code == 201
    unknown = {"wallet_id": 99, "amount": 5}
    answers_for_unknown = [send(client, "POST", "/wallet/debit", unknown).json_body,
                           send(client, "GET", "/wallet/balance/99").json_body,
                           send(client, "GET", "/wallet/transactions?wallet_id=99").json_body]
    wallet_id = wallet["wallet_id"]
    stored = stored_items()
    with DynamoDBRequests() as requests:
        answers = [send(client, "POST", "/wallet/debit", {"wallet_id": wallet_id, "amount": 5}),
                   send(client, "POST", "/wallet/credit", {"wallet_id": wallet_id, "amount": 5}),
                   send(client, "GET", f"/wallet/balance/{wallet_id}"),
                   send(client, "GET", f"/wallet/transactions?wallet_id={wallet_id}")]
    # A posting without a read is tried and cancelled by its condition (the wallet is not 003's): nothing written.
    assert "PutItem" not in requests.calls and stored_items() == stored
    assert [answer.status_code for answer in answers] == [400] * 4
    # The same answer as for a wallet that does not exist, but for the id it names.
    assert [answer.json_body for answer in (answers[0], answers[2], answers[3])] == [
        {key: value.replace("99", str(wallet_id)) for key, value in body.items()} for body in answers_for_unknown]
    assert send(client, "GET", f"/api/v1/wallet/get/{user['user_id']}/default",
                token=user["access_token"]).json_body["balance"] == 500
    assert check_account(tally.services.wallets.ledger, str(wallet_id)) == []


def test_a_003_user_and_wallet_are_invisible_to_002(client):
    asper_user = send(client, "POST", "/register", {"phone_number": "5550001111"}).json_body["user_id"]
    asper_wallet = send(client, "POST", "/wallet/create", {"user_id": asper_user}).json_body["wallet_id"]
    send(client, "POST", "/wallet/credit", {"wallet_id": asper_wallet, "amount": 300})
    # Even with a token for its id (signed with the secret), 002 does not know that user or wallet.
    bearer = token(asper_user)
    created = send(client, "POST", "/api/v1/wallet/create", {"user_id": asper_user, "type": "t"}, bearer)
    assert created.status_code == 404 and created.json_body["code"] == "not_found"
    assert send(client, "GET", f"/api/v1/wallet/get/{asper_user}/default", token=bearer).status_code == 404
    moved = transact(client, {"user_id": asper_user, "access_token": bearer}, {"wallet_id": asper_wallet}, 5, False)
    assert moved.status_code == 404
    assert send(client, "GET", f"/api/v1/transactions/get/{asper_user}/{asper_wallet}",
                token=bearer).status_code == 404
    assert send(client, "POST", "/api/v1/transactions/get/total_in_period",
                {"user_id": asper_user, "wallet_id": asper_wallet, "start_date": "2020-01-01",
                 "end_date": "2100-01-01"}, bearer).status_code == 404
    assert send(client, "GET", f"/wallet/balance/{asper_wallet}").json_body == {"balance": 300}
    assert tally.services.wallets.get(asper_wallet).balance == 30000
