"""The deployable package: `make package`'s SAM template, checked as API Gateway and CloudFormation will read it.

Packaging runs `chalice package --merge-template` and cfn-lint (which must be clean) once per session.
"""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from chalicelib.core import models
from tools import infra, package

STAGE = "prod"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> dict:
    out_dir = package.package(STAGE, tmp_path_factory.mktemp("package") / STAGE)
    assert (out_dir / "deployment.zip").stat().st_size > 0
    return json.loads((out_dir / "sam.json").read_text())


def test_the_committed_infra_templates_match_the_models():
    assert infra.main(["--check"]) == 0


def test_every_route_answers_every_method_so_api_gateway_says_405_not_403(template):
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert {"/amount", "/add", "/spend_points", "/", "/api/v1/users", "/wallet/debit"} <= set(paths)
    for path, methods in paths.items():
        assert set(methods) == METHODS, path  # and no OPTIONS: CORS is off


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
    assert variables["JWT_SECRET_KEY"] == {"Fn::Sub": "{{resolve:secretsmanager:${JwtSecretName}:SecretString}}"}
    assert variables["TALLY_EVENT_BUS"] == {"Ref": "EventBus"}
    assert package.PLACEHOLDER_SECRET not in json.dumps(template)


def test_the_sweep_runs_every_minute_and_the_publisher_reads_the_entries_stream(template):
    resources = template["Resources"]
    assert resources["ExpireDue"]["Properties"]["Events"]["ExpireDueEvent"] == {
        "Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}
    source = resources["PublishEntries"]["Properties"]["Events"]["PublishEntriesDynamodbEventSource"]["Properties"]
    assert source["Stream"] == {"Fn::GetAtt": ["EntriesTable", "StreamArn"]}
    assert source["StartingPosition"] == "TRIM_HORIZON" and source["BisectBatchOnFunctionError"] is True
    assert resources["EntriesTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert resources["EventBus"]["Properties"]["Name"] == f"tally-{STAGE}"


def test_every_compiled_extension_in_the_zip_is_for_the_pinned_runtime(template, tmp_path_factory):
    import zipfile

    abi = "cpython-" + infra.LAMBDA_RUNTIME.removeprefix("python").replace(".", "")
    zip_path = next(tmp_path_factory.getbasetemp().glob("package*/prod/deployment.zip"))
    extensions = [name for name in zipfile.ZipFile(zip_path).namelist() if name.endswith(".so")]
    assert extensions and all(abi in name for name in extensions), extensions


@pytest.mark.parametrize("role_name, policy_file", [
    ("ApiHandlerRole", "policy-{stage}.json"), ("ExpireDueRole", "policy-{stage}.json"),
    ("PublishEntriesRole", "policy-publisher-{stage}.json")])
def test_each_role_has_its_stage_policy_and_nothing_else(template, role_name, policy_file):
    role = template["Resources"][role_name]["Properties"]
    policy = json.loads((infra.ROOT / ".chalice" / policy_file.format(stage=STAGE)).read_text())
    assert [item["PolicyDocument"] for item in role["Policies"]] == [policy]
    assert "ManagedPolicyArns" not in role


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
