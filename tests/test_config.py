"""Configuration from the environment, and mounting surfaces by it."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
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
        secrets.create_secret(Name="tally/prod/short", SecretString="short")
        with pytest.raises(auth.SigningKeyError, match="32 bytes"):
            auth.signing_key(load({"TALLY_STAGE": "prod", "TALLY_JWT_SECRET_NAME": "tally/prod/short"}))
    auth._stored_secret.cache_clear()
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


# Seed 002's README publishes this signing key (in its `.env` example, quotes and all): anyone may sign with it.
SEED_002_SECRET = "ScuqXHWTSBlzE6Zlp3jE2iExBqrRSTm8KbWw+IbA/oc="
STRONG = "a-stage-secret-of-its-own-" + "x" * 32


def app_start(environment: dict[str, str]) -> subprocess.CompletedProcess:
    """Import the app as a Lambda container's start does, with this environment."""
    return subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **environment})


@pytest.mark.parametrize("environment", [{"TALLY_STAGE": "prod"},
                                         {"TALLY_STAGE": "local", "AWS_LAMBDA_FUNCTION_NAME": "tally-local"}])
def test_a_deployed_stage_refuses_a_secret_from_the_environment_and_does_not_start(environment):
    named = {**environment, "TALLY_JWT_SECRET_NAME": "tally/prod/jwt-secret"}
    with pytest.raises(ValueError, match="JWT_SECRET_KEY.*deployed.*Secrets Manager"):
        load({**named, "JWT_SECRET_KEY": STRONG})
    started = app_start({**named, "JWT_SECRET_KEY": STRONG})
    assert started.returncode != 0 and "JWT_SECRET_KEY" in started.stderr and "Secrets Manager" in started.stderr
    assert load(named).jwt_secret is None  # without it, the stage starts and reads Secrets Manager only


@pytest.mark.parametrize("published", [SEED_002_SECRET, f"'{SEED_002_SECRET}'", f" {SEED_002_SECRET}\n",
                                       f"{SEED_002_SECRET}\x00\x00"])  # HMAC pads keys with NULs
def test_a_secret_the_seeds_publish_is_refused_on_every_stage(published):
    import boto3
    from moto import mock_aws

    from chalicelib import stage_secret as auth

    assert len(published.strip().strip("'").encode()) >= auth.MIN_DEPLOYED_KEY_BYTES  # the length check passes it
    for stage in ("local", "test"):  # undeployed: an environment secret, but never a published one
        with pytest.raises(ValueError, match="published"):
            load({"TALLY_STAGE": stage, "JWT_SECRET_KEY": published})
        assert load({"TALLY_STAGE": stage, "JWT_SECRET_KEY": STRONG}).jwt_secret == STRONG
    with pytest.raises(ValueError, match="published"):
        load({"TALLY_STAGE": "prod", "JWT_SECRET_KEY": published})
    deployed = load({"TALLY_STAGE": "prod", "TALLY_JWT_SECRET_NAME": "tally/prod/jwt-secret"})
    auth._stored_secret.cache_clear()
    with mock_aws():
        boto3.client("secretsmanager", region_name=deployed.region).create_secret(
            Name="tally/prod/jwt-secret", SecretString=published)
        with pytest.raises(auth.SigningKeyError, match="published"):
            auth.signing_key(deployed)
        with pytest.raises(auth.SigningKeyError, match="published"):
            auth.derived_key(deployed, "cursor")  # the cursor key is never derived from it either
    auth._stored_secret.cache_clear()


def test_a_deployed_stage_signs_with_the_secrets_manager_secret_only():
    import boto3
    from moto import mock_aws

    from chalicelib import stage_secret as auth

    deployed = replace(load({"TALLY_STAGE": "prod", "TALLY_JWT_SECRET_NAME": "tally/prod/jwt-secret"}),
                       jwt_secret=STRONG)  # a secret in the settings by any other way is not used
    auth._stored_secret.cache_clear()
    with mock_aws():
        boto3.client("secretsmanager", region_name=deployed.region).create_secret(
            Name="tally/prod/jwt-secret", SecretString="s" * 40)
        assert auth.signing_key(deployed) == "s" * 40
    auth._stored_secret.cache_clear()


SEEDS = ROOT.parent / "shared" / "seeds"
# An assignment of a secret in a seed's text: `JWT_SECRET_KEY='...'`, `SECRET_KEY = "..."`, `PASSWORD: ...`.
SECRET_ASSIGNMENT = re.compile(r"\b([A-Z0-9_]*(?:SECRET|PASSWORD|_KEY)[A-Z0-9_]*)\s*[=:]\s*(['\"]?)([^\s'\"]{8,})\2")


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed contracts are not beside this checkout")
def test_every_secret_the_seeds_publish_is_on_the_refused_list():
    from chalicelib.config import published_secret

    found = {match.group(3) for path in sorted(SEEDS.iterdir()) if path.is_file()
             for match in SECRET_ASSIGNMENT.finditer(path.read_text(errors="replace"))}
    assert SEED_002_SECRET in found  # the scan sees the one we know of
    assert [secret for secret in found if not published_secret(secret)] == []


def test_v1_writes_without_a_read_are_on_unless_switched_off_and_a_guess_is_refused():
    assert load({}).v1_writes_without_read is True
    assert load({"TALLY_V1_WRITES_WITHOUT_READ": "1"}).v1_writes_without_read is True
    assert load({"TALLY_V1_WRITES_WITHOUT_READ": "0"}).v1_writes_without_read is False
    with pytest.raises(ValueError, match="TALLY_V1_WRITES_WITHOUT_READ"):
        load({"TALLY_V1_WRITES_WITHOUT_READ": "yes"})
