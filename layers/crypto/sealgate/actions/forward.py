"""``POST /v1/forward/{partner}`` (protect, then queue) and ``GET /v1/forward/{id}`` (the outcome).

The payload is validated and protected the partner's way before anything is stored: a payload the scheme
refuses gets its 4xx at once, and the queue only ever holds the protected form (:mod:`sealgate.outbound`).
The same (partner, idempotency key) is queued once (Powertools Idempotency): a repeat answers 200 with the
first request's id and queues nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sealgate import idempotency, outbound, queues
from sealgate.errors import BadInput, NotFound, SealgateError
from sealgate.http_api import Request
from sealgate.partners import Profile, check_idempotency_key
from sealgate.runtime import Runtime


@dataclass(frozen=True)
class ForwardInput:
    """``{"operation": <one of the partner's>, "payload": <JSON>, "idempotency_key"?: "..."}``."""

    operation: str
    payload: Any
    idempotency_key: str

    @classmethod
    def parse(cls, body: dict[str, Any], profile: Profile) -> ForwardInput:
        operation = body.get("operation")
        profile.operation(operation)
        if "payload" not in body:
            raise BadInput("payload is required")
        key = check_idempotency_key(body.get("idempotency_key")) or str(uuid.uuid4())
        return cls(str(operation), body["payload"], key)


@dataclass
class _Enqueueing:
    """The work done once per (partner, idempotency key): record the outcome, queue the protected message."""

    runtime: Runtime
    message: outbound.Protected
    body: str
    token: str = ""

    def run(self) -> dict[str, Any]:
        outcomes = self.runtime.outcomes
        message = self.message
        outcomes.record_queued(
            message.outcome_id, message.partner, message.operation, message.idempotency_key
        )
        try:
            message_id = queues.send(self.runtime.settings.outbound_queue_url, self.body)
        except SealgateError:  # not queued: a retry of this request must queue it
            outcomes.delete(message.outcome_id)
            raise
        outcomes.update(message.outcome_id, {"message_id": message_id})
        return {"id": message.outcome_id, "message_id": message_id, "token": self.token}


def enqueue(runtime: Runtime, partner: str, request: Request) -> tuple[int, dict[str, Any]]:
    """Protect and queue; 202 the first time, 200 (``duplicate``) for the same idempotency key again."""
    with runtime.audited("forward.enqueue", partner, request.caller_info) as entry:
        profile = runtime.profile(partner)
        given = ForwardInput.parse(request.json(runtime.settings.max_body_bytes), profile)
        secret = runtime.secrets.current(partner)
        protected = profile.protection.protect(given.payload, secret)
        message = outbound.Protected(
            outcome_id=outbound.forward_id(partner, given.idempotency_key),
            partner=partner,
            operation=given.operation,
            idempotency_key=given.idempotency_key,
            protected=protected.payload,
            key_version=secret.version_id,
            fields=protected.fields,
        )
        body = message.body()  # too large for SQS: 413 before anything is recorded
        once = runtime.once(
            "enqueue",
            lambda: idempotency.build(
                runtime.settings.idempotency_table,
                "enqueue_forward",
                _Enqueueing.run,
                expires_after_seconds=runtime.settings.outcome_ttl_days * 86400,
            ),
        )
        result, first = idempotency.run_once(
            once,
            {"partner": partner, "idempotency_key": given.idempotency_key},
            _Enqueueing(runtime, message, body),
            request.lambda_context,
        )
        answer = {
            "id": result["id"],
            "message_id": result["message_id"],
            "idempotency_key": given.idempotency_key,
        }
        if not first:
            entry.outcome = "duplicate"
            try:
                status = runtime.outcomes.get(result["id"]).get("status")
            except SealgateError:
                status = None
            return 200, {**answer, "status": status, "duplicate": True}
        entry.outcome = "queued"
        entry.fields = list(protected.fields)
        return 202, {**answer, "status": "queued"}


def status(runtime: Runtime, outcome_id: str, request: Request) -> dict[str, Any]:
    """The recorded outcome of a forwarded request."""
    with runtime.audited("forward.status", None, request.caller_info):
        if not outcome_id or len(outcome_id) > outbound.MAX_OUTCOME_ID or not outcome_id.isalnum():
            raise NotFound("no forward request with this id")
        item = runtime.outcomes.get(outcome_id)
        item.pop("expires_at", None)
        return item
