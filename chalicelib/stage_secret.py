"""The stage's secret, read at run time: seed 002's JWT signing key, and the key paging cursors are signed
with (derived from it, so one secret per stage serves both and neither key can be used as the other).

JWT_SECRET_KEY in undeployed stages (or a process secret); on a deployed stage, the Secrets Manager secret
named by TALLY_JWT_SECRET_NAME, fetched on first use and kept for the container's life. Only the API function
has that name and may read that secret; no function's configuration holds the secret itself. A deployed stage
refuses one shorter than 32 bytes (HS256 needs at least the hash's length).
"""
from __future__ import annotations

import functools
import hashlib
import hmac

from chalicelib.config import Settings

MIN_DEPLOYED_KEY_BYTES = 32


class SigningKeyError(RuntimeError):
    """The stage's secret is missing or too short: an operator's mistake, answered as a 500."""


def signing_key(settings: Settings) -> str:
    if settings.jwt_secret:
        key = settings.jwt_secret
    elif settings.jwt_secret_name:
        key = _stored_secret(settings.jwt_secret_name, settings.region)
    else:
        raise SigningKeyError("no JWT signing key: set TALLY_JWT_SECRET_NAME (or JWT_SECRET_KEY when undeployed)")
    if settings.deployed and len(key.encode()) < MIN_DEPLOYED_KEY_BYTES:
        raise SigningKeyError(f"the JWT signing key must be at least {MIN_DEPLOYED_KEY_BYTES} bytes")
    return key


def derived_key(settings: Settings, purpose: str) -> bytes:
    """A key for one purpose (e.g. "cursor"), derived from the stage's secret."""
    return hmac.new(signing_key(settings).encode(), f"tally:{purpose}".encode(), hashlib.sha256).digest()


@functools.cache
def _stored_secret(name: str, region: str) -> str:
    """A Secrets Manager secret's string, read once per container (botocore: boto3 is not a runtime need)."""
    import botocore.session

    client = botocore.session.get_session().create_client("secretsmanager", region_name=region)
    return client.get_secret_value(SecretId=name)["SecretString"]
