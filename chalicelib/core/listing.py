"""Lists of a /v1 tenant's accounts, transactions and holds, filtered, paged, each page a fixed number of
requests whatever the tenant holds; and the metadata terms that find accounts and transactions without a scan.

- A plain list is one Query of the sparse `by_book` index (the tenant's book, oldest first by `created_at`);
  a time range is its key condition, the other filters (unit, kind, type, status, account of a hold, expiry)
  its filter expression. Accounts' index holds only what never changes (see `AccountBookIndex`): a page of
  accounts adds one BatchGetItem of their items. DynamoDB applies a page's limit before the filter, so a
  filtered page may hold fewer items than asked, or none, while `next_cursor` goes on: the work per page stays
  bounded.
- By a metadata key and value: one Query of the `search` table (an item per searchable pair, put in the same
  transaction as what it names), then one BatchGetItem of what it names.
- Transactions of one account: one Query of that account's journal, then one BatchGetItem of the
  transactions its entries name.
Cursors are the journal's signed cursors, bound to the list and its filters.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from chalicelib.config import Settings
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.ledger import Ledger, stamp
from chalicelib.core.ledger.journal import Cursors, time_range
from chalicelib.core.models import AccountModel, HoldModel, SearchModel, TransactionModel
from chalicelib.stage_secret import derived_key

# The first pairs of an account's or a transaction's metadata, in the order the request gave them, are
# searchable: each is one more item in the transaction that makes it (a bound on what a write costs).
MAX_SEARCHABLE_KEYS = 4
MAX_LIST_LIMIT = 100  # a page: also what one BatchGetItem fetches
LONG_VALUE_BYTES = 256  # a longer value is searched by its SHA-256, so a term stays far below a key's 2,048 bytes
HOLD_STATUSES = ("authorized", "captured", "voided", "expired")
ACCOUNT_KINDS = ("standard", "points", "system")
TRANSACTION_TYPES = ("posting", "transfer", "capture", "reversal", "earn", "spend", "expiry")

Item = TypeVar("Item")


@dataclass(frozen=True)
class ListPage(Generic[Item]):
    items: list[Item]
    next_cursor: str | None


def search_term(book: str, kind: str, key: str, value: str) -> str:
    """The key's length first, so no key and value can spell another pair ("a=b" and "c" against "a" and "b=c")."""
    encoded = value.encode("utf-8")
    shown = value if len(encoded) <= LONG_VALUE_BYTES else "sha256:" + hashlib.sha256(encoded).hexdigest()
    return f"{book}|{kind}|{len(key)}:{key}={shown}"


def search_items(book: str, kind: str, object_id: str, created_at: str, metadata: dict) -> list[SearchModel]:
    """The search items of an account or a transaction: its first MAX_SEARCHABLE_KEYS metadata pairs."""
    return [SearchModel(search_term(book, kind, key, value), f"{created_at}#{object_id}", id=object_id)
            for key, value in list(metadata.items())[:MAX_SEARCHABLE_KEYS]]


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}", field="limit")
    return limit


