"""Paging on DynamoDB Local, which (unlike moto) answers a LastEvaluatedKey whenever a Query reaches its limit:
the last full page says there is no more, every paged route, in every order and with a time range."""
from __future__ import annotations

import uuid

from tools.local_http import request_json as http


def pages(base: str, path: str, items: str, more, headers: dict | None = None) -> list[list]:
    """Every page of a paged route, following its cursor to the end."""
    seen, cursor = [], None
    while True:
        status, page = http("GET", base + path + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        assert status == 200, page
        seen.append(page[items])
        cursor = more(page)
        if cursor is None:
            return seen


def test_v1_entries_end_on_the_last_full_page(live_server):
    key = {"Idempotency-Key": str(uuid.uuid4())}
    assert http("POST", f"{live_server}/v1/accounts", {"id": "alice", "unit": "USD"}, key)[0] == 201
    for amount in (1, 2, 3, 4):
        assert http("POST", f"{live_server}/v1/postings", {"account_id": "alice", "amount": amount},
                    {"Idempotency-Key": str(uuid.uuid4())})[0] == 201

    def more(page):
        assert page["has_more"] is (page["next_cursor"] is not None)
        return page["next_cursor"]

    for query, expected in (("limit=2", [[4, 3], [2, 1]]), ("limit=2&order=asc", [[1, 2], [3, 4]]),
                            ("limit=4", [[4, 3, 2, 1]]), ("limit=3", [[4, 3, 2], [1]]),
                            ("limit=2&start=2000-01-01T00:00:00Z&end=2100-01-01T00:00:00Z", [[4, 3], [2, 1]])):
        seen = pages(live_server, f"/v1/accounts/alice/entries?{query}", "data", more)
        assert [[entry["seq"] for entry in page] for page in seen] == expected, query


def test_seed_002_history_ends_on_the_last_full_page(live_server):
    status, user = http("POST", f"{live_server}/api/v1/users", {"phone_number": "5550001111"})
    bearer = {"Authorization": f"Bearer {user['access_token']}"}
    status, wallet = http("POST", f"{live_server}/api/v1/wallet/create", {"user_id": user["user_id"], "type": "t"},
                          bearer)
    for amount in (1, 2, 3, 4):
        assert http("POST", f"{live_server}/api/v1/transactions/create",
                    {"user_id": user["user_id"], "wallet_id": wallet["wallet_id"], "amount": amount,
                     "is_credit": True}, bearer)[0] == 201
    path = f"/api/v1/transactions/get/{user['user_id']}/{wallet['wallet_id']}?limit=2"
    seen = pages(live_server, path, "transactions", lambda page: page["next_cursor"], bearer)
    assert [[movement["amount"] for movement in page] for page in seen] == [[4, 3], [2, 1]]
