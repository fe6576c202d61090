"""A seed surface: a Chalice blueprint whose views map domain errors in one place.

Every route also answers the methods it does not serve with 405, because
API Gateway (unlike `chalice local`) answers an unregistered method with 403.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from chalice import Blueprint

from chalicelib.core.errors import LedgerError
from chalicelib.web import errors
from chalicelib.web.money import dumps

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


# The optional retry key of every write that takes one (documented as a header).
IDEMPOTENCY_KEY = ("Idempotency-Key", False, {"type": "string", "minLength": 1, "maxLength": 255})
REQUIRED_IDEMPOTENCY_KEY = ("Idempotency-Key", True, IDEMPOTENCY_KEY[2])


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says of a route. Models are named, not imported: they load on first use."""

    path: str
    method: str
    status: int
    summary: str
    request: str | None = None  # a request model of the surface's schema module
    response: str | None = None  # a response model of the surface's schema module
    errors: tuple[int, ...] = ()
    bearer: bool = False  # needs `Authorization: Bearer <access token>`
    headers: tuple[tuple[str, bool, dict], ...] = ()  # (name, required, JSON schema)
    query: tuple[tuple[str, bool, dict], ...] = ()


class Surface:
    def __init__(self, import_name: str, schemas: str | None = None,
                 statuses: dict[type[LedgerError], int] | None = None) -> None:
        """`schemas`: the module of its request and response models; `statuses`: where this surface's
        contract gives a domain error another status than the default."""
        self.blueprint = Blueprint(import_name)
        self.schemas = schemas
        self.statuses = statuses
        self.operations: list[Operation] = []

    @property
    def request(self):
        return self.blueprint.current_request

    def route(self, path: str, method: str, *, status: int = 200, **documented):
        """Register `view` for `method` on `path`; `documented` are the other fields of its `Operation`.

        The view returns a JSON-able body (sent with `status`) or a Response.
        """
        def register(view):
            summary = (view.__doc__ or view.__name__.replace("_", " ")).strip().splitlines()[0]
            self.operations.append(Operation(path, method, status, summary, **documented))
            @functools.wraps(view)
            def respond(**path_params):
                try:
                    result = view(**path_params)
                except LedgerError as error:
                    return errors.from_ledger_error(error, self.statuses)
                if isinstance(result, errors.Response):
                    return result
                return errors.Response(body=dumps(result), status_code=status,
                                       headers={"Content-Type": "application/json"})

            self.blueprint.route(path, methods=[method])(respond)
            self._refuse_other_methods(path, method, view.__name__)
            return view
        return register

    def _refuse_other_methods(self, path: str, method: str, name: str) -> None:
        others = [other for other in HTTP_METHODS if other != method]

        def refuse(**_path_params):
            return errors.method_not_allowed(self.request.method, [method])

        # Any content type: a wrong method is a 405 before any 415.
        self.blueprint.route(path, methods=others, name=f"{name}__other_methods",
                             content_types=["*/*"])(refuse)
