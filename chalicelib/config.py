"""All configuration, read from the environment in one place.

`.chalice/config.json` sets the per-stage values; tests and scripts set the
environment directly. Nothing else in the code reads `os.environ`.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

SURFACES = ("accounts", "points_tracker", "points_app", "wallet_app", "asper_wallet", "v1")
_OFF = {"off", "none", "disabled", "false", "0"}
SEED_AUTH_MODES = ("api_key", "none")
# Stages that are never deployed: they may sign seed 002's tokens with a process secret (tokens then last as
# long as the process), they mount every seed surface open by default, and their keys read `tk_test_`.
UNDEPLOYED_STAGES = {"local", "test"}
_PROCESS_SECRET = secrets.token_urlsafe(32)
# Secrets anyone can read in the seed contracts (seed 002's README gives its `.env`'s JWT_SECRET_KEY), as
# SHA-256 of the bare value: whoever read them could sign seed 002's tokens and page cursors, so no stage
# signs with one, however long. tests/test_config.py scans the seeds for secrets missing from this list.
PUBLISHED_SECRETS_SHA256 = frozenset({
    "86d2d7d5c1389dbfe7425bbc427eadc0187d7d6239cddcd3a356d6712f182d1a",  # seed 002, README's JWT_SECRET_KEY
})


def published_secret(secret: str) -> bool:
    """Whether `secret` is one the seeds publish, copied bare, quoted (as the `.env` line is) or padded."""
    bare = secret.strip()
    if len(bare) > 1 and bare[0] == bare[-1] and bare[0] in "'\"":
        bare = bare[1:-1].strip()
    # HMAC pads a short key with NUL bytes: the secret followed by NULs signs the very same tokens.
    bare = bare.rstrip("\x00")
    return hashlib.sha256(bare.encode()).hexdigest() in PUBLISHED_SECRETS_SHA256


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be from {minimum} to {maximum}, got {value}" if maximum is not None
                         else f"{name} must be >= {minimum}, got {value}")
    return value


def _money(environ: Mapping[str, str], name: str, default: str) -> int:
    """A currency amount with at most two decimals, as integer minor units."""
    raw = environ.get(name) or default
    try:
        units = Decimal(raw) * 100
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if units != units.to_integral_value() or units < 0:
        raise ValueError(f"{name} must be >= 0 with at most two decimals, got {raw!r}")
    return int(units)


def _mount(environ: Mapping[str, str], surface: str, deployed: bool) -> str | None:
    """`TALLY_MOUNT_<SURFACE>`: a URL prefix ("", "/" or "on" = root) or "off".

    Unset: `/v1` is mounted everywhere (it always needs an API key). A seed surface is mounted by default only
    in undeployed stages: the seed contracts have no authentication, so a deployed stage serves one only when
    its operator switches it on (and `TALLY_SEED_AUTH` says whether it then needs a key)."""
    raw = environ.get(f"TALLY_MOUNT_{surface.upper()}")
    if raw is None:
        return "" if surface == "v1" or not deployed else None
    raw = raw.strip()
    if raw.lower() in _OFF:
        return None
    if raw.lower() == "on":
        return ""
    return "/" + raw.strip("/") if raw.strip("/") else ""


def _seed_auth(environ: Mapping[str, str], deployed: bool) -> str:
    """`TALLY_SEED_AUTH`: "api_key" (a seed surface needs a key with the `seed` scope) or "none" (open, as
    the contracts say). Undeployed stages default to none, deployed ones to api_key."""
    raw = (environ.get("TALLY_SEED_AUTH") or ("api_key" if deployed else "none")).strip().lower()
    if raw not in SEED_AUTH_MODES:
        raise ValueError(f"TALLY_SEED_AUTH must be one of {', '.join(SEED_AUTH_MODES)}, got {raw!r}")
    return raw


def _switch(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """An on/off setting: "1" or "0" (unset: `default`); anything else is refused rather than guessed."""
    raw = (environ.get(name) or ("1" if default else "0")).strip()
    if raw not in ("0", "1"):
        raise ValueError(f"{name} must be 1 or 0, got {raw!r}")
    return raw == "1"


def _environment_secret(environ: Mapping[str, str], stage: str, deployed: bool) -> str | None:
    """JWT_SECRET_KEY where nothing is deployed (else a process secret); refused on a deployed stage, and
    everywhere when the seeds publish it. Refused when loaded, so a container with it does not start."""
    raw = environ.get("JWT_SECRET_KEY")
    if raw and deployed:
        raise ValueError(f"JWT_SECRET_KEY is set on the deployed stage {stage!r}: a deployed stage takes its secret "
                         "from Secrets Manager only (TALLY_JWT_SECRET_NAME, read at run time), never from the "
                         "environment, which anyone who may read the function's configuration can read; remove "
                         "JWT_SECRET_KEY from the stage's environment"
                         + ("; this one is also a secret published in the seed contracts, which nobody may use"
                            if published_secret(raw) else ""))
    if raw and published_secret(raw):
        raise ValueError("JWT_SECRET_KEY is a secret published in the seed contracts (seed 002's README): anyone "
                         "can sign tokens with it; use one of your own (python3 -c 'import secrets; "
                         "print(secrets.token_urlsafe(48))')")
    if raw:
        return raw
    return None if deployed else _PROCESS_SECRET


KEY_CACHE_SECONDS = 60  # API Gateway's cache of the /v1 authorizer's answer: the longest a revoked key still works


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    # Deployed: a stage not in UNDEPLOYED_STAGES, or any stage running on Lambda (so a `local` stage deployed by
    # mistake still mounts no open seed, takes no test keys and signs with no process secret).
    deployed: bool = False
    region: str = "us-east-1"
    dynamodb_endpoint: str | None = None
    table_prefix: str = "tally-local"
    # A posting retries (moved version, conflict, throttling) until this much time has
    # passed or this many attempts were made, then answers 503 with nothing written.
    # Time is what a client waits, so time is the budget; well under API Gateway's 29 s.
    retry_seconds: float = 15.0
    max_attempts: int = 200
    backoff_base_ms: int = 10  # the waits between retries (see `RetryBudget.retry`)
    backoff_cap_ms: int = 2000
    # How long an `Idempotency-Key` (a retry token, not a transaction id clients read back) is kept.
    idempotency_key_hours: int = 24
    # How long a verified /v1 key is remembered in process where nothing is deployed: as long as API Gateway keeps
    # the authorizer's answer when deployed (web/access.py's TTL_SECONDS is this constant), so `make run` pays a
    # key read as seldom as a deployed stage does; 0 on the test stage, where a revocation must show at once. A
    # revoked key works this long still. Deployed, always 0: API Gateway caches already, and an answer the function
    # remembered, cached again by API Gateway, would let a revoked key work for twice the TTL.
    key_cache_seconds: int = KEY_CACHE_SECONDS
    # Seed 002's tokens: HS256 with `jwt_secret` (JWT_SECRET_KEY, undeployed stages only), or, deployed, with
    # the secret that Secrets Manager holds under `jwt_secret_name`, read at run time (stage_secret.py); minutes.
    jwt_secret: str | None = field(default=_PROCESS_SECRET, repr=False)
    jwt_secret_name: str | None = None
    jwt_access_minutes: int = 5
    jwt_refresh_minutes: int = 30 * 24 * 60
    log_level: str = "INFO"  # one JSON line per request at INFO; 5xx at ERROR
    # Wallet floors, in minor units: seed 002 (MINIMUM_BALANCE) and seed 003.
    wallet_app_minimum: int = 2000
    asper_wallet_minimum: int = 10000
    mounts: dict[str, str | None] = field(default_factory=lambda: {name: "" for name in SURFACES})
    seed_auth: str = "none"  # "api_key": mounted seed surfaces sit behind the API-key authorizer too
    # Journal events: the entries table's stream (set by the deployed template) and the EventBridge bus.
    # Balance shards of each tenant's system accounts (`@world:<unit>`), which every /v1 transaction into or
    # out of the ledger touches: see chalicelib/core/ledger/shards.py. Accounts already open keep theirs.
    system_account_shards: int = 32
    # /v1 postings and transfers written without a read (`ledger/sequencer.py`); "0" makes them read first.
    v1_writes_without_read: bool = True
    entries_stream_arn: str = "arn:aws:dynamodb:us-east-1:000000000000:table/tally-local-entries/stream/local"
    # Idle logs drained (core/drains.py): the accounts table's stream (set by the deployed template).
    accounts_stream_arn: str = "arn:aws:dynamodb:us-east-1:000000000000:table/tally-local-accounts/stream/local"
    event_bus: str = "default"

    @property
    def idempotency_key_ttl_seconds(self) -> int:
        return self.idempotency_key_hours * 3600

    def table_name(self, kind: str) -> str:
        return f"{self.table_prefix}-{kind}"


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    stage = environ.get("TALLY_STAGE", "local")
    deployed = stage not in UNDEPLOYED_STAGES or bool(environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    jwt_secret = _environment_secret(environ, stage, deployed)
    return Settings(
        stage=stage,
        deployed=deployed,
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        dynamodb_endpoint=environ.get("DYNAMODB_ENDPOINT") or environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
        table_prefix=environ.get("TALLY_TABLE_PREFIX") or f"tally-{stage}",
        retry_seconds=float(environ.get("TALLY_RETRY_SECONDS") or 15.0),
        max_attempts=_int(environ, "TALLY_MAX_ATTEMPTS", 200, minimum=1),
        backoff_base_ms=_int(environ, "TALLY_BACKOFF_BASE_MS", 10),
        backoff_cap_ms=_int(environ, "TALLY_BACKOFF_CAP_MS", 2000),
        idempotency_key_hours=_int(environ, "TALLY_IDEMPOTENCY_KEY_HOURS", 24, minimum=24),
        key_cache_seconds=0 if deployed else _int(environ, "TALLY_KEY_CACHE_SECONDS",
                                                  0 if stage == "test" else KEY_CACHE_SECONDS,
                                                  maximum=KEY_CACHE_SECONDS),
        jwt_secret=jwt_secret,
        jwt_secret_name=environ.get("TALLY_JWT_SECRET_NAME") or None,
        log_level=environ.get("TALLY_LOG_LEVEL") or "INFO",
        jwt_access_minutes=_int(environ, "JWT_ACCESS_TOKEN_EXPIRES", 5, minimum=1),
        jwt_refresh_minutes=_int(environ, "JWT_REFRESH_TOKEN_EXPIRES", 30 * 24 * 60, minimum=1),
        wallet_app_minimum=_money(environ, "MINIMUM_BALANCE", "20"),
        asper_wallet_minimum=_money(environ, "ASPER_MINIMUM_BALANCE", "100"),
        mounts={name: _mount(environ, name, deployed) for name in SURFACES},
        seed_auth=_seed_auth(environ, deployed),
        system_account_shards=_int(environ, "TALLY_SYSTEM_ACCOUNT_SHARDS", 32, minimum=1, maximum=32),
        v1_writes_without_read=_switch(environ, "TALLY_V1_WRITES_WITHOUT_READ", default=True),
        entries_stream_arn=environ.get("TALLY_ENTRIES_STREAM_ARN") or Settings.entries_stream_arn,
        accounts_stream_arn=environ.get("TALLY_ACCOUNTS_STREAM_ARN") or Settings.accounts_stream_arn,
        event_bus=environ.get("TALLY_EVENT_BUS") or "default",
    )
