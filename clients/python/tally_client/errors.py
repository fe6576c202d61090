"""The errors a Tally call raises: one class per family of HTTP answers, each carrying the API's error body.

/v1 answers an error as `{"error", "code", "type", "param"}` (docs/api/conventions.md); each field is kept here,
with the HTTP status and the answer's `X-Request-Id` (the server's log line of that request).

    TallyError                 anything below; also a body that is not Tally's
    ├── InvalidRequest         400 (and any other 4xx: 405, 415, 422)
    │   └── InsufficientFunds  400 insufficient_funds / insufficient_points
    ├── Unauthorized           401: no, malformed, unknown or revoked key
    │   └── Forbidden          403: the key lacks the route's scope
    ├── NotFound               404, also another tenant's id
    ├── Conflict               409: already_exists, idempotency_key_reused, invalid_state, account_moved
    └── Unavailable            5xx and connection failures, after the retries ran out
        └── RateLimited        429 (deployed stages only), after the retries ran out
"""
from __future__ import annotations

from typing import Any


class TallyError(Exception):
    """A refused or failed call. `status` is None when no answer came (a connection error)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 type: str | None = None, param: str | None = None, request_id: str | None = None,
                 body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.type = type
        self.param = param
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        where = f" ({self.param})" if self.param else ""
        status = f"{self.status} " if self.status is not None else ""
        code = f"{self.code}: " if self.code else ""
        return f"{status}{code}{self.message}{where}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, param={self.param!r}, "
                f"message={self.message!r})")


class InvalidRequest(TallyError):
    """400, or another 4xx a client caused (405, 415): the request was wrong; nothing was written."""


class InsufficientFunds(InvalidRequest):
    """400 `insufficient_funds` or `insufficient_points`: the account cannot cover the debit above its floor."""


class Unauthorized(TallyError):
    """401: no, malformed, unknown or revoked API key."""


class Forbidden(Unauthorized):
    """403: the key is valid but lacks the route's scope."""


class NotFound(TallyError):
    """404: no such account, transaction or hold in the key's tenant."""


class Conflict(TallyError):
    """409: the id is taken, the idempotency key was used with another body, the hold or transaction is in a
    state that forbids it, or an `expected_seq` no longer holds."""


class Unavailable(TallyError):
    """5xx, or no answer: the server was busy or down and the retries ran out. Nothing was written, or the write
    is answered to a retry with the same idempotency key."""


class RateLimited(Unavailable):
    """429 (deployed stages: the tenant's or the stage's rate or quota), after the retries ran out."""


_BY_STATUS: dict[int, type[TallyError]] = {400: InvalidRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
                                           409: Conflict, 429: RateLimited}
_BY_CODE: dict[str, type[TallyError]] = {"insufficient_funds": InsufficientFunds,
                                         "insufficient_points": InsufficientFunds}


def error_for(status: int, body: Any, request_id: str | None = None) -> TallyError:
    """The exception for an error answer: its class by status (and a few codes), its fields from the body."""
    fields = body if isinstance(body, dict) else {}
    code = fields.get("code") if isinstance(fields.get("code"), str) else None
    kind = _BY_CODE.get(code or "") if status == 400 else None
    if kind is None:
        kind = _BY_STATUS.get(status) or (Unavailable if status >= 500 else InvalidRequest if status >= 400
                                          else TallyError)
    message = fields["error"] if isinstance(fields.get("error"), str) else f"HTTP {status}"
    return kind(message, status=status, code=code, type=fields.get("type"), param=fields.get("param"),
                request_id=request_id, body=body)
