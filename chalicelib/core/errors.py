"""The ledger's domain errors. No HTTP here: `chalicelib.web.errors` maps them."""
from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger core raises on purpose."""

    code = "ledger_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        """`field`: the request field at fault (/v1 answers it as `param`); the message names everything else."""
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(LedgerError):
    """The request breaks a rule of the input (type, range, format)."""

    code = "invalid_request"


class NotFound(LedgerError):
    code = "not_found"


class IdempotencyConflict(LedgerError):
    """An idempotency key was reused with a different request."""

    code = "idempotency_key_reused"

    @classmethod
    def reused(cls, client_key: str) -> IdempotencyConflict:
        """The one message: it names the key as the client sent it, never as stored (namespaced, scoped)."""
        return cls(f"idempotency key {client_key} was already used with a different request")


class FloorBreached(LedgerError):
    """The posting would take the balance below the account's floor."""

    code = "insufficient_funds"


class Contention(LedgerError):
    """Retries ran out (version kept moving, throttling): nothing was written."""

    code = "contention"


class InsufficientPoints(FloorBreached):
    """A spend or negative add asks for more points than the holder (or payer) has."""

    code = "insufficient_points"


class AlreadyExists(LedgerError):
    """Something unique is taken: a phone number, a user's wallet of a type."""

    code = "already_exists"


class Unauthenticated(LedgerError):
    """No credentials, or ones that are invalid or expired."""

    code = "unauthorized"


class Forbidden(LedgerError):
    """Valid credentials of someone who may not touch this resource."""

    code = "forbidden"


class IssueLimitReached(Forbidden):
    """A key that may mint asked for more than its limit per request or per day allows."""

    code = "issue_limit_reached"


class Unavailable(Contention):
    """The datastore did not answer in time (throttled, unavailable, timed out) and its retries ran out."""

    code = "unavailable"


class InvalidState(LedgerError):
    """The resource is not in a state that allows this (a captured hold, a fully reversed transaction)."""

    code = "invalid_state"


class AccountMoved(LedgerError):
    """A write's precondition on an account's sequence (`expected_seq`) failed: the account has moved on."""

    code = "account_moved"
