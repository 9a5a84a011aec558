"""Delivery of one outbound SQS message to its partner: protect, sign, send over HTTPS, record the outcome.

Message body: ``{"partner", "operation", "payload", "idempotency_key"?, "id"?}``. Every attempt carries the
idempotency key (the message's own, else its id), so a retry is never a second request without one.

What happens to a message:

- delivered (2xx) -> outcome ``delivered``; acknowledged.
- retryable (408/425/429/5xx, timeout, refused, keys or queue down) -> :class:`RetryLater`: the batch reports
  the item as failed and SQS redelivers it after the visibility timeout (``Retry-After`` shortens or lengthens
  it); after ``maxReceiveCount`` receives SQS moves it to the dead-letter queue, and the outcome says why.
- permanent (malformed message, unknown partner or operation, a payload the scheme refuses, any other partner
  answer) -> outcome ``rejected`` and the message goes to the dead-letter queue with a ``reason`` attribute;
  acknowledged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlencode

from sealgate import audit, metric_names, partner_http, protection, signing, strict_json
from sealgate.errors import BadInput, SealgateError, Unavailable
from sealgate.gateway import Gateway, forward_id
from sealgate.telemetry import count, logger

#: ours are 32 hex digits; the status route takes no longer ids either
MAX_OUTCOME_ID = 64


class RetryLater(Exception):  # a signal to the batch processor, not an error of ours
    """The message should be redelivered later; ``delay`` is the partner's Retry-After, if any."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


@dataclass(frozen=True)
class Message:
    outcome_id: str
    partner: str
    operation: str
    payload: Any
    idempotency_key: str


@dataclass(frozen=True)
class PartnerRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    fields: tuple[str, ...]


def parse_message(body: str, message_id: str) -> Message:
    """The message's JSON; :class:`BadInput` for anything malformed (a permanent failure)."""
    try:
        data = strict_json.loads(body)
    except strict_json.StrictJsonError:
        raise BadInput("message body is not JSON") from None
    if not isinstance(data, dict):
        raise BadInput("message body must be a JSON object")
    partner, operation = data.get("partner"), data.get("operation")
    if not isinstance(partner, str) or not isinstance(operation, str) or "payload" not in data:
        raise BadInput("message needs partner, operation and payload")
    key = signing.check_idempotency_key(data.get("idempotency_key")) or message_id
    outcome_id = data.get("id")
    if not _is_outcome_id(outcome_id):
        outcome_id = forward_id(partner, key)
    return Message(outcome_id, partner, operation, data["payload"], key)


