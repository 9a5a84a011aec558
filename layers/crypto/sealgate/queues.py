"""SQS calls of the layer: send (queue, put back with a delay, dead-letter).

Failures become :class:`~sealgate.errors.Unavailable` (retry later) with a fixed message: never a body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sealgate.errors import PayloadTooLarge, Unavailable

MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds
#: SQS's default ``MaximumMessageSize`` (the template sets none), less room for the attributes a dead-lettered
#: copy gains. A body under the request limit can exceed it: JSON escapes each non-ASCII character (up to 6x).
MAX_MESSAGE_BYTES = 256 * 1024 - 1024


def send(
    queue_url: str,
    body: str,
    *,
    delay_seconds: int = 0,
    attributes: Mapping[str, str] | None = None,
    **named: str,
) -> str:
    """Send ``body`` with string message ``attributes`` (and ``named`` ones), hidden for ``delay_seconds`` (up to
    900); the message id.

    Raises :class:`PayloadTooLarge` when SQS could never take ``body``, :class:`Unavailable` when SQS refuses.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from sealgate.aws_clients import client

    if not queue_url:
        raise Unavailable("queue is not configured")
    if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge("payload is too large to queue")
    arguments: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body}
    attributes = {**(attributes or {}), **named}
    if attributes:
        arguments["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        }
    if delay_seconds:
        arguments["DelaySeconds"] = max(0, min(delay_seconds, MAX_DELAY_SECONDS))
    try:
        answer = client("sqs").send_message(**arguments)
    except (ClientError, BotoCoreError):
        raise Unavailable("queue is unavailable") from None
    return str(answer["MessageId"])
