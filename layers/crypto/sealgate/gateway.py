"""What the three functions do, one method per action, each audited once.

A :class:`Gateway` is built at cold start from the environment: it knows the profiles of the partners this
function serves, loads their secrets (AWSCURRENT) from Secrets Manager, and holds the DynamoDB/SQS
endpoints. Handlers parse the event, call one method, and map :class:`~sealgate.errors.SealgateError` to a
response; they hold no logic of their own.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sealgate import audit, metric_names, protection, signing
from sealgate.audit import Outcome
from sealgate.errors import (
    AuthenticationFailed,
    BadInput,
    BadToken,
    DuplicateNotification,
    KeysUnavailable,
    MissingSignature,
    NotFound,
    PayloadTooLarge,
    SealgateError,
    StaleRequest,
    Unavailable,
    UnknownPartner,
    UnsupportedOperation,
)
from sealgate.http_api import Request
from sealgate.outcomes import OutcomeStore
from sealgate.partner_keys import PartnerSecrets
from sealgate.profiles import Profile, load_profiles, required_secret_fields
from sealgate.settings import Settings
from sealgate.telemetry import count


@dataclass
class _Audit:
    fields: list[str] = field(default_factory=list)
    outcome: Outcome = "ok"
    reason: str = "ok"
    status: int | None = None


class Gateway:
    """The actions of one function, over the partners it serves."""

    def __init__(
        self,
        settings: Settings,
        secrets: PartnerSecrets,
        profiles: Mapping[str, Profile] | None = None,
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        all_profiles = load_profiles() if profiles is None else dict(profiles)
        self.profiles = {name: p for name, p in all_profiles.items() if name in settings.partners}
        self._reported_load_failures = 0
        self.outcomes = OutcomeStore(settings.outcomes_table, ttl_days=settings.outcome_ttl_days)
        self.dedupe = OutcomeStore(settings.idempotency_table)
        self.idempotent_sender: Any = None  # built by sealgate.forwarding on the first delivery

    @classmethod
    def from_environment(cls) -> Gateway:
        """Cold start: read the settings, load the served partners' secrets (never raises on an outage)."""
        settings = Settings.from_environment()
        profiles = load_profiles()
        served = {name: p for name, p in profiles.items() if name in settings.partners}
        secrets = PartnerSecrets.from_environment(required=required_secret_fields(served))
        gateway = cls(settings, secrets, profiles)
        secrets.load()
        return gateway

    # --- shared -------------------------------------------------------------------------------------------

    def profile(self, partner: str) -> Profile:
        """The profile of a partner this function serves; :class:`UnknownPartner` otherwise."""
        found = self.profiles.get(partner)
        if found is None:
            raise UnknownPartner()
        return found

    def served(self, partner: str | None) -> str | None:
        """``partner`` if this function serves it, else None: a name from a path or a message is the caller's
        text (anything, a card number by mistake) and is not logged."""
        return partner if partner in self.profiles else None

    def report_key_failures(self) -> None:
        """Emit ``KeyLoadFailed`` for the Secrets Manager failures since the last invocation."""
        failures = self.secrets.load_failures
        if failures > self._reported_load_failures:
            count(metric_names.KEY_LOAD_FAILED, value=failures - self._reported_load_failures)
            self._reported_load_failures = failures

    @contextmanager
    def _audited(self, action: str, partner: str | None, request: Request) -> Iterator[_Audit]:
        entry = _Audit()
        try:
            yield entry
        except SealgateError as error:
            entry.outcome = "failed" if isinstance(error, Unavailable) else "refused"
            entry.reason = error.code
            entry.status = error.http_status
            if isinstance(error, KeysUnavailable):
                self.report_key_failures()
            raise
        except Exception:
            entry.outcome, entry.reason, entry.status = "failed", "internal_error", 500
            raise
        finally:
            audit.record(
                action=action,
                partner=self.served(partner),
                outcome=entry.outcome,
                reason=entry.reason,
                request_id=request.request_id,
                caller=request.caller,
                fields=entry.fields,
                status=entry.status,
            )

    # --- encrypt function ---------------------------------------------------------------------------------

    def encrypt(self, partner: str, request: Request) -> dict[str, Any]:
        """``{"payload": ...}`` -> the payload protected the partner's way (and Infosimples receipts)."""
        with self._audited("encrypt", partner, request) as entry:
            profile = self.profile(partner)
            body = request.json(self.settings.max_body_bytes)
            payload = _field(body, "payload")
            result = protection.protect(profile, payload, self.secrets.current(partner))
            entry.fields = list(result.fields)
            answer: dict[str, Any] = {"partner": partner, "scheme": profile.scheme, "payload": result.payload}
            if result.receipts:
                answer["receipts"] = result.receipts
            return answer

    def decrypt(self, partner: str, request: Request) -> dict[str, Any]:
        """``{"payload": <protected>}`` -> the plaintext payload (symmetric schemes; AWSCURRENT, then AWSPREVIOUS)."""
        with self._audited("decrypt", partner, request) as entry:
            profile = self.profile(partner)
            if not profile.symmetric:
                raise UnsupportedOperation(
                    "this partner's scheme is public-key: only the partner can decrypt"
                )
            body = request.json(self.settings.max_body_bytes)
            payload = _field(body, "payload")
            try:
                revealed, names = self.secrets.try_each(
                    partner, lambda secret: protection.reveal(profile, payload, secret)
                )
            except AuthenticationFailed:
                count(metric_names.DECRYPTION_FAILED, partner=partner)
                raise
            entry.fields = list(names)
            return {"partner": partner, "payload": revealed}

    # --- sign function ------------------------------------------------------------------------------------

    def sign(self, partner: str, request: Request) -> dict[str, Any]:
        """``{"body": <exact text to send>, "idempotency_key"?}`` -> the headers to send with it."""
        with self._audited("sign", partner, request) as entry:
            profile = self.profile(partner)
            body = request.json(self.settings.max_body_bytes)
            text = body.get("body", "")
            if not isinstance(text, str):
                raise BadInput("body must be the exact request body as a string ('' for none)")
            key = body.get("idempotency_key")
            if key is not None and not isinstance(key, str):
                raise BadInput("idempotency_key must be a string")
            headers = signing.request_headers(
                profile, self.secrets.current(partner), text.encode("utf-8"), idempotency_key=key
            )
            entry.fields = sorted(headers)
            return {"partner": partner, "headers": headers}

    def accept_webhook(
        self, partner: str, request: Request, *, now: datetime | None = None
    ) -> dict[str, Any]:
        """Verify a partner's signed notification over the raw body, refuse stale or duplicate ones, and hand
        verified ones to the inbound queue."""
        from sealgate.schemes import dlocal_v2

        with self._audited("webhook", partner, request) as entry:
            profile = self.profile(partner)
            if profile.webhook is None:
                raise NotFound("this partner sends no webhooks")
            body = request.raw(self.settings.max_body_bytes)
            lower = {k.lower(): v for k, v in request.headers.items()}
            date, presented = lower.get("x-date"), lower.get("authorization")
            if not date or not presented:
                count(metric_names.SIGNATURE_CHECK_FAILED, partner=partner)
                raise MissingSignature()
            spec = profile.webhook

            def check(secret: Mapping[str, str]) -> None:
                login = secret[spec.get("login", "x_login")]
                dlocal_v2.verify(secret[spec["secret"]], login, date, body, presented)

            try:
                self.secrets.try_each(partner, check)
            except (AuthenticationFailed, BadToken):  # a malformed signature is a failed check too
                count(metric_names.SIGNATURE_CHECK_FAILED, partner=partner)
                raise
            skew = timedelta(seconds=int(spec.get("max_skew_seconds", 300)))
            if not dlocal_v2.is_fresh(date, now=now, tolerance=skew):
                raise StaleRequest()
            # A notification is its date and body, not the spelling of its Authorization header (verify accepts
            # several), so a replay cannot pass as new by re-spacing the header or changing the hex case.
            body_digest = hashlib.sha256(body).hexdigest()
            digest = hashlib.sha256(f"{partner}\n{date}\n{body_digest}".encode()).hexdigest()
            if not self.dedupe.claim(f"webhook#{digest}", self.settings.webhook_ttl_seconds):
                raise DuplicateNotification()
            message = {
                "partner": partner,
                "received_at": datetime.now(UTC).isoformat(),
                "x_date": date,
                "body": body.decode("utf-8", "replace"),
            }
            try:
                _send_message(self.settings.inbound_queue_url, message, group=None)
            except SealgateError:
                # Not queued: the partner's retry of this notification must not be refused as a duplicate.
                self.dedupe.delete(f"webhook#{digest}")
                raise
            count(metric_names.WEBHOOK_ACCEPTED)
            entry.fields = ["body"]
            return {"status": "accepted", "id": digest[:32]}

    # --- forward function (API side) -----------------------------------------------------------------------

    def enqueue(self, partner: str, request: Request) -> tuple[int, dict[str, Any]]:
        """Queue a request for delivery; the same (partner, idempotency key) is queued once."""
        with self._audited("forward.enqueue", partner, request) as entry:
            profile = self.profile(partner)
            body = request.json(self.settings.max_body_bytes)
            operation = body.get("operation")
            if not isinstance(operation, str) or operation not in profile.operations:
                raise BadInput("operation must be one of the partner's operations")
            payload = _field(body, "payload")
            key = signing.check_idempotency_key(body.get("idempotency_key")) or str(uuid.uuid4())
            outcome_id = forward_id(partner, key)
            existing = self.outcomes.create(
                outcome_id,
                {
                    "partner": partner,
                    "operation": operation,
                    "status": "queued",
                    "idempotency_key": key,
                    "attempts": 0,
                },
            )
            if existing is not None:
                entry.outcome = "duplicate"
                answer = {
                    "id": outcome_id,
                    "idempotency_key": key,
                    "status": existing.get("status"),
                    "message_id": existing.get("message_id"),
                    "duplicate": True,
                }
                return 200, answer
            message = {
                "id": outcome_id,
                "partner": partner,
                "operation": operation,
                "payload": payload,
                "idempotency_key": key,
            }
            try:
                message_id = _send_message(self.settings.outbound_queue_url, message, group=None)
            except SealgateError:  # not queued (too large, or the queue is down): a retry must queue it
                self.outcomes.delete(outcome_id)
                raise
            self.outcomes.update(outcome_id, {"message_id": message_id})
            entry.outcome = "queued"
            entry.fields = ["payload"]
            return 202, {
                "id": outcome_id,
                "message_id": message_id,
                "idempotency_key": key,
                "status": "queued",
            }

    def status(self, outcome_id: str, request: Request) -> dict[str, Any]:
        """The recorded outcome of a forwarded request."""
        with self._audited("forward.status", None, request):
            if not outcome_id or len(outcome_id) > 64 or not outcome_id.isalnum():
                raise NotFound("no forward request with this id")
            item = self.outcomes.get(outcome_id)
            item.pop("expires_at", None)
            return item


