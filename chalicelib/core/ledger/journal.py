"""The journal's reads: pages of an account's entries under signed cursors, and a period's totals."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from pynamodb.expressions.condition import Condition

from chalicelib.config import Settings
from chalicelib.core.errors import Forbidden, InvalidRequest, NotFound
from chalicelib.core.ledger.keys import BookKeys
from chalicelib.core.ledger.legs import Posting
from chalicelib.core.ledger.shards import shard_id, split_shard
from chalicelib.core.ledger.stamps import stamp
from chalicelib.core.models import EntryModel
from chalicelib.stage_secret import derived_key

# Entries a period's totals or statement read in one request (seed 002's total_in_period, 003's history): the
# newest of the period. One Query page: wallet entries are small, so 1,000 stay well under its 1 MB.
MAX_PERIOD_ENTRIES = 1000
# A hot account's balance as of a moment reads this many of its newest entries then, to meet every shard's last.
HOT_AS_OF_PAGE = 100


@dataclass(frozen=True)
class Page:
    """One page of journal entries and the opaque cursor of the next (None at the end)."""

    postings: list[Posting]
    next_cursor: str | None


@dataclass(frozen=True)
class Totals:
    credit: int
    debit: int
    count: int

    @classmethod
    def of(cls, postings) -> Totals:
        credit = debit = count = 0
        for posting in postings:
            credit += max(posting.amount, 0)
            debit += max(-posting.amount, 0)
            count += 1
        return cls(credit, debit, count)


class Journal:
    """One book's journal, read: every method is one Query."""

    def __init__(self, keys: BookKeys, settings: Settings) -> None:
        self._keys = keys
        self._settings = settings

    def history(self, account_id: str, *, limit: int = 100, cursor: str | None = None,
                newest_first: bool = True, start: datetime | None = None, end: datetime | None = None,
                owner: int | None = None, surface: str | None = None, hot: bool = False) -> Page:
        """A page of the account's journal: one Query, on `entries` or, for a time range
        (start <= created_at <= end), on its `by_time` index; for a `hot` account, on `hot_by_time`, which
        merges its shards in time order (an index: eventually consistent, a write shows within moments). With
        `surface`, a page of an account of another surface is NotFound, as if there were no such account; with
        `owner`, a page of an account that is not the owner's is Forbidden (an empty page says nothing: the
        caller checks)."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000", field="limit")
        key = self._keys.account_key(account_id)
        # A cursor is good for the very query that made it: this account, order and time range.
        binding = [key, newest_first, stamp(start) if start else None, stamp(end) if end else None]
        if hot:
            binding.append("hot")
        # One item more than the page: DynamoDB answers a LastEvaluatedKey whenever the limit is reached, so
        # only the item after the page says whether there is a next page (no empty last page).
        page, after = limit + 1, self._cursors().decode(cursor, binding)
        results: Iterable[EntryModel]
        in_range = time_range(EntryModel.created_at, start, end)
        if hot:
            results = EntryModel.hot_by_time.query(key, in_range, scan_index_forward=not newest_first,
                                                   limit=page, page_size=page, last_evaluated_key=after)
        elif start is None and end is None:
            results = EntryModel.query(key, consistent_read=True, scan_index_forward=not newest_first, limit=page,
                                       page_size=page, last_evaluated_key=after)
        else:
            results = EntryModel.by_time.query(key, in_range, scan_index_forward=not newest_first,
                                               limit=page, page_size=page, last_evaluated_key=after)
        entries = list(results)
        more = len(entries) > limit
        entries = entries[:limit]
        if surface is not None and any(entry.surface != surface for entry in entries):
            raise NotFound(f"account {account_id} not found")
        if owner is not None and any(entry.owner is None or int(entry.owner) != owner for entry in entries):
            raise Forbidden(f"account {account_id} belongs to another user")
        postings: list[Posting] = [Posting(account_id, int(entry.seq), int(entry.amount), int(entry.balance_after),
                            entry.created_at, held_after=int(entry.held_after or 0), transaction=entry.transaction,
                            kind=entry.kind, shard=self._shard(entry) if hot else None,
                            credited_after=int(entry.credited_after or 0), debited_after=int(entry.debited_after or 0))
                                   for entry in entries]
        last = entries[-1] if more else None
        # The page's last item as DynamoDB would name it: the table's keys, and the index's when one was queried.
        after = None
        if last is not None:
            after = {"account": {"S": last.account}, "seq": {"N": str(int(last.seq))}}
            if hot or start is not None or end is not None:
                after["created_at"] = {"S": last.created_at}
            if hot:
                after["hot_account"] = {"S": key}
        return Page(postings, self._cursors().encode(after, binding))

    def _shard(self, entry: EntryModel) -> int | None:
        return split_shard(self._keys.account_id(entry.account))[1]

    def _cursors(self) -> Cursors:
        return Cursors(derived_key(self._settings, "cursor"))

    def period(self, account_id: str, start: datetime | None, end: datetime | None, *,
               settled: list[Posting] | None = None, **whose) -> list[Posting]:
        """The newest MAX_PERIOD_ENTRIES postings with start <= created_at <= end, oldest first: one Query of
        `by_time`, newest first. A request's work is bounded whatever the period holds (a whole history was read
        before); callers whose contract has no paging say so. `settled`: postings just put in the journal, which
        the index may not show yet (`Ledger.settle`). `whose`: owner, surface (see `history`)."""
        page = self.history(account_id, limit=MAX_PERIOD_ENTRIES, newest_first=True, start=start, end=end,
                            **whose)
        return _merged(page.postings, settled, start, end)[-MAX_PERIOD_ENTRIES:]

    def last_entry_as_of(self, account_id: str, moment: datetime,
                         settled: list[Posting] | None = None) -> Posting | None:
        """The account's last entry at or before `moment` (None before its first): one Query of `by_time`, and the
        `settled` postings it may not show yet."""
        last = _merged(self.history(account_id, limit=1, end=moment).postings, settled, None, moment)
        return last[-1] if last else None

    def as_of(self, account_id: str, moment: datetime, settled: list[Posting] | None = None) -> Snapshot:
        """The account right after its last entry at or before `moment`: one Query of `by_time`."""
        last = self.last_entry_as_of(account_id, moment, settled)
        if last is None:
            return Snapshot(0, 0, 0, 0, 0)
        return Snapshot(last.balance_after, last.credited_after, last.debited_after, last.seq, last.seq)

    def hot_as_of(self, account_id: str, shards: int, moment: datetime) -> Snapshot:
        """A hot account right after its last entry at or before `moment`: the sums of each shard's snapshot at
        its own last entry then. One Query of `hot_by_time`, newest first, finds them while the shards were all
        written recently; a shard not met in its first page costs one Query of its own."""
        key = self._keys.account_key(account_id)
        results = EntryModel.hot_by_time.query(key, EntryModel.created_at <= stamp(moment), scan_index_forward=False,
                                               limit=HOT_AS_OF_PAGE, page_size=HOT_AS_OF_PAGE)
        latest: dict[int | None, Snapshot] = {}
        for entry in results:
            latest.setdefault(self._shard(entry), Snapshot(int(entry.balance_after), int(entry.credited_after or 0),
                                                            int(entry.debited_after or 0), int(entry.seq), None))
            if len(latest) == shards:
                break
        if len(latest) < shards and results.last_evaluated_key is not None:
            for number in range(shards):  # a shard not met: every entry until then was not read
                if number not in latest:
                    snapshot = self.as_of(shard_id(account_id, number), moment)
                    latest[number] = replace(snapshot, seq=None)
        return Snapshot(sum(item.balance for item in latest.values()), sum(item.credited for item in latest.values()),
                        sum(item.debited for item in latest.values()), sum(item.entries for item in latest.values()),
                        None)


def _merged(queried: list[Posting], settled: list[Posting] | None, start: datetime | None,
            end: datetime | None) -> list[Posting]:
    """The postings a time-index query gave and the `settled` ones in its range it may not show yet, each once,
    oldest first (seq order, which is time order on one account)."""
    low, high = stamp(start) if start else "", stamp(end) if end else None
    extra = [posting for posting in settled or ()
             if posting.created_at >= low and (high is None or posting.created_at <= high)]
    # What the journal holds wins: a settled posting carries only what its log entry said.
    return sorted({posting.seq: posting for posting in [*extra, *queried]}.values(), key=lambda posting: posting.seq)


@dataclass(frozen=True)
class Snapshot:
    """An account as of a moment: its balance, its running sums of credits and debits, its number of entries,
    and the seq of its last entry (None on a hot account, whose shards each have their own)."""

    balance: int
    credited: int
    debited: int
    entries: int
    seq: int | None


def time_range(attribute, start: datetime | None, end: datetime | None, end_suffix: str = "") -> Condition | None:
    """start <= `attribute` <= end (a stamp, or one that goes on after it: `end_suffix`), either end open; None for
    no range. The key condition of every time-ordered Query: the journal's and the lists'."""
    if start is not None and end is not None:
        if stamp(start) > stamp(end) + end_suffix:
            # DynamoDB refuses a BETWEEN whose bounds are the wrong way round (a ValidationException: a 500).
            raise InvalidRequest("end must not be before start", field="end")
        return attribute.between(stamp(start), stamp(end) + end_suffix)
    if start is not None:
        return attribute >= stamp(start)
    if end is not None:
        return attribute <= stamp(end) + end_suffix
    return None


class Cursors:
    """Opaque paging cursors: DynamoDB's LastEvaluatedKey and the query it belongs to, signed (HMAC-SHA256
    under a key derived from the stage's secret). A cursor that was tampered with, or made for another
    account or query, is a 400: it can never steer a Query elsewhere nor reach DynamoDB malformed."""

    MAC_BYTES = 16

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, last_evaluated_key: dict | None, binding: list) -> str | None:
        if not last_evaluated_key:
            return None
        payload = base64.urlsafe_b64encode(json.dumps([last_evaluated_key, binding], separators=(",", ":"))
                                           .encode()).decode().rstrip("=")
        return f"{payload}.{self._mac(payload)}"

    def decode(self, cursor: str | None, binding: list) -> dict | None:
        if not cursor:
            return None
        payload, _, mac = cursor.partition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            raise InvalidRequest("cursor is not one this API issued", field="cursor")
        try:
            key, bound = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError, binascii.Error, UnicodeError):
            raise InvalidRequest("cursor is not one this API issued", field="cursor") from None
        if bound != binding or not isinstance(key, dict):
            raise InvalidRequest("cursor belongs to another query: page with the parameters that made it",
                                 field="cursor")
        return key

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:self.MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
