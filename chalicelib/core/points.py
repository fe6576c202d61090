"""Points: lots earned from payers, spent oldest first through a sparse time-ordered index.

A holder is a ledger account whose balance splits by payer. Every change is one
posting on the holder (`Ledger.post`: one consistent read, one transaction, the
same idempotency and retry rules as every account) extended with lot writes:
- earn (a positive add) puts a lot that carries the open-lot index keys;
- take (a spend, or a negative add scoped to one payer) reads open lots oldest
  first from a sparse GSI, page by page, only until the amount is covered, and
  decrements each one under `remaining >= take` (`remaining = take` when the take
  empties it, and then the lot leaves the indexes), each touched payer's balance
  under `>= take`, and the holder under its version.
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

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.core import models
from chalicelib.core.errors import Contention, InsufficientPoints, InvalidRequest
from chalicelib.core.guard import datastore_guarded, is_client_fault, response_code
from chalicelib.core.ledger import (
    Draft,
    Extension,
    Ledger,
    Posting,
    RetryBudget,
    Stale,
    require_int,
    stamp,
)
from chalicelib.core.models import AccountModel, EntryModel, LinkPartModel, LotLink, LotModel, PayerPoints

INDEX_PAGE = 50  # open lots per index query page
# One transaction holds 100 items: holder, entry, idempotency record, one link part and the lots.
LOTS_IN_ONE_TRANSACTION = 96
LOTS_PER_PART = 99  # a part's transaction: the part and its lots
MAX_PARTS = 97  # the deciding transaction: holder, entry, idempotency record and every part
MAX_LOTS_PER_TAKE = MAX_PARTS * LOTS_PER_PART
_PART_TOKENS = uuid.UUID("6b1f3c1e-2f0a-4c52-9d57-1d1c2b7f0a11")


@dataclass(frozen=True)
class PointsChange:
    """An accepted add or spend, as committed (or as first committed, when replayed)."""

    holder: str
    seq: int
    points: int  # signed: earned > 0, taken < 0
    by_payer: list[tuple[str, int]]  # signed, one per payer, in the order the payers were touched
    timestamp: str  # when the points were earned (an earn), else when the change was made
    balances: dict[str, int] | None  # every payer's balance right after; None when replayed
    replayed: bool = False


@dataclass(frozen=True)
class _Planned:
    by_payer: list[tuple[str, int]]
    balances: dict[str, int]
    timestamp: str
    parts: int


@datastore_guarded
class PointsBook:
    """The points holders of one book (one per surface)."""

    def __init__(self, book: str, **ledger_options) -> None:
        self.ledger = Ledger(book, **ledger_options)

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

    # -- reads ------------------------------------------------------------------
    def balances(self, holder: str) -> dict[str, int]:
        """Every payer's balance (zeros included) in the order payers first came: one GetItem."""
        try:
            account = AccountModel.get(self.holder_key(holder), consistent_read=True)
        except AccountModel.DoesNotExist:
            return {}
        return _payer_balances(account)

    # -- writes -----------------------------------------------------------------
    def add(self, holder: str, payer: str, points: int, *, timestamp: datetime | None = None,
            idempotency_key: str | None = None, key_ttl_seconds: int | None = None) -> PointsChange:
        """Earn `points` from `payer` (a lot stamped `timestamp`, default now), or with negative
        points take them back from that payer's oldest open lots."""
        points = require_int("points", points)
        if not isinstance(payer, str) or not payer.strip():
            raise InvalidRequest("payer must be a non-empty string", field="payer")
        if points == 0:
            raise InvalidRequest("points must not be zero", field="points")
        earned_at = stamp(timestamp) if timestamp else None
        extend = (functools.partial(self._earn, payer, points, earned_at) if points > 0
                  else functools.partial(self._take, -points, payer))
        posting = self.ledger.post(holder, points, idempotency_key=idempotency_key, extend=extend,
                                   request={"kind": "add", "payer": payer, "timestamp": earned_at},
                                   key_ttl_seconds=key_ttl_seconds)
        return self._change(holder, posting)

    def spend(self, holder: str, points: int, *, idempotency_key: str | None = None,
              key_ttl_seconds: int | None = None) -> PointsChange:
        """Take `points` from the holder's oldest open lots, across payers; all or nothing."""
        points = require_int("points", points)
        if points <= 0:
            raise InvalidRequest("points must be a positive integer", field="points")
        posting = self.ledger.post(holder, -points, idempotency_key=idempotency_key, request={"kind": "spend"},
                                   extend=functools.partial(self._take, points, None),
                                   key_ttl_seconds=key_ttl_seconds)
        return self._change(holder, posting)

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

    # -- planning (called by the ledger with a consistent draft of the posting) ----
    def _earn(self, payer: str, points: int, earned_at: str | None, draft: Draft) -> Extension:
        account = draft.account
        self._complete_pending_first(account)
        payers = _payer_balances(account)
        payers[payer] = payers.get(payer, 0) + points
        earned_at = earned_at or draft.created_at
        lot = LotModel(account.key, draft.seq, payer=payer, points=points, remaining=points, timestamp=earned_at,
                       fifo=f"{earned_at}#{draft.seq:012d}", open_holder=account.key,
                       open_payer=self.payer_lots_key(account.key, payer))
        return Extension(account_actions=[_set_payers(payers)],
                         entry_attributes={"detail": [PayerPoints(payer=payer, points=points)]},
                         puts=[(lot, LotModel.lot.does_not_exist())],
                         result=_Planned([(payer, points)], payers, earned_at, parts=0))

    def _take(self, points: int, payer: str | None, draft: Draft) -> Extension:
        account = draft.account
        self._complete_pending_first(account)
        payers = _payer_balances(account)
        available = int(account.balance) if payer is None else payers.get(payer, 0)
        if points > available:
            whose = "the holder has" if payer is None else f"payer {payer} has"
            raise InsufficientPoints(f"not enough points: {whose} {available}, {points} asked",
                                     available=available, asked=points)
        links = self._oldest_open_lots(account.key, payer, points, verify=draft.recheck)
        if sum(int(link.points) for link in links) < points:
            raise Stale()  # the index has not caught up with the holder yet: look again
        if any(int(link.lot) >= draft.seq for link in links):
            raise Stale()  # a lot earned after our read of the holder: the holder has moved on
        taken: dict[str, int] = {}
        for link in links:
            taken[link.payer] = taken.get(link.payer, 0) + int(link.points)
        condition = None
        position = {name: index for index, name in enumerate(payers)}
        for name, amount in taken.items():
            payers[name] -= amount
            condition &= AccountModel.payers[position[name]].points >= amount
        ref = self.posting_ref(account.key, draft.seq)
        one_transaction = len(links) <= LOTS_IN_ONE_TRANSACTION
        chunks = [links] if one_transaction else [links[i:i + LOTS_PER_PART]
                                                  for i in range(0, len(links), LOTS_PER_PART)]
        parts = [LinkPartModel(ref, number, links=chunk, applied=True if one_transaction else None)
                 for number, chunk in enumerate(chunks)]
        actions = [_set_payers(payers)]
        if not one_transaction:
            actions.append(AccountModel.pending.set(ref))
        return Extension(
            account_actions=actions, account_condition=condition,
            entry_attributes={"detail": [PayerPoints(payer=name, points=-amount) for name, amount in taken.items()],
                              "parts": len(parts)},
            puts=[(part, LinkPartModel.part.does_not_exist()) for part in parts],
            updates=[_lot_update(account.key, link) for link in links] if one_transaction else [],
            result=_Planned([(name, -amount) for name, amount in taken.items()], payers,
                            draft.created_at, parts=len(parts)))

    def _oldest_open_lots(self, holder_key: str, payer: str | None, points: int, verify: bool) -> list[LotLink]:
        """Links to the oldest open lots that cover `points`, read page by page only as far as needed.

        `verify` re-reads the lots the index named, consistently (after a lot's condition failed)."""
        index, hash_key = ((LotModel.open_fifo, holder_key) if payer is None
                           else (LotModel.open_payer_fifo, self.payer_lots_key(holder_key, payer)))
        links: list[LotLink] = []
        left, last_key = points, None
        while left > 0:
            results = index.query(hash_key, limit=INDEX_PAGE, page_size=INDEX_PAGE, last_evaluated_key=last_key)
            lots = list(results)
            if verify and lots:
                lots = _consistent(lots)
            for lot in lots:
                remaining = int(lot.remaining)
                if remaining <= 0:
                    continue
                take = min(remaining, left)
                links.append(LotLink(lot=int(lot.lot), payer=lot.payer, points=take, exhausts=take == remaining))
                left -= take
                if left == 0:
                    break
            if len(links) > MAX_LOTS_PER_TAKE:
                raise InvalidRequest(f"this would take points from more than {MAX_LOTS_PER_TAKE} lots at once; "
                                     "take fewer points per request", field="points")
            last_key = results.last_evaluated_key
            if not last_key:
                break
        return links

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
            done.update(actions=[AccountModel.pending.remove()], condition=AccountModel.pending == ref)
        except UpdateError as error:
            if response_code(error) != "ConditionalCheckFailedException":
                raise
            # Another request completed it first.

    def _apply_part(self, holder_key: str, part: LinkPartModel, budget: RetryBudget) -> None:
        """One transaction: the part (under `applied` not yet set) and its lots. Whoever runs it
        sends the same request with the same token, so a resend or a race applies it once."""
        # DynamoDB keeps request tokens per account and region, not per table: name the table too.
        token = str(uuid.uuid5(_PART_TOKENS, f"{LinkPartModel.Meta.table_name}/{part.posting}/{part.part}"))
        while True:
            try:
                with TransactWrite(connection=models.transaction_connection, client_request_token=token) as writes:
                    writes.update(LinkPartModel(part.posting, part.part), [LinkPartModel.applied.set(True)],
                                  condition=LinkPartModel.applied.does_not_exist())
                    for lot, actions, condition in (_lot_update(holder_key, link) for link in part.links):
                        writes.update(lot, actions, condition=condition)
                return
            except TransactWriteError as error:
                if response_code(error) == "TransactionCanceledException":
                    if error.cancellation_reasons and error.cancellation_reasons[0] is not None \
                            and error.cancellation_reasons[0].code == "ConditionalCheckFailed":
                        return  # applied already, by another request
                elif is_client_fault(error):
                    raise
            if not budget.retry():
                raise Contention("a large spend is still being completed; retry with the same idempotency key")

    # -- answers ----------------------------------------------------------------
    def _change(self, holder: str, posting: Posting) -> PointsChange:
        if not posting.replayed:
            planned: _Planned = posting.extra
            if planned.parts > 1:
                self.settle(holder)
            return PointsChange(holder, posting.seq, posting.amount, planned.by_payer, planned.timestamp,
                                planned.balances)
        key = self.holder_key(holder)
        entry = EntryModel.get(key, posting.seq, consistent_read=True)
        if (entry.parts or 0) > 1:
            self.settle(holder)
        timestamp = posting.created_at
        if posting.amount > 0:
            timestamp = LotModel.get(key, posting.seq, consistent_read=True).timestamp
        return PointsChange(holder, posting.seq, posting.amount,
                            [(item.payer, int(item.points)) for item in entry.detail or []], timestamp,
                            None, replayed=True)


