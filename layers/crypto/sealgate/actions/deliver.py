"""The outbound queue's trigger: deliver each message to its partner, reporting partial batch failures.

A record is read once and goes one way:

- **protected** message -> serialise the protected payload the partner's way (JSON or form), sign it (signing
  depends on the send time), send it once (Powertools Idempotency on partner and idempotency key; every attempt
  carries the key), classify the answer:

  - 2xx -> ``delivered``;
  - 408/425/429/5xx, timeouts, resets, keys or partner unavailable -> ``retrying`` and the record fails (SQS
    redelivers it; a ``Retry-After`` sets the delay); on the queue's last receive the outcome says
    ``dead_lettered`` and SQS moves the (protected) message to the dead-letter queue;
  - anything else (unknown partner or operation, a payload the scheme refuses, a key rotated beyond recovery,
    any other partner answer) -> ``rejected``: dead-lettered at once with a ``reason`` attribute.

- **plain** message (a producer wrote to the queue directly) -> protected now and queued again in protected
  form; one that cannot be protected is dead-lettered as metadata only (the payload is dropped, never kept).

A message protected before its partner's key was rotated is matched to its key version: sent as it is when the
protection keys did not change, re-protected in memory with the current keys when the scheme is symmetric,
otherwise dead-lettered as ``key_rotated`` (the producer resubmits it).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sealgate import audit, idempotency, metric_names, outbound, partner_http, queues
from sealgate.errors import (
    BadInput,
    InProgress,
    KeyRotated,
    SealgateError,
    Unavailable,
)
from sealgate.layouts.wrap import canonical_json
from sealgate.partners import Profile
from sealgate.runtime import Runtime
from sealgate.telemetry import count, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

DEADLINE_MARGIN = 3.0  # seconds kept for recording the outcome and answering SQS
# Records delivered at once: a whole SQS batch (BatchSize 10), and as many keep-alive connections as
# partner_http pools per host.
MAX_WORKERS = 10


class RetryLater(Exception):  # a signal to the batch processor, not an error of ours
    """The message should be redelivered later; ``delay`` is the partner's Retry-After, if any."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


@dataclass(frozen=True)
class PartnerRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    fields: tuple[str, ...]


def request_for(runtime: Runtime, profile: Profile, message: outbound.Protected) -> PartnerRequest:
    """The request to send: the protected payload for the current key, serialised and signed now. The URL
    comes only from the profile (or the deployment)."""
    operation = profile.operation(message.operation)
    secret = runtime.secrets.current(profile.name)
    payload = _for_current_key(runtime, profile, message, secret)
    if profile.body_format == "form":
        if not isinstance(payload, dict):
            raise BadInput("form payload must be an object")
        body = urlencode({k: str(v) for k, v in payload.items()}).encode("ascii")
        content_type = "application/x-www-form-urlencoded"
    else:
        body = canonical_json(payload)
        content_type = "application/json"
    signed = profile.request_headers(secret, body, idempotency_key=message.idempotency_key)
    headers = {"Content-Type": content_type, "Accept": "application/json", **signed.all()}
    url = runtime.settings.base_url(profile.name, profile.base_url) + operation.path
    return PartnerRequest(operation.method, url, headers, body, message.fields)


def _for_current_key(runtime: Runtime, profile: Profile, message: outbound.Protected, current: Any) -> Any:
    """The protected payload as the partner's current key expects it (see the module docstring)."""
    if message.key_version is None or message.key_version == current.version_id:
        return message.protected
    protection = profile.protection
    then = runtime.secrets.by_version(profile.name, message.key_version)
    if then is None:
        raise KeyRotated()
    if protection.same_keys(then, current):
        return message.protected
    if not protection.symmetric:
        raise KeyRotated()
    plain, _ = protection.reveal(message.protected, then)
    return protection.protect(plain, current).payload


