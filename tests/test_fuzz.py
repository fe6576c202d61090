"""Schemathesis over every operation of the OpenAPI document, against the real HTTP stack on DynamoDB Local.

Bounded: FUZZ_EXAMPLES examples per operation (default 25). For every generated request — wrong types, huge
numbers, unicode, empty and odd bodies, missing headers — the answer is never a 5xx and keeps the document
(status, content type, body schema); a request answered 4xx wrote nothing (no table gained or lost an item);
and afterwards the verifier finds no broken invariant in whatever was written.
"""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import app  # noqa: F401 - mounts the surfaces the document describes
from chalicelib.core import models
from chalicelib.surfaces import docs
from chalicelib.web import openapi
from tools import local_http
from tools.verify import verify_tables

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def item_counts() -> dict[str, int]:
    return {kind: model.count() for kind, model in models.MODELS.items()}


# The document GET /openapi.json serves, built in-process (the live server's URL is known only per test).
# Methods a route does not serve are probed with the five the contracts route (each answers 405); not TRACE,
# which Chalice's local server answers itself (501) and API Gateway never passes to the function.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {
    "unexpected-methods": ["GET", "POST", "PUT", "PATCH", "DELETE"]}}})
schema = schemathesis.openapi.from_dict(openapi.document(docs.mounted), config=CONFIG)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_fuzzed_requests_never_fail_the_server_or_the_document(case, live_server):
    before = item_counts()
    # /v1 is fuzzed with a valid key, so requests get past the authorizer to the routes themselves.
    headers = {"Authorization": f"Bearer {local_http.v1_key}"} if case.path.startswith("/v1/") else None
    response = case.call_and_validate(base_url=live_server, checks=CHECKS, headers=headers)
    if 400 <= response.status_code < 500:
        assert item_counts() == before, f"{case.method} {case.formatted_path} answered {response.status_code}"
    assert verify_tables().violations == []
