"""Faults at each DynamoDB step of each write path, through HTTP, on DynamoDB Local.

For every write a client can retry (seed 004's Transaction-Id, everyone else's Idempotency-Key) and every
fault — throttling, a transaction conflict, an internal error before the write, an internal error after
it landed (the answer lost) — injected at each DynamoDB call the write makes, more times than botocore
retries by itself: the client sees a success or a 503, never a 500; a retry with the same key then
succeeds; and the write is applied exactly once (the state says so, and the verifier finds nothing).
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

import app as tally
from chalicelib.surfaces import points_app, points_tracker
from helpers import DynamoDBFaults
from tools.local_http import request_json as http
from tools.verify import verify_tables

# (operation, error code, sends that reach DynamoDB before their answer is lost)
FAULTS = {
    "read throttled": ("TransactGetItems", "ProvisionedThroughputExceededException", 0),
    "index query throttled": ("Query", "ThrottlingException", 0),
    "write conflict": ("TransactWriteItems", "TransactionConflictException", 0),
    "write refused (500)": ("TransactWriteItems", "InternalServerError", 0),
    "write landed, answer lost": ("TransactWriteItems", "InternalServerError", 1),
    "write landed, connection timed out": ("TransactWriteItems", "timeout", 1),
    "read timed out": ("TransactGetItems", "timeout", 0),
    "read after the write throttled": ("GetItem", "ProvisionedThroughputExceededException", 0),
    "mark raised, answer lost": ("UpdateItem", "InternalServerError", 1),
}
FAILURES = 6  # more than botocore's own 4 sends: the ledger (or the client) must deal with it


class Write:
    """One retryable write: set-up, the request (with its key), and the state it must leave, once."""

    operations = ("TransactGetItems", "TransactWriteItems")  # the DynamoDB calls on its path

    def __init__(self, base: str) -> None:
        self.base = base

    def set_up(self) -> None: ...


class Amount(Write):
    account = str(uuid.uuid4())
    # No read before the write: the account read after it answers, and the high-water mark is raised.
    operations = ("TransactWriteItems", "GetItem", "UpdateItem")

    def request(self):
        return http("POST", f"{self.base}/amount", {"account_id": self.account, "amount": 7},
                    {"Transaction-Id": "0f8fad5b-d9cb-469f-a165-70867728950e"})

    def applied_once(self) -> bool:
        return http("GET", f"{self.base}/balance/{self.account}") == (200, {"balance": 7})


class Spend(Write):
    lots, points = 3, 5
    # No read of the holder: the lots' index, the one transaction, the holder read after it for the answer.
    operations = ("Query", "TransactWriteItems", "GetItem")

    def set_up(self) -> None:
        for number in range(self.lots):
            tally.services.tracker.add(points_tracker.HOLDER, f"P{number}", 10,
                                    timestamp=datetime(2022, 1, 1, tzinfo=UTC) + timedelta(days=number))

    def request(self):
        return http("POST", f"{self.base}/spend", {"points": self.points}, {"Idempotency-Key": "spend-1"})

    def applied_once(self) -> bool:
        return sum(tally.services.tracker.balances(points_tracker.HOLDER).values()) == self.lots * 10 - self.points


class SpendInParts(Spend):
    lots, points = 100, 995  # 100 lots: decided, then two parts
    operations = ("TransactGetItems", "Query", "TransactWriteItems")  # a take in parts reads the holder

    def set_up(self) -> None:
        for number in range(self.lots):
            tally.services.tracker.add(points_tracker.HOLDER, f"P{number % 3}", 10,
                                    timestamp=datetime(2022, 1, 1, tzinfo=UTC) + timedelta(minutes=number))


class SpendPoints(Write):
    operations = Spend.operations
    def set_up(self) -> None:
        tally.services.points.add(points_app.HOLDER, "A", 20)

    def request(self):
        return http("PUT", f"{self.base}/spend_points", {"points": 4}, {"Idempotency-Key": "sp-1"})

    def applied_once(self) -> bool:
        return tally.services.points.balances(points_app.HOLDER) == {"A": 16}


class WalletDebit(Write):
    operations = ("TransactWriteItems", "GetItem")  # no read before the write; the account read after it

    def set_up(self) -> None:
        status, user = http("POST", f"{self.base}/api/v1/users", {"phone_number": "5557770000"})
        self.user, self.bearer = user["user_id"], {"Authorization": f"Bearer {user['access_token']}"}
        status, wallet = http("POST", f"{self.base}/api/v1/wallet/create", {"user_id": self.user, "type": "w"},
                              self.bearer)
        self.wallet = wallet["wallet_id"]
        tally.services.wallets.move(self.wallet, 10000)

    def request(self):
        return http("POST", f"{self.base}/api/v1/transactions/create",
                    {"user_id": self.user, "wallet_id": self.wallet, "amount": 12.5, "is_credit": False},
                    {**self.bearer, "Idempotency-Key": "debit-1"})

    def applied_once(self) -> bool:
        return tally.services.wallets.get(self.wallet).balance == 10000 - 1250


class AsperCredit(Write):
    operations = WalletDebit.operations

    def set_up(self) -> None:
        status, user = http("POST", f"{self.base}/register", {"phone_number": "5558880000"})
        status, wallet = http("POST", f"{self.base}/wallet/create", {"user_id": user["user_id"]})
        self.wallet = wallet["wallet_id"]

    def request(self):
        return http("POST", f"{self.base}/wallet/credit", {"wallet_id": self.wallet, "amount": 3.25},
                    {"Idempotency-Key": "credit-1"})

    def applied_once(self) -> bool:
        return tally.services.wallets.get(self.wallet).balance == 325


WRITES = {"004 POST /amount": Amount, "000 POST /spend": Spend, "000 POST /spend, in parts": SpendInParts,
          "001 PUT /spend_points": SpendPoints, "002 POST /api/v1/transactions/create": WalletDebit,
          "003 POST /wallet/credit": AsperCredit}


@pytest.mark.parametrize("write, fault", [(write, fault) for write in sorted(WRITES) for fault in sorted(FAULTS)
                                          if FAULTS[fault][0] in WRITES[write].operations])
def test_a_fault_at_any_step_is_a_success_or_a_503_and_a_retry_applies_it_once(live_server, write, fault):
    operation, code, forward = FAULTS[fault]
    subject = WRITES[write](live_server)
    subject.set_up()
    with DynamoDBFaults(operation, failures=FAILURES, forward=forward, code=code) as faults:
        first_status, first = subject.request()
    assert first_status in (200, 201, 503), (first_status, first)
    if first_status == 503:
        assert first["code"] in ("contention", "unavailable")
    again_status, again = subject.request()  # the client's retry, with the same key
    assert again_status in (200, 201), (again_status, again)
    if first_status != 503:
        assert again == first
    assert subject.applied_once()
    assert verify_tables().violations == []
    assert faults.tokens  # the fault was on the write's path
