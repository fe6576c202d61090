"""/v1 API keys: who a request acts for (its tenant) and what it may do (its scopes).

A token reads `tk_<live|test>_<key id>_<secret>`: the prefix says which kind of stage made it, the key id
finds its item with one GetItem, and the secret is 32 random bytes (256 bits). Only the SHA-256 of the whole
token is stored: a fast hash is right for a high-entropy secret (no dictionary to guess from), and a leaked
table gives nobody a usable key. The token is shown once, when it is made.

Scopes (`write`, `points:earn` and `points:spend` each include `read`, `issue` includes `write`; `admin` includes
every /v1 scope):
- `read`: GET routes;
- `write`: open accounts, post, transfer, hold, capture, void, reverse; money moves between accounts, or leaves
  the ledger, but never comes from nothing;
- `issue`: also what makes money from nothing: a posting or transfer with a leg that debits a system account
  (`@world:<unit>`), a deposit from outside the ledger (`transactions.mints`);
- `points:earn`, `points:spend`: earn or spend points only (a till or a partner's system). An earn is how points
  come from nothing: the issuer's, so `points:earn` needs no `issue`;
- `admin`: every /v1 scope, and what lends: an account with a floor below zero (an overdraft) or none;
- `seed`: the seed surfaces, where a deployed stage mounts them behind keys. Their data is not a tenant's but
  shared by every key with this scope, so `admin` does not include it: grant it on its own.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.core.errors import InvalidRequest, NotFound, Unauthenticated
from chalicelib.core.guard import datastore_guarded
from chalicelib.core.ledger import stamp, utc_now
from chalicelib.core.models import ApiKeyModel

SCOPES = ("read", "write", "issue", "points:earn", "points:spend", "admin", "seed")
# `admin` includes every /v1 scope but not `seed`: the seed surfaces' data is shared by every tenant, so only an
# operator's explicit grant reaches it.
IMPLIED = {"write": {"read"}, "issue": {"read", "write"}, "points:earn": {"read"}, "points:spend": {"read"},
           "admin": {"read", "write", "issue", "points:earn", "points:spend"}}
TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # fits a book name, a log field and an API Gateway key name
TOKEN = re.compile(r"tk_(live|test)_(key_[0-9a-f]{16})_([A-Za-z0-9_-]{43})")
SECRET_BYTES = 32
MAX_LABEL = 100
MAX_ISSUE_LIMIT = 2**63 - 1  # a limit is compared with int64 balances and sums
MAX_KEYS_LISTED = 1000  # an operator's listing is one Query page; no tenant needs more live keys than this
MAX_REMEMBERED_KEYS = 10_000  # verified tokens one process remembers (a few hundred bytes each), oldest out first


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant: str
    scopes: tuple[str, ...]
    label: str | None
    created_at: str
    revoked_at: str | None
    usage_key: str | None = None
    issue_limit: int | None = None
    daily_issue_limit: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Caller:
    """Who a request acts for, as the authorizer found it. A key with the `issue` scope may carry limits on what it
    mints: `issue_limit` per request, `daily_issue_limit` per unit and UTC day (None: none)."""

    key_id: str
    tenant: str
    scopes: frozenset[str]
    issue_limit: int | None = None
    daily_issue_limit: int | None = None

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def effective(scopes) -> frozenset[str]:
    """A key's scopes with the ones they include."""
    granted = set(scopes)
    for scope in scopes:
        granted |= IMPLIED.get(scope, set())
    return frozenset(granted)


def check_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not TENANT.fullmatch(tenant):
        raise InvalidRequest("a tenant is 1-32 lowercase letters, digits, '_' or '-', starting with a letter or "
                             "digit", field="tenant")
    return tenant


def check_scopes(scopes) -> tuple[str, ...]:
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise InvalidRequest(f"scopes are one or more of {', '.join(SCOPES)}; unknown: {', '.join(unknown)}",
                             field="scopes")
    return tuple(dict.fromkeys(scopes))


