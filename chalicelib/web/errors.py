"""The one place where errors become HTTP responses.

Domain errors raised by the core, validation errors, and Chalice's own error
responses (405, 415, malformed JSON, 500) all leave as
`{"error": "<message>", "code": "<machine code>"}`.
"""
from __future__ import annotations

import re

from chalice import Response

from chalicelib.core.errors import (
    AccountMoved,
    AlreadyExists,
    Contention,
    FloorBreached,
    Forbidden,
    IdempotencyConflict,
    InvalidRequest,
    InvalidState,
    LedgerError,
    NotFound,
    Unauthenticated,
)

STATUS_BY_ERROR: dict[type[LedgerError], int] = {
    InvalidRequest: 400,
    FloorBreached: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    IdempotencyConflict: 409,
    AccountMoved: 409,
    AlreadyExists: 409,
    InvalidState: 409,
    Contention: 503,
}


def status_for(error: LedgerError, overrides: dict[type[LedgerError], int] | None = None) -> int:
    """The status of a domain error; a surface whose contract says otherwise passes `overrides`."""
    for kind in type(error).__mro__:
        if overrides and kind in overrides:
            return overrides[kind]
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 400


def error_response(status: int, message: str, code: str, headers: dict | None = None) -> Response:
    return Response(body={"error": message, "code": code}, status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


# A category per kind of error, as Stripe gives one (/v1 errors carry it as `type`).
TYPE_BY_ERROR: dict[type[LedgerError], str] = {
    InvalidRequest: "invalid_request_error",
    FloorBreached: "balance_error",
    Unauthenticated: "authentication_error",
    Forbidden: "permission_error",
    NotFound: "invalid_request_error",
    IdempotencyConflict: "idempotency_error",
    AccountMoved: "conflict_error",
    AlreadyExists: "conflict_error",
    InvalidState: "conflict_error",
    Contention: "api_error",
}


def type_for(error: LedgerError) -> str:
    return next((TYPE_BY_ERROR[kind] for kind in type(error).__mro__ if kind in TYPE_BY_ERROR), "api_error")


def from_ledger_error(error: LedgerError, overrides: dict[type[LedgerError], int] | None = None,
                      detailed: bool = False) -> Response:
    """The error's answer. `detailed` (/v1): also its `type` and the offending field as `param`; the seed
    surfaces answer `{"error", "code"}` alone, as their contracts have it."""
    headers = None
    if isinstance(error, Contention):
        headers = {"Retry-After": "1"}
    elif isinstance(error, Unauthenticated):
        headers = {"WWW-Authenticate": 'Bearer realm="tally"'}
    response = error_response(status_for(error, overrides), error.message, error.code, headers)
    if detailed:
        response.body.update(type=type_for(error), param=error.field)
    return response


def method_not_allowed(method: str, allowed: list[str]) -> Response:
    return error_response(405, f"method {method} is not allowed here; use {', '.join(allowed)}",
                          "method_not_allowed", {"Allow": ", ".join(allowed)})


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.replace("Error", "")).lower() or "error"


def shape_chalice_errors(event, get_response):
    """Chalice middleware: rewrite Chalice's `{"Code", "Message"}` bodies to our shape."""
    response = get_response(event)
    if response.status_code < 400 or not isinstance(response.body, dict):
        return response
    if set(response.body) != {"Code", "Message"}:
        return response
    code, message = response.body["Code"], response.body["Message"]
    if response.status_code >= 500:
        message = "internal error"  # never a stack trace or internal detail
    response.body = {"error": message, "code": _snake(code)}
    return response
