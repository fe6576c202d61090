"""`make verify`: the stored-ledger verifier finds nothing wrong after real traffic, and finds what is
(DynamoDB Local)."""
from __future__ import annotations

import uuid

import app as tally
from chalicelib.core.models import AccountModel, LotModel
from chalicelib.surfaces import points_tracker
from tools.local_http import request_json as http
from tools.verify import print_report, verify_tables


def traffic(base: str) -> None:
    account = str(uuid.uuid4())
    for amount in (5, -3, 0):
        http("POST", f"{base}/amount", {"account_id": account, "amount": amount},
             {"Transaction-Id": str(uuid.uuid4())})
    for number in range(5):
        http("POST", f"{base}/add", {"payer": f"P{number % 2}", "points": 10, "timestamp": f"2022-01-0{number + 1}"})
    http("POST", f"{base}/spend", {"points": 25}, {"Idempotency-Key": "s1"})
    http("POST", f"{base}/spend", {"points": 999})  # refused: writes nothing
    status, user = http("POST", f"{base}/register", {"phone_number": "5550101010"})
    status, wallet = http("POST", f"{base}/wallet/create", {"user_id": user["user_id"]})
    http("POST", f"{base}/wallet/credit", {"wallet_id": wallet["wallet_id"], "amount": 150})
    http("POST", f"{base}/wallet/debit", {"wallet_id": wallet["wallet_id"], "amount": 60})  # refused by the floor


def test_real_traffic_verifies_clean(live_server, capsys):
    traffic(live_server)
    report = verify_tables()
    print_report(report, "test tables")
    assert report.violations == []
    assert report.checked["accounts"] == 2 and report.checked["points holders"] == 1
    # 4 keys, and the record of the wallet credit sent without one (a posting written without a read keeps one).
    assert report.checked["idempotency records"] == 5 and report.checked["lots"] == 5
    assert capsys.readouterr().out.splitlines()[-1] == "0 violations"


def test_tampering_is_found(live_server):
    traffic(live_server)
    holder = AccountModel.get(tally.services.tracker.holder_key(points_tracker.HOLDER))
    holder.update(actions=[AccountModel.balance.add(1)])  # a balance its journal does not explain
    holder.update(actions=[AccountModel.available.add(2)])  # an available balance that is not balance - held
    lot = LotModel.get(holder.key, 5)
    lot.update(actions=[LotModel.remaining.set(0)])  # an emptied lot still in the open index
    violations = "\n".join(verify_tables().violations)
    assert "journal sums to" in violations
    assert "(balance - held)" in violations
    assert "open-index keys" in violations
    assert "open lots sum to" in violations
