"""All configuration, read from the environment in one place.

`.chalice/config.json` sets the per-stage values; tests and scripts set the
environment directly. Nothing else in the code reads `os.environ`.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

SURFACES = ("accounts", "points_tracker", "points_app", "wallet_app", "asper_wallet", "v1")
_OFF = {"off", "none", "disabled", "false", "0"}
# Stages that may run without a configured JWT secret (tokens then last as long as the process).
UNDEPLOYED_STAGES = {"local", "test"}
_PROCESS_SECRET = secrets.token_urlsafe(32)


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
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


def _mount(environ: Mapping[str, str], surface: str) -> str | None:
    """`TALLY_MOUNT_<SURFACE>`: a URL prefix ("" or "/" = root, the default) or "off"."""
    raw = environ.get(f"TALLY_MOUNT_{surface.upper()}", "").strip()
    if raw.lower() in _OFF:
        return None
    return "/" + raw.strip("/") if raw.strip("/") else ""


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    region: str = "us-east-1"
    dynamodb_endpoint: str | None = None
    table_prefix: str = "tally-local"
    # A posting retries (moved version, conflict, throttling) until this much time has
    # passed or this many attempts were made, then answers 503 with nothing written.
    # Time is what a client waits, so time is the budget; well under API Gateway's 29 s.
    retry_seconds: float = 15.0
    max_attempts: int = 200
    backoff_base_ms: int = 5
    backoff_cap_ms: int = 50
    # How long an `Idempotency-Key` (a retry token, not a transaction id clients read back) is kept.
    idempotency_key_hours: int = 24
    # Seed 002's tokens: HS256 with this secret; lifetimes in minutes.
    jwt_secret: str = field(default=_PROCESS_SECRET, repr=False)
    jwt_access_minutes: int = 5
    jwt_refresh_minutes: int = 30 * 24 * 60
    log_level: str = "INFO"  # one JSON line per request at INFO; 5xx at ERROR
    # Wallet floors, in minor units: seed 002 (MINIMUM_BALANCE) and seed 003.
    wallet_app_minimum: int = 2000
    asper_wallet_minimum: int = 10000
    mounts: dict[str, str | None] = field(default_factory=lambda: {name: "" for name in SURFACES})
    # Journal events: the entries table's stream (set by the deployed template) and the EventBridge bus.
    entries_stream_arn: str = "arn:aws:dynamodb:us-east-1:000000000000:table/tally-local-entries/stream/local"
    event_bus: str = "default"

    @property
    def idempotency_key_ttl_seconds(self) -> int:
        return self.idempotency_key_hours * 3600

    def table_name(self, kind: str) -> str:
        return f"{self.table_prefix}-{kind}"


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    stage = environ.get("TALLY_STAGE", "local")
    jwt_secret = environ.get("JWT_SECRET_KEY") or ""
    if not jwt_secret:
        if stage not in UNDEPLOYED_STAGES:
            raise ValueError(f"JWT_SECRET_KEY is required in stage {stage!r}: the app refuses to start without it")
        jwt_secret = _PROCESS_SECRET
    return Settings(
        stage=stage,
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        dynamodb_endpoint=environ.get("DYNAMODB_ENDPOINT") or environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
        table_prefix=environ.get("TALLY_TABLE_PREFIX") or f"tally-{stage}",
        retry_seconds=float(environ.get("TALLY_RETRY_SECONDS") or 15.0),
        max_attempts=_int(environ, "TALLY_MAX_ATTEMPTS", 200, minimum=1),
        backoff_base_ms=_int(environ, "TALLY_BACKOFF_BASE_MS", 5),
        backoff_cap_ms=_int(environ, "TALLY_BACKOFF_CAP_MS", 50),
        idempotency_key_hours=_int(environ, "TALLY_IDEMPOTENCY_KEY_HOURS", 24, minimum=24),
        jwt_secret=jwt_secret,
        log_level=environ.get("TALLY_LOG_LEVEL") or "INFO",
        jwt_access_minutes=_int(environ, "JWT_ACCESS_TOKEN_EXPIRES", 5, minimum=1),
        jwt_refresh_minutes=_int(environ, "JWT_REFRESH_TOKEN_EXPIRES", 30 * 24 * 60, minimum=1),
        wallet_app_minimum=_money(environ, "MINIMUM_BALANCE", "20"),
        asper_wallet_minimum=_money(environ, "ASPER_MINIMUM_BALANCE", "100"),
        mounts={name: _mount(environ, name) for name in SURFACES},
        entries_stream_arn=environ.get("TALLY_ENTRIES_STREAM_ARN") or Settings.entries_stream_arn,
        event_bus=environ.get("TALLY_EVENT_BUS") or "default",
    )
