"""Write `infra/<stage>.json`: the CloudFormation that `chalice package --merge-template` adds to Chalice's output.

The tables and their indexes are derived from the PynamoDB models (one definition; `--check`, run by
`make package` and the tests, fails when a committed template has drifted from them). The template also pins
the Lambda runtime, names seed 002's signing-key secret to the API function alone, sets the API stage's
throttling, API Gateway's own answers in Tally's error shape and the per-tenant usage plan, makes the journal's
event bus and points the publisher at the entries table's stream.

Usage: python -m tools.infra [--check]      (every stage in .chalice/config.json)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from chalicelib.config import load
from chalicelib.core import models
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
# Every new journal entry is published as an event (core/events.py, the `publish_entries` function).
STREAMS = {"entries": "NEW_IMAGE"}


# Chalice's names for the app's Lambda functions: the API, the expiry sweep, the journal publisher and the
# API-key authorizer.
FUNCTIONS = ("APIHandler", "ExpireDue", "PublishEntries", "KeyAuthorizer")


def jwt_secret_name(stage: str) -> str:
    """Seed 002's signing key in Secrets Manager: only the API function is told this name, and only its role
    may read it (.chalice/policy-<stage>.json)."""
    return f"tally/{stage}/jwt-secret"


def event_bus_name(stage: str) -> str:
    return f"tally-{stage}"


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
    for function in FUNCTIONS:
        resources[function] = {"Properties": {
            "Runtime": LAMBDA_RUNTIME, "Environment": {"Variables": {"TALLY_EVENT_BUS": {"Ref": "EventBus"}}}}}
    # The name of seed 002's signing key, never the key: the function reads it at run time.
    resources["APIHandler"]["Properties"]["Environment"]["Variables"]["TALLY_JWT_SECRET_NAME"] = jwt_secret_name(stage)
    # The stream is the table's own (known only once it exists); from its start, so no entry is missed,
    # and a failing batch is split to find the one record at fault instead of blocking the shard.
    resources["PublishEntries"]["Properties"]["Events"] = {"PublishEntriesDynamodbEventSource": {
        "Type": "DynamoDB", "Properties": {
            "Stream": {"Fn::GetAtt": [logical_id("entries"), "StreamArn"]}, "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 100, "MaximumBatchingWindowInSeconds": 1, "BisectBatchOnFunctionError": True,
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
        "DefinitionBody": {"x-amazon-apigateway-api-key-source": "AUTHORIZER"},
    }}
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
        },
        "Conditions": {"Provisioned": {"Fn::Equals": [{"Ref": "BillingMode"}, "PROVISIONED"]}},
        "Resources": resources,
        "Outputs": {**{f"{logical_id(kind)}Name": {"Value": {"Ref": logical_id(kind)}} for kind in models.MODELS},
                    "EventBusName": {"Value": {"Ref": "EventBus"}},
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


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for stage in stages():
        path = INFRA / f"{stage}.json"
        text = rendered(stage)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date with the models: {', '.join(stale)}; run `python -m tools.infra`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
