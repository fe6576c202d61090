"""The stage IAM policies grant exactly what the code uses: every DynamoDB action it issues, on Tally's
tables and indexes only. The operations are recorded (botocore hooks) while every route of every surface
and every write path runs on DynamoDB Local, the big-spend completion and the lot recheck included."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import app as tally
from chalicelib.core import events, models
from chalicelib.core.expiry import Swept, sweep
from chalicelib.core.models import EntryModel
from chalicelib.surfaces import points_tracker
from helpers import LaggingIndex
from tools.infra import stages
from tools.local_http import request_json as http
from tools.request_counter import DynamoDBRequests

ROOT = Path(__file__).resolve().parent.parent


def tour(base: str, clock) -> None:
    """Every route of every surface, and the paths behind them."""
    account, transaction = "6f1c0e4e-1d7a-4b8e-9a0e-2f3b4c5d6e7f", "0f8fad5b-d9cb-469f-a165-70867728950e"
    for _ in range(2):  # the second time, a replay
        http("POST", f"{base}/amount", {"account_id": account, "amount": 5}, {"Transaction-Id": transaction})
    for path in ("/ping", f"/balance/{account}", f"/transaction/{transaction}", "/max_transaction_volume"):
        http("GET", base + path)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    for number in range(100):
        http("POST", f"{base}/add", {"payer": f"P{number % 3}", "points": 2,
                                     "timestamp": (start + timedelta(minutes=number)).isoformat()})
    http("POST", f"{base}/add", {"payer": "P0", "points": -1, "timestamp": "2023-01-01T00:00:00Z"})
    for _ in range(2):
        http("POST", f"{base}/spend", {"points": 195}, {"Idempotency-Key": "big"})  # 98 lots: in parts
    http("GET", f"{base}/balance")
    with LaggingIndex() as index:  # the recheck of lots after a stale index
        tally.services.tracker.spend(points_tracker.HOLDER, 1)  # lot 99: 2 -> 1; the index keeps saying 2
        index.recording = False
        tally.services.tracker.spend(points_tracker.HOLDER, 2)  # planned as "empty lot 99": refused, rechecked
    http("POST", f"{base}/transaction", {"payer": "A", "points": 10})
    http("PUT", f"{base}/spend_points", {"points": 3})
    http("GET", f"{base}/")
    status, user = http("POST", f"{base}/api/v1/users", {"phone_number": "5551112222"})
    bearer = {"Authorization": f"Bearer {user['access_token']}"}
    http("POST", f"{base}/api/v1/token/refresh", headers={"Authorization": f"Bearer {user['refresh_token']}"})
    status, wallet = http("POST", f"{base}/api/v1/wallet/create", {"user_id": user["user_id"], "type": "t"}, bearer)
    http("GET", f"{base}/api/v1/wallet/get/{user['user_id']}/t", headers=bearer)
    for is_credit in (True, False):
        http("POST", f"{base}/api/v1/transactions/create",
             {"user_id": user["user_id"], "wallet_id": wallet["wallet_id"], "amount": 25, "is_credit": is_credit},
             bearer)
    http("GET", f"{base}/api/v1/transactions/get/{user['user_id']}/{wallet['wallet_id']}", headers=bearer)
    http("POST", f"{base}/api/v1/transactions/get/total_in_period",
         {"user_id": user["user_id"], "wallet_id": wallet["wallet_id"], "start_date": "2020-01-01",
          "end_date": "2100-01-01"}, bearer)
    status, asper_user = http("POST", f"{base}/register", {"phone_number": "5553334444"})
    status, asper = http("POST", f"{base}/wallet/create", {"user_id": asper_user["user_id"]})
    http("POST", f"{base}/wallet/credit", {"wallet_id": asper["wallet_id"], "amount": 300})
    http("POST", f"{base}/wallet/debit", {"wallet_id": asper["wallet_id"], "amount": 50})
    http("GET", f"{base}/wallet/balance/{asper['wallet_id']}")
    http("GET", f"{base}/wallet/transactions?wallet_id={asper['wallet_id']}")
    v1_tour(base, clock)


def v1_tour(base: str, clock) -> None:
    """Every /v1 route, a points reversal into lots, and the sweep of a due lot and a due hold."""
    keys = iter(range(1000))

    def write(path, body=None):
        return http("POST", f"{base}{path}", body or {}, {"Idempotency-Key": f"tour-{next(keys)}"})[1]

    for account_id, unit, kind in (("alice", "USD", "standard"), ("bob", "USD", "standard"),
                                   ("member", "points", "points")):
        write("/v1/accounts", {"id": account_id, "unit": unit, "kind": kind})
    write("/v1/postings", {"account_id": "alice", "amount": 500})
    transfer = write("/v1/transfers", {"source": "alice", "destination": "bob", "amount": 100})
    write(f"/v1/transactions/{transfer['id']}/reversals", {"amount": 10})
    hold = write("/v1/holds", {"account_id": "alice", "amount": 50})
    write(f"/v1/holds/{hold['id']}/capture", {"amount": 20, "destination": "bob"})
    other = write("/v1/holds", {"account_id": "alice", "amount": 5})
    write(f"/v1/holds/{other['id']}/void")
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    write("/v1/holds", {"account_id": "alice", "amount": 5, "expires_at": soon})
    write("/v1/points/earn", {"account_id": "member", "payer": "A", "points": 10, "expires_at": soon})
    write("/v1/points/earn", {"account_id": "member", "payer": "B", "points": 10})
    spend = write("/v1/points/spend", {"account_id": "member", "points": 4})
    write(f"/v1/transactions/{spend['id']}/reversals", {})
    for path in ("/v1/accounts/alice", "/v1/accounts/alice/balance", "/v1/accounts/alice/balance?as_of=2030-01-01",
                 "/v1/accounts/alice/entries", "/v1/accounts/member/lots", "/v1/accounts/member/lots?state=all",
                 f"/v1/transactions/{transfer['id']}", f"/v1/holds/{hold['id']}"):
        http("GET", base + path)
    later = datetime.now(UTC) + timedelta(minutes=10)
    clock.now = later
    assert sweep(tally.services.v1_book, later) == Swept(lots=1, holds=1, settled=0)
    clock.now = None


def as_stage_resource(resource: str, prefix: str, stage: str) -> str:
    """A recorded table or index of this test's tables, as the ARN pattern of the stage's policy."""
    table, _, index = resource.partition("/index/")
    assert table.startswith(prefix + "-"), f"{table} is not one of Tally's tables"
    kind = table[len(prefix) + 1:]
    return f"arn:aws:dynamodb:*:*:table/tally-{stage}-{kind}" + ("/index/*" if index else "")


AUTHORIZER_TABLES = {"keys"}  # read by the API-key authorizer alone, under a role of its own


def expected_resources(stage: str) -> set[str]:
    """Tally's tables of the stage the API's functions use, and the indexes of those that have any."""
    resources = set()
    for kind, model in models.MODELS.items():
        if kind in AUTHORIZER_TABLES:
            continue
        resources.add(f"arn:aws:dynamodb:*:*:table/tally-{stage}-{kind}")
        if model._indexes:
            resources.add(f"arn:aws:dynamodb:*:*:table/tally-{stage}-{kind}/index/*")
    return resources


class EventBridge:
    def put_events(self, Entries):  # noqa: N803 - botocore's name
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(number)} for number, _ in enumerate(Entries)]}


def stream_records() -> list[dict]:
    """The journal's entries as the stream hands them over (NEW_IMAGE)."""
    return [{"eventName": "INSERT", "dynamodb": {"NewImage": entry.serialize() | {
        "account": {"S": entry.account}, "seq": {"N": str(entry.seq)}}}}
            for entry in EntryModel.scan(limit=50)]


