"""Journal events (moto): postings written without a read wait in their accounts' logs until the `drain_logs`
function, fed by the accounts table's stream, moves them into the journal; entries come off the entries table's
stream, the `publish_entries` function sends each to EventBridge once, and a redelivered batch sends nothing
again."""
from __future__ import annotations

import json
import uuid
from datetime import datetime

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodbstreams.models import dynamodbstreams_backends

from chalicelib.core import events
from chalicelib.core.models import AccountModel, EntryModel
from tools import infra

JSON = {"Content-Type": "application/json"}


def write(client, path: str, body: dict) -> dict:
    response = client.http.post(path, headers={**JSON, "Idempotency-Key": str(uuid.uuid4())}, body=json.dumps(body))
    assert response.status_code == 201, response.json_body
    return response.json_body


@pytest.fixture
def journal_queue(aws):
    """The entries' and the accounts' streams, as the deployed template has them, and an SQS queue that a rule on
    the event bus fills with every journal event."""
    for kind, model in (("entries", EntryModel), ("accounts", AccountModel)):
        boto3.client("dynamodb", region_name="us-east-1").update_table(
            TableName=model.Meta.table_name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": infra.STREAMS[kind]})
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="journal")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bridge = boto3.client("events", region_name="us-east-1")
    bridge.put_rule(Name="journal", EventBusName="default",
                    EventPattern=json.dumps({"source": [events.SOURCE], "detail-type": [events.DETAIL_TYPE]}))
    bridge.put_targets(Rule="journal", EventBusName="default", Targets=[{"Id": "queue", "Arn": arn}])
    events.client.cache_clear()
    yield sqs, queue
    events.client.cache_clear()


def stream_event(model=EntryModel) -> dict:
    """Everything on the model's table's stream, as Lambda hands a batch to the function.

    moto keeps the stream; its HTTP front for DynamoDB Streams answers "Not yet implemented" to this
    botocore, so the records are read from moto's streams backend itself."""
    arn = boto3.client("dynamodb", region_name="us-east-1").describe_table(
        TableName=model.Meta.table_name)["Table"]["LatestStreamArn"]
    streams = dynamodbstreams_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    records = []
    for shard in streams.describe_stream(arn)["Shards"]:
        iterator = streams.get_shard_iterator(arn, shard["ShardId"], "TRIM_HORIZON")
        for record in json.loads(json.dumps(streams.get_records(iterator.arn, 1000)["Records"], default=str)):
            created = record["dynamodb"]["ApproximateCreationDateTime"]
            if isinstance(created, str):  # Lambda sends epoch seconds
                record["dynamodb"]["ApproximateCreationDateTime"] = datetime.fromisoformat(created).timestamp()
            record["eventSourceARN"] = arn
            records.append(record)
    return {"Records": records}


def received(sqs, queue) -> list[dict]:
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return messages
        messages += [json.loads(message["Body"]) for message in batch]
        sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(number), "ReceiptHandle": message["ReceiptHandle"]}
                                                          for number, message in enumerate(batch)])


def test_every_entry_is_published_once(client, journal_queue):
    sqs, queue = journal_queue
    for account_id in ("alice", "bob"):
        write(client, "/v1/accounts", {"id": account_id, "unit": "USD"})
    write(client, "/v1/postings", {"account_id": "alice", "amount": 500})
    transfer = write(client, "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 200})
    write(client, "/v1/holds", {"account_id": "alice", "amount": 50})
    journaled = len(stream_event()["Records"])
    # Opening them taught the container the accounts: nothing read before the posting, the transfer or the hold, and
    # every leg waits in its account's log (alice's, bob's, the system account's shard's).
    assert journaled == 0
    # Nobody posts to or reads them again: the accounts' stream brings the drainer, once or twice alike.
    accounts = stream_event(AccountModel)
    assert client.lambda_.invoke("drain_logs", accounts).payload == {"settled": 3, "busy": 0}
    assert client.lambda_.invoke("drain_logs", accounts).payload == {"settled": 3, "busy": 0}  # nothing left to move
    assert client.lambda_.invoke("drain_logs", stream_event(AccountModel)).payload == {"settled": 0, "busy": 0}
    batch = stream_event()
    assert len(batch["Records"]) == 5  # a posting's two legs (alice, the system account), two transfer legs, a hold

    answer = client.lambda_.invoke("publish_entries", batch).payload
    assert answer == {"sent": 5, "skipped": 0}
    published = received(sqs, queue)
    assert all(event["source"] == "tally.ledger" and event["detail-type"] == "journal.entry" for event in published)
    details = sorted((event["detail"] for event in published), key=lambda detail: detail["id"])
    world = details.pop(0)  # "@" sorts first: the system account's entry, on one of its shards
    assert (world["account_id"], world["seq"], world["amount"], world["kind"]) == ("@world:USD", 1, -500, "posting")
    assert isinstance(world["shard"], int) and world["transaction"] == details[0]["transaction"]
    assert [(detail["account_id"], detail["seq"], detail["amount"], detail.get("kind")) for detail in details] == [
        ("alice", 1, 500, "posting"), ("alice", 2, -200, "transfer"), ("alice", 3, 0, "hold"),
        ("bob", 1, 200, "transfer")]
    assert "shard" not in details[0]
    assert details[1]["transaction"] == details[3]["transaction"] == transfer["id"]
    assert "transaction" not in details[2] and details[2]["hold_id"].startswith("hold_")  # what it names
    assert details[2]["held_after"] == 50 and details[0]["id"] == "v1.t1:alice#1"  # tenant t1's book
    assert {(detail["book"], detail["tenant"]) for detail in details} == {("v1.t1", "t1")}

    # Lambda delivers a batch again after a failure: nothing is sent twice.
    assert client.lambda_.invoke("publish_entries", batch).payload == {"sent": 0, "skipped": 5}
    assert received(sqs, queue) == []


def test_a_refused_event_fails_the_batch_after_marking_what_was_sent(client, journal_queue):
    class HalfRefusing:
        def put_events(self, Entries):  # noqa: N803 - botocore's name
            return {"FailedEntryCount": 1, "Entries": [{"EventId": "1"}, {"ErrorCode": "InternalFailure"}]}

    write(client, "/v1/accounts", {"id": "alice", "unit": "USD"})
    write(client, "/v1/postings", {"account_id": "alice", "amount": 5})
    write(client, "/v1/postings", {"account_id": "alice", "amount": 6})
    client.lambda_.invoke("drain_logs", stream_event(AccountModel))
    records = [record for record in stream_event()["Records"]  # alice's two entries, not the system account's
               if record["dynamodb"]["NewImage"]["account"]["S"].endswith(":alice")]
    with pytest.raises(events.PublishFailed):
        events.publish(records, HalfRefusing(), "default")
    # The retry sends only the refused one.
    sqs, queue = journal_queue
    assert events.publish(records, events.client("us-east-1"), "default") == events.Published(sent=1, skipped=1)
    assert [event["detail"]["amount"] for event in received(sqs, queue)] == [6]
