"""Request parsing: JSON bodies through strict pydantic models, into 400s with clear messages."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from chalicelib.core.errors import InvalidRequest

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic_core import ErrorDetails

Body = TypeVar("Body", bound="BaseModel")


def _message(error: ErrorDetails, field: str) -> str:
    kind = error["type"]
    if kind == "json_invalid":
        return "the body is not valid JSON"
    if kind == "model_type":
        return "the body must be a JSON object"
    if kind == "missing":
        return f"{field} is required"
    if kind == "extra_forbidden":
        return f"{field} is not a field of this request"
    if kind in ("int_type", "int_parsing"):
        return f"{field} must be an integer"
    if kind.startswith("uuid"):
        return f"{field} must be a UUID string"
    if kind == "string_type":
        return f"{field} must be a string"
    if kind == "bool_type":
        return f"{field} must be true or false"
    if kind == "value_error":
        return f"{field} {error['ctx']['error']}"
    return f"{field}: {error['msg']}"


def _no_constants(name: str):
    raise ValueError(f"{name} is not a JSON number")


# No request of ours nests deeper than 3 levels. A body nested deeper than this is refused before pydantic
# walks it; one nested past the interpreter's recursion limit (~1,000) fails in json.loads itself.
MAX_BODY_DEPTH = 32
_TOO_DEEP = f"the body is nested deeper than {MAX_BODY_DEPTH} levels"


def _deeper_than(document: object, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (walked with a stack, not recursion)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return False


def parse_body(model: type[Body], raw: bytes | str | None) -> Body:
    """JSON numbers with a fraction are read as exact Decimals (never floats), so money keeps its cents
    and `5.0` is still not an integer; NaN and Infinity are not JSON. The one JSON body decoder of every
    surface."""
    from pydantic import ValidationError  # already loaded by the model's module

    try:
        document = json.loads(raw or b"", parse_float=Decimal, parse_constant=_no_constants)
    except RecursionError:
        raise InvalidRequest(_TOO_DEEP, field="body") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON", field="body") from None
    if _deeper_than(document, MAX_BODY_DEPTH):
        raise InvalidRequest(_TOO_DEEP, field="body")
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(map(str, first["loc"]))
        raise InvalidRequest(_message(first, field), field=field) from None


def parse_uuid(name: str, value: str | None) -> str:
    """A UUID in canonical (lowercase, hyphenated) form; letter case does not make another id."""
    if value is None or value == "":
        raise InvalidRequest(f"{name} is required", field=name)
    try:
        return str(UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidRequest(f"{name} must be a UUID", field=name) from None


MAX_IDEMPOTENCY_KEY_LENGTH = 255
_IDEMPOTENCY_KEY = re.compile(f"[\\x21-\\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}")


def parse_idempotency_key(headers) -> str | None:
    """The optional `Idempotency-Key` header: 1-255 visible ASCII characters."""
    value = headers.get("idempotency-key")
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidRequest("Idempotency-Key must be 1 to 255 visible ASCII characters", field="Idempotency-Key")
    return value


def required_idempotency_key(headers) -> str:
    """The `Idempotency-Key` header of a write that requires one (every /v1 write)."""
    key = parse_idempotency_key(headers)
    if key is None:
        raise InvalidRequest("the Idempotency-Key header is required: a unique key per request, reused only "
                             "to retry it", field="Idempotency-Key")
    return key


def parse_timestamp(name: str, value: str) -> datetime:
    """ISO 8601; a time without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{name} must be an ISO 8601 date-time, e.g. 2022-10-31T10:00:00Z", field=name) from None


def parse_int(name: str, value: str | None) -> int:
    """A positive integer id from a path or query string."""
    if value is None or not value.isdigit() or len(value) > 18:
        raise InvalidRequest(f"{name} must be a positive integer", field=name)
    return int(value)
