"""Each function's IAM policy grants what that function's code uses, and nothing more: every DynamoDB action it
issues, on the tables and indexes it uses, and its own stream, bus, secret and log group, every ARN in the stack's
own region and account. The operations are recorded (botocore hooks) per function while every route of every
surface and every write path runs on DynamoDB Local (the API), a sweep finishes a crashed spend and expires a
due lot and hold (the sweep), the logs the API left are drained (the drainer), and a stream batch is published
(the publisher).

What each function may do is stated here, apart from tools/infra.py which writes the policies, so a policy
broadened there (the sweep writing users, the publisher writing any item, a `*` region) fails."""
from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import app as tally
from chalicelib import composition
from chalicelib.core import drains, events, models
from chalicelib.core.expiry import Swept, sweep
from chalicelib.core.models import AccountModel, EntryModel, IdempotencyModel
from chalicelib.surfaces import points_tracker
from helpers import Crash, LaggingIndex, TransactWriteFaults
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
    write("/v1/transfers", {"source": "alice", "destination": "bob", "amount": 1})  # left in both logs: the drainer's


def crash_a_spend_in_parts() -> None:
    """A seed 000 spend of more lots than one transaction takes, dead after its first part: the sweep's to finish."""
    start = datetime(2021, 1, 1, tzinfo=UTC)
    book = tally.services.points_book("bigspend")
    for number in range(260):
        book.add("h", f"P{number % 4}", 2, timestamp=start + timedelta(minutes=number))
    with TransactWriteFaults(crash_at=3), pytest.raises(Crash):
        book.spend("h", 515, idempotency_key="big-spend")


def sweep_tour(clock) -> None:
    """What `expire_due` runs (app.py), once there is something of every kind to do: a spend to finish, a /v1
    lot and a /v1 hold due (made by the tour). In services of its own, as the sweep's own container has: it has
    learnt nothing from the API's requests."""
    later = datetime.now(UTC) + timedelta(minutes=10)
    clock.now = later
    own = composition.build(tally.services.settings, clock=clock)
    assert sweep(own.v1_book, later, points_book=own.points_book) == Swept(lots=1, holds=1, settled=1)
    clock.now = None


# What each function does, table by table: (action, table) or (action, table/index/name).
API_TABLES = set(models.MODELS) - {"keys"}  # the keys are the authorizer's alone
API_ACTIONS = {"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem",
               "dynamodb:Query", "dynamodb:UpdateItem"}
SWEEP_USES = {
    ("dynamodb:GetItem", "accounts"), ("dynamodb:UpdateItem", "accounts"),
    ("dynamodb:Query", "accounts/index/pending_takes"),
    ("dynamodb:PutItem", "entries"),
    ("dynamodb:GetItem", "holds"), ("dynamodb:UpdateItem", "holds"), ("dynamodb:Query", "holds/index/by_expiry"),
    ("dynamodb:PutItem", "links"), ("dynamodb:Query", "links"), ("dynamodb:UpdateItem", "links"),
    ("dynamodb:GetItem", "lots"), ("dynamodb:UpdateItem", "lots"), ("dynamodb:Query", "lots/index/by_expiry"),
    ("dynamodb:UpdateItem", "payers"),
    ("dynamodb:PutItem", "transactions"),
    # The hold's account had postings in its log (the tour's hold went without a read): drained before the expiry.
    ("dynamodb:UpdateItem", "idempotency"), ("dynamodb:UpdateItem", "transactions"),
}
PUBLISHER_USES = {("dynamodb:BatchGetItem", "idempotency"), ("dynamodb:BatchWriteItem", "idempotency")}
# The drainer reads an account and moves its log: entries put, records' and /v1 transactions' lines completed.
DRAINER_USES = {("dynamodb:GetItem", "accounts"), ("dynamodb:UpdateItem", "accounts"), ("dynamodb:PutItem", "entries"),
                ("dynamodb:UpdateItem", "idempotency"), ("dynamodb:UpdateItem", "transactions")}
