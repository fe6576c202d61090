"""Count the DynamoDB API calls Tally makes, with a botocore `before-call` hook.

Used by tests (request budgets) and the benchmark. It observes the real
clients of the bound models; it changes nothing they do.
"""
from __future__ import annotations

import threading
from collections import Counter

from chalicelib.core import models


class DynamoDBRequests:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._clients = []

    def _on_call(self, model, **_kwargs) -> None:
        with self._lock:
            self.calls[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def __enter__(self) -> "DynamoDBRequests":
        connections = [model._get_connection().connection for model in models.MODELS.values()]
        connections.append(models.transaction_connection)
        for client in {id(c.client): c.client for c in connections}.values():
            client.meta.events.register("before-call.dynamodb", self._on_call)
            self._clients.append(client)
        return self

    def __exit__(self, *_exc) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-call.dynamodb", self._on_call)
        self._clients.clear()
