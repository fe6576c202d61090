"""Seed 002's refresh tokens are good for one use: each use is recorded under the token's id, put only if
absent, so a stolen refresh token that its owner has used (or that was used first by the thief) is refused.
The record expires with the token (the users table's TTL), so the table does not grow with every refresh."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pynamodb.exceptions import PutError

from chalicelib.core.errors import Unauthenticated
from chalicelib.core.guard import datastore_guarded, response_code
from chalicelib.core.ledger import stamp, utc_now
from chalicelib.core.models import DirectoryModel


@datastore_guarded
class RefreshTokens:
    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock

    def use(self, token_id: str, user_id: int, expires_at: int) -> None:
        """Record the one use of the refresh token `token_id` (which expires at `expires_at`, Unix seconds);
        Unauthenticated if it was used before."""
        record = DirectoryModel(f"refresh#{token_id}", user_id=user_id, created_at=stamp(self._clock()),
                                expires_at=datetime.fromtimestamp(expires_at, UTC))
        try:
            record.save(DirectoryModel.key.does_not_exist())
        except PutError as error:
            if response_code(error) == "ConditionalCheckFailedException":
                raise Unauthenticated("this refresh token was already used") from None
            raise