AUTHORIZER_USES = {("dynamodb:GetItem", "keys")}
POLICY_FILES = {"api": "policy-{stage}.json", "sweep": "policy-sweep-{stage}.json",
                "publisher": "policy-publisher-{stage}.json", "drainer": "policy-drainer-{stage}.json",
                "authorizer": "policy-authorizer-{stage}.json"}
FUNCTION_NAMES = {"api": "api", "sweep": "expire-due", "publisher": "publish-entries", "drainer": "drain-logs",
                  "authorizer": "key-authorizer"}
SCOPED = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"


def recorded(requests: DynamoDBRequests, prefix: str) -> set[tuple[str, str]]:
    """The calls seen, with this test's table prefix taken off: (action, table) or (action, table/index/name)."""
    assert all(resource.startswith(prefix + "-") for _, resource in requests.permissions), requests.permissions
    return {(action, resource[len(prefix) + 1:]) for action, resource in requests.permissions}


def arn(stage: str, used: str) -> str:
    """A table or index of the stage, as its ARN in the stack's own partition, region and account."""
    return SCOPED % "dynamodb" + f"table/tally-{stage}-{used}"


def policy_files(stage: str) -> dict[str, dict]:
    return {function: json.loads((ROOT / ".chalice" / name.format(stage=stage)).read_text())
            for function, name in POLICY_FILES.items()}


def resources(statement: dict) -> list[str]:
    """A statement's resources as text: a `{"Fn::Sub": ...}` as its template, `*` as itself."""
    listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    return [item["Fn::Sub"] if isinstance(item, dict) else item for item in listed]


def grants(statements: list[dict], service: str = "dynamodb") -> set[tuple[str, str]]:
    return {(action, resource) for statement in statements for action in statement["Action"]
            if action.startswith(service + ":") for resource in resources(statement)}


def check_policies(stage: str, policies: dict[str, dict]) -> None:
    """What an auditor reads in each function's policy; raises AssertionError at the first excess."""
    by_sid = {function: {statement["Sid"]: statement for statement in policy["Statement"]}
              for function, policy in policies.items()}
    for function, policy in policies.items():
        statements = policy["Statement"]
        assert all(statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
                   for statement in statements), function
        # Every resource in the stack's own partition, region and account, but X-Ray's, which takes only "*".
        for statement in statements:
            if statement["Sid"] == "Traces":
                assert statement["Action"] == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], function
                assert resources(statement) == ["*"] and "Condition" not in statement, function
                continue
            for resource in resources(statement):
                named = re.match(r"arn:(?:\$\{AWS::Partition\}|[^:]*):([a-z0-9-]+):", resource)
                service = named.group(1) if named else ""
                assert service and resource.startswith(SCOPED % service), (function, resource)
                assert all(action.startswith(service + ":") for action in statement["Action"]), (function, resource)
        # Its own log group and its streams, no other.
        group = f"log-group:/aws/lambda/tally-{stage}-{FUNCTION_NAMES[function]}"
        assert by_sid[function]["Logs"]["Action"] == ["logs:CreateLogGroup", "logs:CreateLogStream",
                                                      "logs:PutLogEvents"], function
        assert resources(by_sid[function]["Logs"]) == [SCOPED % "logs" + group, SCOPED % "logs" + group + ":*"]
        assert not grants([s for s in statements if s["Sid"] != "Logs"], "logs"), function
        # Only the API reads the signing key, and only the stage's.
        secrets = grants(statements, "secretsmanager")
        assert secrets == ({("secretsmanager:GetSecretValue",
                             SCOPED % "secretsmanager" + f"secret:tally/{stage}/jwt-secret-??????")}
                           if function == "api" else set()), function
        assert {action.split(":")[0] for statement in statements for action in statement["Action"]} <= (
            {"dynamodb", "logs", "xray"} | ({"secretsmanager"} if function == "api" else set())
            | ({"events"} if function == "publisher" else set())), function
    # The API: every action it issues on each of its tables, and only queries on their indexes.
    api = grants(policies["api"]["Statement"])
    indexes = {f"{kind}/index/{index.Meta.index_name}" for kind in API_TABLES
               for index in models.MODELS[kind]._indexes.values()}
    assert api == {(action, arn(stage, kind)) for action in API_ACTIONS for kind in API_TABLES} | {
        ("dynamodb:Query", arn(stage, index)) for index in indexes}, "api"
    # The sweep, the drainer, the authorizer: exactly what they do (the drainer also reads its stream).
    assert grants(policies["sweep"]["Statement"]) == {(action, arn(stage, used)) for action, used in SWEEP_USES}
    assert grants(policies["drainer"]["Statement"]) == {(action, arn(stage, used)) for action, used in DRAINER_USES} | {
        (action, arn(stage, "accounts/stream/*")) for action in (
            "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams")}
    assert grants(policies["authorizer"]["Statement"]) == {(a, arn(stage, used)) for a, used in AUTHORIZER_USES}
    # The publisher: its markers only (an IAM condition on the key), its stream, its bus.
    publishing = by_sid["publisher"]
    assert set(publishing) == {"JournalStream", "JournalEvents", "PublishedMarkers", "Logs", "Traces"}
    markers = publishing["PublishedMarkers"]
    assert grants([markers]) == {(action, arn(stage, used)) for action, used in PUBLISHER_USES}
    assert markers.get("Condition") == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [
        f"{events.MARKER_PREFIX}*"]}}, "the publisher may write any item of the idempotency table"
    assert grants([publishing["JournalStream"]]) == {  # what Lambda's stream poller calls as the function
        (action, arn(stage, "entries/stream/*")) for action in (
            "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams")}
    assert grants([publishing["JournalEvents"]], "events") == {
        ("events:PutEvents", SCOPED % "events" + f"event-bus/tally-{stage}")}
    assert all("Condition" not in statement for function, policy in policies.items() if function != "publisher"
               for statement in policy["Statement"])


