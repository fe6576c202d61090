"""Count the DynamoDB API calls Tally makes and the capacity they consume, with botocore hooks.

Used by tests (request budgets) and the benchmark. It observes the real
clients of the bound models; it changes nothing they do.
"""
from __future__ import annotations

import threading
from collections import Counter

from chalicelib.core import models

_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
# What IAM authorises for the items of a transaction: each item's own action.
_TRANSACT_ITEM_ACTIONS = {"Get": "GetItem", "Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                          "ConditionCheck": "ConditionCheckItem"}


def permissions_needed(operation: str, params: dict) -> set[tuple[str, str]]:
    """The (IAM action, resource) pairs a DynamoDB call needs; a resource is a table name, or
    `<table>/index/<index>` for a query of an index."""
    if operation in ("TransactGetItems", "TransactWriteItems"):
        return {(f"dynamodb:{_TRANSACT_ITEM_ACTIONS[kind]}", item[kind]["TableName"])
                for item in params["TransactItems"] for kind in item}
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return {(f"dynamodb:{operation}", table) for table in params["RequestItems"]}
    resource = params["TableName"]
    if params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    return {(f"dynamodb:{operation}", resource)}


class DynamoDBRequests:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        # Capacity units DynamoDB reports consumed (PynamoDB asks for TOTAL on every call).
        self.read_units = 0.0
        self.write_units = 0.0
        self.permissions: set[tuple[str, str]] = set()  # (IAM action, table or index) of every call seen
        self.by_table: Counter[str] = Counter()  # calls per table (one per table a call names)
        self._lock = threading.Lock()
        self._clients = []

    def _on_call(self, model, **_kwargs) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def _on_parameters(self, model, params, **_kwargs) -> None:
        needed = permissions_needed(model.name, params)
        with self._lock:
            self.permissions |= needed
            for table in {resource.split("/index/")[0] for _, resource in needed}:
                self.by_table[table] += 1

    def _on_response(self, parsed, model, **_kwargs) -> None:
        consumed = parsed.get("ConsumedCapacity") or []
        units = sum(item.get("CapacityUnits", 0.0) for item in (consumed if isinstance(consumed, list)
                                                                 else [consumed]))
        with self._lock:
            if model.name in _READS:
                self.read_units += units
            else:
                self.write_units += units

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.by_table.clear()
            self.read_units = self.write_units = 0.0

    def __enter__(self) -> "DynamoDBRequests":
        connections = [model._get_connection().connection for model in models.MODELS.values()]
        connections.append(models.transaction_connection)
        for client in {id(c.client): c.client for c in connections}.values():
            client.meta.events.register("before-call.dynamodb", self._on_call)
            client.meta.events.register("before-parameter-build.dynamodb", self._on_parameters)
            client.meta.events.register("after-call.dynamodb", self._on_response)
            self._clients.append(client)
        return self

    def __exit__(self, *_exc) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-call.dynamodb", self._on_call)
            client.meta.events.unregister("before-parameter-build.dynamodb", self._on_parameters)
            client.meta.events.unregister("after-call.dynamodb", self._on_response)
        self._clients.clear()
