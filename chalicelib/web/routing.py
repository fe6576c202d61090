"""A surface: a Chalice blueprint whose views map domain errors in one place.

Every route also answers the methods it does not serve with 405, because
API Gateway (unlike `chalice local`) answers an unregistered method with 403.
Routes are registered when the app mounts the surface, which decides then whether they sit behind the
API-key authorizer (`/v1` always; a seed surface when the operator says so), and hands it its services.

A route is declared in one place, its `@surface.route(...)`: path, method, status, and the request model the
route parses before its view runs (the view gets it as `body`) and the response model its answer documents.
"""
from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from chalice import Blueprint

from chalicelib.core.api_keys import Caller
from chalicelib.core.errors import InvalidRequest, LedgerError
from chalicelib.web import access, errors
from chalicelib.web.money import dumps
from chalicelib.web.validation import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    parse_body,
    parse_idempotency_key,
    required_idempotency_key,
)

if TYPE_CHECKING:
    from chalicelib.composition import Services

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


# The optional retry key of every write that takes one (documented as a header).
IDEMPOTENCY_KEY = ("Idempotency-Key", False,
                   {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH})
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
    bearer: bool = False  # needs `Authorization: Bearer <access token>` (seed 002's JWT)
    scope: str | None = None  # the API-key scope it needs, when mounted behind the authorizer
    headers: tuple[tuple[str, bool, dict], ...] = ()  # (name, required, JSON schema)
    query: tuple[tuple[str, bool, dict], ...] = ()


class _MayBeReplayed(Protocol):
    @property
    def replayed(self) -> bool: ...


Made = TypeVar("Made", bound=_MayBeReplayed)


@dataclass(frozen=True)
class Written:
    """A write's answer: its body, and whether an earlier request with the same idempotency key made it (the
    answer then says so in an `Idempotent-Replayed` header)."""

    body: object
    replayed: bool

    @classmethod
    def of(cls, made: Made, shape: Callable[[Made], object]) -> Written:
        """`made` (anything with `replayed`) in the JSON shape `shape` gives it."""
        return cls(shape(made), made.replayed)


