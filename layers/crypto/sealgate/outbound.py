"""The outbound queue's messages: what waits to be delivered is already protected.

Two forms are accepted, one is ever kept:

- **protected** (what ``POST /v1/forward/{partner}`` queues, and all the queue holds once the forward function
  has seen a message)::

      {"v": 1, "id": <outcome id>, "partner": ..., "operation": ..., "idempotency_key": ...,
       "protected": <the payload as the partner's scheme protected it>, "key_version": <secret VersionId>,
       "fields": [<names of what was protected>]}

- **plain** (an internal producer writing to the queue directly)::

      {"partner": ..., "operation": ..., "payload": <plain JSON>, "idempotency_key"?: ...}

  On its first receive the forward function protects it and queues the protected form in its place; a plain
  message it cannot protect is dead-lettered as metadata only (its payload is dropped, never kept in the clear).

Signing depends on the send time, so it happens at delivery, never here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from sealgate import queues, strict_json
from sealgate.errors import BadInput, PayloadTooLarge
from sealgate.partners import check_idempotency_key

VERSION = 1
_VERSION_ID = re.compile(r"[A-Za-z0-9-]{32,64}", re.ASCII)
#: ours are 32 hex digits; the status route takes no longer ids either
MAX_OUTCOME_ID = 64


def forward_id(partner: str, idempotency_key: str) -> str:
    """The outcome id of a (partner, idempotency key): stable, so a repeated request finds its first record."""
    return hashlib.sha256(f"{partner}\n{idempotency_key}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Protected:
    """A message ready for delivery: the payload is in the partner's protected form."""

    outcome_id: str
    partner: str
    operation: str
    idempotency_key: str
    protected: Any
    key_version: str | None
    fields: tuple[str, ...] = ()

    def body(self) -> str:
        """The message body; :class:`PayloadTooLarge` if SQS could never take it."""
        text = json.dumps(
            {
                "v": VERSION,
                "id": self.outcome_id,
                "partner": self.partner,
                "operation": self.operation,
                "idempotency_key": self.idempotency_key,
                "protected": self.protected,
                "key_version": self.key_version,
                "fields": list(self.fields),
            },
            separators=(",", ":"),
        )
        if len(text.encode("utf-8")) > queues.MAX_MESSAGE_BYTES:
            raise PayloadTooLarge("payload is too large to queue")
        return text


@dataclass(frozen=True)
class Plain:
    """A producer's message that still holds its payload in the clear."""

    outcome_id: str
    partner: str
    operation: str
    idempotency_key: str
    payload: Any


@dataclass(frozen=True)
class Unreadable:
    """A body that is no message of ours; what little can be said of it, for the dead letter."""

    partner: str | None
    operation: str | None
    idempotency_key: str | None


Message = Protected | Plain


def parse(body: str, message_id: str) -> Message:
    """The message in ``body``; :class:`BadInput` for anything malformed (a permanent failure)."""
    try:
        data = strict_json.loads(body)
    except strict_json.StrictJsonError:
        raise BadInput("message body is not JSON") from None
    if not isinstance(data, dict):
        raise BadInput("message body must be a JSON object")
    partner, operation = data.get("partner"), data.get("operation")
    if not isinstance(partner, str) or not isinstance(operation, str):
        raise BadInput("message needs partner and operation")
    key = check_idempotency_key(data.get("idempotency_key")) or message_id
    outcome_id = data.get("id")
    if not _is_outcome_id(outcome_id):
        outcome_id = forward_id(partner, key)
    if "protected" in data:
        version = data.get("key_version")
        fields = data.get("fields") or []
        if not (version is None or _is_version_id(version)) or not isinstance(fields, list):
            raise BadInput("protected message is malformed")
        return Protected(
            outcome_id, partner, operation, key, data["protected"], version, tuple(map(str, fields))
        )
    if "payload" in data:
        return Plain(outcome_id, partner, operation, key, data["payload"])
    raise BadInput("message needs a payload or a protected payload")


def metadata(body: str) -> Unreadable:
    """The routing facts of a body that could not be used, for a dead letter that carries no payload."""
    try:
        data = strict_json.loads(body)
    except strict_json.StrictJsonError:
        data = None
    if not isinstance(data, Mapping):
        return Unreadable(None, None, None)

    def text(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) and len(value) <= 128 and value.isprintable() else None

    return Unreadable(text("partner"), text("operation"), text("idempotency_key"))


def _is_version_id(value: object) -> bool:
    """Whether ``value`` can be a Secrets Manager ``VersionId`` (32 to 64 characters, a UUID in practice)."""
    return isinstance(value, str) and _VERSION_ID.fullmatch(value) is not None


def _is_outcome_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` can be an outcome id (ours are 32 hex digits): a longer one could exceed DynamoDB's
    2048-byte key, and every write of the outcome would fail."""
    return isinstance(value, str) and 0 < len(value) <= MAX_OUTCOME_ID and value.isascii() and value.isalnum()
