"""The deployable package: `make package`'s SAM template, checked as API Gateway and CloudFormation will read it.

Packaging runs `chalice package --merge-template` and cfn-lint (which must be clean) once per session.
"""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from chalicelib.core import drains, models
from chalicelib.web import access
from tools import infra, package

pytestmark = pytest.mark.package
STAGE = "prod"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    out_dir = package.package(STAGE, tmp_path_factory.mktemp("package") / STAGE)
    assert (out_dir / "deployment.zip").stat().st_size > 0
    return out_dir


@pytest.fixture(scope="module")
def template(packaged) -> dict:
    return json.loads((packaged / "sam.json").read_text())


def test_the_committed_infra_templates_match_the_models():
    assert infra.main(["--check"]) == 0


def test_every_route_answers_every_method_so_api_gateway_says_405_not_403(template):
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert {"/v1/accounts", "/v1/postings", "/openapi.json"} <= set(paths)
    for path, methods in paths.items():
        assert set(methods) in (METHODS, METHODS | {"head"}), path  # and no OPTIONS: CORS is off
    assert "head" in paths["/openapi.json"] and "head" in paths["/v1/accounts/{account_id}"]  # beside each GET
    assert "head" not in paths["/v1/postings"]


def unguarded(paths: dict) -> set[tuple[str, str]]:
    """(path, method) of every operation with no API-key authorizer (and so no usage-plan key either)."""
    return {(path, method) for path, methods in paths.items() for method, operation in methods.items()
            if {"key_authorizer", "api_key"} - {name for item in operation.get("security", []) for name in item}}


def test_every_deployed_route_needs_a_key_but_the_documented_public_ones(template):
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert not {"/amount", "/add", "/api/v1/users", "/wallet/debit"} & set(body["paths"])  # seeds: off unless on
    assert unguarded(body["paths"]) == {(path, method) for path in access.PUBLIC_ROUTES & set(body["paths"])
                                        for method in body["paths"][path]}
    authorizer = body["securityDefinitions"]["key_authorizer"]
    assert authorizer["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"] == access.TTL_SECONDS
    # Merged into Chalice's own definition (still its Lambda's): other spellings never reach the function.
    assert authorizer["x-amazon-apigateway-authorizer"]["type"] == "token"
    assert "authorizerUri" in authorizer["x-amazon-apigateway-authorizer"]
    assert (authorizer["x-amazon-apigateway-authorizer"]["identityValidationExpression"]
            == access.IDENTITY_VALIDATION_EXPRESSION)
    assert authorizer["name"] == "Authorization"
    assert body["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"  # the tenant's usage-plan key


def test_the_operator_console_is_deployed_public_with_its_page_in_the_zip(template, packaged):
    import zipfile

    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert "/console" in access.PUBLIC_ROUTES and set(paths["/console"]) == METHODS | {"head"}
    assert unguarded({"/console": paths["/console"]}) == {("/console", method) for method in paths["/console"]}
    assert "chalicelib/surfaces/console.html" in zipfile.ZipFile(packaged / "deployment.zip").namelist()


SEEDS_ON = {"TALLY_MOUNT_ACCOUNTS": "on", "TALLY_MOUNT_POINTS_TRACKER": "on", "TALLY_MOUNT_POINTS_APP": "on",
            "TALLY_MOUNT_WALLET_APP": "on", "TALLY_MOUNT_ASPER_WALLET": "on"}


@pytest.mark.parametrize("seed_auth", ["api_key", "none"])
def test_seed_surfaces_switched_on_are_guarded_unless_the_operator_says_none(tmp_path, seed_auth):
    out_dir = package.package(STAGE, tmp_path / STAGE, {**SEEDS_ON, "TALLY_SEED_AUTH": seed_auth})
    paths = json.loads((out_dir / "sam.json").read_text())["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][
        "paths"]
    seed_paths = {path for path in paths if not path.startswith("/v1/")} - access.PUBLIC_ROUTES
    own_jwt = {path for path in seed_paths if path.startswith("/api/v1/")}  # seed 002 keeps Authorization for its JWT
    assert {"/amount", "/add", "/spend_points", "/wallet/debit"} <= seed_paths and own_jwt
    open_paths = access.PUBLIC_ROUTES | own_jwt | (seed_paths if seed_auth == "none" else set())
    assert unguarded(paths) == {(path, method) for path in open_paths & set(paths) for method in paths[path]}


def test_the_api_gateway_answers_in_tallys_shape_and_tenants_are_throttled_each_on_its_own(template):
    resources = template["Resources"]
    responses = resources["RestAPI"]["Properties"]["GatewayResponses"]
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"
    assert json.loads(responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"]) == access.UNAUTHORIZED_BODY
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    plan = resources["TenantUsagePlan"]["Properties"]
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}]
    assert plan["Throttle"] == {"RateLimit": {"Ref": "TenantRateLimit"}, "BurstLimit": {"Ref": "TenantBurstLimit"}}


