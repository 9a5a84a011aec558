"""Redrive the outbound dead-letter queue into the outbound queue, locally: what SQS's message move task does.

Deployed, the operator runs (the destination must be given: the gateway dead-letters with ``SendMessage``, so
SQS knows no source queue for those messages)::

    aws sqs start-message-move-task --source-arn <OutboundDeadLetterQueue ARN> \\
        --destination-arn <OutboundQueue ARN>

moto implements no message move task, so :func:`redrive` does the same with the plain calls: receive a batch
from the dead-letter queue, send each message to the destination with its body and message attributes
unchanged, and delete it from the dead-letter queue only once it is sent (a message is never lost; at worst,
if the delete fails, it is moved twice, and the gateway delivers a message once however often it is queued).
The moved messages carry the ``reason`` the gateway dead-lettered them with and none of its counts, so the
gateway tries each afresh (see :mod:`sealgate.actions.deliver`).

``python -m sealgate_local redrive --endpoint-url <the local stack's AWS endpoint>`` runs it against a local
stack started by ``make run`` (it prints the endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: How long a received message stays hidden while it is moved; one left behind comes back after this.
MOVE_VISIBILITY = 30


@dataclass
class Moved:
    """What a redrive moved: how many messages, and how many per dead-letter ``reason``."""

    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def redrive(sqs: SQSClient, *, source_url: str, destination_url: str, limit: int | None = None) -> Moved:
    """Move every message of ``source_url`` (up to ``limit``) to ``destination_url``, as they are."""
    moved = Moved()
    while limit is None or moved.count < limit:
        wanted = 10 if limit is None else min(10, limit - moved.count)
        answer = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=wanted,
            MessageAttributeNames=["All"],
            VisibilityTimeout=MOVE_VISIBILITY,
            WaitTimeSeconds=0,
        )
        messages = answer.get("Messages") or []
        if not messages:
            return moved
        for message in messages:
            attributes = dict(message.get("MessageAttributes") or {})
            arguments: dict[str, Any] = {"QueueUrl": destination_url, "MessageBody": message.get("Body", "")}
            if attributes:
                arguments["MessageAttributes"] = {
                    name: _attribute(value) for name, value in attributes.items()
                }
            sqs.send_message(**arguments)
            sqs.delete_message(QueueUrl=source_url, ReceiptHandle=message["ReceiptHandle"])
            marked = attributes.get("reason")
            reason = str(marked.get("StringValue") or "unknown") if marked else "unknown"
            moved.reasons[reason] = moved.reasons.get(reason, 0) + 1
            moved.count += 1
    return moved


def _attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """A received message attribute as ``SendMessage`` takes it (the same type and value)."""
    return {
        key: value[key]
        for key in ("DataType", "StringValue", "BinaryValue", "StringListValues", "BinaryListValues")
        if value.get(key) not in (None, [])
    }


def main(*, endpoint_url: str, stage: str, region: str, limit: int | None) -> int:
    """``python -m sealgate_local redrive``: move the local outbound dead letters back; prints what moved."""
    import boto3

    from sealgate_local.stack import DUMMY_CREDENTIALS

    session = boto3.session.Session(
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    prefix = f"sealgate-{stage}"
    source = sqs.get_queue_url(QueueName=f"{prefix}-OutboundDeadLetterQueue")["QueueUrl"]
    destination = sqs.get_queue_url(QueueName=f"{prefix}-OutboundQueue")["QueueUrl"]
    moved = redrive(sqs, source_url=source, destination_url=destination, limit=limit)
    by_reason = ", ".join(f"{reason} {n}" for reason, n in sorted(moved.reasons.items())) or "none"
    print(
        f"Moved {moved.count} message(s) from the outbound dead-letter queue to the outbound queue ({by_reason})."
    )
    return 0
