"""API Gateway side of the handlers: body parsing with limits, the caller's identity, and the one place where
errors become HTTP responses.

Every refusal is ``{"code": <stable code>, "message": <fixed text>}`` with the error's status; nothing
from the request (values, keys) is echoed back.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from sealgate import strict_json
from sealgate.errors import BadInput, PayloadTooLarge, SealgateError
from sealgate.runtime import Caller
from sealgate.telemetry import logger

JSON = "application/json"


@dataclass(frozen=True)
class Request:
    """What an action needs of an API Gateway event: the body as sent, who asked, the headers, and the Lambda
    context (its remaining time bounds how long once-only work may stay "in progress")."""

    body: str | None = None
    is_base64: bool = False
    request_id: str | None = None
    caller: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    lambda_context: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_event(cls, event: APIGatewayProxyEvent, lambda_context: Any = None) -> Request:
        return cls(
            body=event.body,
            is_base64=bool(event.is_base64_encoded),
            request_id=request_id(event),
            caller=caller(event),
            headers=dict(event.headers or {}),
            lambda_context=lambda_context,
        )

    @property
    def caller_info(self) -> Caller:
        """Who asked, for the audit record."""
        return Caller(request_id=self.request_id, caller=self.caller)

    def lower_headers(self) -> dict[str, str]:
        """The headers with lower-cased names (HTTP names are case-insensitive)."""
        return {name.lower(): value for name, value in self.headers.items()}

    def raw(self, max_bytes: int) -> bytes:
        """The body exactly as the client sent it (base64 undone), refused past ``max_bytes``."""
        return raw_body(self.body, self.is_base64, max_bytes)

    def json(self, max_bytes: int) -> dict[str, Any]:
        """The body as a JSON object."""
        return json_object(self.raw(max_bytes))


def raw_body(text: str | None, is_base64: bool, max_bytes: int) -> bytes:
    """The request body exactly as the client sent it (base64 undone), refused past ``max_bytes``."""
    body = text or ""
    if len(body) > 2 * max_bytes:  # cheap early refusal before decoding anything large
        raise PayloadTooLarge()
    if is_base64:
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadInput("body is not valid base64") from None
    else:
        data = body.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise PayloadTooLarge()
    return data


def json_object(data: bytes) -> dict[str, Any]:
    """Parse a JSON object body (strict JSON, see :mod:`sealgate.strict_json`); anything else is ``bad_json``."""
    try:
        value = strict_json.loads(data) if data.strip() else None
    except strict_json.StrictJsonError:
        raise BadJson() from None
    if not isinstance(value, dict):
        raise BadJson("body must be a JSON object")
    return value


class BadJson(BadInput):
    code = "bad_json"
    default_message = "body is not valid JSON"


def caller(event: APIGatewayProxyEvent) -> str | None:
    """The IAM principal (``userArn``), else the source IP (public routes)."""
    identity = event.request_context.identity
    return identity.user_arn or identity.caller or identity.source_ip


def request_id(event: APIGatewayProxyEvent) -> str | None:
    return event.request_context.request_id


def respond(status: int, body: Any) -> Response[str]:
    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        headers={"Cache-Control": "no-store"},
    )


def error_response(error: SealgateError) -> Response[str]:
    """The HTTP answer to a refusal: its status and its stable code."""
    return respond(error.http_status, {"code": error.code, "message": error.message})


def unexpected_response(error: Exception) -> Response[str]:
    """Last line of defence: a bug is a 500 with a stable code, logged by type only (no values, no trace)."""
    logger.error("unexpected error", error_type=type(error).__name__)
    return respond(500, {"code": "internal_error", "message": "unexpected error"})


def not_found_response() -> Response[str]:
    return respond(404, {"code": "not_found", "message": "no such route"})


def install_error_handlers(app: Any) -> None:
    """Register on a Powertools resolver the one mapping of errors to responses every function uses."""
    app.exception_handler(SealgateError)(error_response)
    app.exception_handler(Exception)(unexpected_response)
    app.not_found(lambda _error: not_found_response())
