"""What the API's OpenAPI document says of each route: summary, description, request body and answers.

Plain dicts handed to the Powertools route decorators of the three functions (``@app.post(..., **ENCRYPT)``):
registering a route with them imports nothing, so pydantic stays out of the functions' cold start. The document
itself is generated at build time from the resolvers' routes (``make generate`` writes ``openapi.json``, see
:mod:`sealgate_local.openapi`). The request body rides on ``openapi_extensions``: Powertools would only infer one
from a validated body parameter, which the handlers do not take (they parse the raw body strictly).

Every refusal, from a function or from API Gateway itself, is :data:`ERROR`: ``{"code", "message"}``, referred
to as ``#/components/schemas/Error`` (the generator adds :data:`COMPONENTS` to the document).
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"

#: the one error contract: every non-2xx answer has exactly these two strings
ERROR: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["code", "message"],
    "additionalProperties": False,
    "properties": {
        "code": {
            "type": "string",
            "pattern": "^[a-z][a-z0-9_]*$",
            "description": "stable, machine-readable (see the README's error table)",
        },
        "message": {
            "type": "string",
            "description": "fixed text; never echoes a value or key of the request",
        },
    },
}

#: the schemas the routes refer to by name
COMPONENTS: dict[str, Any] = {"Error": ERROR}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}

#: what each refusal status means, with the codes it carries
REFUSALS: dict[int, str] = {
    400: "malformed request: `bad_json` (not strict JSON: duplicate keys, NaN, lone surrogates), `bad_input`, "
    "`bad_token`, `unsupported_operation`",
    401: "signature refused: `signature_mismatch`, `missing_signature`, `stale_notification`",
    403: "API Gateway: the SigV4 signature is missing or wrong (`missing_authentication_token`, `access_denied`)",
    404: "`unknown_partner`, `not_found`",
    409: "`duplicate_notification`, `in_progress`, `key_rotated`",
    413: "`payload_too_large` (body over the limit), `too_many_fields`, `too_much_work` (more protected fields or "
    "distinct key derivations than one request may carry)",
    422: "the token does not open under the partner's key: `mac_mismatch`, `tag_mismatch`, `bad_padding`",
    429: "API Gateway: throttled",
    500: "`internal_error`: a bug (never expected; the fuzz target is zero)",
    502: "`partner_unreachable`, or API Gateway: the function failed",
    503: "`keys_unavailable`, `unavailable`: a dependency is down; retry later",
    504: "API Gateway: the function timed out",
}

_GATEWAY = (403, 429, 500, 502, 504)  # what API Gateway (or the last line of defence) may answer on any route


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def _answers(status: int, description: str, schema: dict[str, Any], *refusals: int) -> dict[int, Any]:
    found: dict[int, Any] = {status: {"description": description, "content": _json(schema)}}
    for code in sorted({*refusals, *_GATEWAY}):
        found[code] = {"description": REFUSALS[code], "content": _json(_ERROR_REF)}
    return found


def _body(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description, "content": _json(schema)}}


_ANY_JSON: dict[str, Any] = {"description": "any JSON value"}
_IDEMPOTENCY_KEY: dict[str, Any] = {
    "anyOf": [{"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"}, {"type": "null"}],
    "description": "printable ASCII without spaces; null or absent: none given",
}
_PAYLOAD_BODY = {
    "type": "object",
    "required": ["payload"],
    "properties": {"payload": _ANY_JSON},
}

ENCRYPT: dict[str, Any] = {
    "summary": "Protect a payload the partner's way",
    "description": "The payload with its sensitive parts encrypted under the partner's current key, as the "
    "partner's scheme and layout want them (Infosimples: `enc_<field>` tokens and an MD5 receipt per field).",
    "tags": ["protect"],
    "operation_id": "encrypt",
    "openapi_extensions": _body("the payload to protect", _PAYLOAD_BODY),
    "responses": _answers(
        200,
        "the protected payload",
        {
            "type": "object",
            "required": ["partner", "scheme", "payload"],
            "properties": {
                "partner": {"type": "string"},
                "scheme": {"type": "string"},
                "payload": _ANY_JSON,
                "receipts": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        400,
        404,
        413,
        503,
    ),
}

DECRYPT: dict[str, Any] = {
    "summary": "Open a protected payload",
    "description": "The plaintext of a payload protected the partner's way (symmetric schemes only), tried "
    "under the partner's current key, then the previous one. One request opens at most the layout's "
    "`max_fields` tokens naming at most `max_derivations` distinct salts (413 otherwise, before any work).",
    "tags": ["protect"],
    "operation_id": "decrypt",
    "openapi_extensions": _body("the protected payload, as encrypt answered it", _PAYLOAD_BODY),
    "responses": _answers(
        200,
        "the plaintext payload",
        {
            "type": "object",
            "required": ["partner", "payload"],
            "properties": {"partner": {"type": "string"}, "payload": _ANY_JSON},
        },
        400,
        404,
        413,
        422,
        503,
    ),
}

SIGN: dict[str, Any] = {
    "summary": "Derive a request's signature headers",
    "description": "What signing derives for the exact body (signature, date, login, idempotency key). Stored "
    "credentials are only named in `attached_by_gateway`, never returned.",
    "tags": ["sign"],
    "operation_id": "sign",
    "openapi_extensions": _body(
        "the exact body that will be sent",
        {
            "type": "object",
            "properties": {
                "body": {"type": "string", "description": "the exact request body ('' for none)"},
                "idempotency_key": _IDEMPOTENCY_KEY,
            },
        },
    ),
    "responses": _answers(
        200,
        "the derived headers",
        {
            "type": "object",
            "required": ["partner", "headers", "attached_by_gateway"],
            "properties": {
                "partner": {"type": "string"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "attached_by_gateway": {"type": "array", "items": {"type": "string"}},
            },
        },
        400,
        404,
        413,
        503,
    ),
}

WEBHOOK: dict[str, Any] = {
    "summary": "Accept a partner's signed notification",
    "description": "Public (no SigV4): the partner's signature over the raw body, in the headers its scheme "
    "defines (dLocal: `X-Date`, `Authorization: V2-HMAC-SHA256, Signature: ...`), is the authentication. A "
    "verified notification is de-duplicated and queued byte for byte.",
    "tags": ["webhooks"],
    "operation_id": "webhook",
    "openapi_extensions": _body("the notification, exactly as the partner signed it", {"type": "object"}),
    "responses": _answers(
        200,
        "accepted and queued",
        {
            "type": "object",
            "required": ["status", "id"],
            "properties": {"status": {"const": "accepted"}, "id": {"type": "string"}},
        },
        400,
        401,
        404,
        409,
        413,
        503,
    ),
}

_FORWARDED = {
    "type": "object",
    "required": ["id", "message_id", "idempotency_key", "status"],
    "properties": {
        "id": {"type": "string", "description": "the outcome id: GET /v1/forward/{id}"},
        "message_id": {"type": "string"},
        "idempotency_key": {"type": "string"},
        "status": {"type": ["string", "null"]},
        "duplicate": {"type": "boolean"},
    },
}

ENQUEUE: dict[str, Any] = {
    "summary": "Protect a payload and queue it for the partner",
    "description": "The payload is validated and protected first (a payload the scheme refuses: 4xx at once), "
    "then queued for delivery: 202 the first time; 200 with `duplicate` for the same idempotency key again.",
    "tags": ["forward"],
    "operation_id": "forward",
    "openapi_extensions": _body(
        "what to send, and how to recognise a repeat",
        {
            "type": "object",
            "required": ["operation", "payload"],
            "properties": {
                "operation": {"type": "string", "description": "one of the partner profile's operations"},
                "payload": _ANY_JSON,
                "idempotency_key": _IDEMPOTENCY_KEY,
            },
        },
    ),
    "responses": {
        **_answers(202, "queued", _FORWARDED, 400, 404, 409, 413, 503),
        200: {"description": "the same idempotency key again: nothing queued", "content": _json(_FORWARDED)},
    },
}

OUTCOME: dict[str, Any] = {
    "summary": "The outcome of a forwarded request",
    "description": "What happened to a forwarded request: its status, the partner's HTTP status, the MD5 of "
    "the partner's answer, the attempts.",
    "tags": ["forward"],
    "operation_id": "forward_outcome",
    "responses": _answers(
        200,
        "the recorded outcome",
        {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        404,
        503,
    ),
}

#: descriptions of the path parameters, by route (method, path) and name
PARAMETERS: dict[tuple[str, str], dict[str, str]] = {
    ("post", "/v1/encrypt/{partner}"): {
        "partner": "a partner the encrypt function serves (its profile's name)"
    },
    ("post", "/v1/decrypt/{partner}"): {
        "partner": "a partner the encrypt function serves (its profile's name)"
    },
    ("post", "/v1/sign/{partner}"): {"partner": "a partner whose requests are signed"},
    ("post", "/v1/webhooks/{partner}"): {"partner": "a partner that sends webhooks"},
    ("post", "/v1/forward/{target}"): {"target": "the partner to forward to"},
    ("get", "/v1/forward/{target}"): {"target": "the outcome id an enqueue answered (32 hex digits)"},
}
