"""Points: lots earned from payers, spent oldest first through a sparse time-ordered index.

A holder is a ledger account whose balance splits by payer. Every change is one
posting on the holder (`Ledger.post`: one consistent read, one transaction, the
same idempotency and retry rules as every account) extended with lot writes; a
seed spend that fits one transaction goes without the read (`_take_without_read`):
- earn (a positive add) puts a lot that carries the open-lot index keys;
- take (a spend, or a negative add scoped to one payer) reads open lots oldest
  first from a sparse GSI, page by page, only until the amount is covered, and
  decrements each one under `remaining > take` (`remaining = take` when the take
  empties it, and then the lot leaves the indexes), each touched payer's balance
  under `>= take`, and the holder under its version (or, without a read, by arithmetic).
The index is eventually consistent, so the conditions are the truth: a stale plan
is re-planned, from consistent reads of the lots the index named.

A take that touches more lots than one transaction can hold (100 items) is decided
by its first transaction: the holder, the journal entry, the idempotency record and
every part of its lot links, with the holder marked `pending`, which fences the
planned lots from every other writer. One transaction per part then applies it, each
idempotent (a deterministic request token and an `applied` condition). Whoever comes
next to the holder, a retry with the same idempotency key, or `settle()` completes a
pending take, so a crash between parts loses nothing and spends nothing twice.
"""
from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from chalicelib.core.errors import Contention, InsufficientPoints, InvalidRequest, InvalidState
from chalicelib.core.guard import datastore_guarded, response_code
from chalicelib.core.ledger import (
    Extend,
    ExtendLegs,
    Extension,
    Ledger,
    PlannedLeg,
    Posting,
    RetryBudget,
    Stale,
    WithoutRead,
    require_int,
    stamp,
)
from chalicelib.core.ledger.posting import ItemUpdate
from chalicelib.core.ledger.runner import Ambiguous, Cancelled, Writes, send, until_current
from chalicelib.core.models import (
    AccountModel,
    EntryModel,
    LinkPartModel,
    LotLink,
    LotModel,
    PayerModel,
    PayerPoints,
    expiry_shard,
)
from chalicelib.core.payer_snapshots import PayerSnapshots
from chalicelib.core.text import check_name

