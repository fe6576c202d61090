"""Keys: the one definition of how a book's items are named, and the ids that may name one."""
from __future__ import annotations

from chalicelib.core.errors import NotFound

# DynamoDB refuses a key over 2,048 bytes of UTF-8 (a partition key) with a ValidationException: a 500, where
# moto, more lenient, answers "not found". Ids are capped well below that, so that every key built from one
# (a book's prefix, a '#<seq>' suffix, an index key) fits too. No id we issue or accept in a body comes near.
MAX_ID_BYTES = 1024


def findable(what: str, value: str) -> str:
    """`value`, if an item could be stored under it. An id over MAX_ID_BYTES (or not UTF-8) names nothing
    stored: NotFound, as an id that does not exist, before any request is sent. Every id that reaches a key
    passes here (the key builders below, and the /v1 transaction and hold reads)."""
    try:
        fits = len(value.encode("utf-8")) <= MAX_ID_BYTES
    except UnicodeEncodeError:  # a lone surrogate: not text DynamoDB can store
        fits = False
    if not fits:
        raise NotFound(f"{what} {value[:64]}... not found")
    return value


class BookKeys:
    """The keys of one book's items: account ids are unique within a book."""

    def __init__(self, book: str) -> None:
        if ":" in book or "#" in book:
            raise ValueError("a book name has no ':' or '#'")
        self.book = book

    def account_key(self, account_id: str) -> str:
        return f"{self.book}:{findable('account', account_id)}"

    def account_id(self, account_key: str) -> str:
        return account_key.split(":", 1)[1]

    def idempotency_key(self, key: str, scope: str | None = None) -> str:
        """The stored key: the book's namespace, and the client's scope (a user, say) when keys are per client."""
        key = findable("transaction", key)
        return f"{self.book}:{scope}/{key}" if scope is not None else f"{self.book}:{key}"

    def internal_key(self, token: str) -> str:
        """The stored key of a posting that came without one (a client's key never starts with '~' here: the
        scoped ones carry '/', and seed keys are UUIDs)."""
        return f"{self.book}:~{token}"

    def high_water_name(self) -> str:
        return f"max_volume:{self.book}"
