"""What the two wallet surfaces (seeds 002 and 003) share: one directory of users, one book of wallets."""
from __future__ import annotations

from chalicelib.config import load
from chalicelib.core.wallets import Directory, Wallets

settings = load()
directory = Directory()
wallets = Wallets(settings=settings)