def _is_outcome_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` can be an outcome id (ours are 32 hex digits): a longer one could exceed DynamoDB's
    2048-byte key, and every write of the outcome would fail."""
    return isinstance(value, str) and 0 < len(value) <= MAX_OUTCOME_ID and value.isascii() and value.isalnum()


def build_request(gateway: Gateway, message: Message) -> PartnerRequest:
    """Protect and sign the payload the partner's way; the URL comes only from the profile (or deployment)."""
    profile = gateway.profile(message.partner)
    operation = profile.operations.get(message.operation)
    if operation is None:
        raise BadInput("unknown operation for this partner")
    secret = gateway.secrets.current(message.partner)
    protected = protection.protect(profile, message.payload, secret)
    if profile.body_format == "form":
        if not isinstance(protected.payload, dict):
            raise BadInput("form payload must be an object")
        body = urlencode({k: str(v) for k, v in protected.payload.items()}).encode("ascii")
        content_type = "application/x-www-form-urlencoded"
    else:
        body = protection.canonical_json(protected.payload)
        content_type = "application/json"
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if profile.signing is not None:
        headers.update(
            signing.request_headers(profile, secret, body, idempotency_key=message.idempotency_key)
        )
    else:
        headers[profile.idempotency_header] = message.idempotency_key
    url = gateway.settings.base_url(profile.name, profile.base_url) + operation.path
    return PartnerRequest(operation.method, url, headers, body, protected.fields)


@dataclass(frozen=True)
class Delivery:
    """One SQS record on its way to a partner."""

    gateway: Gateway
    body: str
    message_id: str
    receive_count: int = 1
    request_id: str | None = None

    def run(self, lambda_context: Any = None) -> str:
        """Deliver once; returns the final status, raises :class:`RetryLater` to have it redelivered.

        Powertools Idempotency (DynamoDB) makes the send happen once per (partner, idempotency key): a duplicate
        of a delivered or rejected message gets the stored status without a second request, and a duplicate
        that arrives while the first is in flight is retried later.
        """
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
        )

        try:
            message = parse_message(self.body, self.message_id)
        except SealgateError as error:
            _dead_letter(self.gateway, self.body, self.message_id, error.code)
            self._audit(None, "refused", error.code)
            count(metric_names.FORWARD_FAILED)
            return "rejected"
        once, config = _send_once(self.gateway)
        if lambda_context is not None:
            config.register_lambda_context(lambda_context)
        try:
            return str(
                once(
                    message={"partner": message.partner, "idempotency_key": message.idempotency_key},
                    delivery=self,
                )
            )
        except IdempotencyAlreadyInProgressError:
            raise RetryLater("in_flight") from None
        except IdempotencyPersistenceLayerError:
            raise RetryLater("idempotency_store_unavailable") from None

    def send(self) -> str:
        """Protect, sign, send; classify the answer (see the module docstring)."""
        message = parse_message(self.body, self.message_id)
        settings = self.gateway.settings
        try:
            request = build_request(self.gateway, message)
            response = partner_http.send(
                request.method,
                request.url,
                headers=request.headers,
                body=request.body,
                timeout=settings.forward_timeout,
                ca_bundle=settings.ca_bundle,
            )
        except Unavailable as error:  # keys, partner or network down: try again later
            return self._retry(message, error.code, None, counted=False)
        except (
            SealgateError
        ) as error:  # a payload the scheme refuses, or a bad configured URL: never succeeds
            return self._reject(message, error.code, counted=False)
        return self._settle(message, request, response)

    def _settle(
        self, message: Message, request: PartnerRequest, response: partner_http.PartnerResponse
    ) -> str:
        record: dict[str, Any] = {
            "partner": message.partner,
            "operation": message.operation,
            "idempotency_key": message.idempotency_key,
            "partner_status": response.status,
            "response_md5": hashlib.md5(response.body, usedforsecurity=False).hexdigest(),
        }
        if self.gateway.profile(message.partner).store_response_body:
            record["response_body"] = response.body.decode("utf-8", "replace")
        if 200 <= response.status < 300:
            record.update(status="delivered", last_reason="ok")
            self.gateway.outcomes.update(message.outcome_id, record, count_attempt=True)
            count(metric_names.FORWARD_DELIVERED)
            self._audit(message.partner, "ok", "ok", response.status, request.fields)
            return "delivered"
        self.gateway.outcomes.update(message.outcome_id, record, count_attempt=True)
        reason = f"partner_http_{response.status}"
        if partner_http.is_retryable(response.status):
            return self._retry(message, reason, partner_http.retry_after(response.headers), counted=True)
        return self._reject(message, reason, counted=True)

    def _retry(self, message: Message, reason: str, delay: float | None, *, counted: bool) -> str:
        count(metric_names.FORWARD_FAILED)
        last = self.receive_count >= self.gateway.settings.max_receive_count
        values = {"status": "dead_lettered" if last else "retrying", "last_reason": reason}
        self.gateway.outcomes.update(message.outcome_id, values, count_attempt=not counted)
        self._audit(message.partner, "failed" if last else "retry", reason)
        raise RetryLater(reason, delay)

    def _reject(self, message: Message, reason: str, *, counted: bool) -> str:
        count(metric_names.FORWARD_FAILED)
        _dead_letter(self.gateway, self.body, self.message_id, reason)
        values = {"status": "rejected", "last_reason": reason, "partner": message.partner}
        self.gateway.outcomes.update(message.outcome_id, values, count_attempt=not counted)
        self._audit(message.partner, "failed", reason)
        return "rejected"

    def _audit(
        self,
        partner: str | None,
        outcome: audit.Outcome,
        reason: str,
        status: int | None = None,
        fields: tuple[str, ...] = (),
    ) -> None:
        audit.record(
            action="forward.deliver",
            partner=self.gateway.served(partner),
            outcome=outcome,
            reason=reason,
            request_id=self.request_id,
            caller=self.message_id,
            fields=fields,
            status=status,
        )


def _send_once(gateway: Gateway) -> tuple[Any, Any]:
    """The gateway's idempotent sender and its config (built once: they hold the persistence layer)."""
    if gateway.idempotent_sender is not None:
        return gateway.idempotent_sender  # type: ignore[no-any-return]
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from sealgate.aws_clients import client

    config = IdempotencyConfig(
        event_key_jmespath="[partner, idempotency_key]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=24 * 3600,
    )
    store = DynamoDBPersistenceLayer(
        table_name=gateway.settings.idempotency_table, boto3_client=client("dynamodb")
    )

    @idempotent_function(data_keyword_argument="message", config=config, persistence_store=store)  # type: ignore[untyped-decorator]
    def send(message: dict[str, Any], delivery: Delivery) -> str:
        # Powertools deep-copies ``message`` (the idempotency key's source): it must stay plain JSON data,
        # so the delivery (gateway, boto3 clients, locks) travels as a separate argument.
        return delivery.send()

    gateway.idempotent_sender = (send, config)
    return send, config


def _dead_letter(gateway: Gateway, body: str, message_id: str, reason: str) -> None:
    """Move a message that can never succeed to the dead-letter queue, with its reason as an attribute."""
    from botocore.exceptions import BotoCoreError, ClientError

    from sealgate.aws_clients import client

    if not gateway.settings.outbound_dlq_url:
        raise RetryLater("dead_letter_queue_unconfigured")
    try:
        client("sqs").send_message(
            QueueUrl=gateway.settings.outbound_dlq_url,
            MessageBody=body,
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason},
                "original_message_id": {"DataType": "String", "StringValue": message_id},
            },
        )
    except (ClientError, BotoCoreError):
        raise RetryLater("dead_letter_queue_unavailable") from None


def process_batch(gateway: Gateway, event: Mapping[str, Any], lambda_context: Any) -> dict[str, Any]:
    """Deliver an SQS batch; failed items are reported (``batchItemFailures``), never the whole batch."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    gateway.report_key_failures()
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    request_id = getattr(lambda_context, "aws_request_id", None)

    def handle(record: SQSRecord) -> str:
        # A batch of slow partners must not outlive the function: what cannot finish in time goes back.
        remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
        if (
            remaining is not None
            and remaining() < (gateway.settings.forward_timeout + DEADLINE_MARGIN) * 1000
        ):
            raise RetryLater("deadline")
        receive_count = int(record.attributes.approximate_receive_count or 1)
        try:
            delivery = Delivery(gateway, record.body, record.message_id, receive_count, request_id)
            return delivery.run(lambda_context)
        except RetryLater as retry:
            if retry.delay is not None:
                _delay(record, retry.delay)
            raise
        except (
            Exception
        ) as error:  # a bug: still a batch item failure (retried, then dead-lettered), but seen
            logger.error("delivery failed unexpectedly", error_type=type(error).__name__)
            audit.record(
                action="forward.deliver",
                partner=None,
                outcome="failed",
                reason="internal_error",
                request_id=request_id,
                caller=record.message_id,
            )
            raise

    answer = process_partial_response(
        event=dict(event), record_handler=handle, processor=processor, context=lambda_context
    )
    return dict(answer)


MAX_VISIBILITY_SECONDS = 12 * 3600
DEADLINE_MARGIN = 3.0  # seconds kept for recording the outcome and answering SQS


def _delay(record: Any, seconds: float) -> None:
    """Honour a partner's Retry-After by setting when SQS may redeliver this message."""
    from botocore.exceptions import BotoCoreError, ClientError

    from sealgate.aws_clients import client

    queue_url = _queue_url(record.event_source_arn)
    try:
        client("sqs").change_message_visibility(
            QueueUrl=queue_url,
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=max(0, min(int(seconds + 0.999), MAX_VISIBILITY_SECONDS)),
        )
    except (ClientError, BotoCoreError):
        return  # the queue's own visibility timeout applies


def _queue_url(arn: str) -> str:
    """``arn:aws:sqs:<region>:<account>:<name>`` -> the queue URL (asked of SQS: endpoints vary)."""
    from sealgate.aws_clients import client

    _, _, _, _, account, name = arn.split(":", 5)
    return str(client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])
