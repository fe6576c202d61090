"""Write `infra/<stage>.json`: the CloudFormation that `chalice package --merge-template` adds to Chalice's output.

The tables and their indexes are derived from the PynamoDB models (one definition; `--check`, run by
`make package` and the tests, fails when a committed template has drifted from them). The template also pins
the Lambda runtime, names seed 002's signing-key secret to the API function alone, sets the API stage's
throttling, API Gateway's own answers in Tally's error shape and the per-tenant usage plan, makes the journal's
event bus, points the publisher at the entries table's stream and the drainer of idle logs at the accounts
table's, and turns on the audit trail: X-Ray tracing of the API stage and every function, and the API stage's
access log in a log group of its own.

It also writes each function's IAM policy, `.chalice/policy[-<function>]-<stage>.json` (`autogen_policy` is
off): only the actions each function issues, on only the tables, indexes, stream, bus, secret and log group it
uses, every ARN in the stack's own partition, region and account. tests/test_iam_policy.py proves each against
the calls the code makes.

Usage: python -m tools.infra [--check]      (every stage in .chalice/config.json)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from chalicelib.config import load
from chalicelib.core import drains, events, models
from chalicelib.web import access

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
# The Lambda runtime, pinned on purpose. Chalice builds the zip's compiled wheels (pydantic-core) for the
# Python that runs `chalice package`, so the runtime must be that Python's: tools/package.py refuses any other.
# 3.11 is this project's Python and an AWS Lambda runtime until mid-2027; to move, change both together.
LAMBDA_RUNTIME = "python3.11"
# Stages whose data must survive a stack deletion or a mistaken replace.
PROTECTED_STAGES = {"prod"}
# Idempotency records that are retry keys carry `expires_at`; seed 004's transaction ids never do.
TTL_ATTRIBUTES = {"idempotency": "expires_at", "users": "expires_at"}  # users: used refresh tokens only
# Every new journal entry is published as an event (core/events.py, the `publish_entries` function); every
# account item's write is seen by the drainer of idle logs (core/drains.py, `drain_logs`), which reads only the new
# image. The accounts' stream keeps the old one too: a balance crossing a threshold is told by the pair of images,
# in the item's order, and a stream's view type cannot change without a new stream.
STREAMS = {"entries": "NEW_IMAGE", "accounts": "NEW_AND_OLD_IMAGES"}


# Chalice's names for the app's Lambda functions: the API, the expiry sweep, the journal publisher, the drainer of
# idle logs and the API-key authorizer.
FUNCTIONS = ("APIHandler", "ExpireDue", "PublishEntries", "DrainLogs", "KeyAuthorizer")
# Each function's name, fixed (as the tables' are) so its role can name its own log group and nothing else.
FUNCTION_NAMES = {"APIHandler": "api", "ExpireDue": "expire-due", "PublishEntries": "publish-entries",
                  "DrainLogs": "drain-logs", "KeyAuthorizer": "key-authorizer"}
# Each function's policy file in .chalice/ (config.json names them per stage).
POLICY_FILES = {"APIHandler": "policy-{stage}.json", "ExpireDue": "policy-sweep-{stage}.json",
                "PublishEntries": "policy-publisher-{stage}.json", "DrainLogs": "policy-drainer-{stage}.json",
                "KeyAuthorizer": "policy-authorizer-{stage}.json"}

# What each function does to DynamoDB. The API does everything a request can (every table but the keys, which
# the authorizer alone reads); it may query every index of its tables and nothing else there.
API_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem",
               "dynamodb:Query", "dynamodb:UpdateItem")
AUTHORIZER_TABLES = {"keys": ("dynamodb:GetItem",)}
# The sweep (core/expiry.py): finishes a spend left in parts (accounts' pending_takes, links, lots, payers),
# expires due lots and holds (the by_expiry indexes) as journal entries (entries, transactions, accounts). An
# expiry reads its account, and first drains what the account's log holds, as the drainer does (records' and /v1
# transactions' lines completed). It never touches users, search, counters or keys, nor puts a record.
SWEEP_TABLES = {
    "accounts": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "entries": ("dynamodb:PutItem",),
    "holds": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "idempotency": ("dynamodb:UpdateItem",),
    "links": ("dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"),
    "lots": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "payers": ("dynamodb:UpdateItem",),
    "transactions": ("dynamodb:PutItem", "dynamodb:UpdateItem"),
}
SWEEP_INDEXES = {"accounts": ("pending_takes",), "holds": ("by_expiry",), "lots": ("by_expiry",)}
# The drainer (core/drains.py, ledger/sequencer.py's `drain_writes`): reads an account item, and in one transaction
# puts its logged postings in the journal, gives each its record's and its /v1 transaction's line, and takes them
# out of the log. It reads no record or transaction, and touches no other table.
DRAINER_TABLES = {
    "accounts": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "entries": ("dynamodb:PutItem",),
    "idempotency": ("dynamodb:UpdateItem",),
    "transactions": ("dynamodb:UpdateItem",),
}
# The publisher (core/events.py) reads and writes its markers only: items of the idempotency table whose key
# begins with events.MARKER_PREFIX, never a client's idempotency record.
MARKER_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")
# What Lambda's stream poller calls with the function's role.
STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                  "dynamodb:ListStreams")
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
XRAY_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
# The API stage's access log: one JSON line per request, an audit trail of who called what and how it went.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId", "extendedRequestId": "$context.extendedRequestId",
    "time": "$context.requestTime", "ip": "$context.identity.sourceIp", "userAgent": "$context.identity.userAgent",
    "caller": "$context.identity.caller", "user": "$context.identity.user",
    "principal": "$context.authorizer.principalId", "tenant": "$context.authorizer.tenant",
    "method": "$context.httpMethod", "route": "$context.resourcePath", "path": "$context.path",
    "status": "$context.status", "protocol": "$context.protocol", "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency", "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus", "error": "$context.error.message",
    "xrayTraceId": "$context.xrayTraceId",
}
# CloudWatch Logs' allowed retentions, days; the access log keeps 400 unless the stack says otherwise.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)


def jwt_secret_name(stage: str) -> str:
    """Seed 002's signing key in Secrets Manager: only the API function is told this name, and only its role
    may read it (.chalice/policy-<stage>.json)."""
    return f"tally/{stage}/jwt-secret"


def event_bus_name(stage: str) -> str:
    return f"tally-{stage}"


def function_name(stage: str, function: str) -> str:
    return f"tally-{stage}-{FUNCTION_NAMES[function]}"


def access_log_group_name(stage: str) -> str:
    return f"/aws/apigateway/tally-{stage}-access"


def arn(service: str, resource: str) -> dict:
    """An ARN in the stack's own partition, region and account."""
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"}


