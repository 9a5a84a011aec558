"""The outbound queue's trigger: deliver each message to its partner, once, and decide its fate here.

A record is read once and goes one way:

- **protected** message -> serialise the protected payload the partner's way (JSON or form), sign it (signing
  depends on the send time) and send it, inside Powertools Idempotency on (partner, idempotency key); every
  attempt carries the key. Only a delivery completes the idempotency record (kept as long as the outcome):
  anything else raises inside the idempotent function, so Powertools deletes the record and a later try, a
  redrive included, runs again. Before sending, the outcome item is read: one that says ``delivered`` is never
  sent again (a copy redriven after the idempotency record is gone). The partner's answer decides:

  - 2xx -> ``delivered``, the record succeeds;
  - 408/425/429/5xx, a timeout, a reset -> a real attempt that failed: put back (below) with its attempt
    counted, after a jittered backoff that grows with the attempts (at least the partner's ``Retry-After``);
    after ``max_attempts`` attempts it is dead-lettered with the last reason (``dead_lettered``);
  - anything else (unknown partner or operation, a payload the scheme refuses, a key rotated beyond recovery,
    any other partner answer) -> ``rejected``: dead-lettered at once with a ``reason`` attribute.

  Nothing is sent when the keys, the idempotency or outcome store, or the partner's address (connection
  refused, DNS) are unavailable, when a copy of the message is being sent right now, or when the batch is
  running out of time: then the message is put back untried (``waiting``) without counting an attempt, after
  a backoff that grows with the waits, and dead-lettered as ``waited_too_long`` only once it has waited
  ``max_wait_seconds`` since it was queued.

- **plain** message (a producer wrote to the queue directly) -> protected now and queued again in protected
  form; one that cannot be protected is dead-lettered as metadata only (the payload is dropped, never kept),
  and such a dead letter, redriven, is dead-lettered again (``payload_dropped``): there is nothing to send.

**Put back** means: send the same body again, with its message attributes, the updated counts
(``sealgate-attempts``: requests the partner was sent; ``sealgate-waits``: untried put-backs;
``sealgate-queued-at``: when it was first queued, epoch seconds) and ``DelaySeconds`` (at most SQS's 900), then
let the received record succeed, so that waiting never spends the queue's receives. Only when that send fails
does the record fail (a batch item failure): SQS redelivers it after the visibility timeout, and the queue's
``maxReceiveCount`` stays the backstop for a gateway that cannot send at all. The outcome item says why a
message waits: ``status`` (``retrying`` or ``waiting``), ``last_reason``, ``attempts`` (requests the partner
was sent, over every redrive), ``waits`` and ``next_attempt_at``.

A dead-lettered copy carries ``reason``, ``original_message_id`` and ``attempts`` attributes but none of the
counts: redriven to the outbound queue, it starts afresh (a deliberate redrive gets its full attempts).

A message protected before its partner's key was rotated is matched to its key version: sent as it is when the
protection keys did not change, re-protected in memory with the current keys when the scheme is symmetric,
otherwise dead-lettered as ``key_rotated`` (the producer resubmits it).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from sealgate import audit, idempotency, metric_names, outbound, partner_http, queues
from sealgate.errors import (
    BadInput,
    InProgress,
    KeyRotated,
    NotFound,
    PartnerUnreachable,
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
MAX_DELAY_SECONDS = queues.MAX_DELAY_SECONDS

#: The counts a message carries from one try to the next (message attributes).
ATTEMPTS = "sealgate-attempts"
WAITS = "sealgate-waits"
QUEUED_AT = "sealgate-queued-at"
#: What a dead-lettered copy gains; dropped again when a redriven message is put back.
DEAD_LETTER_ATTRIBUTES = frozenset({"reason", "original_message_id", "attempts"})
MAX_MESSAGE_ATTRIBUTES = 10  # SQS's limit per message
#: The payload of a plain message dead-lettered as metadata: redriven, it is dead-lettered again, never sent.
DROPPED = "dropped: the message was not in protected form"
#: PartnerUnreachable messages that say the request never left: nothing reached the partner.
_NOT_SENT = {"refused": "partner_refused", "dns": "partner_dns"}


class PutBackFailed(Exception):  # a signal to the batch processor, not an error of ours
    """The message could be neither put back nor dead-lettered: the record fails and SQS redelivers it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Tally:
    """What a message carries between tries: requests sent, untried put-backs, when it was first queued."""

    attempts: int = 0
    waits: int = 0
    queued_at: float = 0.0

    @classmethod
    def of(cls, attributes: Mapping[str, str], sent_at: float, now: float) -> Tally:
        """From a record's message attributes; a message without counts (queued by the API, or redriven from
        the dead-letter queue) starts afresh, queued when SQS got it (a redriven one: now)."""

        def number(name: str) -> float | None:
            try:
                value = float(attributes.get(name, ""))
            except ValueError:
                return None
            return value if math.isfinite(value) and value >= 0 else None

        queued_at = number(QUEUED_AT)
        if queued_at is None:
            queued_at = now if "reason" in attributes or not sent_at else sent_at
        return cls(int(number(ATTEMPTS) or 0), int(number(WAITS) or 0), min(queued_at, now))

    def attributes(self) -> dict[str, str]:
        return {
            ATTEMPTS: str(self.attempts),
            WAITS: str(self.waits),
            QUEUED_AT: f"{self.queued_at:.3f}",
        }


