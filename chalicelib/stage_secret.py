"""The stage's secret, read at run time: seed 002's JWT signing key, and the key paging cursors are signed
with (derived from it, so one secret per stage serves both and neither key can be used as the other).

Undeployed stages: JWT_SECRET_KEY (or a process secret). A deployed stage: only the Secrets Manager secret
named by TALLY_JWT_SECRET_NAME, fetched on first use and kept for the container's life (config.load refuses
JWT_SECRET_KEY there, so the container does not start with one). Only the API function has that name and may
read that secret; no function's configuration holds the secret itself. A deployed stage refuses one shorter
than 32 bytes (HS256 needs at least the hash's length), and every stage one the seeds publish
(config.published_secret): a request that needs the key then fails (500) rather than sign with it.
"""
from __future__ import annotations

import functools
import hashlib
import hmac

from chalicelib.config import Settings, published_secret

MIN_DEPLOYED_KEY_BYTES = 32


class SigningKeyError(RuntimeError):
    """The stage's secret is missing or too short: an operator's mistake, answered as a 500."""


def signing_key(settings: Settings) -> str:
    if settings.deployed:  # Secrets Manager only: whatever else the settings hold is not a deployed secret
        if not settings.jwt_secret_name:
            raise SigningKeyError("no JWT signing key: a deployed stage reads it from Secrets Manager, named by "
                                  "TALLY_JWT_SECRET_NAME (set by the template)")
        key = _stored_secret(settings.jwt_secret_name, settings.region)
        if len(key.encode()) < MIN_DEPLOYED_KEY_BYTES:
            raise SigningKeyError(f"the JWT signing key must be at least {MIN_DEPLOYED_KEY_BYTES} bytes")
    elif settings.jwt_secret:
        key = settings.jwt_secret
    else:
        raise SigningKeyError("no JWT signing key: set JWT_SECRET_KEY (undeployed) or TALLY_JWT_SECRET_NAME")
    if published_secret(key):
        raise SigningKeyError(f"the JWT signing key in {settings.jwt_secret_name or 'JWT_SECRET_KEY'} is a secret "
                              "published in the seed contracts (seed 002's README): anyone can sign with it; put "
                              "a secret of your own there (aws secretsmanager put-secret-value)")
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
