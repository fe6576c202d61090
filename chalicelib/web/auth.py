"""Seed 002's bearer tokens: HS256 JWTs (PyJWT).

Checked in the app, not by an API Gateway authorizer, so a refusal has Tally's error shape and the
same behaviour locally as deployed. PyJWT loads on first use (cold start).

The signing key is the stage's secret, read at run time (chalicelib/stage_secret.py). A refresh token is good
for one use (chalicelib/core/tokens.py).
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from chalicelib.config import Settings
from chalicelib.core.errors import Forbidden, Unauthenticated
from chalicelib.core.tokens import RefreshTokens
from chalicelib.stage_secret import signing_key

ACCESS, REFRESH = "access", "refresh"
def issue(settings: Settings, user_id: int, kind: str) -> str:
    import jwt

    now = datetime.now(UTC)
    minutes = settings.jwt_access_minutes if kind == ACCESS else settings.jwt_refresh_minutes
    claims = {"sub": str(user_id), "type": kind, "iat": now, "exp": now + timedelta(minutes=minutes),
              "jti": uuid.uuid4().hex}
    return jwt.encode(claims, signing_key(settings), algorithm="HS256")


def authenticated_user(settings: Settings, headers, kind: str = ACCESS) -> int:
    """The user id of a valid `Authorization: Bearer <token>` of this kind; Unauthenticated otherwise."""
    return int(_claims(settings, headers, kind)["sub"])


def refreshed_user(settings: Settings, headers, used: RefreshTokens) -> int:
    """The user of a valid refresh token, which is then used up (recorded in `used`): a second use is
    Unauthenticated."""
    claims = _claims(settings, headers, REFRESH)
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise Unauthenticated("the token is not valid")
    used.use(claims["jti"], int(claims["sub"]), int(claims["exp"]))
    return int(claims["sub"])


def _claims(settings: Settings, headers, kind: str) -> dict:
    import jwt

    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("an Authorization: Bearer <token> header is required")
    try:
        claims = jwt.decode(token.strip(), signing_key(settings), algorithms=["HS256"],
                            options={"require": ["exp", "sub", "type"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the token has expired") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("the token is not valid") from None
    if claims["type"] != kind or not str(claims["sub"]).isdigit():
        raise Unauthenticated(f"an {kind} token is required")
    return claims


def must_be(caller: int, user_id: int) -> int:
    """An authenticated caller acting on `user_id`'s resources must be that user: 403 otherwise."""
    if caller != user_id:
        raise Forbidden(f"this token is not user {user_id}'s")
    return caller
