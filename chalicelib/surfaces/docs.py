"""`GET /openapi.json`: the OpenAPI 3.1 document of the surfaces this deployment mounts."""
from __future__ import annotations

from chalicelib.web import openapi
from chalicelib.web.routing import Surface

surface = Surface(__name__, scope=None)
mounted: tuple = ()  # (prefix, Surface) pairs, set by app.py


@surface.route("/openapi.json", "GET")
def openapi_document():
    """The OpenAPI 3.1 document"""
    return openapi.document(mounted)
