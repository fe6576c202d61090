"""Seed 002's refresh tokens: families, rotated one token at a time, revoked whole on reuse.

- Registration starts a **family** (its first refresh token): one item, `family#<id>` on the users table,
  naming the family's user and its current token (`token_id`, the token's `jti`).
- A refresh **rotates** the family: one UpdateItem sets the new token as current, under the condition that the
  token sent is the current one and the family is not revoked. Of two refreshes of one token exactly one
  write meets the condition; the other is a reuse.
- A **reuse** (a token of the family that is not its current one: every token stops being current by being
  used) revokes the family (`revoked_at`, one more UpdateItem): the current token is refused from then on too,
  so the thief's and the owner's next refresh both fail, whichever of them rotated first.
- **Bounded**: a family is that one item however often it rotates; its TTL (`expires_at`, the users table's)
  is its newest token's expiry, which every older token of the family expires before, so a revoked family is
  remembered exactly as long as any of its tokens could be presented.
- A refresh token from before families (no family claim) is good once, as before: its use is recorded under
  its id until it expires (`use`), and the pair it gets starts a family.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.core.errors import Unauthenticated
from chalicelib.core.guard import datastore_guarded, response_code
from chalicelib.core.ledger import stamp, utc_now
from chalicelib.core.models import DirectoryModel

REUSED, REVOKED = "this refresh token was already used", "this refresh token was revoked"


@datastore_guarded
class RefreshTokens:
    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock

    def start(self, user_id: int, token_id: str, expires_at: datetime) -> str:
        """A new family whose current token is `token_id` (expiring at `expires_at`); its id."""
        family = uuid.uuid4().hex
        item = DirectoryModel(_key(family), user_id=user_id, token_id=token_id, created_at=stamp(self._clock()),
                              expires_at=expires_at)
        item.save(DirectoryModel.key.does_not_exist())
        return family

    def rotate(self, family: str, user_id: int, token_id: str, new_token_id: str, expires_at: datetime) -> None:
        """Make `new_token_id` the family's current token in place of `token_id`, the one presented.
        Unauthenticated if `token_id` is not current (a reuse: the family is then revoked), or the family is
        revoked or gone."""
        item = DirectoryModel(_key(family))
        try:
            item.update(actions=[DirectoryModel.token_id.set(new_token_id), DirectoryModel.expires_at.set(expires_at)],
                        condition=(DirectoryModel.token_id == token_id) & (DirectoryModel.user_id == user_id)
                        & DirectoryModel.revoked_at.does_not_exist())
        except UpdateError as error:
            if response_code(error) != "ConditionalCheckFailedException":
                raise
        else:
            return
        # Not current, revoked, or gone (expired): revoke it if it still lives; only a live family's token that
        # is not current was used before.
        try:
            item.update(actions=[DirectoryModel.revoked_at.set(stamp(self._clock()))],
                        condition=DirectoryModel.key.exists() & (DirectoryModel.user_id == user_id)
                        & DirectoryModel.revoked_at.does_not_exist())
        except UpdateError as error:
            if response_code(error) != "ConditionalCheckFailedException":
                raise
            raise Unauthenticated(REVOKED) from None
        raise Unauthenticated(REUSED)

    def use(self, token_id: str, user_id: int, expires_at: int) -> None:
        """Record the one use of a refresh token from before families, `token_id` (which expires at
        `expires_at`, Unix seconds); Unauthenticated if it was used before."""
        record = DirectoryModel(f"refresh#{token_id}", user_id=user_id, created_at=stamp(self._clock()),
                                expires_at=datetime.fromtimestamp(expires_at, UTC))
        try:
            record.save(DirectoryModel.key.does_not_exist())
        except PutError as error:
            if response_code(error) == "ConditionalCheckFailedException":
                raise Unauthenticated(REUSED) from None
            raise


def _key(family: str) -> str:
    return f"family#{family}"