INDEX_PAGE = 50  # open lots per index query page
# A take that meets expired lots journals the expiry of at most this many itself (each is a posting of its own:
# 3 requests), then steps past the rest without spending them and leaves them to the sweep (`expire_due`, every
# minute, 1,000 a run). A 1-point spend behind 150 expired lots made 458 requests; now 41.
MAX_INLINE_EXPIRIES = 10
# Expired lots a take may step past in one request (20 index pages); beyond it, retry after the sweep.
MAX_EXPIRED_SKIPPED = 1000
MAX_PAYER_LENGTH = 256  # 4 bytes a character at most in UTF-8: 1,024 bytes, a sort key's limit
# One transaction holds 100 items: holder, entry, idempotency record, one link part, a service's own record
# (a /v1 transaction), and the lots and payers a take touches.
ITEMS_IN_ONE_TAKE = 95
ITEMS_PER_PART = 99  # a part's transaction: the part, its lots and their payers
MAX_PARTS = 97  # the deciding transaction: holder, entry, idempotency record and every part
MAX_LOTS_PER_TAKE = MAX_PARTS * (ITEMS_PER_PART // 2)  # a bound on the index read; parts are counted after
# A counter leg (see `PointsBook`) takes two more items of each of those transactions: its entry and its account
# (a system account's shard: it has no floor, so one shard covers any amount).
COUNTER_ITEMS = 2
ITEMS_PER_RETURN = 90  # a reversal's one transaction: holder, entry, record, link part, lots, payers, a service's
PENDING = "pending"  # the one `pending_takes` hash key
_PART_TOKENS = uuid.UUID("6b1f3c1e-2f0a-4c52-9d57-1d1c2b7f0a11")


@dataclass(frozen=True)
class PointsChange:
    """An accepted add or spend, as committed (or as first committed, when replayed)."""

    holder: str
    seq: int
    points: int  # signed: earned > 0, taken < 0
    by_payer: list[tuple[str, int]]  # signed, one per payer, in the order the payers were touched
    timestamp: str  # when the points were earned (an earn), else when the change was made
    replayed: bool = False
    resource: str | None = None  # what the posting made (see `Posting.resource`)
    version: int | None = None  # the holder's version this change made, when known (see `balances`)


@dataclass(frozen=True)
class Lot:
    lot: int  # the seq of the journal entry that earned it
    payer: str
    points: int
    remaining: int
    earned_at: str
    expires_at: str | None


@dataclass(frozen=True)
class _PointsPlan:
    """What a points change planned, handed back on its posting: points by payer, its time stamp, its parts."""

    by_payer: list[tuple[str, int]]
    timestamp: str
    parts: int
    version: int | None  # the holder's, as read: the change commits only if it still is
    pending: bool = False  # decided, its lots and payers applied in parts after (even a single part)


@dataclass
class _Found:
    """The lots a spend's attempt without a read found (links, expired) and could not take alone: the read path's
    first plan starts from them instead of querying the index again."""

    lots: tuple[list[LotLink], dict[int, int]] | None = None


@dataclass
class _Expiring:
    """How many expired lots one request may still expire inline (see MAX_INLINE_EXPIRIES)."""

    left: int = MAX_INLINE_EXPIRIES


class _ExpiredLots(Exception):
    """A take met lots past their expiry: they are expired (journaled) first, then the take is planned again."""

    def __init__(self, lots: list[int]) -> None:
        super().__init__()
        self.lots = lots


class _LotMoved(Exception):
    """The lot changed between the read that sized a posting and its commit: size it again."""


@datastore_guarded
class PointsBook:
    """The points holders of one book (one per surface)."""

    def __init__(self, book: str, *, ledger: Ledger | None = None, on_expiry: Callable[[], ExtendLegs] | None = None,
                 counter: Callable[[str], str] | None = None, reserved_items: int = 0,
                 snapshots: bool = False, **ledger_options) -> None:
        """`on_expiry` gives the items a caller records with every expiry (a transaction record, say). `counter`
        names, for a holder, the account its points come from and go to, posted in the same transaction (so every
        change sums to zero); without it, a change is one leg (the seed surfaces' single entry). `snapshots`:
        remember holders' balances by payer (`payer_snapshots.py`), for books whose answers list them."""
        self.ledger = ledger or Ledger(book, **ledger_options)
        self._on_expiry = on_expiry
        self._counter = counter
        self._reserved_items = (COUNTER_ITEMS if counter else 0) + reserved_items
        self._snapshots = PayerSnapshots() if snapshots else None

    # -- names ----------------------------------------------------------------
    def holder_key(self, holder: str) -> str:
        return self.ledger.account_key(holder)

    @staticmethod
    def payer_lots_key(holder_key: str, payer: str) -> str:
        """Hash key of `open_payer_fifo`: one payer's open lots of one holder."""
        return f"{holder_key}#{payer}"

    @staticmethod
    def posting_ref(holder_key: str, seq: int) -> str:
        """How link parts and `pending` name a take: its journal entry."""
        return f"{holder_key}#{seq}"

    @staticmethod
    def parts_ref(holder_key: str, entry: EntryModel) -> str:
        """The key of an entry's link parts: by its seq, or the one a take written without a read gave them."""
        return entry.take or PointsBook.posting_ref(holder_key, int(entry.seq))

    # -- reads ------------------------------------------------------------------
    def balances(self, holder: str, after: PointsChange | None = None) -> dict[str, int]:
        """Every payer's balance (zeros included) in the order payers first came, as of one moment: a Query of
        the holder's payer items between two reads of the holder. Payer items change only in transactions that
        move the holder's version, so an unmoved version means no write fell between (a Query alone is read
        committed per item: it could see half of a spend). With snapshots, the first read alone when it finds the
        version this container last saw; and no read for the balances right `after` a change this container
        made from the version it last saw."""
        key = self.holder_key(holder)
        if after is not None and self._snapshots is not None and not after.replayed:
            known = self._snapshots.at(key, after.version)
            if known is not None:
                return known
        budget = self.ledger.retry_budget()
        while True:
            try:
                before = AccountModel.get(key, consistent_read=True)
            except AccountModel.DoesNotExist:
                return {}
            if before.pending:
                self._complete(before)  # its payers are applied with its parts
                continue
            known = self._snapshots.at(key, before.version) if self._snapshots is not None else None
            if known is not None:
                return known
            payers = sorted(PayerModel.query(key, consistent_read=True), key=lambda item: int(item.first))
            moved = AccountModel.get(key, attributes_to_get=["version"], consistent_read=True)
            if moved.version == before.version:
                balances = {item.payer: int(item.points) for item in payers}
                if self._snapshots is not None:
                    self._snapshots.remember(key, before.version, balances)
                return balances
            if not budget.retry():
                raise Contention("the holder is too busy to read right now; retry")

    def lots(self, holder: str, *, open_only: bool = True, limit: int = 1000) -> list[Lot]:
        """The holder's lots, oldest first (FIFO order): one Query of `open_fifo`, or of the table for all."""
        key = self.holder_key(holder)
        found = (LotModel.open_fifo.query(key, limit=limit) if open_only
                 else LotModel.query(key, consistent_read=True, limit=limit))
        lots = [Lot(int(lot.lot), lot.payer, int(lot.points), int(lot.remaining), lot.timestamp, lot.expires_at)
                for lot in found]
        return lots if open_only else sorted(lots, key=lambda lot: (lot.earned_at, lot.lot))

    # -- writes -----------------------------------------------------------------
    def add(self, holder: str, payer: str, points: int, *, timestamp: datetime | None = None,
            idempotency_key: str | None = None, key_ttl_seconds: int | None = None,
            expires_at: datetime | None = None, attach: ExtendLegs | None = None, fingerprint: dict | None = None,
            **posting) -> PointsChange:
        """Earn `points` from `payer` (a lot stamped `timestamp`, default now, that expires at
        `expires_at` if given), or with negative points take them back from that payer's oldest open
        lots. `attach` adds a caller's own items to the transaction, `fingerprint` what else identifies the
        caller's request (its metadata, say); `posting`: `create`, `resource`."""
        points = require_int("points", points)
        if not isinstance(payer, str) or not payer.strip():
            raise InvalidRequest("payer must be a non-empty string", field="payer")
        if len(payer) > MAX_PAYER_LENGTH:  # a payer names an item: DynamoDB's sort keys hold 1,024 bytes
            raise InvalidRequest(f"payer must be at most {MAX_PAYER_LENGTH} characters", field="payer")
        check_name("payer", payer)
        if points == 0:
            raise InvalidRequest("points must not be zero", field="points")
        earned_at = stamp(timestamp) if timestamp else None
        expiry = stamp(expires_at) if expires_at else None
        if expiry and points < 0:
            raise InvalidRequest("only earned points expire", field="expires_at")
        request = {"kind": "add", "payer": payer, "timestamp": earned_at}
        if expiry:
            request["expires_at"] = expiry
        request.update(_fingerprinted(fingerprint))
        extend = (functools.partial(self._earn, payer, points, earned_at, expiry) if points > 0
                  else functools.partial(self._take, -points, payer, _Expiring()))
        return self._posted(holder, points, extend, attach, idempotency_key=idempotency_key, request=request,
                            key_ttl_seconds=key_ttl_seconds, **posting)

    def spend(self, holder: str, points: int, *, idempotency_key: str | None = None,
              key_ttl_seconds: int | None = None, attach: ExtendLegs | None = None, fingerprint: dict | None = None,
              **posting) -> PointsChange:
        """Take `points` from the holder's oldest open, unexpired lots, across payers; all or nothing."""
        points = require_int("points", points)
        if points <= 0:
            raise InvalidRequest("points must be a positive integer", field="points")
        found = _Found()
        return self._posted(holder, -points, functools.partial(self._take, points, None, _Expiring(), found=found),
                            attach, idempotency_key=idempotency_key,
                            request={"kind": "spend", **_fingerprinted(fingerprint)}, key_ttl_seconds=key_ttl_seconds,
                            unread_take=(points, found), **posting)

    def _posted(self, holder: str, points: int, extend: Extend, attach: ExtendLegs | None,
                unread_take: tuple[int, _Found] | None = None, **posting) -> PointsChange:
        """Post the change; lots found expired on the way are expired first (each its own journal entry).
        `unread_take`: the points of a spend that may go without a read of the holder (`_take_without_read`), and
        where it leaves the lots it found when it cannot."""
        while True:
            made: list[_PointsPlan] = []
            without_read = None
            if unread_take is not None and attach is None and self._counter is None and self.ledger.unread_writes:
                without_read = self._take_without_read(self.holder_key(holder), *unread_take, made)
            try:
                change = self.ledger.post(holder, points, plan_legs=_with(extend, attach),
                                          counter=self._counter_of(holder), without_read=without_read, **posting)
            except _ExpiredLots as expired:
                for lot in expired.lots:
                    self.expire(holder, lot)
                continue
            return self._change(holder, change, made[0] if made and change.extra is None else None)

    def _take_without_read(self, holder_key: str, points: int, found: _Found,
                           made: list[_PointsPlan]) -> WithoutRead:
        """A spend that fits one transaction, planned from the open lots' index alone: each lot taken under
        `remaining > take` and each payer under `points >= take`, the holder by arithmetic (no version to race on:
        concurrent spends of one holder all commit while the lots hold out). Which lots does not depend on the holder:
        FIFO is the index's order. Anything else — lots to expire first, not enough points, an index behind the
        lots, a take in parts, a pending take on the holder — goes to the read path, which decides it as ever, from
        the lots found here (`found`: not read twice). A lot's or payer's condition that failed (another spend
        emptied the lot first, or the index was behind) plans again without a read, from the lots read
        consistently."""

        tries = 0

        def extend(_posted: tuple, created_at: str) -> Extension | None:
            nonlocal tries
            tries += 1
            try:
                # Again after a lot's or payer's condition failed: the lots the index names, read consistently.
                links, expired = self._oldest_open_lots(holder_key, None, points, created_at, verify=tries > 1)
            except (InvalidRequest, Contention):
                return None  # the read path says so, once it has found the key unused (a retry gets its answer)
            if expired or sum(int(link.points) for link in links) < points or not self._in_one_transaction(links):
                found.lots = (links, expired)
                return None
            ref = f"{holder_key}#~{uuid.uuid4().hex}"  # no seq to name the parts by: the entry keeps this key
            extension = self._taking(holder_key, links, ref, seq=None, created_at=created_at, version=None)
            extension.entry_attributes["take"] = ref
            made[:] = [extension.planned()]
            return extension
        return WithoutRead((AccountModel.pending.does_not_exist(),), extend, replan_on_refusal=True)

    def expire(self, holder: str, lot: int) -> PointsChange | None:
        """Journal the expiry of an expired lot's remaining points (None if nothing is left to expire).

        Safe to run twice or to race a take: the lot is emptied under `remaining == what was read`."""
        key = self.holder_key(holder)
        while True:
            try:
                found = LotModel.get(key, lot, consistent_read=True)
            except LotModel.DoesNotExist:
                return None
            remaining = int(found.remaining)
            if remaining <= 0 or not found.expires_at or found.expires_at > stamp(self.ledger.now()):
                return None
            link = LotLink(lot=lot, payer=found.payer, points=remaining, exhausts=True)

            def plan(planned: PlannedLeg, link=link, remaining=remaining) -> Extension:
                if planned.recheck and int(LotModel.get(key, lot, consistent_read=True).remaining) != remaining:
                    raise _LotMoved()  # a take got there first: size the expiry again
                return self._take_links([link], "expiry", planned)

            try:
                attach = self._on_expiry() if self._on_expiry else None
                posting = self.ledger.post(holder, -remaining, create=False, plan_legs=_with(plan, attach),
                                           counter=self._counter_of(holder))
            except _LotMoved:
                continue
            return self._change(holder, posting)

    def take_back_earn(self, holder: str, earn_seq: int, points: int, attach: ExtendLegs | None = None,
                       **posting) -> PointsChange:
        """Reverse (part of) an earn: take `points` from the very lot it made, if they are still there."""
        link = None

        def plan(planned: PlannedLeg) -> Extension:
            nonlocal link
            lot = LotModel.get(planned.account.key, earn_seq, consistent_read=True)
            remaining = int(lot.remaining)
            if remaining < points:
                raise InvalidState(f"only {remaining} points of this earn are left in its lot; "
                                   f"{points} cannot be taken back")
            link = LotLink(lot=earn_seq, payer=lot.payer, points=points, exhausts=remaining == points)
            return self._take_links([link], "reversal", planned)

        return self._posted(holder, -points, plan, attach, create=False, **posting)

    def return_to_lots(self, holder: str, spend_seq: int, points: int, already_returned: int,
                       attach: ExtendLegs | None = None, **posting) -> PointsChange:
        """Reverse (part of) a spend: give `points` back to the very lots it took them from, newest take
        first, after the `already_returned` points earlier reversals gave back. A lot keeps its place in
        FIFO order (its `fifo` key never changes) and re-enters the open indexes."""
        key = self.holder_key(holder)
        taken = [link for part in LinkPartModel.query(self.posting_ref(key, spend_seq), consistent_read=True)
                 for link in part.links]
        if not taken:  # a spend written without a read names its parts otherwise (its entry says how)
            with contextlib.suppress(EntryModel.DoesNotExist):
                ref = self.parts_ref(key, EntryModel.get(key, spend_seq, consistent_read=True))
                taken = [link for part in LinkPartModel.query(ref, consistent_read=True) for link in part.links]
        returns: dict[int, list] = {}  # lot -> [payer, points], in the order they are given back
        skip, left = already_returned, points
        for link in reversed(taken):
            amount = int(link.points)
            skipped = min(skip, amount)
            skip -= skipped
            give = min(amount - skipped, left)
            if give > 0:
                returns.setdefault(int(link.lot), [link.payer, 0])[1] += give
                left -= give
        if left:
            raise InvalidState(f"this spend has only {points - left} points left to give back")
        most = ITEMS_PER_RETURN - self._reserved_items
        if len(returns) + len({payer for payer, _ in returns.values()}) > most:
            raise InvalidRequest(f"this would give points back to more than {most} lots and payers "
                                 "at once; reverse a smaller amount per request", field="amount")

        def plan(planned: PlannedLeg) -> Extension:
            account = planned.account
            self._complete_pending_first(account)  # a pending take's conditions assume its lots hold still
            lots = {int(lot.lot): lot for lot in LotModel.batch_get([(key, lot) for lot in returns],
                                                                    consistent_read=True)}
            updates: list[ItemUpdate] = []
            links = []
            for number, (payer, amount) in returns.items():
                lot = lots[number]
                actions: list[Action] = [LotModel.remaining.set(LotModel.remaining + amount),
                           LotModel.open_holder.set(key), LotModel.open_payer.set(self.payer_lots_key(key, payer))]
                if lot.expires_at:
                    actions += [LotModel.expiry_shard.set(expiry_shard("lots", key)),
                                LotModel.expiry.set(_lot_expiry(lot.expires_at, key, number))]
                updates.append((LotModel(key, number), actions, LotModel.remaining == int(lot.remaining)))
                links.append(LotLink(lot=number, payer=payer, points=-amount, exhausts=False))
            by_payer: dict[str, int] = {}
            for link in links:
                by_payer[link.payer] = by_payer.get(link.payer, 0) - int(link.points)
            part = LinkPartModel(self.posting_ref(key, planned.seq), 0, links=links, applied=True)
            return Extension(entry_attributes={"detail": [PayerPoints(payer=name, points=amount)
                                                          for name, amount in by_payer.items()], "parts": 1},
                             puts=[(part, LinkPartModel.part.does_not_exist())],
                             updates=updates + _payer_updates(key, by_payer, planned.seq),
                             result=_PointsPlan(list(by_payer.items()), planned.created_at, parts=1,
                                                version=planned.account.version))

        return self._posted(holder, points, plan, attach, create=False, **posting)

    @staticmethod
    def pending_holders():
        """(book, holder) of every holder with a take in parts not yet completed, in any book: one Query."""
        for item in AccountModel.pending_takes.query(PENDING):
            book, holder = item.key.split(":", 1)
            yield book, holder

    def settle(self, holder: str) -> bool:
        """Recovery: complete the holder's pending take, if any. True if there was one."""
        try:
            account = AccountModel.get(self.holder_key(holder), consistent_read=True)
        except AccountModel.DoesNotExist:
            return False
        if not account.pending:
            return False
        self._complete(account)
        return True

    def _counter_of(self, holder: str) -> str | None:
        return self._counter(holder) if self._counter else None

    # -- planning (called by the ledger with the planned leg, read consistently) ----
    def _earn(self, payer: str, points: int, earned_at: str | None, expires_at: str | None,
              planned: PlannedLeg) -> Extension:
        account = planned.account
        self._complete_pending_first(account)
        earned_at = earned_at or planned.created_at
        lot = LotModel(account.key, planned.seq, payer=payer, points=points, remaining=points, timestamp=earned_at,
                       fifo=f"{earned_at}#{planned.seq:012d}", open_holder=account.key,
                       open_payer=self.payer_lots_key(account.key, payer))
        if expires_at:
            lot.expires_at, lot.expiry_shard = expires_at, expiry_shard("lots", account.key)
            lot.expiry = _lot_expiry(expires_at, account.key, planned.seq)
        return Extension(account_actions=[AccountModel.kind.set(AccountModel.kind | "points")],
                         entry_attributes={"detail": [PayerPoints(payer=payer, points=points)]},
                         puts=[(lot, LotModel.lot.does_not_exist())],
                         updates=_payer_updates(account.key, {payer: points}, planned.seq),
                         result=_PointsPlan([(payer, points)], earned_at, parts=0, version=account.version))

    def _take(self, points: int, payer: str | None, expiring: _Expiring, planned: PlannedLeg,
              found: _Found | None = None) -> Extension:
        account = planned.account
        self._complete_pending_first(account)
        available = int(account.balance) if payer is None else self._payer_points(account, payer)
        if points > available:
            raise _not_enough(payer, available, points)
        if found is not None and found.lots is not None and not planned.recheck:
            links, expired = found.lots  # what the attempt without a read found a moment ago, once
            found.lots = None
        else:
            links, expired = self._oldest_open_lots(account.key, payer, points, planned.created_at,
                                                    verify=planned.recheck)
        if expired and expiring.left > 0:
            batch = list(expired)[:expiring.left]
            expiring.left -= len(batch)
            raise _ExpiredLots(batch)
        if sum(int(link.points) for link in links) < points:
            unexpired = available - sum(expired.values())  # expired lots stepped past, not yet journaled
            if points > unexpired:
                raise _not_enough(payer, unexpired, points)
            raise Stale()  # the index has not caught up with the holder yet: look again
        if any(int(link.lot) >= planned.seq for link in links):
            raise Stale()  # a lot earned after our read of the holder: the holder has moved on
        return self._planned_taking(planned, links)

    def _in_one_transaction(self, links: list[LotLink]) -> bool:
        """Whether a take of these links fits the posting's own transaction, its lots and their payers."""
        return len(links) + len(_by_payer(links)) <= ITEMS_IN_ONE_TAKE - self._reserved_items

    def _planned_taking(self, planned: PlannedLeg, links: list[LotLink]) -> Extension:
        """`_taking` from the holder as read: its parts named by the posting's seq, its version the snapshot's."""
        key = planned.account.key
        return self._taking(key, links, self.posting_ref(key, planned.seq), seq=planned.seq,
                            created_at=planned.created_at, version=planned.account.version)

    def _taking(self, holder_key: str, links: list[LotLink], ref: str, *, seq: int | None, created_at: str,
                version: int | None) -> Extension:
        """Take the links' points from their lots and payers: in the posting's transaction, or (over
        ITEMS_IN_ONE_TAKE lots and payers) decided by it, with the holder `pending`, and applied in parts
        (each part's lots and the payers they came from). `ref` names its parts; `seq` is the posting's (None
        without a read of the holder)."""
        taken = _by_payer(links)
        one_transaction = self._in_one_transaction(links)
        chunks = [links] if one_transaction else _chunks(links)
        most_parts = MAX_PARTS - self._reserved_items
        if len(chunks) > most_parts:
            raise InvalidRequest(f"this would take points from more lots and payers than {most_parts} parts of "
                                 f"{ITEMS_PER_PART} hold; take fewer points per request", field="points")
        parts = [LinkPartModel(ref, number, links=chunk, applied=True if one_transaction else None)
                 for number, chunk in enumerate(chunks)]
        actions: list[Action] = []
        if not one_transaction:
            actions += [AccountModel.pending.set(ref), AccountModel.pending_shard.set(PENDING)]
        updates: list[ItemUpdate] = []
        if one_transaction:
            updates = [_lot_update(holder_key, link) for link in links]
            updates += _payer_updates(holder_key, {name: -amount for name, amount in taken.items()}, seq,
                                      guarded=True)
        return Extension(
            account_actions=actions,
            # JSON values: a posting without a read keeps them in the holder's log until the drain.
            entry_attributes={"detail": [{"payer": name, "points": -amount} for name, amount in taken.items()],
                              "parts": len(parts)},
            puts=[(part, LinkPartModel.part.does_not_exist()) for part in parts],
            updates=updates,
            result=_PointsPlan([(name, -amount) for name, amount in taken.items()], created_at,
                               parts=len(parts), version=version, pending=not one_transaction))

    def _payer_points(self, holder: AccountModel, payer: str) -> int:
        """One payer's balance: from the snapshot of the holder's version read, else one consistent GetItem (read
        after the holder, whose version guards the plan)."""
        known = self._snapshots.at(holder.key, holder.version) if self._snapshots is not None else None
        if known is not None:
            return known.get(payer, 0)
        try:
            return int(PayerModel.get(holder.key, payer, consistent_read=True).points)
        except PayerModel.DoesNotExist:
            return 0

    def _oldest_open_lots(self, holder_key: str, payer: str | None, points: int, now: str,
                          verify: bool) -> tuple[list[LotLink], dict[int, int]]:
        """Links to the oldest open lots that cover `points`, read page by page only as far as needed,
        and the lots met on the way that had expired by `now` (never taken from), with their points left.

        `verify` re-reads the lots the index named, consistently (after a lot's condition failed)."""
        index, hash_key = ((LotModel.open_fifo, holder_key) if payer is None
                           else (LotModel.open_payer_fifo, self.payer_lots_key(holder_key, payer)))
        links: list[LotLink] = []
        expired: dict[int, int] = {}
        left, last_key = points, None
        while left > 0:
            # Every open lot holds at least a point, so `left` lots may do: a small take reads a small first page (at
            # least 10 lots, so a few lots emptied meanwhile or expired do not cost another request), not 50.
            page = min(INDEX_PAGE, max(left, 10)) if last_key is None else INDEX_PAGE
            results = index.query(hash_key, limit=page, page_size=page, last_evaluated_key=last_key)
            lots = list(results)
            if verify and lots:
                lots = _consistent(lots)
            for lot in lots:
                remaining = int(lot.remaining)
                if remaining <= 0:
                    continue
                if lot.expires_at and lot.expires_at <= now:
                    expired[int(lot.lot)] = remaining
                    continue
                take = min(remaining, left)
                links.append(LotLink(lot=int(lot.lot), payer=lot.payer, points=take, exhausts=take == remaining))
                left -= take
                if left == 0:
                    break
            if len(links) > MAX_LOTS_PER_TAKE:
                raise InvalidRequest(f"this would take points from more than {MAX_LOTS_PER_TAKE} lots at once; "
                                     "take fewer points per request", field="points")
            if len(expired) > MAX_EXPIRED_SKIPPED:
                raise Contention(f"more than {MAX_EXPIRED_SKIPPED} expired lots are waiting for the expiry sweep; "
                                 "nothing was written, retry in a minute")
            last_key = results.last_evaluated_key
            if not last_key:
                break
        return links, expired

    def _take_links(self, links: list[LotLink], kind: str, planned: PlannedLeg) -> Extension:
        """Take exactly these links' points from their lots (an expiry, a reversed earn)."""
        self._complete_pending_first(planned.account)
        extension = self._planned_taking(planned, links)
        extension.entry_attributes["kind"] = kind
        return extension

    # -- completing a take whose lots did not fit in one transaction --------------
    def _complete_pending_first(self, account: AccountModel) -> None:
        """A pending take fences its lots: finish it, then plan again from a fresh read."""
        if account.pending:
            self._complete(account)
            raise Stale()

    def _complete(self, account: AccountModel) -> None:
        ref = account.pending
        budget = self.ledger.retry_budget()
        for part in LinkPartModel.query(ref, consistent_read=True):
            if not part.applied:
                self._apply_part(account.key, part, budget)
        done = AccountModel(account.key, version=account.version)
        try:
            done.update(actions=[AccountModel.pending.remove(), AccountModel.pending_shard.remove()],
                        condition=AccountModel.pending == ref)
        except UpdateError as error:
            if response_code(error) != "ConditionalCheckFailedException":
                raise
            # Another request completed it first.

    def _apply_part(self, holder_key: str, part: LinkPartModel, budget: RetryBudget) -> None:
        """One transaction: the part (under `applied` not yet set) and its lots. Whoever runs it
        sends the same request with the same token, so a resend or a race applies it once."""
        # DynamoDB keeps request tokens per account and region, not per table: name the table too.
        token = str(uuid.uuid5(_PART_TOKENS, f"{LinkPartModel.Meta.table_name}/{part.posting}/{part.part}"))

        def apply(writes: Writes) -> None:
            writes.update("part", LinkPartModel(part.posting, part.part), [LinkPartModel.applied.set(True)],
                          LinkPartModel.applied.does_not_exist())
            for lot, actions, condition in (_lot_update(holder_key, link, fenced=True) for link in part.links):
                writes.update("lot", lot, actions, condition)
            # The part's payers, unconditioned: the pending take fences them, its lots' conditions hold.
            taken = {name: -amount for name, amount in _by_payer(part.links).items()}
            for payer, actions, _ in _payer_updates(holder_key, taken, None):
                writes.update("payer", payer, actions)

        def attempt(_recheck: bool) -> None:
            try:
                send(apply, token)
            except Cancelled as cancelled:
                if cancelled.failed and "part" in cancelled.failed:
                    return  # applied already, by another request
                raise Stale() from None  # a conflict: send it again
            except Ambiguous:
                raise Stale() from None

        until_current(attempt, budget, lambda: Contention(
            "a large spend is still being completed; retry with the same idempotency key"))

    # -- answers ----------------------------------------------------------------
    def _change(self, holder: str, posting: Posting, unread: _PointsPlan | None = None) -> PointsChange:
        """The change as answered. `unread`: the plan of a spend written without a read (its posting carries none)."""
        if not posting.replayed:
            plan: _PointsPlan = unread or posting.planned()
            version = None
            if plan.pending or plan.parts > 1:
                self.settle(holder)  # applied in parts, and completed: no snapshot follows it
            elif self._snapshots is not None:
                # Read path: from the version it was conditioned on. Without a read: the version the answer's read
                # found it made, when nothing was written since (the snapshot moves only if it was at the one before).
                read_version = plan.version if unread is None else (
                    None if posting.version is None else posting.version - 1)
                version = self._snapshots.advance(self.holder_key(holder), read_version, plan.by_payer)
            return PointsChange(holder, posting.seq, posting.amount, plan.by_payer, plan.timestamp,
                                resource=posting.resource, version=version)
        key = self.holder_key(holder)
        if posting.logged is not None:  # still in the holder's log (a spend without a read): its detail is there
            parts = posting.logged.get("parts")
            by_payer = [(item["payer"], int(item["points"])) for item in posting.logged.get("detail") or []]
        else:
            entry = EntryModel.get(key, posting.seq, consistent_read=True)
            parts, by_payer = entry.parts, [(item.payer, int(item.points)) for item in entry.detail or []]
        if (parts or 0) > 1:
            self.settle(holder)
        timestamp = posting.created_at
        if posting.amount > 0:
            try:  # an earn: when its lot says the points were earned
                timestamp = LotModel.get(key, posting.seq, consistent_read=True).timestamp
            except LotModel.DoesNotExist:
                pass  # points given back by a reversal
        return PointsChange(holder, posting.seq, posting.amount, by_payer, timestamp, replayed=True,
                            resource=posting.resource)


def _lot_update(holder_key: str, link: LotLink, fenced: bool = False) -> ItemUpdate:
    """A link's take from its lot. `fenced`: a part of a take decided in parts, which no other take of the holder
    can race while it is pending (the holder's `pending` fences its lots)."""
    take = int(link.points)
    actions: list[Action] = [LotModel.remaining.set(LotModel.remaining - take)]
    if link.exhausts:
        # Emptied: it leaves the sparse indexes, so no later take or expiry sweep ever reads it again.
        actions += [LotModel.open_holder.remove(), LotModel.open_payer.remove(), LotModel.expiry_shard.remove(),
                    LotModel.expiry.remove()]
        return LotModel(holder_key, int(link.lot)), actions, LotModel.remaining == take
    # More than the take: a take that would empty the lot must be the one that leaves the indexes (takes planned from
    # one state of the lot, without a read of the holder between them, may race on it). A fenced part races no
    # other take: at least the take, as its plan found it.
    return LotModel(holder_key, int(link.lot)), actions, (LotModel.remaining >= take) if fenced else (
        LotModel.remaining > take)


def _lot_expiry(expires_at: str, holder_key: str, lot: int) -> str:
    return f"{expires_at}#{holder_key}#{lot:012d}"


def _fingerprinted(fingerprint: dict | None) -> dict:
    """A caller's part of the fingerprint; empty values are left out, so a key stored before they counted
    (with no metadata) still replays."""
    return {name: value for name, value in (fingerprint or {}).items() if value}


def _with(extend: Extend, attach: ExtendLegs | None) -> ExtendLegs:
    """The points plan (on the holder's leg, the first), and a caller's own items (from every leg) in the same
    transaction."""
    # The caller's items first: they carry its rules (a /v1 spend from a standard account is a 400), which must
    # refuse before the points plan, whose "no lots yet" would be retried as a lagging index until a 503.
    def plan(planned_legs: tuple[PlannedLeg, ...]) -> Extension:
        attached = attach(planned_legs) if attach else None
        return extend(planned_legs[0]).merged(attached)
    return plan


def _consistent(lots: list[LotModel]) -> list[LotModel]:
    """The same lots, read consistently, in the index's order."""
    fresh = {int(lot.lot): lot for lot in LotModel.batch_get([(lot.holder, lot.lot) for lot in lots],
                                                             consistent_read=True)}
    return [fresh[int(lot.lot)] for lot in lots if int(lot.lot) in fresh]


def _not_enough(payer: str | None, available: int, points: int) -> InsufficientPoints:
    whose = "the holder has" if payer is None else f"payer {payer} has"
    return InsufficientPoints(f"not enough points: {whose} {available}, {points} asked")


def _by_payer(links) -> dict[str, int]:
    """Points per payer of some links, in the order the payers come."""
    taken: dict[str, int] = {}
    for link in links:
        taken[link.payer] = taken.get(link.payer, 0) + int(link.points)
    return taken


def _chunks(links: list[LotLink]) -> list[list[LotLink]]:
    """The links in parts whose lots and payers fit one transaction each, with the part itself."""
    chunks: list[list[LotLink]] = [[]]
    payers: set[str] = set()
    for link in links:
        if len(chunks[-1]) + 1 + len(payers | {link.payer}) > ITEMS_PER_PART:
            chunks.append([])
            payers = set()
        chunks[-1].append(link)
        payers.add(link.payer)
    return chunks


def _payer_updates(holder_key: str, changes: dict[str, int], seq: int | None,
                   guarded: bool = False) -> list[ItemUpdate]:
    """Each payer's item moved by its (signed) change. A payer first seen gets `first = seq`; a take is guarded by
    `points >= take` when `seq` is given (in the posting's own transaction) or it is `guarded` (a take written
    without a read, whose payers exist already), so no payer goes below zero."""
    updates: list[ItemUpdate] = []
    for payer, change in changes.items():
        actions: list[Action] = [PayerModel.points.add(change)]
        condition: Condition | None = None
        if seq is not None:
            actions.append(PayerModel.first.set(PayerModel.first | seq))
        if (seq is not None or guarded) and change < 0:
            condition = PayerModel.points >= -change
        updates.append((PayerModel(holder_key, payer), actions, condition))
    return updates