class EventBridge:
    def put_events(self, Entries):  # noqa: N803 - botocore's name
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(number)} for number, _ in enumerate(Entries)]}


def account_records() -> list[dict]:
    """Every account item as the accounts' stream hands its last write over (the new image)."""
    return [{"eventName": "MODIFY", "dynamodb": {"NewImage": account.serialize() | {"key": {"S": account.key}}}}
            for account in AccountModel.scan()]


def stream_records() -> list[dict]:
    """The journal's entries as the stream hands them over (NEW_IMAGE)."""
    return [{"eventName": "INSERT", "dynamodb": {"NewImage": entry.serialize() | {
        "account": {"S": entry.account}, "seq": {"N": str(entry.seq)}}}}
            for entry in EntryModel.scan(limit=50)]


def test_each_function_may_do_what_its_code_does_and_nothing_more(live_server, local_tables, clock):
    prefix = local_tables.table_prefix
    with DynamoDBRequests() as requests:
        tour(live_server, clock)
    crash_a_spend_in_parts()
    with DynamoDBRequests() as swept:
        sweep_tour(clock)
    accounts = account_records()
    with DynamoDBRequests() as drainer:  # what the API's postings left in their logs
        assert drains.drain_logs(accounts, tally.services.drain_budget).settled > 0
    records = stream_records()
    with DynamoDBRequests() as publisher:
        assert events.publish(records, EventBridge(), "tally-test").sent == len(records) > 0
    # What each function did, as stated above.
    authorizer_calls = {call for call in recorded(requests, prefix) if call[1] == "keys"}
    api_calls = recorded(requests, prefix) - authorizer_calls
    assert authorizer_calls == AUTHORIZER_USES  # one read of the key per uncached request
    assert {action for action, _ in api_calls} == API_ACTIONS  # every action the API grants, the code calls
    assert {used.partition("/")[0] for _, used in api_calls} <= API_TABLES
    assert recorded(swept, prefix) == SWEEP_USES
    assert recorded(drainer, prefix) == DRAINER_USES
    assert recorded(publisher, prefix) == PUBLISHER_USES
    first = events.entry_event(records[0]["dynamodb"]["NewImage"])  # its marker is under the policy's prefix
    assert IdempotencyModel.get(events.MARKER_PREFIX + first["id"], consistent_read=True).fingerprint == "published"
    for stage in stages():
        policies = policy_files(stage)
        check_policies(stage, policies)
        assert {(action, arn(stage, used)) for action, used in api_calls} <= grants(policies["api"]["Statement"])


