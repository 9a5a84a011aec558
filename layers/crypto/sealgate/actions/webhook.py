"""``POST /v1/webhooks/{partner}``: a partner's signed notification, verified, de-duplicated and queued.

The profile's verifier checks every header its scheme defines (AWSCURRENT, then AWSPREVIOUS: partners switch
keys at their own pace). A notification is identified by the partner's own id where it carries one (see the
verifier), so the same notification re-signed with a new date is still a duplicate (409). Every refused
authentication counts in ``SignatureCheckFailed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sealgate import idempotency, metric_names, queues
from sealgate.errors import (
    AuthenticationFailed,
    DuplicateNotification,
    NotFound,
    StaleRequest,
)
from sealgate.http_api import Request
from sealgate.runtime import Runtime
from sealgate.schemes.base import Notification
from sealgate.telemetry import count


@dataclass
class _Queueing:
    """The work done once per notification: hand it to the inbound queue."""

    runtime: Runtime
    partner: str
    notification: Notification
    token: str = ""

    def run(self) -> dict[str, Any]:
        message = {
            "partner": self.partner,
            "received_at": datetime.now(UTC).isoformat(),
            "signed_at": self.notification.signed_at,
            "body": self.notification.body.decode("utf-8", "replace"),
        }
        queues.send(self.runtime.settings.inbound_queue_url, json.dumps(message, separators=(",", ":")))
        return {"id": self.notification.dedupe_key[-32:], "token": self.token}


def accept(
    runtime: Runtime, partner: str, request: Request, *, now: datetime | None = None
) -> dict[str, Any]:
    """Verify, de-duplicate and queue one notification; ``{"status": "accepted", "id": ...}``."""
    with runtime.audited("webhook", partner, request.caller_info) as entry:
        profile = runtime.profile(partner)
        webhook = profile.webhook
        if webhook is None:
            raise NotFound("this partner sends no webhooks")
        body = request.raw(runtime.settings.max_body_bytes)
        headers = request.lower_headers()
        try:
            notification = runtime.secrets.try_each(
                partner, lambda secret: webhook.verify(secret, headers, body, now=now)
            )
        except (AuthenticationFailed, StaleRequest):
            count(metric_names.SIGNATURE_CHECK_FAILED, partner=partner)
            raise
        once = runtime.once(
            "webhook",
            lambda: idempotency.build(
                runtime.settings.idempotency_table,
                "accept_notification",
                _Queueing.run,
                expires_after_seconds=runtime.settings.webhook_ttl_seconds,
            ),
        )
        result, first = idempotency.run_once(
            once,
            {"partner": partner, "notification": notification.dedupe_key},
            _Queueing(runtime, partner, notification),
            request.lambda_context,
        )
        if not first:
            raise DuplicateNotification()
        count(metric_names.WEBHOOK_ACCEPTED)
        entry.fields = ["body"]
        return {"status": "accepted", "id": result["id"]}