class Lists:
    """One tenant's lists."""

    def __init__(self, ledger: Ledger, settings: Settings) -> None:
        self._ledger = ledger
        self._book = ledger.book
        self._settings = settings

    def accounts(self, *, unit: str | None = None, kind: str | None = None, start: datetime | None = None,
                 end: datetime | None = None, metadata: tuple[str, str] | None = None, limit: int = MAX_LIST_LIMIT,
                 cursor: str | None = None) -> ListPage[AccountModel]:
        _one_of("kind", kind, ACCOUNT_KINDS)
        conditions = [condition for condition in (
            AccountModel.unit == unit if unit is not None else None,
            AccountModel.kind == kind if kind is not None else None) if condition is not None]
        binding = ["accounts", unit, kind, _stamp(start), _stamp(end), list(metadata or ())]
        if metadata is not None:
            def wanted(item: AccountModel) -> bool:
                return ((unit is None or item.unit == unit) and (kind is None or item.kind == kind)
                        and (item.metadata or {}).get(metadata[0]) == metadata[1])

            return self._searched(AccountModel, "accounts", metadata, start, end, limit, cursor, binding, wanted,
                                  key_of=self._ledger.account_key, stored_key=lambda item: item.key)
        page = self._listed(AccountModel, start, end, conditions, limit, cursor, binding)
        keys = [item.key for item in page.items]  # the index holds what never changes: read the items themselves
        found = {item.key: item for item in AccountModel.batch_get(keys, consistent_read=True)} if keys else {}
        return ListPage([found[key] for key in keys if key in found], page.next_cursor)

    def transactions(self, *, type_: str | None = None, account: str | None = None, start: datetime | None = None,
                     end: datetime | None = None, metadata: tuple[str, str] | None = None,
                     limit: int = MAX_LIST_LIMIT, cursor: str | None = None) -> ListPage[TransactionModel]:
        _one_of("type", type_, TRANSACTION_TYPES)
        binding = ["transactions", type_, account, _stamp(start), _stamp(end), list(metadata or ())]

        def wanted(item: TransactionModel) -> bool:
            return (type_ is None or item.type == type_) and (metadata is None or
                                                               (item.metadata or {}).get(metadata[0]) == metadata[1])

        if account is not None:
            return self._of_account(account, start, end, limit, cursor, binding, wanted)
        if metadata is not None:
            return self._searched(TransactionModel, "transactions", metadata, start, end, limit, cursor, binding,
                                  wanted, key_of=lambda object_id: object_id, stored_key=lambda item: item.id)
        conditions = [TransactionModel.type == type_] if type_ is not None else []
        return self._listed(TransactionModel, start, end, conditions, limit, cursor, binding)

    def holds(self, *, status: str | None = None, account: str | None = None, expires_before: datetime | None = None,
              limit: int = MAX_LIST_LIMIT, cursor: str | None = None) -> ListPage[HoldModel]:
        _one_of("status", status, HOLD_STATUSES)
        conditions = [condition for condition in (
            HoldModel.status == status if status is not None else None,
            HoldModel.account_id == account if account is not None else None,
            HoldModel.expires_at < stamp(expires_before) if expires_before is not None else None)
            if condition is not None]
        binding = ["holds", status, account, _stamp(expires_before)]
        return self._listed(HoldModel, None, None, conditions, limit, cursor, binding)

    # -- the three ways a page is read --------------------------------------------------------
    def _listed(self, model: type[Model], start: datetime | None, end: datetime | None,
                conditions: Sequence[Condition], limit: int, cursor: str | None, binding: list) -> ListPage:
        """One Query of `by_book`: the time range as its key condition, the other filters as its filter."""
        check_limit(limit)
        after = self._cursors().decode(cursor, [self._book, *binding])
        filtered: Condition | None = None
        for condition in conditions:
            filtered = condition if filtered is None else filtered & condition
        in_range = time_range(model.created_at, start, end)  # type: ignore[attr-defined]
        results = model.by_book.query(self._book, in_range, filter_condition=filtered,  # type: ignore[attr-defined]
                                      page_size=limit, last_evaluated_key=after)
        return self._one_page(model, results, binding)

    def _searched(self, model: type[Model], kind: str, metadata: tuple[str, str], start: datetime | None,
                  end: datetime | None, limit: int, cursor: str | None, binding: list,
                  wanted: Callable, key_of: Callable[[str], str], stored_key: Callable) -> ListPage:
        """One Query of the search terms, one BatchGetItem of what they name; the other filters applied to it."""
        check_limit(limit)
        after = self._cursors().decode(cursor, [self._book, *binding])
        # '$' sorts after the '#' that ends a stamp in `order`: an end takes in everything made at its moment.
        in_range = time_range(SearchModel.order, start, end, end_suffix="$")
        results = SearchModel.query(search_term(self._book, kind, *metadata), in_range, page_size=limit,
                                    last_evaluated_key=after, consistent_read=True)
        page = next(results.page_iter, None) or {}
        keys = [key_of(SearchModel.from_raw_data(raw).id) for raw in page.get("Items", [])]
        found = {stored_key(item): item for item in model.batch_get(keys, consistent_read=True)} if keys else {}
        items = [found[item_key] for item_key in keys if item_key in found]
        return ListPage([item for item in items if wanted(item)],
                        self._cursors().encode(results.page_iter.last_evaluated_key, [self._book, *binding]))

    def _of_account(self, account: str, start: datetime | None, end: datetime | None, limit: int,
                    cursor: str | None, binding: list, wanted: Callable) -> ListPage:
        """One Query of the account's journal, one BatchGetItem of the transactions its entries name."""
        check_limit(limit)
        bound = [self._book, *binding]
        after = self._cursors().decode(cursor, bound)  # the journal's own cursor, inside one bound to this list
        journal = self._ledger.history(account, limit=limit, cursor=(after or {}).get("journal"), newest_first=False,
                                       start=start, end=end, hot=self._ledger.is_hot(account))
        ids = list(dict.fromkeys(posting.transaction for posting in journal.postings
                                 if posting.transaction and posting.transaction.startswith("txn_")))
        found = {item.id: item for item in TransactionModel.batch_get(ids, consistent_read=True)} if ids else {}
        items = [found[transaction_id] for transaction_id in ids if transaction_id in found]
        next_cursor = (self._cursors().encode({"journal": journal.next_cursor}, bound) if journal.next_cursor
                       else None)
        return ListPage([item for item in items if wanted(item)], next_cursor)

    def _one_page(self, model: type[Model], results, binding: list) -> ListPage:
        page = next(results.page_iter, None) or {}
        items = [model.from_raw_data(raw) for raw in page.get("Items", [])]
        return ListPage(items, self._cursors().encode(results.page_iter.last_evaluated_key, [self._book, *binding]))

    def _cursors(self) -> Cursors:
        return Cursors(derived_key(self._settings, "cursor"))


def _one_of(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}", field=name)


def _stamp(moment: datetime | None) -> str | None:
    return stamp(moment) if moment is not None else None