@dataclass
class Delivery:
    """One SQS record on its way to a partner."""

    runtime: Runtime
    body: str
    message_id: str
    receive_count: int = 1
    request_id: str | None = None
    token: str = ""
    message: outbound.Protected | None = field(default=None, repr=False)

    @property
    def last_receive(self) -> bool:
        return self.receive_count >= self.runtime.settings.max_receive_count

    def run(self, lambda_context: Any = None) -> str:
        """Deliver once; returns the final status, raises :class:`RetryLater` to have it redelivered."""
        try:
            message = outbound.parse(self.body, self.message_id)
            profile = self.runtime.profile(message.partner)
            profile.operation(message.operation)
        except SealgateError as error:
            self._dead_letter_metadata(error.code)
            self._audit(None, "refused", error.code)
            count(metric_names.FORWARD_FAILED)
            return "rejected"
        if isinstance(message, outbound.Plain):
            return self._protect_and_requeue(profile, message)
        self.message = message
        once = self.runtime.once(
            "deliver",
            lambda: idempotency.build(
                self.runtime.settings.idempotency_table,
                "deliver_forward",
                Delivery._send_once,
                expires_after_seconds=24 * 3600,
            ),
        )
        try:
            result, _ = idempotency.run_once(
                once,
                {"partner": message.partner, "idempotency_key": message.idempotency_key},
                self,
                lambda_context,
            )
        except InProgress:
            raise RetryLater("in_flight") from None
        except Unavailable:
            raise RetryLater("idempotency_store_unavailable") from None
        return str(result["status"])

    def _send_once(self) -> dict[str, Any]:
        return {"status": self._send(), "token": self.token}

    def _send(self) -> str:
        """Sign and send; classify the answer (see the module docstring)."""
        message = self.message
        assert message is not None
        settings = self.runtime.settings
        profile = self.runtime.profile(message.partner)
        try:
            request = request_for(self.runtime, profile, message)
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
        ) as error:  # a payload the scheme refuses, a rotated key, a bad URL: never succeeds
            return self._reject(message, error.code, counted=False)
        return self._settle(profile, message, request, response)

    def _settle(
        self,
        profile: Profile,
        message: outbound.Protected,
        request: PartnerRequest,
        response: partner_http.PartnerResponse,
    ) -> str:
        record: dict[str, Any] = {
            "partner": message.partner,
            "operation": message.operation,
            "idempotency_key": message.idempotency_key,
            "partner_status": response.status,
            "response_md5": hashlib.md5(response.body, usedforsecurity=False).hexdigest(),
        }
        if profile.store_response_body:
            record["response_body"] = response.body.decode("utf-8", "replace")
        if 200 <= response.status < 300:
            record.update(status="delivered", last_reason="ok")
            reason = "ok"
            try:
                self.runtime.outcomes.update(message.outcome_id, record, count_attempt=True)
            except Unavailable:
                # The partner has it: raising now would make the delivery a failure, and its retry a second
                # request. The outcome item stays behind ("queued"/"retrying"); the audit record says so.
                reason = "outcome_unrecorded"
            count(metric_names.FORWARD_DELIVERED)
            self._audit(message.partner, "ok", reason, response.status, request.fields)
            return "delivered"
        self.runtime.outcomes.update(message.outcome_id, record, count_attempt=True)
        reason = f"partner_http_{response.status}"
        if partner_http.is_retryable(response.status):
            return self._retry(message, reason, partner_http.retry_after(response.headers), counted=True)
        return self._reject(message, reason, counted=True)

    def _retry(self, message: outbound.Protected, reason: str, delay: float | None, *, counted: bool) -> str:
        count(metric_names.FORWARD_FAILED)
        values = {"status": "dead_lettered" if self.last_receive else "retrying", "last_reason": reason}
        self.runtime.outcomes.update(message.outcome_id, values, count_attempt=not counted)
        self._audit(message.partner, "failed" if self.last_receive else "retry", reason)
        raise RetryLater(reason, delay)

    def _reject(self, message: outbound.Protected, reason: str, *, counted: bool) -> str:
        count(metric_names.FORWARD_FAILED)
        self._dead_letter(self.body, reason)  # the protected form only: nothing in the clear
        values = {"status": "rejected", "last_reason": reason, "partner": message.partner}
        self.runtime.outcomes.update(message.outcome_id, values, count_attempt=not counted)
        self._audit(message.partner, "failed", reason)
        return "rejected"

    def _protect_and_requeue(self, profile: Profile, message: outbound.Plain) -> str:
        """A producer's plain message: protect it and queue the protected form in its place."""
        try:
            secret = self.runtime.secrets.current(profile.name)
            protected = profile.protection.protect(message.payload, secret)
            replacement = outbound.Protected(
                message.outcome_id,
                message.partner,
                message.operation,
                message.idempotency_key,
                protected.payload,
                secret.version_id,
                protected.fields,
            )
            body = replacement.body()
            self.runtime.outcomes.record_queued(
                message.outcome_id, message.partner, message.operation, message.idempotency_key
            )
            queues.send(self.runtime.settings.outbound_queue_url, body)
        except Unavailable as error:
            if not self.last_receive:
                self._audit(message.partner, "retry", error.code)
                raise RetryLater(error.code) from None
            reason = error.code  # SQS would move the plain message to the dead-letter queue: drop its payload
        except SealgateError as error:
            reason = error.code
        else:
            self._audit(message.partner, "queued", "protected", fields=protected.fields)
            return "requeued"
        count(metric_names.FORWARD_FAILED)
        self._dead_letter_metadata(reason)
        self._audit(message.partner, "failed", reason)
        return "rejected"

    def _dead_letter_metadata(self, reason: str) -> None:
        """Dead-letter what can be said of the message without its payload (it may hold plaintext)."""
        facts = outbound.metadata(self.body)
        partner = self.runtime.served(facts.partner)
        operation = (
            facts.operation
            if partner and facts.operation in self.runtime.profile(partner).operations
            else None
        )
        body = {
            "partner": partner,
            "operation": operation,
            "idempotency_key": facts.idempotency_key,
            "payload": "dropped: the message was not in protected form",
        }
        self._dead_letter(json.dumps(body, separators=(",", ":")), reason)

    def _dead_letter(self, body: str, reason: str) -> None:
        settings = self.runtime.settings
        if not settings.outbound_dlq_url:
            raise RetryLater("dead_letter_queue_unconfigured")
        try:
            queues.send(settings.outbound_dlq_url, body, reason=reason, original_message_id=self.message_id)
        except Unavailable:
            raise RetryLater("dead_letter_queue_unavailable") from None

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
            partner=self.runtime.served(partner),
            outcome=outcome,
            reason=reason,
            request_id=self.request_id,
            caller=self.message_id,
            fields=fields,
            status=status,
        )


