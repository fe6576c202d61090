"""What the two wallet surfaces (seeds 002 and 003) share: one book of wallets, one counter of ids, one phone
number per user. Each surface sees only its own users and wallets through its `views`."""
from __future__ import annotations

from chalicelib.config import load
from chalicelib.core.wallets import Directory, Wallets

settings = load()
# Every surface's wallets, unrestricted: for tools and tests. Surfaces use `views`.
wallets = Wallets(settings=settings)


def views(surface: str) -> tuple[Directory, Wallets]:
    """A surface's own users and wallets (contracts.md: each surface keeps its own data)."""
    return Directory(surface), wallets.of(surface)
