"""The composition root: every service the app serves, built once from settings.

`app.py` builds them at import (once per Lambda container) and hands them to the surfaces, the API-key
authorizer, the scheduled sweep, the stream publisher and the drainer of idle logs. Tools and tests build their
own, with the settings and the clock they need; no other module reads configuration or builds a service at
import.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from chalicelib.config import Settings
from chalicelib.core import drains, models
from chalicelib.core.api_keys import ApiKeys
from chalicelib.core.holds import Holds
from chalicelib.core.ledger import Ledger, RetryBudget, utc_now
from chalicelib.core.points import PointsBook
from chalicelib.core.tokens import RefreshTokens
from chalicelib.core.transactions import Transactions, book_of
from chalicelib.core.wallets import Directory, Wallets


class Services:
    """What the surfaces and background functions act through. They hold no request state, so one set serves
    every request of a container."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.accounts = Ledger("accounts", track_volume=True, settings=settings, clock=clock,
                               unread_writes=True)  # seed 004; by volume
        # Seeds 000 and 001 answer with balances by payer: snapshots spare their reads.
        # Seeds 000 and 001; their spends may go without a read of the holder (`PointsBook._take_without_read`).
        self.tracker = PointsBook("tracker", settings=settings, clock=clock, snapshots=True, unread_writes=True)
        self.points = PointsBook("points", settings=settings, clock=clock, snapshots=True, unread_writes=True)
        # Every surface's wallets, unrestricted: for tools and tests. Surfaces use `users_of` and `wallets_of`.
        self.wallets = Wallets(settings=settings, clock=clock)
        # Each wallet surface keeps its own users and wallets (contracts.md), with its own minimum balance.
        minimums = {"wallet_app": settings.wallet_app_minimum, "asper_wallet": settings.asper_wallet_minimum}
        self._users = {surface: Directory(surface, clock=clock) for surface in minimums}
        self._wallets = {surface: self.wallets.of(surface, minimum) for surface, minimum in minimums.items()}
        self.api_keys = ApiKeys(live=settings.deployed, clock=clock, remember_seconds=settings.key_cache_seconds)
        self.refresh_tokens = RefreshTokens(clock)  # seed 002's families, each token good once
        # A /v1 book's services, built on a tenant's first request (up to 1,024 books a container).
        self.v1_book = functools.lru_cache(maxsize=1024)(self._v1_book)
        self._drain_settings = replace(settings, max_attempts=drains.ITEM_ATTEMPTS, retry_seconds=drains.ITEM_SECONDS)

    def drain_budget(self) -> RetryBudget:
        """The retries of one idle log's drain (`drains.py`): a short try, not a client's budget."""
        return RetryBudget(self._drain_settings, time.sleep, time.monotonic)

    @property
    def key_ttl_seconds(self) -> int:
        """How long a seed surface keeps an `Idempotency-Key`."""
        return self.settings.idempotency_key_ttl_seconds

    def points_book(self, book: str) -> PointsBook:
        """The points holders of any book: the scheduled sweep completes spends a crash left in parts in each."""
        return PointsBook(book, settings=self.settings, clock=self.clock)

    def users_of(self, surface: str) -> Directory:
        return self._users[surface]

    def wallets_of(self, surface: str) -> Wallets:
        return self._wallets[surface]

    def v1_of(self, tenant: str) -> tuple[Transactions, Holds]:
        """A tenant's /v1 services: its own book, so a request never sees another tenant's."""
        return self.v1_book(book_of(tenant))

    def _v1_book(self, book: str) -> tuple[Transactions, Holds]:
        ledger = Transactions(book, key_ttl_seconds=self.key_ttl_seconds, settings=self.settings, clock=self.clock,
                              unread_writes=self.settings.v1_writes_without_read)
        return ledger, Holds(ledger)


def build(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Services:
    """Point the models at the settings' tables and build the services on them."""
    models.bind(settings)
    return Services(settings, clock)
