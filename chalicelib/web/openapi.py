"""The OpenAPI 3.1 document of every mounted surface, built from the routes' own records and the same
pydantic models that validate requests (no hand-kept copy). Built once, on the first request for it."""
from __future__ import annotations

import functools
import importlib
import re

from chalicelib.web import access
from chalicelib.web.routing import Operation, Surface

ERROR = {"type": "object", "required": ["error"], "additionalProperties": True,
         "properties": {"error": {"type": "string", "description": "what is wrong, naming the field or rule"},
                        "code": {"type": "string", "description": "a machine code"}}}
REASONS = {400: "Bad request: a malformed body, a missing or ill-typed field, a rule broken; nothing written",
           401: "No valid bearer token or API key", 403: "Another user's resource, or a key without the scope",
           404: "Not found",
           409: "Taken, or an idempotency key reused with another request", 415: "Content-Type is not JSON",
           503: "Busy or unavailable; nothing written, or retry with the same key (Retry-After)"}


SUCCESS = {200: "OK", 201: "Created"}
SERVERS = [{"url": "http://127.0.0.1:8000", "description": "make run"},
           {"url": "https://{api_id}.execute-api.{region}.amazonaws.com/api", "description": "a deployed stage",
            "variables": {"api_id": {"default": "api-id", "description": "the stack's RestAPI id"},
                          "region": {"default": "us-east-1"}}}]


@functools.cache
def document(mounted: tuple[tuple[str, Surface], ...]) -> dict:
    schemas: dict = {"Error": ERROR}
    paths: dict = {}
    for prefix, surface in mounted:
        module = importlib.import_module(surface.schemas) if surface.schemas else None
        for operation in surface.operations:
            path = (prefix + operation.path).rstrip("/") or "/"
            paths.setdefault(path, {})[operation.method.lower()] = _operation(
                operation, module, schemas, keyed=surface.guarded and path not in access.PUBLIC_ROUTES,
                tag=surface.tag)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tally", "version": "1.0.0",
                 "description": "Ledger for loyalty points and wallets: the five seed APIs, unchanged, "
                                "and Tally's own /v1. Every GET also answers HEAD (no body)."},
        "servers": SERVERS,
        "tags": [{"name": name} for name in dict.fromkeys(surface.tag for _, surface in mounted)],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {
                           "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                      "description": "Seed 002's access or refresh token"},
                           "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "tk_live_... / tk_test_...",
                                      "description": "A Tally API key (`make key`): its tenant owns what it makes; "
                                                     "each operation names the scope it needs"}}},
    }


def _operation(operation: Operation, module, schemas: dict, keyed: bool, tag: str) -> dict:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"{(\w+)}", operation.path)]
    parameters += [{"name": name, "in": "header", "required": required, "schema": schema}
                   for name, required, schema in operation.headers]
    parameters += [{"name": name, "in": "query", "required": required, "schema": schema}
                   for name, required, schema in operation.query]
    success: dict[str, object] = {"description": SUCCESS.get(operation.status, "OK")}
    if operation.response:
        success["content"] = {"application/json": {"schema": _schema(getattr(module, operation.response), schemas)}}
    errors = set(operation.errors) | {503}
    if operation.request:
        errors |= {400, 415}
    if operation.query or any(required for _, required, _ in operation.headers):
        errors |= {400}  # a malformed query parameter or a missing required header
    if operation.bearer or keyed:
        errors |= {401, 403}
    body: dict[str, object] = {"tags": [tag], "summary": operation.summary,
            "operationId": f"{operation.method.lower()}{_name(operation.path)}",
            "responses": {str(operation.status): success, **{
                str(status): {"description": REASONS[status],
                              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                for status in sorted(errors)}}}
    if parameters:
        body["parameters"] = parameters
    if operation.request:
        body["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": _schema(getattr(module, operation.request), schemas)}}}
    if operation.bearer:
        body["security"] = [{"bearer": []}]
    if keyed:
        body["security"] = [{"apiKey": []}]
        if operation.scope:
            body["x-required-scope"] = operation.scope
            body["description"] = f"Needs an API key with the `{operation.scope}` scope."
    return body


def _schema(model, schemas: dict) -> dict:
    """The model's JSON schema, its nested models moved to components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    name = model.__name__
    for component, definition in [*schema.pop("$defs", {}).items(), (name, schema)]:
        if schemas.setdefault(component, definition) != definition:
            raise ValueError(f"two models are named {component}: rename one")
    return {"$ref": f"#/components/schemas/{name}"}


def _name(path: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", path) or ["root"]
    return "".join(word.capitalize() for word in words)
