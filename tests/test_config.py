"""Configuration from the environment, and mounting surfaces by it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.config import load

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_derive_table_names_from_the_stage():
    settings = load({"TALLY_STAGE": "prod"})
    assert settings.table_name("accounts") == "tally-prod-accounts"
    assert settings.dynamodb_endpoint is None


def test_a_deployed_stage_mounts_only_v1_unless_the_operator_switches_a_seed_on():
    deployed = load({"TALLY_STAGE": "prod"})
    assert deployed.mounts == {"accounts": None, "points_tracker": None, "points_app": None, "wallet_app": None,
                               "asper_wallet": None, "v1": ""}
    assert deployed.seed_auth == "api_key"  # a seed switched on sits behind keys unless the operator says none
    switched = load({"TALLY_STAGE": "prod", "TALLY_MOUNT_ACCOUNTS": "on", "TALLY_SEED_AUTH": "none"})
    assert (switched.mounts["accounts"], switched.seed_auth) == ("", "none")
    undeployed = load({"TALLY_STAGE": "local"})  # `make run` and the tests: every surface, seeds open
    assert set(undeployed.mounts.values()) == {""} and len(undeployed.mounts) == 6 and undeployed.seed_auth == "none"
    with pytest.raises(ValueError, match="TALLY_SEED_AUTH"):
        load({"TALLY_SEED_AUTH": "maybe"})
    on_lambda = load({"TALLY_STAGE": "local", "AWS_LAMBDA_FUNCTION_NAME": "tally-local"})  # deployed by mistake
    assert on_lambda.deployed and on_lambda.mounts == deployed.mounts and on_lambda.jwt_secret is None


def test_endpoint_prefix_and_limits_come_from_the_environment():
    settings = load({"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9", "TALLY_TABLE_PREFIX": "x",
                     "TALLY_MAX_ATTEMPTS": "3", "AWS_REGION": "eu-west-1", "TALLY_RETRY_SECONDS": "2.5"})
    assert settings.retry_seconds == 2.5
    assert (settings.dynamodb_endpoint, settings.table_name("entries"), settings.max_attempts, settings.region) == (
        "http://127.0.0.1:9", "x-entries", 3, "eu-west-1")
    assert load({"DYNAMODB_ENDPOINT": "http://a", "AWS_ENDPOINT_URL_DYNAMODB": "http://b"}).dynamodb_endpoint == "http://a"


@pytest.mark.parametrize("raw, mount", [("", ""), ("/", ""), ("off", None), ("/legacy/", "/legacy"), ("v0", "/v0")])
def test_a_surface_mounts_at_a_prefix_or_is_off(raw, mount):
    assert load({"TALLY_MOUNT_ACCOUNTS": raw}).mounts["accounts"] == mount


def test_a_limit_below_its_minimum_is_refused():
    with pytest.raises(ValueError):
        load({"TALLY_MAX_ATTEMPTS": "0"})


def routes_with(environment: dict[str, str]) -> list[str]:
    code = "import json, app; print(json.dumps(sorted(app.app.routes)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True,
                         env={**os.environ, **environment})
    return json.loads(out.stdout)


def test_the_app_mounts_surfaces_as_configured():
    assert "/amount" in routes_with({})
    assert "/legacy/amount" in routes_with({"TALLY_MOUNT_ACCOUNTS": "/legacy"})
    assert "/amount" not in routes_with({"TALLY_MOUNT_ACCOUNTS": "off"})


def test_a_deployed_stage_reads_its_signing_key_at_run_time_and_refuses_a_short_one():
    import boto3
    from moto import mock_aws

    from chalicelib import stage_secret as auth

    deployed = load({"TALLY_STAGE": "prod", "TALLY_JWT_SECRET_NAME": "tally/prod/jwt-secret"})
    assert deployed.jwt_secret is None and deployed.jwt_secret_name == "tally/prod/jwt-secret"
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name=deployed.region)
        secrets.create_secret(Name="tally/prod/jwt-secret", SecretString="k" * 32)
        auth._stored_secret.cache_clear()
        assert auth.signing_key(deployed) == "k" * 32
        secrets.put_secret_value(SecretId="tally/prod/jwt-secret", SecretString="rotated" * 8)
        assert auth.signing_key(deployed) == "k" * 32  # read once per container, not per request
    auth._stored_secret.cache_clear()
    with pytest.raises(auth.SigningKeyError, match="32 bytes"):
        auth.signing_key(load({"TALLY_STAGE": "prod", "JWT_SECRET_KEY": "short"}))
    with pytest.raises(auth.SigningKeyError, match="TALLY_JWT_SECRET_NAME"):
        auth.signing_key(load({"TALLY_STAGE": "prod"}))
    local = load({"TALLY_STAGE": "local"})  # a process-wide secret, so tokens work within one run
    assert local.jwt_secret and local.jwt_secret == load({"TALLY_STAGE": "local"}).jwt_secret


def test_wallet_minimums_and_token_lifetimes_come_from_the_environment():
    settings = load({"MINIMUM_BALANCE": "20.5", "ASPER_MINIMUM_BALANCE": "0", "JWT_ACCESS_TOKEN_EXPIRES": "7"})
    assert (settings.wallet_app_minimum, settings.asper_wallet_minimum, settings.jwt_access_minutes) == (2050, 0, 7)
    assert (load({}).wallet_app_minimum, load({}).asper_wallet_minimum) == (2000, 10000)
    for bad in ("20.555", "-1", "lots"):
        with pytest.raises(ValueError, match="MINIMUM_BALANCE"):
            load({"MINIMUM_BALANCE": bad})