class Surface:
    def __init__(self, import_name: str, schemas: str | None = None,
                 statuses: dict[type[LedgerError], int] | None = None, *, keyed: bool = False,
                 scope: str | None = "seed", own_authorization: bool = False, tag: str = "Tally",
                 authenticate: Callable[[], object] | None = None) -> None:
        """`schemas`: the module of its request and response models; `statuses`: where this surface's
        contract gives a domain error another status than the default; `keyed`: always behind the API-key
        authorizer; `scope`: the scope every route needs when it is (a route may name its own);
        `own_authorization`: its contract already uses the Authorization header (seed 002's JWT), so it can
        never sit behind the API-key authorizer; `tag`: its operations' group in the OpenAPI document;
        `authenticate`: the caller of a `bearer` route that takes a body, found before the body is read (so a
        request without a valid token is a 401 whatever its body) and given to the view as `caller`."""
        self.blueprint = Blueprint(import_name)
        self.authenticate = authenticate
        self._services: Services | None = None
        self.schemas = schemas
        self.statuses = statuses
        self.keyed = keyed
        self.scope = scope
        self.own_authorization = own_authorization
        self.tag = tag
        self.guarded = False  # set by mount(): behind the authorizer, so each view checks its scope
        self.operations: list[Operation] = []
        self._views: list[tuple[str, str, str, Callable]] = []  # (path, method, name, view) until mounted

    def mount(self, app, prefix: str | None, authorizer=None) -> None:
        """Register the routes on `app` under `prefix`, behind `authorizer` if given (except a route on the
        one list of public routes)."""
        self.guarded = authorizer is not None
        served: dict[str, tuple[str, list[str], object]] = {}  # path: (first view's name, methods, guard)
        for path, method, name, view in self._views:
            guard = None if (prefix or "") + path in access.PUBLIC_ROUTES else authorizer
            # Behind the authorizer, API Gateway also takes the tenant's usage-plan key from its answer.
            # HEAD wherever GET: clients and API Gateway expect it (the answer has no body).
            methods = [method, "HEAD"] if method == "GET" else [method]
            self.blueprint.route(path, methods=methods, authorizer=guard, api_key_required=guard is not None)(view)
            served.setdefault(path, (name, [], guard))[1].append(method)
        for path, (name, methods, guard) in served.items():
            self._refuse_other_methods(path, methods, name, guard)
        app.register_blueprint(self.blueprint, url_prefix=prefix or None)

    def caller(self) -> Caller:
        """The API key's caller (its tenant and scopes) of the current request."""
        return access.caller_of(self.request)

    @property
    def request(self):
        return self.blueprint.current_request

    def query(self, name: str) -> str | None:
        """A query parameter, given at most once: one that reads two ways (`?limit=5&limit=1000`: the last wins
        here, the first elsewhere) is a 400, as a body key given twice is."""
        params = self.request.query_params or {}
        if name not in params:
            return None
        values = params.getlist(name) if hasattr(params, "getlist") else [params[name]]
        if len(values) > 1:
            raise InvalidRequest(f"the query gives {name} more than once", field=name)
        return values[0] if values else None

    def idempotency_key(self) -> str:
        """The `Idempotency-Key` header of a write that requires one (every /v1 write)."""
        return required_idempotency_key(self.request.headers)

    def idempotency(self) -> dict:
        """The optional `Idempotency-Key` header and how long it is kept, as keyword arguments of a write."""
        return {"idempotency_key": parse_idempotency_key(self.request.headers),
                "key_ttl_seconds": self.services.key_ttl_seconds}

    def _body(self, model_name: str):
        # Request models load on first use: pydantic costs ~100 ms of import on a cold start.
        if self.schemas is None:
            raise RuntimeError("a route with a request model needs its surface's schemas module")
        return parse_body(getattr(importlib.import_module(self.schemas), model_name), self.request.raw_body)

    @property
    def services(self) -> Services:
        """The services this surface acts through, handed over by the app (its composition root) before any
        request."""
        if self._services is None:
            raise RuntimeError("a surface has no services until the app serves them (app.serve)")
        return self._services

    @services.setter
    def services(self, built: Services) -> None:
        self._services = built

    def route(self, path: str, method: str, *, status: int = 200, **documented):
        """Register `view` for `method` on `path`; `documented` are the other fields of its `Operation`.

        The view gets the path parameters, and with a `request` model the parsed body as `body`. It returns a
        JSON-able body (sent with `status`), a Response, or a write's `Written` (which answers a replay with the
        `Idempotent-Replayed` header).
        """
        def register(view):
            summary = (view.__doc__ or view.__name__.replace("_", " ")).strip().splitlines()[0]
            documented.setdefault("scope", self.scope)
            operation = Operation(path, method, status, summary, **documented)
            self.operations.append(operation)
            @functools.wraps(view)
            def respond(**path_params):
                try:
                    if self.guarded and operation.scope:
                        access.require(self.caller(), operation.scope)
                    if operation.request:
                        if operation.bearer and self.authenticate:
                            path_params["caller"] = self.authenticate()
                        path_params["body"] = self._body(operation.request)
                    result = view(**path_params)
                except LedgerError as error:
                    return errors.from_ledger_error(error, self.statuses, detailed=self.keyed)
                if isinstance(result, errors.Response):
                    return result
                headers: dict[str, str | list[str]] = {"Content-Type": "application/json"}
                if isinstance(result, Written):
                    if result.replayed:
                        headers["Idempotent-Replayed"] = "true"
                    result = result.body
                if self.request.method == "HEAD":
                    return errors.Response(body="", status_code=status, headers=headers)
                return errors.Response(body=dumps(result), status_code=status, headers=headers)

            self._views.append((path, method, view.__name__, respond))
            return view
        return register

    def _refuse_other_methods(self, path: str, methods: list[str], name: str, authorizer) -> None:
        others = [other for other in HTTP_METHODS if other not in methods]

        def refuse(**_path_params):
            return errors.method_not_allowed(self.request.method, methods)

        # Any content type: a wrong method is a 405 before any 415.
        self.blueprint.route(path, methods=others, name=f"{name}__other_methods", content_types=["*/*"],
                             authorizer=authorizer, api_key_required=authorizer is not None)(refuse)
