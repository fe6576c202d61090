"""Request parsing: JSON bodies through strict pydantic models, into 400s with clear messages."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from chalicelib.core.errors import InvalidRequest
from chalicelib.core.text import check_name, check_text, shown

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


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """An object whose keys are each given once. JSON leaves duplicates to the reader, and readers disagree (the
    last wins here, the first in some proxies and logs): a body that reads two ways is refused."""
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return document


# No request of ours nests deeper than 3 levels. A body nested deeper than this is refused before pydantic
# walks it; one nested past the interpreter's recursion limit (~1,000) fails in json.loads itself.
MAX_BODY_DEPTH = 32
_TOO_DEEP = f"the body is nested deeper than {MAX_BODY_DEPTH} levels"


def _check_document(document: object, limit: int) -> None:
    """Refuse arrays and objects nested more than `limit` levels, and text that acts or hides instead of being read:
    every key is a name, every other string free text (`core/text.py`). Walked with a stack, not recursion."""
    stack: list[tuple[object, int, str]] = [(document, 1, "body")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            check_text(path, value)
        elif isinstance(value, dict | list):
            if depth > limit:
                raise InvalidRequest(_TOO_DEEP, field="body")
            if isinstance(value, dict):
                for key, child in value.items():
                    check_name(path, key)  # named by where it is: the key itself cannot be shown
                    stack.append((child, depth + 1, key if path == "body" else f"{path}.{key}"))
            else:
                stack.extend((child, depth + 1, f"{path}.{index}") for index, child in enumerate(value))


def parse_body(model: type[Body], raw: bytes | str | None) -> Body:
    """JSON numbers with a fraction are read as exact Decimals (never floats), so money keeps its cents
    and `5.0` is still not an integer; NaN and Infinity are not JSON; a key given twice in one object is a 400
    naming it. The one JSON body decoder of every surface."""
    from pydantic import ValidationError  # already loaded by the model's module

    try:
        document = json.loads(raw or b"", parse_float=Decimal, parse_constant=_no_constants,
                              object_pairs_hook=_unique_keys)
    except RecursionError:
        raise InvalidRequest(_TOO_DEEP, field="body") from None
    except _DuplicateKey as duplicate:
        named = shown(duplicate.key)
        raise InvalidRequest(f"the body gives {named} more than once", field=named) from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON", field="body") from None
    _check_document(document, MAX_BODY_DEPTH)
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
