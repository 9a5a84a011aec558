"""Lambda's SQS event source mapping, locally: long-poll a queue, invoke the function with real batch events.

What one round does, as Lambda's poller does it:

1. ``ReceiveMessage`` (up to ``batch_size``, ``WaitTimeSeconds`` short so stopping is quick), all attributes;
2. one invocation with ``{"Records": [...]}``, each record as Lambda builds it (``messageId``,
   ``receiptHandle``, ``body``, ``attributes`` incl. ``ApproximateReceiveCount``, ``messageAttributes``,
   ``md5OfBody``, ``eventSource``, ``eventSourceARN``, ``awsRegion``);
3. ``DeleteMessage`` for every record that succeeded: all of them when the function returns, except the
   ``batchItemFailures`` when the mapping has ``ReportBatchItemFailures``; none when the function raised or
   timed out.

What is not deleted becomes visible again after the queue's visibility timeout, and the queue's redrive policy
moves it to the dead-letter queue after ``maxReceiveCount`` receives. (The forward function puts messages back
and dead-letters them itself, so with it that is the exception: ``stats.redelivered`` counts the messages
received more than once.) Nothing here retries, delays or dead-letters on its own.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sealgate_local.worker import Invocation

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

InvokeBatch = Callable[[Mapping[str, Any]], Invocation]


@dataclass(frozen=True)
class EventSource:
    """One ``Type: SQS`` event of a function in ``template.yaml``."""

    function: str
    queue_logical_id: str
    batch_size: int
    report_batch_item_failures: bool


def sqs_sources(template: Mapping[str, Any], function_names: Mapping[str, str]) -> list[EventSource]:
    """The SQS event sources of every function (``function_names`` maps logical ids to invoke names)."""
    sources: list[EventSource] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            properties = event.get("Properties") or {}
            queue = properties["Queue"]
            queue_id = (
                queue["Fn::GetAtt"][0] if isinstance(queue, dict) and "Fn::GetAtt" in queue else str(queue)
            )
            sources.append(
                EventSource(
                    function=function_names[logical_id],
                    queue_logical_id=queue_id,
                    batch_size=int(properties.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (properties.get("FunctionResponseTypes") or []),
                )
            )
    return sources


@dataclass
class PollerStats:
    """What the poller has done so far."""

    batches: int = 0
    received: int = 0
    deleted: int = 0
    item_failures: int = 0
    invocation_errors: int = 0
    redelivered: int = 0  # messages received with an ApproximateReceiveCount above 1


class SqsPoller:
    """Polls ``queue_url`` in a background thread until :meth:`stop`."""

    def __init__(
        self,
        sqs: SQSClient,
        *,
        queue_url: str,
        queue_arn: str,
        region: str,
        invoke: InvokeBatch,
        batch_size: int = 10,
        report_batch_item_failures: bool = True,
        wait_seconds: int = 1,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.batch_size = batch_size
        self.report_batch_item_failures = report_batch_item_failures
        self.wait_seconds = wait_seconds
        self.stats = PollerStats()
        self._invoke = invoke
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> SqsPoller:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current round (a receive waits at most ``wait_seconds``)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def poll_once(self) -> int:
        """One round: receive, invoke, delete what succeeded. Returns the number of messages received."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages") or []
        if not messages:
            return 0
        event = {"Records": [self.record(message) for message in messages]}
        invocation = self._invoke(event)
        again = sum(
            1 for m in messages if int((m.get("Attributes") or {}).get("ApproximateReceiveCount", 1)) > 1
        )
        with self._lock:
            self.stats.batches += 1
            self.stats.received += len(messages)
            self.stats.redelivered += again
        if not invocation.ok:
            with self._lock:
                self.stats.invocation_errors += 1
            return len(messages)
        failed: set[str] = set()
        if self.report_batch_item_failures and isinstance(invocation.result, dict):
            failed = {
                str(item.get("itemIdentifier"))
                for item in invocation.result.get("batchItemFailures") or []
                if isinstance(item, dict)
            }
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        with self._lock:
            self.stats.deleted += len(done)
            self.stats.item_failures += len(messages) - len(done)
        return len(messages)

    def record(self, message: MessageTypeDef) -> dict[str, Any]:
        """An SQS message as Lambda hands it to the function."""
        return lambda_record(message, queue_arn=self.queue_arn, region=self.region)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # the queue endpoint went away (stopping), or a transient error: poll again
                if self._stopping.wait(0.5):
                    return


def lambda_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message (as ``ReceiveMessage`` returns it) as Lambda's event source hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: _lambda_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _lambda_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """SQS's ``{"StringValue", "DataType"}`` -> Lambda's ``{"stringValue", "dataType", ...}``."""
    converted: dict[str, Any] = {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": list(value.get("BinaryListValues") or []),
        "dataType": value.get("DataType"),
    }
    if converted["binaryValue"] is not None:
        converted["binaryValue"] = base64.b64encode(converted["binaryValue"]).decode("ascii")
    return {k: v for k, v in converted.items() if v is not None}
