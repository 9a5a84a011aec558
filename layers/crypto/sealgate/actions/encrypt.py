"""``POST /v1/encrypt/{partner}`` and ``POST /v1/decrypt/{partner}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sealgate import metric_names
from sealgate.errors import AuthenticationFailed, BadInput
from sealgate.http_api import Request
from sealgate.runtime import Runtime
from sealgate.telemetry import count


@dataclass(frozen=True)
class PayloadInput:
    """``{"payload": <any JSON>}``."""

    payload: Any

    @classmethod
    def parse(cls, body: dict[str, Any]) -> PayloadInput:
        if "payload" not in body:
            raise BadInput("payload is required")
        return cls(body["payload"])


def encrypt(runtime: Runtime, partner: str, request: Request) -> dict[str, Any]:
    """The payload protected the partner's way (with Infosimples' MD5 receipts)."""
    with runtime.audited("encrypt", partner, request.caller_info) as entry:
        profile = runtime.profile(partner)
        given = PayloadInput.parse(request.json(runtime.settings.max_body_bytes))
        result = profile.protection.protect(given.payload, runtime.secrets.current(partner))
        entry.fields = list(result.fields)
        answer: dict[str, Any] = {"partner": partner, "scheme": profile.scheme, "payload": result.payload}
        if result.receipts:
            answer["receipts"] = result.receipts
        return answer


def decrypt(runtime: Runtime, partner: str, request: Request) -> dict[str, Any]:
    """The plaintext payload (symmetric schemes; AWSCURRENT, then AWSPREVIOUS)."""
    with runtime.audited("decrypt", partner, request.caller_info) as entry:
        profile = runtime.profile(partner)
        protection = profile.protection
        protection.require_symmetric()  # before the body is read
        given = PayloadInput.parse(request.json(runtime.settings.max_body_bytes))
        try:
            revealed, names = runtime.secrets.try_each(
                partner, lambda secret: protection.reveal(given.payload, secret)
            )
        except AuthenticationFailed:
            count(metric_names.DECRYPTION_FAILED, partner=partner)
            raise
        entry.fields = list(names)
        return {"partner": partner, "payload": revealed}
