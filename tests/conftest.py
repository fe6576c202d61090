"""Fixtures: moto for behaviour, Amazon DynamoDB Local for atomicity and concurrency."""
from __future__ import annotations

import os
import uuid
from dataclasses import replace

from tools import dynamodb_local, local_http

# Before any chalicelib import: behaviour tests talk to moto, which must not see a
# custom endpoint. An endpoint given by the environment is kept for DynamoDB Local tests.
EXTERNAL_ENDPOINT = dynamodb_local.endpoint_from_environment()
for _name in ("DYNAMODB_ENDPOINT", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(_name, None)
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_SESSION_TOKEN="testing", AWS_DEFAULT_REGION="us-east-1", TALLY_STAGE="test",
                  TALLY_LOG_LEVEL="WARNING")

import pytest  # noqa: E402
from chalice.test import Client  # noqa: E402
from moto import mock_aws  # noqa: E402

import app as tally  # noqa: E402
from chalicelib.config import load  # noqa: E402
from chalicelib.core import models  # noqa: E402


@pytest.fixture
def aws():
    """Fresh moto DynamoDB with Tally's tables."""
    with mock_aws():
        models.bind(load())
        models.create_tables()
        yield


@pytest.fixture
def client(aws):
    with Client(tally.app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def dynamodb_endpoint():
    with dynamodb_local.running(existing=EXTERNAL_ENDPOINT) as endpoint:
        yield endpoint


@pytest.fixture
def local_tables(dynamodb_endpoint):
    """Tally's tables on DynamoDB Local under a prefix of their own, so tests never share data."""
    settings = replace(load(), dynamodb_endpoint=dynamodb_endpoint, table_prefix=f"t{uuid.uuid4().hex[:12]}")
    models.bind(settings)
    models.create_tables()
    yield settings
    models.bind(load())


@pytest.fixture(scope="session")
def _http_server():
    with local_http.serving(tally.app) as base_url:
        yield base_url


@pytest.fixture
def live_server(local_tables, _http_server):
    """The real HTTP stack, backed by this test's tables on DynamoDB Local."""
    return _http_server


@pytest.fixture
def verified_afterwards(local_tables):
    """After the test, the whole stored ledger still verifies (`make verify`'s check)."""
    from tools.verify import verify_tables

    yield
    assert verify_tables().violations == []
