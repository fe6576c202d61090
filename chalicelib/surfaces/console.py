"""`GET /console`: the operator console, one read-only page (docs/operations/console.md).

The page holds no data: its script asks `/v1` for everything, with the API key the operator types (a `read`
key is enough), and keeps the key in memory only. So the page itself is public (on `access.PUBLIC_ROUTES`: a
browser cannot send a bearer key when it opens a page), and it is served wherever `/v1` is mounted, deployed
stages included. Everything is inline (`console.html`, shipped in the Lambda zip with chalicelib): no other
site is called. Its Content-Security-Policy lets only its own script and style run (by their hashes) and lets
the page talk only to its own origin.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
from pathlib import Path

from chalice import Blueprint, Response

from chalicelib.web.errors import method_not_allowed

PATH = "/console"
PAGE_FILE = Path(__file__).with_name("console.html")
page = Blueprint(__name__)
v1_path = "/v1"  # where /v1 is mounted (its mount prefix + "/v1"): set by app.py


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode() + "'"


@functools.cache
def rendered(v1: str) -> tuple[str, str]:
    """(the page, its Content-Security-Policy) for /v1 at `v1`. Read once per container, on the first request."""
    text = PAGE_FILE.read_text(encoding="utf-8")
    # The page finds /v1 relative to its own address, so a stage's path prefix (/api/console) is kept.
    text = text.replace("{{V1}}", html.escape(v1.lstrip("/"), quote=True))
    scripts = re.findall(r"<script>(.*?)</script>", text, flags=re.S)
    styles = re.findall(r"<style>(.*?)</style>", text, flags=re.S)
    policy = "; ".join([
        "default-src 'none'",
        "script-src " + " ".join(map(_sha256, scripts)),  # its own inline script, nothing else
        "style-src " + " ".join(map(_sha256, styles)),
        "connect-src 'self'",  # fetch() to this origin's /v1 only
        "img-src data:",  # the empty icon (no /favicon.ico request)
        "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ])
    return text, policy


def headers(policy: str) -> dict[str, str | list[str]]:
    return {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache"}


@page.route(PATH, methods=["GET", "HEAD"])
def console_page():
    text, policy = rendered(v1_path)
    body = "" if page.current_request.method == "HEAD" else text
    return Response(body=body, status_code=200, headers=headers(policy))


# Deployed, API Gateway answers a method no route has with 403: every other method is a 405, as on every route.
@page.route(PATH, methods=["POST", "PUT", "PATCH", "DELETE"], content_types=["*/*"], name="console__other_methods")
def console_other_methods():
    return method_not_allowed(page.current_request.method, ["GET"])
