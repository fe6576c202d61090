"""Who may call what: the API-key authorizer, the scope each route needs, and the one list of open routes.

The authorizer is Chalice's own (`@authorizer`, a TOKEN authorizer on `Authorization`). API Gateway runs it
before the route's function and caches its answer per token for `TTL_SECONDS`, so a revoked key stops
working within that time (under `make run` too: the app remembers a verified key as long,
`key_cache_seconds`). `chalice local` and the test client run the same function.

- One spelling only: `Authorization: Bearer <key>`, the scheme written `Bearer`, one space, the key (its strict
  pattern), nothing before or after. API Gateway caches by the header's exact value, so were `bearer k` or
  `Bearer k ` accepted too, each would be an Allow of its own, outliving a revocation up to `TTL_SECONDS` each;
  normalizing inside the function cannot merge them. Every other spelling gets the same 401 as a bad key
  (RFC 6750 lets the scheme's case vary; we refuse that on purpose: one key, one cache entry). Deployed, API
  Gateway refuses them before the function runs (`IDENTITY_VALIDATION_EXPRESSION`, set by tools/infra.py).
- No, malformed, unknown or revoked key: the authorizer fails with "Unauthorized", which API Gateway
  answers with 401 (the stage's gateway responses give it Tally's error shape; `tools/local_gateway.py`
  does the same locally).
- A known key: allowed, with its tenant and scopes in the request context. The route's function checks the
  scope it needs (403 in Tally's shape, documented per operation) in `Surface.route`, and acts in the
  key's tenant only. Scopes are checked in the app, not in the cached policy, so one cached answer per
  token serves every route.

Every deployed route needs a key except those on `PUBLIC_ROUTES`, and seed surfaces an operator mounts with
`TALLY_SEED_AUTH=none` (tests/test_package.py reads the packaged template for exactly this).
"""
from __future__ import annotations

import re

from chalice import AuthResponse, Blueprint

from chalicelib.config import KEY_CACHE_SECONDS
from chalicelib.core.api_keys import TOKEN, ApiKeys, Caller
from chalicelib.core.errors import Forbidden, Unauthenticated

# How long API Gateway may keep using an answer: the longest a revoked key still works (and the longest the app
# remembers a verified key where nothing is deployed: config.key_cache_seconds).
TTL_SECONDS = KEY_CACHE_SECONDS
AUTHORIZER_NAME = "key_authorizer"  # not "api_key": API Gateway's own API-key scheme has that name
# Routes open to anyone, deployed or not: a liveness probe, the API's own description, and the operator console's
# page, which holds no data (its script reads /v1 with the key the operator types; a browser opening a page cannot
# send one): chalicelib/surfaces/console.py.
PUBLIC_ROUTES = frozenset({"/ping", "/openapi.json", "/console"})
UNAUTHORIZED = "Unauthorized"  # the exact failure message API Gateway turns into a 401
LIMITS = ("issue_limit", "daily_issue_limit")  # a key's limits on minting, passed to the route in the context
# The one spelling of the header allowed: `Bearer`, one space, a key of the strict pattern, nothing around it
# (fullmatch: not even the trailing newline a `$` would admit).
BEARER = re.compile(r"Bearer (" + TOKEN.pattern + r")")
# Deployed (a packaged stage runs on Lambda, so takes `tk_live_` keys only), API Gateway itself refuses any other
# value before calling the function, with the same 401 and no cache entry: tools/infra.py sets this as the
# authorizer's `identityValidationExpression` (Chalice's `@authorizer` has no parameter for it).
IDENTITY_VALIDATION_EXPRESSION = "^Bearer " + TOKEN.pattern.replace("(live|test)", "live", 1) + "$"

blueprint = Blueprint(__name__)
keys: ApiKeys | None = None  # the composition root's, handed over by app.py before any request


def bearer_credential(header: str | None) -> str:
    """The key of an `Authorization` value spelled exactly `Bearer <key>`; Unauthenticated for any other
    spelling (another case of the scheme, more or other white space, anything around it): API Gateway caches
    by the exact value, so a second accepted spelling would be a second Allow outliving a revocation."""
    match = BEARER.fullmatch(header or "")
    if match is None:
        raise Unauthenticated("a valid API key is required: Authorization: Bearer tk_...")
    return match.group(1)


