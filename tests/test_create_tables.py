"""`make tables` / `make run` bring tables made by an earlier version up to date (DynamoDB Local)."""
from __future__ import annotations

import boto3
import pytest

from chalicelib.core.models import EntryModel, LotModel
from tools import dynamodb_local
from tools.create_tables import upgrade


def earlier_table(client, model, prefix: str) -> str:
    """The model's table as an earlier version made it: its keys, no index, no stream."""
    name = f"{prefix}-earlier-{model.Meta.table_name.rsplit('-', 1)[-1]}"
    schema = model._get_schema()
    keys = {key["AttributeName"] for key in schema["key_schema"]}
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=sorted(schema["key_schema"], key=lambda key: key["KeyType"] != "HASH"),
                        AttributeDefinitions=[item for item in schema["attribute_definitions"]
                                              if item["AttributeName"] in keys])
    return name


@pytest.fixture
def data_folder_of_an_earlier_make_run(tmp_path):
    """A DynamoDB Local of its own on a data folder, as `make run` keeps one. Not the suite's shared server: after
    half an hour of other tests there, one CI run saw an added index stay CREATING for 600 s."""
    with dynamodb_local.running(db_path=tmp_path / "dynamodb") as endpoint:
        yield boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)


def test_missing_indexes_are_added_once(data_folder_of_an_earlier_make_run, monkeypatch):
    client = data_folder_of_an_earlier_make_run
    for model in (LotModel, EntryModel):
        monkeypatch.setattr(model.Meta, "table_name", earlier_table(client, model, "upgrade"))
    lots, entries = LotModel.Meta.table_name, EntryModel.Meta.table_name
    assert sorted(upgrade(client, LotModel)) == [f"{lots}/by_expiry", f"{lots}/open_fifo", f"{lots}/open_payer_fifo"]
    assert sorted(upgrade(client, EntryModel)) == [f"{entries}/by_time", f"{entries}/hot_by_time"]
    assert upgrade(client, LotModel) == upgrade(client, EntryModel) == []
