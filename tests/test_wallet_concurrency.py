"""Wallets under concurrency, asserted only against Amazon DynamoDB Local (moto is not atomic)."""
from __future__ import annotations

import pytest

import app as tally
from chalicelib.core.models import EntryModel
from chalicelib.core.verify import check_account
from helpers import THREADS, race
from tools.local_http import request_json as http

pytestmark = [pytest.mark.race, pytest.mark.usefixtures("verified_afterwards")]


def registered(base: str, phone: str) -> dict:
    status, user = http("POST", f"{base}/api/v1/users", {"phone_number": phone})
    assert status == 201
    return user


@pytest.mark.parametrize("seed", ["002", "003"])
def test_sixteen_threads_debiting_far_past_the_floor_stop_exactly_at_it(live_server, seed):
    if seed == "002":
        user = registered(live_server, "5550001111")
        bearer = {"Authorization": f"Bearer {user['access_token']}"}
        status, wallet = http("POST", f"{live_server}/api/v1/wallet/create",
                              {"user_id": user["user_id"], "type": "main"}, bearer)
        floor = 20

        def move(amount, is_credit):
            return http("POST", f"{live_server}/api/v1/transactions/create",
                        {"user_id": user["user_id"], "wallet_id": wallet["wallet_id"], "amount": amount,
                         "is_credit": is_credit}, bearer)
    else:
        user = http("POST", f"{live_server}/register", {"phone_number": "5550001111"})[1]  # 003's own user
        status, wallet = http("POST", f"{live_server}/wallet/create", {"user_id": user["user_id"]})
        floor = 100

        def move(amount, is_credit):
            return http("POST", f"{live_server}/wallet/{'credit' if is_credit else 'debit'}",
                        {"wallet_id": wallet["wallet_id"], "amount": amount})
    assert status == 201
    start, unit = 1000, 7.5
    assert move(start, True)[0] in (200, 201)
    statuses = race(lambda index, step: move(unit, False)[0], per_thread=10)  # 1,200 asked, 900 above the floor
    accepted = int((start - floor) // unit)
    ok = 201 if seed == "002" else 200
    assert statuses == {ok: accepted, 400: THREADS * 10 - accepted}, statuses
    wallets = tally.services.wallets
    state = wallets.get(wallet["wallet_id"])
    assert state.balance == (start - accepted * unit) * 100
    assert check_account(wallets.ledger, str(wallet["wallet_id"])) == []  # the floor held at every entry
    balances = [int(entry.balance_after) for entry in
                EntryModel.query(wallets.ledger.account_key(str(wallet["wallet_id"])), consistent_read=True)]
    assert min(balances[1:]) >= floor * 100


def test_sixteen_threads_registering_one_phone_make_one_user(live_server):
    statuses = race(lambda index, step: http("POST", f"{live_server}/api/v1/users",
                                             {"phone_number": "+15550002222"})[0])
    assert statuses == {201: 1, 409: THREADS - 1}, statuses
    asper = race(lambda index, step: http("POST", f"{live_server}/register", {"phone_number": "5550003333"})[0])
    assert asper == {201: 1, 400: THREADS - 1}, asper


def test_sixteen_threads_creating_one_wallet_type_make_one_wallet(live_server):
    user = registered(live_server, "5550004444")
    bearer = {"Authorization": f"Bearer {user['access_token']}"}
    answers = []

    def create(index, step):
        status, body = http("POST", f"{live_server}/api/v1/wallet/create",
                            {"user_id": user["user_id"], "type": "main"}, bearer)
        answers.append(body)
        return status

    assert race(create) == {201: 1, 409: THREADS - 1}
    created = [body for body in answers if "wallet_id" in body]
    status, found = http("GET", f"{live_server}/api/v1/wallet/get/{user['user_id']}/main", headers=bearer)
    assert status == 200 and found["wallet_id"] == created[0]["wallet_id"]
    asper_user = http("POST", f"{live_server}/register", {"phone_number": "5550005555"})[1]["user_id"]
    asper = race(lambda index, step: http("POST", f"{live_server}/wallet/create", {"user_id": asper_user})[0])
    assert asper == {201: 1, 400: THREADS - 1}, asper
