"""SQS calls of the layer: send, dead-letter, delay a redelivery.

Failures become :class:`~sealgate.errors.Unavailable` (retry later) with a fixed message: never a body.
"""

from __future__ import annotations

from typing import Any

from sealgate.errors import PayloadTooLarge, Unavailable

MAX_VISIBILITY_SECONDS = 12 * 3600
#: SQS's default ``MaximumMessageSize`` (the template sets none), less room for the attributes a dead-lettered
#: copy gains. A body under the request limit can exceed it: JSON escapes each non-ASCII character (up to 6x).
MAX_MESSAGE_BYTES = 256 * 1024 - 1024


def send(queue_url: str, body: str, *, delay_seconds: int = 0, **attributes: str) -> str:
    """Send ``body`` with string message ``attributes``; the message id.

    Raises :class:`PayloadTooLarge` when SQS could never take ``body``, :class:`Unavailable` when SQS refuses.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from sealgate.aws_clients import client

    if not queue_url:
        raise Unavailable("queue is not configured")
    if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge("payload is too large to queue")
    arguments: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body}
    if attributes:
        arguments["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        }
    if delay_seconds:
        arguments["DelaySeconds"] = max(0, min(delay_seconds, 900))
    try:
        answer = client("sqs").send_message(**arguments)
    except (ClientError, BotoCoreError):
        raise Unavailable("queue is unavailable") from None
    return str(answer["MessageId"])


def delay(event_source_arn: str, receipt_handle: str, seconds: float) -> bool:
    """Set when SQS may redeliver a received message (a partner's Retry-After); False if SQS refused."""
    from botocore.exceptions import BotoCoreError, ClientError

    from sealgate.aws_clients import client

    try:
        sqs = client("sqs")
        _, _, _, _, account, name = event_source_arn.split(":", 5)
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        sqs.change_message_visibility(
            QueueUrl=url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(int(seconds + 0.999), MAX_VISIBILITY_SECONDS)),
        )
    except (ClientError, BotoCoreError, ValueError):
        return False  # the queue's own visibility timeout applies
    return True
