"""Create Tally's DynamoDB tables from the PynamoDB models (idempotent), and bring tables made by an earlier
version up to date: a missing global secondary index is added (`make run` keeps its data).

Usage: python -m tools.create_tables   (endpoint, region and table prefix from the environment)
"""
from __future__ import annotations

import time

import boto3

from chalicelib.config import load
from chalicelib.core import models


def upgrade(client, model) -> list[str]:
    """Add the global secondary indexes the model has and the existing table lacks."""
    described = client.describe_table(TableName=model.Meta.table_name)["Table"]
    present = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
    schema = model._get_schema()
    added = []
    for index in schema["global_secondary_indexes"]:
        if index["index_name"] in present:
            continue
        client.update_table(
            TableName=model.Meta.table_name,
            AttributeDefinitions=schema["attribute_definitions"],
            GlobalSecondaryIndexUpdates=[{"Create": {
                "IndexName": index["index_name"],
                "KeySchema": sorted(index["key_schema"], key=lambda key: key["KeyType"] != "HASH"),
                "Projection": index["projection"]}}])
        _wait_until_indexes_are_active(client, model.Meta.table_name)
        added.append(f"{model.Meta.table_name}/{index['index_name']}")
    return added


def _wait_until_indexes_are_active(client, table: str, timeout: float = 600.0) -> None:
    """DynamoDB creates one index of a table at a time: the next may be asked for only once this one is ACTIVE
    (the table itself is ACTIVE sooner). Polled like boto's own waiters, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        described = client.describe_table(TableName=table)["Table"]
        statuses = [index.get("IndexStatus") for index in described.get("GlobalSecondaryIndexes", [])]
        if described["TableStatus"] == "ACTIVE" and all(status == "ACTIVE" for status in statuses):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{table}: indexes still {statuses} after {timeout:.0f}s")
        time.sleep(0.2)  # polling, bounded by the deadline above


def main() -> None:
    settings = load()
    models.bind(settings)
    created = models.create_tables()
    client = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.dynamodb_endpoint)
    upgraded = [change for model in models.MODELS.values() if model.Meta.table_name not in created
                for change in upgrade(client, model)]
    where = settings.dynamodb_endpoint or f"AWS {settings.region}"
    print(f"tables at {where}: " + (", ".join(created) + " created" if created else "all present")
          + (f"; added {', '.join(upgraded)}" if upgraded else ""))


if __name__ == "__main__":
    main()