def backoff(n: int, base: float, cap: float) -> int:
    """Seconds before the ``n``-th retry (from 1): ``base * 2**(n-1)`` up to ``cap``, with equal jitter (a
    uniform draw from the upper half), in whole seconds as SQS delays are."""
    if base <= 0 or n <= 0:
        return 0
    doubled: float = base * float(2 ** min(n - 1, 30))
    ceiling = max(1, math.ceil(min(cap, doubled, MAX_DELAY_SECONDS)))
    low = math.ceil(ceiling / 2)
    return low + secrets.randbelow(ceiling - low + 1)  # jitter, not a secret: any uniform source would do


Kind = Literal["delivered", "rejected", "retry", "wait"]


@dataclass(frozen=True)
class Verdict:
    """How one try ended. ``sent``: a request reached (or may have reached) the partner: an attempt."""

    kind: Kind
    reason: str
    sent: bool = False
    retry_after: float | None = None
    grow: bool = True  # a wait that grows the backoff (the batch deadline does not)
    answer: Mapping[str, Any] = field(default_factory=dict)  # outcome fields of the partner's answer


class _NotDelivered(Exception):
    """Raised inside the idempotent send for anything but a delivery: Powertools then deletes its in-progress
    record instead of completing it, so a later try (a redrive) is not answered from it."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


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


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Delivery:
    """One SQS record on its way to a partner."""

    runtime: Runtime
    body: str
    message_id: str
    tally: Tally = field(default_factory=Tally)
    attributes: Mapping[str, str] = field(default_factory=dict)
    request_id: str | None = None
    token: str = ""
    message: outbound.Message | None = field(default=None, repr=False)
    verdict: Verdict | None = None

    @classmethod
    def of(cls, runtime: Runtime, record: SQSRecord, request_id: str | None) -> Delivery:
        """The delivery of ``record``: its body, its string message attributes and the counts they hold."""
        raw = record.raw_event
        given = raw.get("messageAttributes")
        attributes = {
            str(name): value["stringValue"]
            for name, value in (given.items() if isinstance(given, dict) else ())
            if isinstance(value, dict)
            and isinstance(value.get("stringValue"), str)
            and not str(value.get("dataType") or "").startswith("Binary")
        }
        system = raw.get("attributes")
        try:
            sent_at = int((system if isinstance(system, dict) else {}).get("SentTimestamp") or 0) / 1000
        except (TypeError, ValueError):
            sent_at = 0.0
        tally = Tally.of(attributes, sent_at, time.time())
        return cls(runtime, record.body or "", record.message_id, tally, attributes, request_id)

    def run(self, lambda_context: Any = None) -> str:
        """Try once and settle: returns the record's status (``delivered``, ``rejected``, ``dead_lettered``,
        ``retrying``, ``waiting``, ``requeued``); raises :class:`PutBackFailed` to have SQS redeliver it."""
        try:
            message = outbound.parse(self.body, self.message_id)
            profile = self.runtime.profile(message.partner)
            profile.operation(message.operation)
        except SealgateError as error:
            self._dead_letter_metadata(error.code)
            self._audit(None, "refused", error.code)
            count(metric_names.FORWARD_FAILED)
            return "rejected"
        self.message = message
        if isinstance(message, outbound.Plain):
            if message.payload == DROPPED:  # a redriven metadata dead letter: there is nothing to send
                return self._give_up("rejected", Verdict("rejected", "payload_dropped"))
            return self._protect_and_requeue(profile, message)
        return self.settle(self._try(message, lambda_context))

    def defer(self, reason: str) -> str:
        """Put the message back untried now (the batch is running out of time), without growing its backoff."""
        try:
            self.message = outbound.parse(self.body, self.message_id)
        except SealgateError:
            self.message = None  # its next receive dead-letters it
        return self.settle(Verdict("wait", reason, grow=False))

    # --- one try ----------------------------------------------------------------------------------------------

    def _try(self, message: outbound.Protected, lambda_context: Any) -> Verdict:
        once = self.runtime.once(
            "deliver",
            lambda: idempotency.build(
                self.runtime.settings.idempotency_table,
                "deliver_forward",
                Delivery._send_once,
                # Only deliveries complete a record: keep it as long as their outcome.
                expires_after_seconds=self.runtime.settings.outcome_ttl_days * 86400,
            ),
        )
        try:
            _, first = idempotency.run_once(
                once,
                {"partner": message.partner, "idempotency_key": message.idempotency_key},
                self,
                lambda_context,
            )
        except _NotDelivered as not_delivered:
            return not_delivered.verdict
        except InProgress:
            return Verdict("wait", "in_flight")
        except Unavailable:
            # The verdict stands when only recording it failed: after a 2xx the partner has the request.
            return self.verdict or Verdict("wait", "idempotency_store_unavailable")
        if not first or self.verdict is None:
            return Verdict("delivered", "already_delivered")
        return self.verdict

    def _send_once(self) -> dict[str, Any]:
        self.verdict = self._send()
        if self.verdict.kind != "delivered":
            raise _NotDelivered(self.verdict)
        return {"status": "delivered", "token": self.token}

    def _send(self) -> Verdict:
        """Sign and send; classify the answer (see the module docstring)."""
        message = self.message
        assert isinstance(message, outbound.Protected)
        settings = self.runtime.settings
        profile = self.runtime.profile(message.partner)
        request = self._prepare(profile, message)
        if isinstance(request, Verdict):
            return request
        try:
            response = partner_http.send(
                request.method,
                request.url,
                headers=request.headers,
                body=request.body,
                timeout=settings.forward_timeout,
                ca_bundle=settings.ca_bundle,
            )
        except PartnerUnreachable as error:
            if error.message in _NOT_SENT:
                return Verdict("wait", _NOT_SENT[error.message])
            return Verdict("retry", error.code, sent=True)  # a timeout or reset: the partner may have it
        except SealgateError as error:  # refused before sending (a malformed URL or header)
            return Verdict("rejected", error.code)
        return self._answered(profile, message, request, response)

    def _prepare(self, profile: Profile, message: outbound.Protected) -> PartnerRequest | Verdict:
        """The request to send, or why nothing is sent."""
        try:
            if self._recorded_delivered(message):
                return Verdict("delivered", "already_delivered")
        except Unavailable:
            return Verdict("wait", "outcome_store_unavailable")
        try:
            return request_for(self.runtime, profile, message)
        except Unavailable as error:  # keys unavailable: nothing was sent
            return Verdict("wait", error.code)
        except SealgateError as error:  # a payload the scheme refuses, a rotated key, a bad URL
            return Verdict("rejected", error.code)

    def _answered(
        self,
        profile: Profile,
        message: outbound.Protected,
        request: PartnerRequest,
        response: partner_http.PartnerResponse,
    ) -> Verdict:
        """What the partner's answer means for the message."""
        answer: dict[str, Any] = {
            "partner": message.partner,
            "operation": message.operation,
            "idempotency_key": message.idempotency_key,
            "partner_status": response.status,
            "response_md5": hashlib.md5(response.body, usedforsecurity=False).hexdigest(),
        }
        if profile.store_response_body:
            answer["response_body"] = response.body.decode("utf-8", "replace")
        reason = f"partner_http_{response.status}"
        if 200 <= response.status < 300:
            return self._delivered(message, request, answer)
        if partner_http.is_retryable(response.status):
            retry_after = partner_http.retry_after(response.headers)
            return Verdict("retry", reason, sent=True, retry_after=retry_after, answer=answer)
        return Verdict("rejected", reason, sent=True, answer=answer)

    def _recorded_delivered(self, message: outbound.Protected) -> bool:
        """Whether the outcome item says this very request was delivered (a copy whose idempotency record is
        gone). The item's id may come from a producer, so another message could share it: only the same
        partner and idempotency key count."""
        try:
            item = self.runtime.outcomes.get(message.outcome_id)
        except NotFound:
            return False
        return (
            item.get("status") == "delivered"
            and item.get("partner") == message.partner
            and item.get("idempotency_key") == message.idempotency_key
        )

    def _delivered(
        self, message: outbound.Protected, request: PartnerRequest, answer: dict[str, Any]
    ) -> Verdict:
        values = {
            **answer,
            "status": "delivered",
            "last_reason": "ok",
            "next_attempt_at": None,
        }
        reason = "ok"
        try:
            self.runtime.outcomes.update(message.outcome_id, values, count_attempt=True)
        except Unavailable:
            # The partner has it: failing now would make the delivery a failure, and its retry a second
            # request. The outcome item stays behind ("queued"/"retrying"); the audit record says so.
            reason = "outcome_unrecorded"
        count(metric_names.FORWARD_DELIVERED)
        self._audit(message.partner, "ok", reason, answer["partner_status"], request.fields)
        return Verdict("delivered", reason, sent=True)

    # --- settling -----------------------------------------------------------------------------------------------

    def settle(self, verdict: Verdict) -> str:
        """Act on ``verdict``: the record's status (see :meth:`run`)."""
        if verdict.kind == "delivered":
            return "delivered"
        settings = self.runtime.settings
        if verdict.kind == "rejected":
            return self._give_up("rejected", verdict)
        if verdict.kind == "retry":
            attempts = self.tally.attempts + 1
            if attempts >= settings.max_attempts:
                return self._give_up("dead_lettered", verdict)
            wait = backoff(attempts, settings.backoff_base_seconds, settings.backoff_cap_seconds)
            if verdict.retry_after is not None:
                wait = max(wait, math.ceil(verdict.retry_after))
            tally = replace(self.tally, attempts=attempts)
            return self._put_back("retrying", verdict, tally, wait)
        if time.time() - self.tally.queued_at >= settings.max_wait_seconds:
            return self._give_up("dead_lettered", replace(verdict, reason="waited_too_long"))
        tally = replace(self.tally, waits=self.tally.waits + 1) if verdict.grow else self.tally
        wait = (
            backoff(tally.waits, settings.backoff_base_seconds, settings.backoff_cap_seconds)
            if verdict.grow
            else 0
        )
        return self._put_back("waiting", verdict, tally, wait)

    def _put_back(self, status: str, verdict: Verdict, tally: Tally, wait: int) -> str:
        """Send the message again with ``tally`` after ``wait`` seconds; the record then succeeds."""
        wait = max(0, min(wait, MAX_DELAY_SECONDS))
        kept = [
            (name, value)
            for name, value in self.attributes.items()
            if name not in DEAD_LETTER_ATTRIBUTES and name not in (ATTEMPTS, WAITS, QUEUED_AT)
        ]
        counts = tally.attributes()
        attributes = {**dict(kept[: MAX_MESSAGE_ATTRIBUTES - len(counts)]), **counts}
        partner = self.message.partner if self.message is not None else None
        try:
            queues.send(
                self.runtime.settings.outbound_queue_url,
                self.body,
                delay_seconds=wait,
                attributes=attributes,
            )
        except SealgateError:
            self._record(verdict, {"status": status, "next_attempt_at": None}, tally)
            self._audit(partner, "retry", verdict.reason)
            raise PutBackFailed("queue_unavailable") from None
        if verdict.kind == "retry":
            count(metric_names.FORWARD_FAILED)
        self._record(verdict, {"status": status, "next_attempt_at": _iso(time.time() + wait)}, tally)
        self._audit(partner, "retry", verdict.reason)
        return status

    def _give_up(self, status: str, verdict: Verdict) -> str:
        """Dead-letter the message (the protected form only: nothing in the clear) with its reason."""
        count(metric_names.FORWARD_FAILED)
        tally = replace(self.tally, attempts=self.tally.attempts + (1 if verdict.sent else 0))
        partner = self.message.partner if self.message is not None else None
        try:
            if isinstance(self.message, outbound.Protected):
                self._dead_letter(self.body, verdict.reason, tally.attempts)
            else:
                self._dead_letter_metadata(verdict.reason, tally.attempts)
        except PutBackFailed:  # SQS redelivers it: say so, and count the attempt that was made
            self._record(verdict, {"status": "retrying", "next_attempt_at": None}, tally)
            self._audit(partner, "retry", verdict.reason)
            raise
        self._record(verdict, {"status": status, "next_attempt_at": None}, tally)
        self._audit(partner, "failed", verdict.reason)
        return status

    def _record(self, verdict: Verdict, values: Mapping[str, Any], tally: Tally) -> None:
        """Write the outcome of a try that did not deliver (never over a ``delivered`` one); best effort: the
        message's own counts decide its fate, the outcome only reports it."""
        if self.message is None:
            return
        recorded = {
            **verdict.answer,
            **values,
            "partner": self.message.partner,
            "last_reason": verdict.reason,
            "waits": tally.waits,
        }
        try:
            self.runtime.outcomes.update(
                self.message.outcome_id, recorded, count_attempt=verdict.sent, keep_delivered=True
            )
        except Unavailable:
            logger.warning("outcome not recorded", reason=verdict.reason)

    # --- plain messages -----------------------------------------------------------------------------------------

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
            queues.send(
                self.runtime.settings.outbound_queue_url,
                body,
                attributes={QUEUED_AT: self.tally.attributes()[QUEUED_AT]},
            )
        except Unavailable as error:
            return self.settle(Verdict("wait", error.code))  # as it is: dead-lettered as metadata, at worst
        except SealgateError as error:
            reason = error.code
        else:
            self._audit(message.partner, "queued", "protected", fields=protected.fields)
            return "requeued"
        count(metric_names.FORWARD_FAILED)
        self._dead_letter_metadata(reason)
        self._audit(message.partner, "failed", reason)
        return "rejected"

    # --- the dead-letter queue ----------------------------------------------------------------------------------

    def _dead_letter_metadata(self, reason: str, attempts: int = 0) -> None:
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
            "payload": DROPPED,
        }
        self._dead_letter(json.dumps(body, separators=(",", ":")), reason, attempts)

    def _dead_letter(self, body: str, reason: str, attempts: int = 0) -> None:
        settings = self.runtime.settings
        if not settings.outbound_dlq_url:
            raise PutBackFailed("dead_letter_queue_unconfigured")
        attributes = {"reason": reason, "original_message_id": self.message_id, "attempts": str(attempts)}
        try:
            queues.send(settings.outbound_dlq_url, body, attributes=attributes)
        except SealgateError:
            raise PutBackFailed("dead_letter_queue_unavailable") from None

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

    A record fails only when it could be neither put back nor dead-lettered (:class:`PutBackFailed`) or on a
    bug; every other record succeeds, whatever became of its message (see the module docstring).

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
        try:
            delivery = Delivery.of(runtime, record, request_id)
            # A batch of slow partners must not outlive the function: what cannot finish in time goes back.
            remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
            if (
                remaining is not None
                and remaining() < (runtime.settings.forward_timeout + DEADLINE_MARGIN) * 1000
            ):
                return delivery.defer("deadline")
            return delivery.run(lambda_context)
        except PutBackFailed as failed:
            logger.warning("message left for SQS to redeliver", reason=failed.reason)
            raise
        except Exception as error:  # a bug: still a batch item failure (redelivered by SQS), but seen
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