def check_issue_limit(name: str, limit: int | None) -> int | None:
    """A limit on what a key mints: a positive integer of minor units, or None."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_ISSUE_LIMIT:
        raise InvalidRequest(f"{name} is a positive integer of at most {MAX_ISSUE_LIMIT}", field=name)
    return limit


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _of(model: ApiKeyModel) -> ApiKey:
    return ApiKey(model.id, model.tenant, tuple(str(scope) for scope in model.scopes), model.label,
                  model.created_at, model.revoked_at, model.usage_key, _limit(model.issue_limit),
                  _limit(model.daily_issue_limit))


def _limit(stored) -> int | None:
    return None if stored is None else int(stored)


@datastore_guarded
class ApiKeys:
    def __init__(self, *, live: bool, clock: Callable[[], datetime] = utc_now, remember_seconds: int = 0) -> None:
        """`live`: tokens of a deployed stage read `tk_live_`, others `tk_test_`; a stage takes its own kind only.
        `remember_seconds`: how long a verified token's caller is remembered in this process (0: never), as API
        Gateway keeps an authorizer's answer when deployed; a key revoked meanwhile works that long still."""
        self.kind = "live" if live else "test"
        self.prefix = f"tk_{self.kind}_"
        self._clock = clock
        self._remember = timedelta(seconds=remember_seconds)
        self._remembered: OrderedDict[str, tuple[datetime, Caller, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, tenant: str, scopes, *, label: str | None = None, usage_key: str | None = None,
               issue_limit: int | None = None, daily_issue_limit: int | None = None) -> tuple[ApiKey, str]:
        """A new key and its token: the only time the token is seen. `issue_limit`, `daily_issue_limit`: what the key
        may mint in one request, and per unit in one UTC day (a key that may mint: `issue` or `admin`)."""
        tenant, scopes = check_tenant(tenant), check_scopes(scopes)
        if label is not None and len(label) > MAX_LABEL:
            raise InvalidRequest(f"a label has at most {MAX_LABEL} characters", field="label")
        issue_limit = check_issue_limit("issue_limit", issue_limit)
        daily_issue_limit = check_issue_limit("daily_issue_limit", daily_issue_limit)
        if (issue_limit or daily_issue_limit) and "issue" not in effective(scopes):
            raise InvalidRequest("only a key that may mint (scope issue or admin) takes issue limits", field="scopes")
        key_id = f"key_{secrets.token_hex(8)}"
        token = f"{self.prefix}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
        model = ApiKeyModel(key_id, secret_hash=_digest(token), tenant=tenant, scopes=list(scopes), label=label,
                            created_at=stamp(self._clock()), usage_key=usage_key, issue_limit=issue_limit,
                            daily_issue_limit=daily_issue_limit)
        model.save(ApiKeyModel.id.does_not_exist())
        return _of(model), token

    def authenticate(self, token: str | None) -> tuple[Caller, str | None]:
        """The caller a bearer token stands for, and its tenant's usage key; Unauthenticated for a missing,
        malformed, unknown or revoked token (one answer for all: it tells a guesser nothing). One GetItem."""
        match = TOKEN.fullmatch(token or "")
        if match is None or match.group(1) != self.kind:
            raise Unauthenticated("a valid API key is required: Authorization: Bearer tk_...")
        if self._remember:
            with self._lock:
                remembered = self._remembered.get(match.group(0))
            if remembered is not None and remembered[0] > self._clock():
                return remembered[1], remembered[2]
        try:
            model = ApiKeyModel.get(match.group(2), consistent_read=True)
        except ApiKeyModel.DoesNotExist:
            model = None
        # Compared in constant time: the stored hash must not leak through timing.
        if model is None or not hmac.compare_digest(model.secret_hash, _digest(match.group(0))) or model.revoked_at:
            raise Unauthenticated("a valid API key is required: Authorization: Bearer tk_...")
        caller = Caller(model.id, model.tenant, effective(model.scopes), _limit(model.issue_limit),
                        _limit(model.daily_issue_limit))
        if self._remember:
            with self._lock:
                self._remembered[match.group(0)] = (self._clock() + self._remember, caller, model.usage_key)
                self._remembered.move_to_end(match.group(0))
                while len(self._remembered) > MAX_REMEMBERED_KEYS:
                    self._remembered.popitem(last=False)
        return caller, model.usage_key

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (idempotent: a revoked key keeps its first revocation time)."""
        try:
            model = ApiKeyModel.get(key_id, consistent_read=True)
        except ApiKeyModel.DoesNotExist:
            raise NotFound(f"key {key_id} not found") from None
        if model.revoked_at is None:
            model.update(actions=[ApiKeyModel.revoked_at.set(stamp(self._clock()))],
                         condition=ApiKeyModel.id.exists())
        return _of(model)

    def of_tenant(self, tenant: str) -> Iterator[ApiKey]:
        """A tenant's keys, oldest first (one Query page)."""
        for model in ApiKeyModel.by_tenant.query(check_tenant(tenant), limit=MAX_KEYS_LISTED):
            yield _of(model)

    def usage_key_of(self, tenant: str) -> str | None:
        """The tenant's API Gateway key, if an earlier key of the tenant recorded one."""
        return next((key.usage_key for key in self.of_tenant(tenant) if key.usage_key), None)