def test_json_is_not_a_binary_media_type(template):
    binary = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-binary-media-types"]
    assert not any("json" in media_type for media_type in binary)


@pytest.mark.parametrize("name", infra.FUNCTIONS)
def test_each_function_runtime_memory_timeout_secret_and_bus(template, name):
    function = template["Resources"][name]["Properties"]
    assert function["Runtime"] == infra.LAMBDA_RUNTIME == "python3.11"
    assert (function["MemorySize"], function["Timeout"]) == (512, 29)
    variables = function["Environment"]["Variables"]
    assert variables["TALLY_STAGE"] == STAGE
    assert variables["TALLY_EVENT_BUS"] == {"Ref": "EventBus"}
    # Seed 002's signing key is in no function's configuration; only the API function learns its name.
    assert "JWT_SECRET_KEY" not in variables and "resolve:secretsmanager" not in json.dumps(template)
    assert variables.get("TALLY_JWT_SECRET_NAME") == (infra.jwt_secret_name(STAGE) if name == "APIHandler" else None)


def test_the_sweep_runs_every_minute_the_publisher_reads_the_entries_stream_the_drainer_the_accounts(template):
    resources = template["Resources"]
    assert resources["ExpireDue"]["Properties"]["Events"]["ExpireDueEvent"] == {
        "Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}
    source = resources["PublishEntries"]["Properties"]["Events"]["PublishEntriesDynamodbEventSource"]["Properties"]
    assert source["Stream"] == {"Fn::GetAtt": ["EntriesTable", "StreamArn"]}
    assert source["StartingPosition"] == "TRIM_HORIZON" and source["BisectBatchOnFunctionError"] is True
    assert resources["EntriesTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert resources["EventBus"]["Properties"]["Name"] == f"tally-{STAGE}"
    # A batch starts no item after BATCH_SECONDS; the one in flight ends within its own try.
    assert resources["DrainLogs"]["Properties"]["Timeout"] > drains.BATCH_SECONDS + drains.ITEM_SECONDS
    source = resources["DrainLogs"]["Properties"]["Events"]["DrainLogsDynamodbEventSource"]["Properties"]
    assert source["Stream"] == {"Fn::GetAtt": ["AccountsTable", "StreamArn"]}
    assert source["StartingPosition"] == "TRIM_HORIZON" and source["BisectBatchOnFunctionError"] is True
    assert resources["AccountsTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_every_compiled_extension_in_the_zip_is_for_the_pinned_runtime(packaged):
    import zipfile

    abi = "cpython-" + infra.LAMBDA_RUNTIME.removeprefix("python").replace(".", "")
    extensions = [name for name in zipfile.ZipFile(packaged / "deployment.zip").namelist() if name.endswith(".so")]
    assert extensions and all(abi in name for name in extensions), extensions


@pytest.mark.parametrize("role_name, policy_file", [
    ("ApiHandlerRole", "policy-{stage}.json"), ("ExpireDueRole", "policy-sweep-{stage}.json"),
    ("PublishEntriesRole", "policy-publisher-{stage}.json"), ("DrainLogsRole", "policy-drainer-{stage}.json"),
    ("KeyAuthorizerRole", "policy-authorizer-{stage}.json")])
def test_each_role_has_its_stage_policy_and_nothing_else(template, role_name, policy_file):
    role = template["Resources"][role_name]["Properties"]
    policy = json.loads((infra.ROOT / ".chalice" / policy_file.format(stage=STAGE)).read_text())
    assert [item["PolicyDocument"] for item in role["Policies"]] == [policy]
    assert "ManagedPolicyArns" not in role
    readers = {json.dumps(resource) for statement in policy["Statement"]
               if "secretsmanager:GetSecretValue" in statement["Action"] for resource in statement["Resource"]}
    # Only the function that signs seed 002's tokens may read their key, in the stack's own region and account.
    assert readers == ({json.dumps({"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
                                              f"secret:{infra.jwt_secret_name(STAGE)}-??????"})}
                       if role_name == "ApiHandlerRole" else set())


def test_no_role_grants_anything_in_any_region_or_account_but_xray_which_takes_only_star(template):
    roles = {name: resource for name, resource in template["Resources"].items()
             if resource["Type"] == "AWS::IAM::Role"}
    assert len(roles) == len(infra.FUNCTIONS)
    for name, role in roles.items():
        for statement in (item for policy in role["Properties"]["Policies"]
                          for item in policy["PolicyDocument"]["Statement"]):
            listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if set(statement["Action"]) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}:
                assert listed == ["*"], name
                continue
            for resource in listed:
                assert set(resource) == {"Fn::Sub"}, (name, resource)
                assert resource["Fn::Sub"].startswith("arn:${AWS::Partition}:") and \
                    ":${AWS::Region}:${AWS::AccountId}:" in resource["Fn::Sub"], (name, resource)


ACCESS_LOG_FIELDS = {"requestId": "$context.requestId", "ip": "$context.identity.sourceIp",
                     "caller": "$context.identity.caller", "principal": "$context.authorizer.principalId",
                     "route": "$context.resourcePath", "status": "$context.status",
                     "latency": "$context.responseLatency"}


def test_every_function_is_traced_under_its_own_name(template):
    for name in infra.FUNCTIONS:
        function = template["Resources"][name]["Properties"]
        assert function["Tracing"] == "Active", name
        assert function["FunctionName"] == f"tally-{STAGE}-{infra.FUNCTION_NAMES[name]}", name


def test_the_api_stage_is_traced_and_writes_an_access_log_that_is_kept(template):
    """As SAM makes the stage: the API's stage resource, read after translation."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self):
            return {}

    uploaded = json.loads(json.dumps(template))
    for resource in uploaded["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://deployment-bucket/deployment.zip"
    translated = transform(uploaded, {}, NoManagedPolicies())["Resources"]
    [stage] = [resource["Properties"] for resource in translated.values()
               if resource["Type"] == "AWS::ApiGateway::Stage"]
    assert stage["TracingEnabled"] is True
    assert stage["AccessLogSetting"]["DestinationArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${ApiAccessLogs}"}
    logged = json.loads(stage["AccessLogSetting"]["Format"])
    assert ACCESS_LOG_FIELDS.items() <= logged.items()
    assert not any("apiKey" in value or "Authorization" in value for value in logged.values())  # no credential
    group = translated["ApiAccessLogs"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}
    assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"  # prod's audit trail outlives it
    retention = template["Parameters"]["AccessLogRetentionDays"]
    assert retention["Default"] in retention["AllowedValues"]
    functions = [resource["Properties"] for resource in translated.values()
                 if resource["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == len(infra.FUNCTIONS)
    assert all(function["TracingConfig"] == {"Mode": "Active"} for function in functions)


def test_the_api_stage_is_throttled(template):
    settings = template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert settings == [{"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
                         "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"}}]


def test_prod_tables_are_kept_encrypted_and_recoverable(template):
    tables = {name: resource for name, resource in template["Resources"].items()
              if resource["Type"] == "AWS::DynamoDB::Table"}
    assert len(tables) == len(models.MODELS)
    for resource in tables.values():
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
        properties = resource["Properties"]
        assert properties["DeletionProtectionEnabled"] is True
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert tables["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at", "Enabled": True}


def same_form(items: list[dict]) -> list[tuple]:
    return sorted(tuple(sorted(item.items())) for item in items)


def same(left: list[dict], right: list[dict]) -> bool:
    return same_form(left) == same_form(right)


def test_the_stack_creates_the_tables_and_indexes_the_code_uses(template):
    """SAM-translate the packaged template, create its DynamoDB part in moto's CloudFormation, and compare
    each table DynamoDB then describes with the schema PynamoDB derives from the model."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self):
            return {}

    uploaded = json.loads(json.dumps(template))  # what `aws cloudformation package` does: the zip goes to S3
    for resource in uploaded["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://deployment-bucket/deployment.zip"
    translated = transform(uploaded, {}, NoManagedPolicies())
    tables = {name: resource for name, resource in translated["Resources"].items()
              if resource["Type"] == "AWS::DynamoDB::Table"}
    stack = {"AWSTemplateFormatVersion": "2010-09-09", "Parameters": translated["Parameters"],
             "Conditions": translated["Conditions"], "Resources": tables}
    with mock_aws():
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="tally-tables", TemplateBody=json.dumps(stack))
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        for kind, model in models.MODELS.items():
            described = dynamodb.describe_table(TableName=f"tally-{STAGE}-{kind}")["Table"]
            schema = model._get_schema()
            assert same(described["KeySchema"], schema["key_schema"]), kind
            assert same(described["AttributeDefinitions"], schema["attribute_definitions"]), kind
            indexes = {index["IndexName"]: (same_form(index["KeySchema"]), index["Projection"]["ProjectionType"])
                       for index in described.get("GlobalSecondaryIndexes", [])}
            assert indexes == {index["index_name"]: (same_form(index["key_schema"]),
                                                     index["projection"]["ProjectionType"])
                               for index in schema["global_secondary_indexes"]}, kind
            assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


@pytest.mark.parametrize("stage", ["local", "test"])
def test_a_stage_for_make_run_and_the_tests_is_never_packaged(tmp_path, stage):
    with pytest.raises(SystemExit, match="never deployed"):
        package.package(stage, tmp_path / stage)
