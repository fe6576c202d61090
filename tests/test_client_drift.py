"""The Python client (clients/python) cannot drift from /v1: every method is called, with every argument it
takes, through a transport that records the requests instead of sending them, and each request is held to the
OpenAPI document the app serves (built by the same function `GET /openapi.json` calls; no database, no server):

- its method and path are a documented operation, its query parameters and body fields are documented ones (and
  the body validates against the operation's request schema), it sends the API key and, on a write, the
  `Idempotency-Key` the operation requires;
- every /v1 operation is called by some method, and every parameter and body field each documents is sent by it,
  unless listed below with the reason;
- each method's return type (a TypedDict of `tally_client.types`) has the fields, and JSON types, of the
  operation's success schema (for an iterator, of the list page's items).
"""
from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from tally_client import Tally
from tally_client import client as client_module

import app as tally
from chalicelib.web import openapi

# /v1 operations the client does not call, (method, path template): why. Empty: the client covers all of /v1.
NOT_IN_CLIENT: dict[tuple[str, str], str] = {}
# Documented query parameters or body fields the client does not send, (method, path, name): why.
NOT_SENT: dict[tuple[str, str, str], str] = {}
# Public methods of `Tally` that are not one operation each.
GENERIC_METHODS = {"request"}  # any route: what it sends is what its caller gives


@dataclass
class Sent:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: object  # the decoded JSON body, or None when none was sent


class Recorder:
    """A transport that records each request and answers 200: a list page that has more the first time (so the
    client's iterators send a `cursor` too), then the last page."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def __call__(self, method, url, headers, body, timeout):
        parts = urlsplit(url)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        self.sent.append(Sent(method, parts.path, query, dict(headers), json.loads(body) if body else None))
        more = "cursor" not in query
        page = {"object": "list", "data": [], "has_more": more, "next_cursor": "next" if more else None}
        return 200, {}, json.dumps(page).encode()


@pytest.fixture(scope="module")
def document() -> dict:
    return openapi.document(tally.mounted)


def v1_operations(document: dict) -> dict[tuple[str, str], dict]:
    return {(method.upper(), path): operation for path, methods in document["paths"].items()
            if path.startswith("/v1/") for method, operation in methods.items()}


def template_of(path: str, document: dict) -> str:
    matches = [template for template in document["paths"]
               if re.fullmatch(re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)), path)]
    assert len(matches) == 1, f"{path}: documented as {matches}"
    return matches[0]


def sample(hint, name: str):
    """A value of the type `hint` for the parameter `name` (what the server's patterns accept)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        chosen = [arm for arm in args if arm is not type(None) and arm is not client_module.Default]
        return sample(chosen[0], name)
    if origin is typing.Literal:
        return args[0]
    if origin is dict:
        return {"abc": sample(args[1], name)}
    if origin is tuple:
        return tuple(sample(arm, name) for arm in args)
    if hint is int:
        return 1 if name in ("shards", "page_size", "limit") else 5
    if hint is str:
        return "abc"
    raise AssertionError(f"no sample for {name}: {hint}")


def methods() -> list[str]:
    return sorted(name for name, _ in inspect.getmembers(Tally, inspect.isfunction)
                  if not name.startswith("_") and name not in GENERIC_METHODS)


def call_with_every_argument(name: str) -> list[Sent]:
    recorder = Recorder()
    client = Tally("http://tally.invalid/", "tk_test_drift", transport=recorder)
    method = getattr(Tally, name)
    hints = typing.get_type_hints(method)
    arguments = {parameter: sample(hints[parameter], parameter)
                 for parameter in inspect.signature(method).parameters if parameter != "self"}
    answer = getattr(client, name)(**arguments)
    if isinstance(answer, Iterator):
        list(answer)
    assert recorder.sent, name
    return recorder.sent


def resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def json_types(schema: dict, document: dict) -> set[str]:
    schema = resolve(schema, document)
    if "anyOf" in schema:
        return set().union(*(json_types(arm, document) for arm in schema["anyOf"]))
    kind = schema["type"]
    return set(kind) if isinstance(kind, list) else {kind}


def hint_types(hint) -> set[str]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(hint_types(arm) for arm in args))
    if origin is typing.Literal:
        return {"string"}
    if hint is type(None):
        return {"null"}
    base = origin or hint
    return {int: {"integer"}, str: {"string"}, bool: {"boolean"}, list: {"array"}, dict: {"object"}}.get(
        base, {"object"} if typing.is_typeddict(base) else {repr(hint)})


