"""`GET /openapi.json`: the OpenAPI 3.1 document of the surfaces this deployment mounts; `GET /docs` shows it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from chalice import Blueprint, Response

from chalicelib.web import openapi
from chalicelib.web.errors import error_response
from chalicelib.web.routing import Surface

surface = Surface(__name__, scope=None, tag="Tally")
mounted: tuple = ()  # (prefix, Surface) pairs, set by app.py


@surface.route("/openapi.json", "GET")
def openapi_document():
    """The OpenAPI 3.1 document"""
    return openapi.document(mounted)


# `GET /docs`: the document in Swagger UI, for undeployed stages only (`make run`): its files come from the
# dev-only package openapi-ui-bundles, served from here, so the page calls no other site and nothing of it
# reaches the Lambda zip or the cold start.
page = Blueprint(f"{__name__}.page")
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js")
ASSET_TYPES = {".css": "text/css", ".js": "application/javascript"}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tally API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", validatorUrl: null, tryItOutEnabled: true});</script>
</body></html>
"""


def page_available() -> bool:
    return importlib.util.find_spec("openapi_ui_bundles") is not None


@page.route("/docs", methods=["GET"])
def docs_page():
    return Response(body=PAGE, status_code=200, headers={"Content-Type": "text/html; charset=utf-8"})


@page.route("/docs/assets/{name}", methods=["GET"])
def docs_asset(name: str):
    from openapi_ui_bundles.swagger_ui import static_path

    if name not in ASSETS:  # a fixed list: no path from the request reaches the file system
        return error_response(404, f"no asset {name}", "not_found")
    return Response(body=(static_path / name).read_text(), status_code=200,
                    headers={"Content-Type": ASSET_TYPES[Path(name).suffix], "Cache-Control": "max-age=3600"})