def forward_id(partner: str, idempotency_key: str) -> str:
    """The outcome id of a (partner, idempotency key): stable, so a repeated request finds its first record."""
    return hashlib.sha256(f"{partner}\n{idempotency_key}".encode()).hexdigest()[:32]


def _field(body: Mapping[str, Any], name: str) -> Any:
    if name not in body:
        raise BadInput(f"{name} is required")
    return body[name]


#: SQS's default ``MaximumMessageSize`` (the template sets none), less room for the attributes a dead-lettered
#: copy gains. A body under the request limit can exceed it: JSON escapes each non-ASCII character (up to 6x).
MAX_MESSAGE_BYTES = 256 * 1024 - 1024


def _send_message(queue_url: str, message: Mapping[str, Any], *, group: str | None) -> str:
    """Send a JSON message; :class:`PayloadTooLarge` if SQS could never take it, :class:`Unavailable` if it
    refuses."""
    from botocore.exceptions import BotoCoreError, ClientError

    from sealgate.aws_clients import client

    if not queue_url:
        raise Unavailable("queue is not configured")
    body = json.dumps(message, separators=(",", ":"))
    if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge("payload is too large to queue")
    kwargs: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body}
    if group:
        kwargs["MessageGroupId"] = group
    try:
        answer = client("sqs").send_message(**kwargs)
    except (ClientError, BotoCoreError):
        raise Unavailable("queue is unavailable") from None
    return str(answer["MessageId"])
