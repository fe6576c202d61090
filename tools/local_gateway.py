"""API Gateway's answer to a refusing authorizer, for Chalice's local gateway (`make run`, the tests).

Deployed, an authorizer that fails with "Unauthorized", or a request with no Authorization header, gets
API Gateway's 401 (the template's UNAUTHORIZED gateway response gives it Tally's error shape). Chalice's
local gateway answers a missing header with its own body and lets any failure of the authorizer escape as
an exception. `install()` makes it answer both as API Gateway does; the authorizer itself runs unchanged.
"""
from __future__ import annotations

import json

from chalice import local

from chalicelib.web import access

_original = local.LocalGatewayAuthorizer.authorize


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
                          json.dumps(body).encode()) from error
    raise local.NotAuthorizedError({"x-amzn-RequestId": lambda_context.aws_request_id,
                                    "x-amzn-ErrorType": "UnauthorizedException", **access.UNAUTHORIZED_HEADERS},
                                   json.dumps(access.UNAUTHORIZED_BODY).encode())


class _Answer(local.LocalGatewayException):
    def __init__(self, status: int, headers: dict, body: bytes) -> None:
        super().__init__(headers, body)
        self.CODE = status


def install() -> None:
    """Idempotent: every local gateway in this process answers as API Gateway does."""
    local.LocalGatewayAuthorizer.authorize = _authorize