def mismatches(typed, schema: dict, document: dict, where: str, bound: dict | None = None) -> list[str]:
    """How the TypedDict `typed` differs from the object `schema`: fields, their JSON types, nested objects."""
    schema = resolve(schema, document)
    origin = typing.get_origin(typed) or typed
    bound = {**(bound or {}), **dict(zip(getattr(origin, "__parameters__", ()), typing.get_args(typed),
                                         strict=False))}
    fields = typing.get_type_hints(origin)
    properties = schema.get("properties", {})
    found = [f"{where}: the client has {sorted(set(fields) - set(properties))}, the document "
             f"{sorted(set(properties) - set(fields))}"] if set(fields) != set(properties) else []
    for field, hint in fields.items():
        if field not in properties:
            continue
        hint = bound.get(hint, hint)
        if typing.get_origin(hint) is list and isinstance(typing.get_args(hint)[0], typing.TypeVar):
            hint = list[bound[typing.get_args(hint)[0]]]
        wanted = json_types(properties[field], document)
        if hint_types(hint) != wanted:
            found.append(f"{where}.{field}: the client says {hint_types(hint)}, the document {wanted}")
        inner, property_schema = hint, resolve(properties[field], document)
        if typing.get_origin(hint) is list:
            inner, property_schema = typing.get_args(hint)[0], property_schema["items"]
        if typing.is_typeddict(typing.get_origin(inner) or inner):
            found += mismatches(inner, property_schema, document, f"{where}.{field}", bound)
    return found


def test_the_recorder_and_the_samples_reach_every_method():
    assert methods() == sorted([
        "capture", "create_account", "create_hold", "earn", "get_account", "get_balance", "get_hold", "get_lots",
        "get_statement", "get_transaction", "list_accounts", "list_entries", "list_holds", "list_transactions",
        "post", "reverse", "spend", "transfer", "void"])
    pages = call_with_every_argument("list_entries")
    assert [sent.query.get("cursor") for sent in pages] == [None, "next"]  # the iterator followed the cursor
    assert pages[0].query == {"start": "abc", "end": "abc", "order": "asc", "limit": "1"}


@pytest.mark.parametrize("name", methods())
def test_each_method_sends_a_documented_request_and_returns_the_documented_shape(name, document):
    operations = v1_operations(document)
    for sent in call_with_every_argument(name):
        operation = operations.get((sent.method, template_of(sent.path, document)))
        assert operation is not None, f"{name}: {sent.method} {sent.path} is not a /v1 operation"
        parameters = {(parameter["in"], parameter["name"]): parameter for parameter in operation.get("parameters", ())}
        query = {name for (place, name) in parameters if place == "query"}
        assert set(sent.query) <= query, f"{name}: undocumented query {set(sent.query) - query}"
        assert {name for (place, name), parameter in parameters.items()
                if place == "query" and parameter["required"]} <= set(sent.query)
        assert sent.headers["Authorization"] == "Bearer tk_test_drift" and operation["security"] == [{"apiKey": []}]
        for (place, header), parameter in parameters.items():
            if place == "header" and parameter["required"]:
                assert sent.headers.get(header), f"{name}: no {header}"
        if sent.method == "POST":
            assert ("header", "Idempotency-Key") in parameters  # the client retries writes with their key
        request = operation.get("requestBody")
        if request is None:
            assert sent.body is None, f"{name}: sends a body its operation does not take"
            continue
        schema = request["content"]["application/json"]["schema"]
        jsonschema.validate(sent.body, {**schema, "components": document["components"]},
                            cls=jsonschema.Draft202012Validator)
    success = next(answer for status, answer in operation["responses"].items() if status.startswith("2"))
    schema = success["content"]["application/json"]["schema"]
    returned = typing.get_type_hints(getattr(Tally, name))["return"]
    if typing.get_origin(returned) is Iterator:  # a list, every page: its items are the page's data
        returned, schema = typing.get_args(returned)[0], resolve(schema, document)["properties"]["data"]["items"]
    assert mismatches(returned, schema, document, name) == []


def test_every_v1_operation_and_everything_it_takes_is_sent_by_the_client(document):
    operations = v1_operations(document)
    called: dict[tuple[str, str], set[str]] = {}
    for name in methods():
        for sent in call_with_every_argument(name):
            taken = called.setdefault((sent.method, template_of(sent.path, document)), set())
            taken |= set(sent.query) | set(sent.body or {})
            taken |= {header for header in sent.headers if header == "Idempotency-Key"}
    assert set(NOT_IN_CLIENT) <= set(operations) and not set(NOT_IN_CLIENT) & set(called)  # no stale exclusion
    assert set(operations) - set(NOT_IN_CLIENT) == set(called)
    unsent = []
    for key, operation in operations.items():
        if key in NOT_IN_CLIENT:
            continue
        documented = {parameter["name"] for parameter in operation.get("parameters", ())
                      if parameter["in"] in ("query", "header")}
        if "requestBody" in operation:
            body = resolve(operation["requestBody"]["content"]["application/json"]["schema"], document)
            documented |= set(body["properties"])
        unsent += [(*key, name) for name in documented - called[key] if (*key, name) not in NOT_SENT]
    assert unsent == []
    assert all(entry[:2] in operations for entry in NOT_SENT)