def table_arn(stage: str, kind: str, index: str | None = None) -> dict:
    return arn("dynamodb", f"table/tally-{stage}-{kind}" + (f"/index/{index}" if index else ""))


def _statement(sid: str, actions, resources: list, condition: dict | None = None) -> dict:
    statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _tables(stage: str, tables: dict[str, tuple[str, ...]], indexes: dict[str, tuple[str, ...]]) -> list[dict]:
    """A statement per table with its own actions, and one for the indexes, which are only ever queried."""
    statements = [_statement(f"{kind.capitalize()}Table", actions, [table_arn(stage, kind)])
                  for kind, actions in sorted(tables.items())]
    if indexes:
        statements.append(_statement("Indexes", ["dynamodb:Query"], [
            table_arn(stage, kind, index) for kind, names in sorted(indexes.items()) for index in sorted(names)]))
    return statements


def _logs_and_traces(stage: str, function: str) -> list[dict]:
    group = f"log-group:/aws/lambda/{function_name(stage, function)}"
    return [
        # Its own log group (as the group, and `:*` for its streams), nobody else's.
        _statement("Logs", LOG_ACTIONS, [arn("logs", group), arn("logs", f"{group}:*")]),
        # X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions: "*" is the
        # only resource IAM accepts for them (they write traces, and read nothing).
        _statement("Traces", XRAY_ACTIONS, ["*"]),
    ]


