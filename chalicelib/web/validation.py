"""Request parsing: JSON bodies through strict pydantic models, into 400s with clear messages."""
from __future__ import annotations

from typing import Annotated, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.core.errors import InvalidRequest

INT64_MAX = 2**63 - 1
# Integers only (no float, string or bool), within the int64 range clients' stores use.
Int64 = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX, strict=True)]

Body = TypeVar("Body", bound=BaseModel)


class StrictBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


def _message(error: dict) -> str:
    field = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "json_invalid":
        return "the body is not valid JSON"
    if kind == "model_type":
        return "the body must be a JSON object"
    if kind == "missing":
        return f"{field} is required"
    if kind in ("int_type", "int_parsing"):
        return f"{field} must be an integer"
    if kind.startswith("uuid"):
        return f"{field} must be a UUID string"
    if kind in ("string_type",):
        return f"{field} must be a string"
    return f"{field}: {error['msg']}"


def parse_body(model: type[Body], raw: bytes | str | None) -> Body:
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise InvalidRequest(_message(first), field=".".join(map(str, first["loc"]))) from None


def parse_uuid(name: str, value: str | None) -> str:
    """A UUID in canonical (lowercase, hyphenated) form; letter case does not make another id."""
    if value is None or value == "":
        raise InvalidRequest(f"{name} is required", field=name)
    try:
        return str(UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidRequest(f"{name} must be a UUID", field=name) from None
