"""Transient datastore failures leave the services as `Unavailable`, never as PynamoDB or botocore types.

Applied to each service class: every public method that reaches DynamoDB turns an exhausted throttle, a 5xx
or a timeout (after botocore's own retries) into `Unavailable` (HTTP 503 with Retry-After). A client fault
(a malformed request: a bug of ours) is not hidden.
"""
from __future__ import annotations

import functools

from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PynamoDBException

from chalicelib.core.errors import InvalidRequest, Unavailable

_CLIENT_FAULTS = {"ValidationException", "ResourceNotFoundException", "AccessDeniedException",
                  "SerializationException", "IdempotentParameterMismatchException"}
_MESSAGE = "the datastore is unavailable right now; retry (a write with the same idempotency key)"


def response_code(error: PynamoDBException) -> str | None:
    """DynamoDB's error code behind a PynamoDB error; None when no answer came (a timeout, a reset).
    (PynamoDB's own `cause_response_code` raises AttributeError for a cause whose `response` is None.)"""
    response = getattr(error.cause, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def is_client_fault(error: PynamoDBException) -> bool:
    return response_code(error) in _CLIENT_FAULTS


# Cancellation reasons that a retry can change: a condition on state that moves, a conflict, throttling.
# Any other reason (ValidationError: an item over 400 KB, a key too long) fails the same way every time.
RETRYABLE_REASONS = {"ConditionalCheckFailed", "TransactionConflict", "ThrottlingError",
                     "ProvisionedThroughputExceeded", "None", None}
_TOO_LARGE = "the request is too large for the datastore (an item over 400 KB or a key too long); nothing was written"


def refuse_invalid(error: PynamoDBException) -> None:
    """Raise InvalidRequest when DynamoDB refused what the request would write, not the moment it came at:
    a transaction cancelled for a reason no retry changes, or an item or key over DynamoDB's size limits.
    Retrying such a request would only burn the retry budget (and read units) into a 503."""
    code = response_code(error)
    if code == "TransactionCanceledException":
        reasons = getattr(error, "cancellation_reasons", None) or []
        if any(reason is not None and reason.code not in RETRYABLE_REASONS for reason in reasons):
            raise InvalidRequest(_TOO_LARGE) from error
    elif code == "ValidationException":
        message = (getattr(error.cause, "response", None) or {}).get("Error", {}).get("Message", "")
        if "size" in message.lower() or "exceed" in message.lower():
            raise InvalidRequest(_TOO_LARGE) from error


def _guard(method):
    @functools.wraps(method)
    def guarded(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except PynamoDBException as error:
            refuse_invalid(error)
            if is_client_fault(error):
                raise
            raise Unavailable(_MESSAGE) from error
        except BotoCoreError as error:  # connection refused or reset, read timeout
            raise Unavailable(_MESSAGE) from error
    return guarded


def datastore_guarded(cls):
    """Class decorator: guard every public method."""
    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith("_") and not isinstance(member, staticmethod | type):
            setattr(cls, name, _guard(member))
    return cls