def test_each_stage_policy_grants_exactly_what_the_code_uses(live_server, local_tables, clock):
    with DynamoDBRequests() as requests:
        tour(live_server, clock)
    records = stream_records()
    with DynamoDBRequests() as publisher:
        assert events.publish(records, EventBridge(), "tally-test").sent == len(records) > 0
    keys_table = f"{local_tables.table_prefix}-keys"
    authorizer_calls = {(action, resource) for action, resource in requests.permissions if resource == keys_table}
    ledger_calls = requests.permissions - authorizer_calls
    assert authorizer_calls == {("dynamodb:GetItem", keys_table)}  # one read of the key per uncached request
    used_actions = {action for action, _ in ledger_calls}
    assert {"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:UpdateItem"} <= used_actions
    for stage in stages():
        authorizer = json.loads((ROOT / ".chalice" / f"policy-authorizer-{stage}.json").read_text())["Statement"]
        assert authorizer[0] == {"Sid": "ApiKeys", "Effect": "Allow", "Action": ["dynamodb:GetItem"],
                                 "Resource": [f"arn:aws:dynamodb:*:*:table/tally-{stage}-keys"]}, stage
        assert [statement["Sid"] for statement in authorizer] == ["ApiKeys", "Logs"], stage
        policy = json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())
        ledger = next(statement for statement in policy["Statement"] if statement["Sid"] == "Ledger")
        assert set(ledger["Action"]) == used_actions, stage  # every action the code calls, and nothing more
        sweep_policy = json.loads((ROOT / ".chalice" / f"policy-sweep-{stage}.json").read_text())
        assert sweep_policy["Statement"] == [statement for statement in policy["Statement"]
                                             if statement["Sid"] != "JwtSigningKey"], stage  # no signing key
        used = {as_stage_resource(resource, local_tables.table_prefix, stage) for _, resource in ledger_calls}
        assert used <= set(ledger["Resource"]) == expected_resources(stage), stage  # Tally's tables only
        others = [statement for statement in policy["Statement"] if statement["Sid"] not in ("Ledger", "JwtSigningKey")]
        assert all(action.startswith("logs:") for statement in others for action in statement["Action"]), stage
        # The journal publisher: its stream, its bus, and the markers it reads and writes, nothing else.
        publishing = {statement["Sid"]: statement for statement in json.loads(
            (ROOT / ".chalice" / f"policy-publisher-{stage}.json").read_text())["Statement"]}
        markers = publishing["PublishedMarkers"]
        assert set(markers["Action"]) == {action for action, _ in publisher.permissions}, stage
        assert {as_stage_resource(resource, local_tables.table_prefix, stage)
                for _, resource in publisher.permissions} == {markers["Resource"]}, stage
        assert publishing["JournalStream"]["Resource"] == f"arn:aws:dynamodb:*:*:table/tally-{stage}-entries/stream/*"
        assert set(publishing["JournalStream"]["Action"]) == {  # what Lambda's stream poller calls as the function
            "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
        assert publishing["JournalEvents"] == {"Sid": "JournalEvents", "Effect": "Allow",
                                               "Action": ["events:PutEvents"],
                                               "Resource": f"arn:aws:events:*:*:event-bus/tally-{stage}"}
        assert set(publishing) == {"JournalStream", "JournalEvents", "PublishedMarkers", "Logs"}
