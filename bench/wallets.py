"""Wallet figures, seeds 002 and 003 through the real HTTP stack: requests and capacity per operation,
debits per second on one wallet under 16 threads."""
from __future__ import annotations

from bench.common import (
    CONTENDED_HEADER,
    REQUEST_HEADER,
    THREADS,
    contended,
    contended_cells,
    request_rows,
    table,
    use_fresh_tables,
)
from tools.local_http import request_json as http


def request_counts(base: str, requests) -> list[list]:
    status, user = http("POST", f"{base}/api/v1/users", {"phone_number": "5550000001"})
    bearer = {"Authorization": f"Bearer {user['access_token']}"}
    uid = user["user_id"]
    status, wallet = http("POST", f"{base}/api/v1/wallet/create", {"user_id": uid, "type": "main"}, bearer)
    wid = wallet["wallet_id"]
    # Seed 003 keeps its own users (contracts.md): its wallet belongs to a user it registered.
    status, asper_user = http("POST", f"{base}/register", {"phone_number": "5550000003"})
    status, asper = http("POST", f"{base}/wallet/create", {"user_id": asper_user["user_id"]})

    def transaction(amount, is_credit, key=None):
        headers = {**bearer, **({"Idempotency-Key": key} if key else {})}
        return http("POST", f"{base}/api/v1/transactions/create",
                    {"user_id": uid, "wallet_id": wid, "amount": amount, "is_credit": is_credit}, headers)
    transaction(100, True)
    period = {"user_id": uid, "wallet_id": wid, "start_date": "2020-01-01", "end_date": "2100-01-01"}
    return request_rows(requests, [
        ("POST /api/v1/users (register)", lambda: http("POST", f"{base}/api/v1/users", {"phone_number": "5550009"}), 3),
        ("POST /api/v1/wallet/create", lambda: http("POST", f"{base}/api/v1/wallet/create",
                                                    {"user_id": uid, "type": "other"}, bearer), 3),
        ("POST /api/v1/transactions/create credit", lambda: transaction(10.5, True, "bench-credit"), 2),
        # The cancelled transaction, the record, and the account while the posting waits in its log.
        ("  the same Idempotency-Key again", lambda: transaction(10.5, True, "bench-credit"), 3),
        ("POST /api/v1/transactions/create debit", lambda: transaction(0.25, False), 2),
        ("GET /api/v1/wallet/get/{user}/{type}", lambda: http("GET", f"{base}/api/v1/wallet/get/{uid}/main",
                                                              headers=bearer), 2),
        # A journal read first reads the account's log (`Ledger.settle`), and drains it when postings wait there.
        ("GET /api/v1/transactions/get/{user}/{wallet}", lambda: http(
            "GET", f"{base}/api/v1/transactions/get/{uid}/{wid}", headers=bearer), 3),
        ("POST /api/v1/transactions/get/total_in_period", lambda: http(
            "POST", f"{base}/api/v1/transactions/get/total_in_period", period, bearer), 2),
        ("POST /wallet/credit (003)", lambda: http("POST", f"{base}/wallet/credit",
                                                   {"wallet_id": asper["wallet_id"], "amount": 500}), 2),
        ("POST /wallet/debit (003)", lambda: http("POST", f"{base}/wallet/debit",
                                                  {"wallet_id": asper["wallet_id"], "amount": 5}), 2),
        ("GET /wallet/balance/{id} (003)", lambda: http("GET", f"{base}/wallet/balance/{asper['wallet_id']}"), 1),
        ("GET /wallet/transactions (003)", lambda: http(
            "GET", f"{base}/wallet/transactions?wallet_id={asper['wallet_id']}&start_date=2020-01-01"), 4),
    ])


def run(base: str, endpoint: str) -> None:
    from tools.request_counter import DynamoDBRequests

    use_fresh_tables(endpoint, "wallets")
    with DynamoDBRequests() as requests:
        table("Seeds 002/003: DynamoDB requests and capacity units per operation (uncontended)", REQUEST_HEADER,
              request_counts(base, requests))
        status, user = http("POST", f"{base}/register", {"phone_number": "5550000002"})
        status, wallet = http("POST", f"{base}/wallet/create", {"user_id": user["user_id"]})
        http("POST", f"{base}/wallet/credit", {"wallet_id": wallet["wallet_id"], "amount": 100000})
        race = contended(requests, lambda index, step: http(
            "POST", f"{base}/wallet/debit", {"wallet_id": wallet["wallet_id"], "amount": 1.25})[0], per_thread=25)
    table(f"POST /wallet/debit, {THREADS} client threads, one wallet", ["debits", *CONTENDED_HEADER],
          [[race["calls"], *contended_cells(race)]])