def _lot_update(holder_key: str, link: LotLink) -> tuple[LotModel, list, object]:
    take = int(link.points)
    actions = [LotModel.remaining.set(LotModel.remaining - take)]
    if link.exhausts:
        # Emptied: it leaves both sparse indexes, so no later take ever reads it again.
        actions += [LotModel.open_holder.remove(), LotModel.open_payer.remove()]
        return LotModel(holder_key, int(link.lot)), actions, LotModel.remaining == take
    return LotModel(holder_key, int(link.lot)), actions, LotModel.remaining >= take


def _consistent(lots: list[LotModel]) -> list[LotModel]:
    """The same lots, read consistently, in the index's order."""
    fresh = {int(lot.lot): lot for lot in LotModel.batch_get([(lot.holder, lot.lot) for lot in lots],
                                                             consistent_read=True)}
    return [fresh[int(lot.lot)] for lot in lots if int(lot.lot) in fresh]


def _payer_balances(account: AccountModel) -> dict[str, int]:
    """Every payer's balance, in the order payers first came."""
    return {item.payer: int(item.points) for item in account.payers or []}


def _set_payers(payers: dict[str, int]):
    # The holder's version guards the whole item, so the list is rewritten from the consistent read.
    return AccountModel.payers.set([PayerPoints(payer=name, points=points) for name, points in payers.items()])
