"""API Gateway's own answers, as the stage's gateway responses shape them, for Chalice's local gateway
(`make run`, the tests).

Deployed, an authorizer that fails with "Unauthorized", or a request with no Authorization header, gets
API Gateway's 401; an authorizer that fails otherwise, 503; a path no route has, 404 (not API Gateway's own 403
"Missing Authentication Token"): the template's gateway responses give each Tally's error shape. Chalice's
local gateway answers a missing header and an unknown path with its own bodies, and lets any failure of the
authorizer escape as an exception. `install()` makes it answer each as the deployed stage does; the
authorizer itself runs unchanged.
"""
from __future__ import annotations

import json

from chalice import local

from chalicelib.web import access

_original = local.LocalGatewayAuthorizer.authorize
_original_handle = local.LocalGateway.handle_request


def _handle_request(self, method, path, headers, body):
    try:
        return _original_handle(self, method, path, headers, body)
    except local.ForbiddenError as error:
        if error.headers.get("x-amzn-ErrorType") != "UnauthorizedException":
            raise
        status, answer = access.GATEWAY_RESPONSES["MISSING_AUTHENTICATION_TOKEN"]  # no route has this path
        raise _Answer(status, {**error.headers, "Content-Type": "application/json"},
                      json.dumps(answer, separators=(",", ":")).encode()) from None


def _authorize(self, raw_path, lambda_event, lambda_context):
    try:
        return _original(self, raw_path, lambda_event, lambda_context)
    except local.NotAuthorizedError:
        pass
    except local.LocalGatewayException:
        raise
    except Exception as error:
        if str(error) != access.UNAUTHORIZED:  # the authorizer failed: API Gateway's AUTHORIZER_FAILURE
            status, body = access.GATEWAY_RESPONSES["AUTHORIZER_FAILURE"]
            raise _Answer(status, {"x-amzn-RequestId": lambda_context.aws_request_id,
                                   "Content-Type": "application/json", "Retry-After": "1"},
                          json.dumps(body, separators=(",", ":")).encode()) from error
    raise local.NotAuthorizedError({"x-amzn-RequestId": lambda_context.aws_request_id,
                                    "x-amzn-ErrorType": "UnauthorizedException", **access.UNAUTHORIZED_HEADERS},
                                   json.dumps(access.UNAUTHORIZED_BODY, separators=(",", ":")).encode())


class _Answer(local.LocalGatewayException):
    def __init__(self, status: int, headers: dict, body: bytes) -> None:
        super().__init__(headers, body)
        self.CODE = status


def install() -> None:
    """Idempotent: every local gateway in this process answers as API Gateway does."""
    local.LocalGatewayAuthorizer.authorize = _authorize
    local.LocalGateway.handle_request = _handle_request
