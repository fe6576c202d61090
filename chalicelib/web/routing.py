"""A seed surface: a Chalice blueprint whose views map domain errors in one place.

Every route also answers the methods it does not serve with 405, because
API Gateway (unlike `chalice local`) answers an unregistered method with 403.
"""
from __future__ import annotations

import functools

from chalice import Blueprint

from chalicelib.core.errors import LedgerError
from chalicelib.web import errors

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Surface:
    def __init__(self, import_name: str, statuses: dict[type[LedgerError], int] | None = None) -> None:
        """`statuses`: where this surface's contract gives a domain error another status than the default."""
        self.blueprint = Blueprint(import_name)
        self.statuses = statuses

    @property
    def request(self):
        return self.blueprint.current_request

    def route(self, path: str, method: str, *, status: int = 200):
        """Register `view` for `method` on `path`.

        The view returns a JSON-able body (sent with `status`) or a Response.
        """
        def register(view):
            @functools.wraps(view)
            def respond(**path_params):
                try:
                    result = view(**path_params)
                except LedgerError as error:
                    return errors.from_ledger_error(error, self.statuses)
                if isinstance(result, errors.Response):
                    return result
                return errors.Response(body=result, status_code=status,
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