def policies(stage: str) -> dict[str, dict]:
    """Each function's IAM policy document, by Chalice's name of the function."""
    api_tables = {kind: model for kind, model in models.MODELS.items() if kind not in AUTHORIZER_TABLES}
    api = _tables(stage, {}, {kind: tuple(index.Meta.index_name for index in model._indexes.values())
                              for kind, model in api_tables.items() if model._indexes})
    api.insert(0, _statement("Ledger", API_ACTIONS, [table_arn(stage, kind) for kind in api_tables]))
    # Only the API function signs seed 002's tokens and page cursors; Secrets Manager adds six characters.
    api.append(_statement("JwtSigningKey", ["secretsmanager:GetSecretValue"],
                          [arn("secretsmanager", f"secret:{jwt_secret_name(stage)}-??????")]))
    publisher = [
        _statement("JournalStream", STREAM_ACTIONS, [arn("dynamodb", f"table/tally-{stage}-entries/stream/*")]),
        _statement("JournalEvents", ["events:PutEvents"], [arn("events", f"event-bus/{event_bus_name(stage)}")]),
        _statement("PublishedMarkers", MARKER_ACTIONS, [table_arn(stage, "idempotency")], {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{events.MARKER_PREFIX}*"]}}),
    ]
    drainer = [
        _statement("AccountsStream", STREAM_ACTIONS, [arn("dynamodb", f"table/tally-{stage}-accounts/stream/*")]),
        *_tables(stage, DRAINER_TABLES, {}),
    ]
    documents = {"APIHandler": api, "ExpireDue": _tables(stage, SWEEP_TABLES, SWEEP_INDEXES),
                 "PublishEntries": publisher, "DrainLogs": drainer,
                 "KeyAuthorizer": _tables(stage, AUTHORIZER_TABLES, {})}
    return {function: {"Version": "2012-10-17", "Statement": statements + _logs_and_traces(stage, function)}
            for function, statements in documents.items()}


def stages() -> list[str]:
    return sorted(json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"])


def table_resource(kind: str, model, stage: str) -> dict:
    """An AWS::DynamoDB::Table from the schema PynamoDB itself would create: keys, types, GSIs, projections."""
    schema = model._get_schema()
    if schema["local_secondary_indexes"]:
        raise ValueError(f"{kind}: add local secondary indexes to tools/infra.py")
    hash_first = {"HASH": 0, "RANGE": 1}

    def keys(schema_keys: list[dict]) -> list[dict]:
        return sorted(schema_keys, key=lambda key: hash_first[key["KeyType"]])

    indexes = [{"IndexName": index["index_name"], "KeySchema": keys(index["key_schema"]),
                "Projection": index["projection"], "ProvisionedThroughput": _if_provisioned()}
               for index in sorted(schema["global_secondary_indexes"], key=lambda index: index["index_name"])]
    protected = stage in PROTECTED_STAGES
    properties = {
        "TableName": load({"TALLY_STAGE": stage}).table_name(kind),
        "AttributeDefinitions": sorted(schema["attribute_definitions"], key=lambda item: item["AttributeName"]),
        "KeySchema": keys(schema["key_schema"]),
        "BillingMode": {"Ref": "BillingMode"},
        "ProvisionedThroughput": _if_provisioned(),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "DeletionProtectionEnabled": protected,
    }
    if indexes:
        properties["GlobalSecondaryIndexes"] = indexes
    if kind in STREAMS:
        properties["StreamSpecification"] = {"StreamViewType": STREAMS[kind]}
    if kind in TTL_ATTRIBUTES:
        properties["TimeToLiveSpecification"] = {"AttributeName": TTL_ATTRIBUTES[kind], "Enabled": True}
    policy = "Retain" if protected else "Delete"
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": policy, "UpdateReplacePolicy": policy,
            "Properties": properties}


def _if_provisioned() -> dict:
    return {"Fn::If": ["Provisioned", {"ReadCapacityUnits": {"Ref": "ReadCapacityUnits"},
                                       "WriteCapacityUnits": {"Ref": "WriteCapacityUnits"}}, {"Ref": "AWS::NoValue"}]}


def logical_id(kind: str) -> str:
    return f"{kind.capitalize()}Table"


def template(stage: str) -> dict:
    resources = {logical_id(kind): table_resource(kind, model, stage) for kind, model in models.MODELS.items()}
    # Journal events go to a bus of the stage's own (rules on it route them to consumers).
    resources["EventBus"] = {"Type": "AWS::Events::EventBus", "Properties": {"Name": event_bus_name(stage)}}
    # Merged into Chalice's own resources (file values win): the functions and the API stage.
    # Each traced by X-Ray (its role may write traces), under a fixed name whose log group alone its role may write.
    for function in FUNCTIONS:
        resources[function] = {"Properties": {
            "FunctionName": function_name(stage, function), "Runtime": LAMBDA_RUNTIME, "Tracing": "Active",
            "Environment": {"Variables": {"TALLY_EVENT_BUS": {"Ref": "EventBus"}}}}}
    # The name of seed 002's signing key, never the key: the function reads it at run time.
    resources["APIHandler"]["Properties"]["Environment"]["Variables"]["TALLY_JWT_SECRET_NAME"] = jwt_secret_name(stage)
    # The stream is the table's own (known only once it exists); from its start, so no entry is missed,
    # and a failing batch is split to find the one record at fault instead of blocking the shard.
    resources["PublishEntries"]["Properties"]["Events"] = {"PublishEntriesDynamodbEventSource": {
        "Type": "DynamoDB", "Properties": {
            "Stream": {"Fn::GetAtt": [logical_id("entries"), "StreamArn"]}, "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 100, "MaximumBatchingWindowInSeconds": 1, "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 100, "MaximumRecordAgeInSeconds": 86400}}}
    # The accounts' stream, likewise. A second's batching window: an account's writes of that second drain together.
    resources["DrainLogs"]["Properties"]["Events"] = {"DrainLogsDynamodbEventSource": {
        "Type": "DynamoDB", "Properties": {
            "Stream": {"Fn::GetAtt": [logical_id("accounts"), "StreamArn"]}, "StartingPosition": "TRIM_HORIZON",
            "BatchSize": drains.BATCH_SIZE, "MaximumBatchingWindowInSeconds": 1, "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 100, "MaximumRecordAgeInSeconds": 86400}}}
    resources["RestAPI"] = {"Properties": {
        "MethodSettings": [{
            "HttpMethod": "*", "ResourcePath": "/*",
            "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
        }],
        # API Gateway's own answers (refused key, no such route, throttled) in Tally's error shape.
        "GatewayResponses": {kind: {
            "StatusCode": str(status),
            "ResponseTemplates": {"application/json": json.dumps(body, separators=(",", ":"))},
            "ResponseParameters": {"Headers": {name: f"'{value}'" for name, value in _gateway_headers(kind).items()}},
        } for kind, (status, body) in access.GATEWAY_RESPONSES.items()},
        # A guarded route's usage-plan key is the tenant's, which the authorizer answers with.
        # API Gateway refuses a header not spelled `Bearer tk_live_...` before running the authorizer (401, nothing
        # cached): merged into the authorizer Chalice defines, which has no parameter for it.
        "DefinitionBody": {"x-amazon-apigateway-api-key-source": "AUTHORIZER",
                           "securityDefinitions": {access.AUTHORIZER_NAME: {"x-amazon-apigateway-authorizer": {
                               "identityValidationExpression": access.IDENTITY_VALIDATION_EXPRESSION}}}},
        # The audit trail: every request traced, and one access-log line each (who, from where, which route,
        # what status, how long). API Gateway writes it with the account's CloudWatch role, which the operator
        # sets once per account and region (docs/operations/deploy.md): it is not the stack's to own.
        "TracingEnabled": True,
        "AccessLogSetting": {"DestinationArn": arn("logs", "log-group:${ApiAccessLogs}"),  # API Gateway's ARN form
                             "Format": json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":"))},
    }}
    protected = stage in PROTECTED_STAGES
    resources["ApiAccessLogs"] = {
        "Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain" if protected else "Delete",
        "UpdateReplacePolicy": "Retain" if protected else "Delete",
        "Properties": {"LogGroupName": access_log_group_name(stage),
                       "RetentionInDays": {"Ref": "AccessLogRetentionDays"}}}
    # Per-tenant throttling: each tenant's API Gateway key (made by `tools.keys create --usage-plan`) is in
    # this plan, whose limits apply to each key on its own, so one tenant cannot use up another's rate.
    resources["TenantUsagePlan"] = {"Type": "AWS::ApiGateway::UsagePlan", "Properties": {
        "UsagePlanName": f"tally-{stage}-tenants",
        "Description": "Per-tenant limits of /v1 (each tenant's key is throttled on its own)",
        "ApiStages": [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}],
        "Throttle": {"RateLimit": {"Ref": "TenantRateLimit"}, "BurstLimit": {"Ref": "TenantBurstLimit"}},
    }}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Tally ({stage}): DynamoDB tables, runtime, secret and API throttling. "
                       "Generated by tools/infra.py from the PynamoDB models; do not edit.",
        "Parameters": {
            "BillingMode": {"Type": "String", "Default": "PAY_PER_REQUEST",
                            "AllowedValues": ["PAY_PER_REQUEST", "PROVISIONED"],
                            "Description": "On-demand (default) or provisioned capacity for every table and index"},
            "ReadCapacityUnits": {"Type": "Number", "Default": 5, "MinValue": 1,
                                  "Description": "Per table and per index, when PROVISIONED"},
            "WriteCapacityUnits": {"Type": "Number", "Default": 5, "MinValue": 1,
                                   "Description": "Per table and per index, when PROVISIONED"},
            "TenantRateLimit": {"Type": "Number", "Default": 100, "MinValue": 1,
                                "Description": "Each tenant's steady-state requests per second"},
            "TenantBurstLimit": {"Type": "Number", "Default": 200, "MinValue": 1,
                                 "Description": "Each tenant's burst"},
            "ThrottlingRateLimit": {"Type": "Number", "Default": 500, "MinValue": 1,
                                    "Description": "API stage steady-state requests per second"},
            "ThrottlingBurstLimit": {"Type": "Number", "Default": 1000, "MinValue": 1,
                                     "Description": "API stage burst"},
            "AccessLogRetentionDays": {"Type": "Number", "Default": 400, "AllowedValues": list(LOG_RETENTION_DAYS),
                                       "Description": "How long the API stage's access log is kept, days"},
        },
        "Conditions": {"Provisioned": {"Fn::Equals": [{"Ref": "BillingMode"}, "PROVISIONED"]}},
        "Resources": resources,
        "Outputs": {**{f"{logical_id(kind)}Name": {"Value": {"Ref": logical_id(kind)}} for kind in models.MODELS},
                    "EventBusName": {"Value": {"Ref": "EventBus"}},
                    "AccessLogGroupName": {"Value": {"Ref": "ApiAccessLogs"}},
                    "UsagePlanId": {"Value": {"Ref": "TenantUsagePlan"},
                                    "Description": "for `python -m tools.keys create --usage-plan`"}},
    }


def _gateway_headers(kind: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if kind == "UNAUTHORIZED":
        headers["WWW-Authenticate"] = access.UNAUTHORIZED_HEADERS["WWW-Authenticate"]
    return headers


def rendered(stage: str) -> str:
    return json.dumps(template(stage), indent=2, sort_keys=False) + "\n"


def written(stage: str) -> dict[Path, str]:
    """Every file this tool writes for a stage, and its text."""
    files = {INFRA / f"{stage}.json": rendered(stage)}
    for function, document in policies(stage).items():
        files[ROOT / ".chalice" / POLICY_FILES[function].format(stage=stage)] = json.dumps(document, indent=2) + "\n"
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for stage in stages():
        for path, text in written(stage).items():
            if check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path.relative_to(ROOT)))
            else:
                path.write_text(text)
                print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date with the models and policies: {', '.join(stale)}; run `python -m tools.infra`",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
