"""Idempotency: a request's fingerprint, the record its key keeps, and the one replay-or-conflict check."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from chalicelib.core.errors import IdempotencyConflict
from chalicelib.core.ledger.keys import BookKeys
from chalicelib.core.ledger.legs import Posting
from chalicelib.core.ledger.stamps import stamp
from chalicelib.core.models import IdempotencyModel, LegRecord


def fingerprint(request: dict) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_record(stored_key: str, request_fingerprint: str, postings: list[Posting], account_keys: list[str], *,
               now: datetime, key_ttl_seconds: int | None, resource: str | None) -> IdempotencyModel:
    """The record a key keeps: the first posting, and every one when there are more."""
    first = postings[0]
    record = IdempotencyModel(stored_key, fingerprint=request_fingerprint, account=account_keys[0], seq=first.seq,
                              amount=first.amount, balance_after=first.balance_after, created_at=first.created_at,
                              resource=resource)
    if len(postings) > 1:
        record.legs = [LegRecord(account=key, seq=posting.seq, amount=posting.amount,
                                 balance_after=posting.balance_after)
                       for key, posting in zip(account_keys, postings, strict=True)]
    if key_ttl_seconds:
        record.expires_at = now + timedelta(seconds=key_ttl_seconds)
    return record


def unsequenced_record(stored_key: str, posting: str, request_fingerprint: str, account_keys: list[str],
                       amounts: list[int], *, now: datetime, key_ttl_seconds: int | None,
                       resource: str | None) -> IdempotencyModel:
    """The record of a posting that did not read its accounts: no seq or balance after yet (the drain that puts
    each leg in the journal sets them; until then the accounts' logs say them)."""
    record = IdempotencyModel(stored_key, fingerprint=request_fingerprint, account=account_keys[0], amount=amounts[0],
                              created_at=stamp(now), resource=resource, posting=posting)
    if len(account_keys) > 1:
        record.legs = [LegRecord(account=key, amount=amount) for key, amount in zip(account_keys, amounts, strict=True)]
    if key_ttl_seconds:
        record.expires_at = now + timedelta(seconds=key_ttl_seconds)
    return record


def check_replay(record: IdempotencyModel, request_fingerprint: str, client_key: str) -> None:
    """A key already used: by this very request (a replay: answer as the first time), or a conflict."""
    if record.fingerprint != request_fingerprint:
        raise IdempotencyConflict.reused(client_key)


def replayed_postings(record: IdempotencyModel, keys: BookKeys) -> list[Posting]:
    """What the first request with the key committed, as it answered then."""
    return [replayed_leg(record, number, keys) for number in range(len(record.legs or [record]))]


def replayed_leg(record: IdempotencyModel, number: int, keys: BookKeys) -> Posting:
    """One leg of what the first request with the key committed (a leg a drain completed, while another of the same
    posting may still wait in its account's log)."""
    leg: LegRecord | IdempotencyModel = record.legs[number] if record.legs else record  # one leg: the record
    return Posting(keys.account_id(leg.account), int(leg.seq), int(leg.amount), int(leg.balance_after),
                   record.created_at, replayed=True, resource=record.resource)
