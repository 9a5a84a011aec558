"""``POST /v1/sign/{partner}``: what signing derives for a body, never a stored credential by default.

The answer holds the derived headers (signature, date, login, asset, idempotency key) and names the
credential headers (API keys, trans keys) that the forward path attaches itself. A profile may opt in to
``release_stored_credentials``; each release is then audited as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sealgate.errors import BadInput, UnsupportedOperation
from sealgate.http_api import Request
from sealgate.runtime import Runtime


@dataclass(frozen=True)
class SignInput:
    """``{"body": "<exact text to send>", "idempotency_key"?: "..."}``."""

    body: bytes
    idempotency_key: str | None

    @classmethod
    def parse(cls, document: dict[str, Any]) -> SignInput:
        text = document.get("body", "")
        if not isinstance(text, str):
            raise BadInput("body must be the exact request body as a string ('' for none)")
        key = document.get("idempotency_key")
        if key is not None and not isinstance(key, str):
            raise BadInput("idempotency_key must be a string")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput("body must be valid Unicode text") from None
        return cls(data, key)


def sign(runtime: Runtime, partner: str, request: Request) -> dict[str, Any]:
    """``{"headers": {derived...}, "attached_by_gateway": [credential header names]}``."""
    with runtime.audited("sign", partner, request.caller_info) as entry:
        profile = runtime.profile(partner)
        if profile.signing is None:
            raise UnsupportedOperation("this partner's requests are not signed")
        given = SignInput.parse(request.json(runtime.settings.max_body_bytes))
        signed = profile.request_headers(
            runtime.secrets.current(partner), given.body, idempotency_key=given.idempotency_key
        )
        headers = dict(signed.derived)
        if profile.release_stored_credentials:
            headers.update(signed.credentials)
            entry.extra["credentials_released"] = True
        entry.fields = sorted(headers)
        return {"partner": partner, "headers": headers, "attached_by_gateway": sorted(signed.credentials)}
