"""The local SQS event source mapping: record shape, and which messages it deletes (moto in-process)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sealgate_local.aws_stack import load_template
from sealgate_local.sqs_poller import SqsPoller, sqs_sources
from sealgate_local.worker import Invocation


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def make_poller(
    sqs: Any, answer: Callable[[Mapping[str, Any]], Invocation], *, report: bool = True
) -> tuple[SqsPoller, list[Mapping[str, Any]]]:
    url = sqs.create_queue(QueueName="outbound")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events: list[Mapping[str, Any]] = []

    def invoke(event: Mapping[str, Any]) -> Invocation:
        events.append(event)
        return answer(event)

    poller = SqsPoller(
        sqs,
        queue_url=url,
        queue_arn=arn,
        region="us-east-1",
        invoke=invoke,
        report_batch_item_failures=report,
    )
    return poller, events


def depth(sqs: Any, poller: SqsPoller) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=poller.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def fail_second(event: Mapping[str, Any]) -> Invocation:
    """The function reports the record with body ``{"n": 1}`` as failed."""
    failed = [r["messageId"] for r in event["Records"] if json.loads(r["body"]) == {"n": 1}]
    return Invocation(ok=True, result={"batchItemFailures": [{"itemIdentifier": i} for i in failed]})


def send(sqs: Any, poller: SqsPoller, count: int) -> list[str]:
    return [
        sqs.send_message(
            QueueUrl=poller.queue_url,
            MessageBody=json.dumps({"n": n}),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": "test"}},
        )["MessageId"]
        for n in range(count)
    ]


def test_records_are_shaped_as_lambda_hands_them_over(sqs: Any) -> None:
    poller, events = make_poller(sqs, lambda event: Invocation(ok=True, result={"batchItemFailures": []}))
    (message_id,) = send(sqs, poller, 1)

    assert poller.poll_once() == 1
    (record,) = events[0]["Records"]
    assert record["messageId"] == message_id
    assert json.loads(record["body"]) == {"n": 0}
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["reason"] == {
        "stringValue": "test",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == poller.queue_arn
    assert record["awsRegion"] == "us-east-1"
    assert record["receiptHandle"]
    assert record["md5OfBody"]


def test_only_the_records_not_reported_as_failures_are_deleted(sqs: Any) -> None:
    poller, _ = make_poller(sqs, fail_second)
    send(sqs, poller, 3)

    assert poller.poll_once() == 3
    assert depth(sqs, poller) == (0, 1)  # the failed one waits for its visibility timeout
    assert (poller.stats.deleted, poller.stats.item_failures) == (2, 1)


def test_a_function_error_deletes_nothing(sqs: Any) -> None:
    poller, _ = make_poller(sqs, lambda event: Invocation(ok=False, error_type="TimedOut"))
    send(sqs, poller, 2)

    poller.poll_once()
    assert depth(sqs, poller) == (0, 2)
    assert poller.stats.invocation_errors == 1


def test_without_report_batch_item_failures_a_returning_function_acknowledges_all(sqs: Any) -> None:
    poller, _ = make_poller(sqs, fail_second, report=False)
    send(sqs, poller, 2)

    poller.poll_once()
    assert depth(sqs, poller) == (0, 0)


def test_event_sources_come_from_the_template() -> None:
    sources = sqs_sources(
        load_template(), {"ForwardFunction": "forward", "EncryptFunction": "encrypt", "SignFunction": "sign"}
    )

    assert [
        (s.function, s.queue_logical_id, s.batch_size, s.report_batch_item_failures) for s in sources
    ] == [("forward", "OutboundQueue", 10, True)]
