"""Seed 002's bearer tokens: HS256 JWTs (PyJWT).

Checked in the app, not by an API Gateway authorizer, so a refusal has Tally's error shape and the
same behaviour locally as deployed. PyJWT loads on first use (cold start).

The signing key is the stage's secret, read at run time (chalicelib/stage_secret.py). A refresh token is good
for one use and belongs to a family, revoked whole when a used token of it comes back (chalicelib/core/tokens.py).
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from chalicelib.config import Settings
from chalicelib.core.errors import Forbidden, Unauthenticated
from chalicelib.core.tokens import RefreshTokens
from chalicelib.stage_secret import signing_key

ACCESS, REFRESH = "access", "refresh"
FAMILY = "fam"  # a refresh token's claim: the family it belongs to (chalicelib/core/tokens.py)


def issue(settings: Settings, user_id: int, kind: str, *, token_id: str | None = None, family: str | None = None,
          now: datetime | None = None) -> str:
    import jwt

    now = now or datetime.now(UTC)
    minutes = settings.jwt_access_minutes if kind == ACCESS else settings.jwt_refresh_minutes
    claims = {"sub": str(user_id), "type": kind, "iat": now, "exp": now + timedelta(minutes=minutes),
              "jti": token_id or uuid.uuid4().hex}
    if family is not None:
        claims[FAMILY] = family
    return jwt.encode(claims, signing_key(settings), algorithm="HS256")


def new_session(settings: Settings, user_id: int, families: RefreshTokens) -> tuple[str, str]:
    """An access token and the first refresh token of a new family."""
    token_id, now = uuid.uuid4().hex, datetime.now(UTC)
    family = families.start(user_id, token_id, _expiry(settings, now))
    return _pair(settings, user_id, token_id, family, now)


def refreshed(settings: Settings, headers, families: RefreshTokens) -> tuple[str, str]:
    """A new pair for a valid refresh token, which its family's rotation uses up: presenting it again revokes the
    family (every later refresh of it is Unauthenticated). A token from before families is good once, and its
    pair starts a family."""
    claims = _claims(settings, headers, REFRESH)
    token_id, family, user_id = claims.get("jti"), claims.get(FAMILY), int(claims["sub"])
    if not isinstance(token_id, str) or not token_id or not isinstance(family, str | None):
        raise Unauthenticated("the token is not valid")
    if family is None:
        families.use(token_id, user_id, int(claims["exp"]))
        return new_session(settings, user_id, families)
    new_id, now = uuid.uuid4().hex, datetime.now(UTC)
    families.rotate(family, user_id, token_id, new_id, _expiry(settings, now))
    return _pair(settings, user_id, new_id, family, now)


def _pair(settings: Settings, user_id: int, token_id: str, family: str, now: datetime) -> tuple[str, str]:
    """An access token, and the refresh token `token_id` of `family` issued at `now`."""
    return (issue(settings, user_id, ACCESS),
            issue(settings, user_id, REFRESH, token_id=token_id, family=family, now=now))


def _expiry(settings: Settings, now: datetime) -> datetime:
    """A refresh token issued at `now` expires then (its `exp`, to the second, as the JWT holds it)."""
    return datetime.fromtimestamp(int((now + timedelta(minutes=settings.jwt_refresh_minutes)).timestamp()), UTC)


def authenticated_user(settings: Settings, headers, kind: str = ACCESS) -> int:
    """The user id of a valid `Authorization: Bearer <token>` of this kind; Unauthenticated otherwise."""
    return int(_claims(settings, headers, kind)["sub"])


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