_Settled = tuple[str, Exception | None]  # (the record's status, or the exception that failed it)


def process_batch(runtime: Runtime, event: Mapping[str, Any], lambda_context: Any) -> dict[str, Any]:
    """Deliver an SQS batch; failed items are reported (``batchItemFailures``), never the whole batch.

    The records are delivered concurrently (up to :data:`MAX_WORKERS` at a time), so that a batch takes about
    as long as its slowest record and a hanging partner holds up none of the others. Copies of one message
    (same partner and idempotency key) go one after another in one worker, as they did in a sequential
    batch: the second finds the first delivered rather than in flight. Powertools' ``BatchProcessor`` then
    reports each record's settled result or exception, so the partial-batch contract is Powertools' own.
    (Its ``AsyncBatchProcessor`` wants coroutines: every call here blocks on boto3 or urllib3, so it would
    only hop from an event loop to threads.)
    """
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    request_id = getattr(lambda_context, "aws_request_id", None)

    def deliver(record: SQSRecord) -> str:
        # A batch of slow partners must not outlive the function: what cannot finish in time goes back.
        remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
        if (
            remaining is not None
            and remaining() < (runtime.settings.forward_timeout + DEADLINE_MARGIN) * 1000
        ):
            raise RetryLater("deadline")
        receive_count = int(record.attributes.approximate_receive_count or 1)
        try:
            delivery = Delivery(runtime, record.body, record.message_id, receive_count, request_id)
            return delivery.run(lambda_context)
        except RetryLater as retry:
            if retry.delay is not None:
                queues.delay(record.event_source_arn, record.receipt_handle, retry.delay)
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

    # Settled outcomes by the identity of the record's dict: Powertools hands the same dicts to ``settled``
    # below (a message id may occur twice in a batch; a dict is one record).
    outcomes: dict[int, _Settled] = {}
    raw_records = event.get("Records")  # a malformed event or record is left to Powertools to refuse
    records = (
        [SQSRecord(raw) for raw in raw_records if isinstance(raw, dict)]
        if isinstance(raw_records, list)
        else []
    )
    groups = _by_message(records)
    if len(groups) == 1:
        outcomes.update(_settle_all(deliver, groups[0]))
    elif groups:
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(groups))) as pool:
            # Each worker runs in a copy of this thread's context (contextvars), as the records did inline.
            futures = [pool.submit(contextvars.copy_context().run, _settle_all, deliver, g) for g in groups]
            for future in futures:
                outcomes.update(future.result())

    def settled(record: SQSRecord) -> str:
        result, error = outcomes[id(record.raw_event)]
        if error is not None:
            raise error
        return result

    answer = process_partial_response(
        event=dict(event), record_handler=settled, processor=processor, context=lambda_context
    )
    return dict(answer)


def _settle_all(deliver: Callable[[SQSRecord], str], records: Sequence[SQSRecord]) -> dict[int, _Settled]:
    """Deliver ``records`` one after another; each one's outcome, by the identity of its dict."""
    outcomes: dict[int, _Settled] = {}
    for record in records:
        try:
            outcomes[id(record.raw_event)] = (deliver(record), None)
        except Exception as error:  # reported for this record only, by the batch processor
            outcomes[id(record.raw_event)] = ("", error)
    return outcomes


def _by_message(records: Sequence[SQSRecord]) -> list[list[SQSRecord]]:
    """The records in groups to deliver concurrently: copies of one message (partner and idempotency key)
    share a group, in batch order; a record that names neither is a group of its own."""
    groups: dict[object, list[SQSRecord]] = {}
    for index, record in enumerate(records):
        facts = outbound.metadata(record.body or "")
        key: object = (
            (facts.partner, facts.idempotency_key)
            if facts.partner is not None and facts.idempotency_key is not None
            else index
        )
        groups.setdefault(key, []).append(record)
    return list(groups.values())