def authenticate(token: str | None) -> dict:
    """The authorizer's answer for a token: allow, with the caller in the context; raises for any other."""
    try:
        credential = bearer_credential(token)
        if keys is None:
            raise RuntimeError("the authorizer has no keys yet; the app serves them (app.serve)")
        caller, usage_key = keys.authenticate(credential)
    except Unauthenticated:
        raise Exception(UNAUTHORIZED) from None  # noqa: TRY002 - API Gateway matches this exact message
    context = {"tenant": caller.tenant, "scopes": " ".join(sorted(caller.scopes))}
    for limit in LIMITS:  # the context holds strings: API Gateway passes it on as such
        if getattr(caller, limit) is not None:
            context[limit] = str(getattr(caller, limit))
    return {"principal": caller.key_id, "usage_key": usage_key, "context": context}


@blueprint.authorizer(ttl_seconds=TTL_SECONDS, name=AUTHORIZER_NAME)
def key_authorizer(auth_request):
    """Chalice's TOKEN authorizer for every guarded route."""
    answer = authenticate(auth_request.token)
    response = AuthResponse(routes=["*"], principal_id=answer["principal"], context=answer["context"])
    if answer["usage_key"] is None:
        return response
    # API Gateway takes the tenant's API key from here (the API's key source is AUTHORIZER): its usage
    # plan then throttles each tenant on its own.
    return {**response.to_dict(auth_request), "usageIdentifierKey": answer["usage_key"]}


def caller_of(request) -> Caller:
    """The caller the authorizer let in (Unauthenticated if the route was reached without it)."""
    context = (request.context or {}).get("authorizer") or {}
    if "tenant" not in context:
        raise Unauthenticated("a valid API key is required: Authorization: Bearer tk_...")
    limits = {limit: int(context[limit]) if context.get(limit) not in (None, "") else None for limit in LIMITS}
    return Caller(context.get("principalId", ""), context["tenant"], frozenset(context.get("scopes", "").split()),
                  **limits)


def require(caller: Caller, scope: str) -> Caller:
    if not caller.may(scope):
        raise Forbidden(f"this key lacks the {scope} scope")
    return caller


# What API Gateway answers in place of the app (its gateway responses, set in the template by tools/infra.py),
# in Tally's error shape; `tools/local_gateway.py` answers the authorizer's two the same way locally.
UNAUTHORIZED_BODY = {"error": "a valid API key is required: Authorization: Bearer tk_...", "code": "unauthorized",
                     "type": "authentication_error"}
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="tally"', "Content-Type": "application/json"}
AUTHORIZER_FAILURE_BODY = {"error": "keys cannot be checked right now; retry", "code": "unavailable",
                           "type": "api_error"}
GATEWAY_RESPONSES = {  # API Gateway's response type: (status, body)
    "UNAUTHORIZED": (401, UNAUTHORIZED_BODY),
    "AUTHORIZER_FAILURE": (503, AUTHORIZER_FAILURE_BODY),
    "AUTHORIZER_CONFIGURATION_ERROR": (503, AUTHORIZER_FAILURE_BODY),
    "ACCESS_DENIED": (403, {"error": "this key may not call this route", "code": "forbidden",
                            "type": "permission_error"}),
    # No such route (API Gateway's own answer would be 403 "Missing Authentication Token").
    "MISSING_AUTHENTICATION_TOKEN": (404, {"error": "no such route", "code": "not_found",
                                           "type": "invalid_request_error"}),
    "THROTTLED": (429, {"error": "too many requests; retry later", "code": "throttled", "type": "rate_limit_error"}),
    "QUOTA_EXCEEDED": (429, {"error": "this tenant's request quota is used up", "code": "quota_exceeded",
                             "type": "rate_limit_error"}),
    # The tenant has no usage-plan key (made by `tools.keys create --usage-plan`), or it was disabled.
    "INVALID_API_KEY": (403, {"error": "this tenant has no usage plan; ask the operator", "code": "forbidden",
                              "type": "permission_error"}),
}