def broaden(function: str, change):
    def broadened(policies: dict[str, dict]) -> None:
        change(policies[function]["Statement"])
    return broadened


def statement(sid: str):
    return lambda statements: next(item for item in statements if item["Sid"] == sid)


def star_region(statements: list[dict]) -> None:
    statements[0]["Resource"] = [{"Fn::Sub": re.sub(r"\$\{AWS::Region\}", "*", item["Fn::Sub"])}
                                 for item in statements[0]["Resource"]]


BROADENED = {
    "the sweep writes the users table": broaden("sweep", lambda statements: statements.append({
        "Sid": "UsersTable", "Effect": "Allow", "Action": ["dynamodb:PutItem"],
        "Resource": [{"Fn::Sub": SCOPED % "dynamodb" + "table/tally-{stage}-users"}]})),
    "the sweep reads the search table": broaden("sweep", lambda statements: statement("AccountsTable")(
        statements)["Resource"].append({"Fn::Sub": SCOPED % "dynamodb" + "table/tally-{stage}-search"})),
    "the sweep deletes lots": broaden("sweep", lambda statements: statement("LotsTable")(
        statements)["Action"].append("dynamodb:DeleteItem")),
    "the publisher writes any item of the idempotency table": broaden("publisher", lambda statements: statement(
        "PublishedMarkers")(statements).pop("Condition")),
    "the publisher writes the idempotency table's every key": broaden("publisher", lambda statements: statement(
        "PublishedMarkers")(statements)["Condition"]["ForAllValues:StringLike"].update(
            {"dynamodb:LeadingKeys": ["*"]})),
    "a `*` region": broaden("authorizer", star_region),
    "logs anywhere": broaden("authorizer", lambda statements: statement("Logs")(statements).update(
        {"Resource": "arn:aws:logs:*:*:*"})),
    "another function's log group": broaden("sweep", lambda statements: statement("Logs")(statements)[
        "Resource"].append({"Fn::Sub": SCOPED % "logs" + "log-group:/aws/lambda/tally-{stage}-api:*"})),
    "the authorizer reads the accounts": broaden("authorizer", lambda statements: statement("KeysTable")(
        statements)["Resource"].append({"Fn::Sub": SCOPED % "dynamodb" + "table/tally-{stage}-accounts"})),
    "the sweep reads the signing key": broaden("sweep", lambda statements: statements.append({
        "Sid": "JwtSigningKey", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
        "Resource": {"Fn::Sub": SCOPED % "secretsmanager" + "secret:tally/{stage}/jwt-secret-??????"}})),
    "the API scans": broaden("api", lambda statements: statement("Ledger")(statements)["Action"].append(
        "dynamodb:Scan")),
    "the API writes the keys": broaden("api", lambda statements: statement("Ledger")(statements)["Resource"].append(
        {"Fn::Sub": SCOPED % "dynamodb" + "table/tally-{stage}-keys"})),
    "X-Ray's \"*\" for more than traces": broaden("publisher", lambda statements: statement("Traces")(
        statements)["Action"].append("events:PutEvents")),
}


@pytest.mark.parametrize("broadened", BROADENED.values(), ids=BROADENED.keys())
def test_a_broadened_policy_fails_the_audit(broadened):
    for stage in stages():
        policies = policy_files(stage)
        check_policies(stage, policies)  # as committed: passes
        widened = copy.deepcopy(policies)
        broadened(widened)
        widened = json.loads(json.dumps(widened).replace("{stage}", stage))
        with pytest.raises(AssertionError):
            check_policies(stage, widened)
