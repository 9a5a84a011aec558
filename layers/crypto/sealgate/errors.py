"""Typed errors with stable codes, shared by the wire formats, the CLI and the handlers.

Every error carries a ``code`` (stable, machine-readable), an ``exit_status`` for the CLI and an
``http_status`` for the handlers. Messages are fixed strings written by the raiser: they never contain key
material, plaintext or values derived from either.
"""

from __future__ import annotations

from typing import ClassVar


class SealgateError(Exception):
    """Base of every error Sealgate raises on purpose."""

    code: ClassVar[str] = "error"
    exit_status: ClassVar[int] = 2
    http_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "request refused"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --- Malformed input: exit 2, HTTP 400 -------------------------------------------------------------------


class InputError(SealgateError):
    """The input is malformed: it could never be valid, whatever the key."""


class BadToken(InputError):
    code = "bad_token"
    default_message = "token is malformed"


class BadKey(InputError):
    code = "bad_key"
    default_message = "key is malformed"


class BadInput(InputError):
    code = "bad_input"
    default_message = "input is malformed"


class BadAlgorithm(InputError):
    code = "bad_algorithm"
    default_message = "algorithm is not allowed"


# --- Authentication failed: exit 1, HTTP 422 (401 for signatures) -------------------------------------------


class AuthenticationFailed(SealgateError):
    """The input is well formed but does not authenticate under the key (or the key is wrong)."""

    exit_status = 1
    http_status = 422
    code = "authentication_failed"
    default_message = "authentication failed"


class MacMismatch(AuthenticationFailed):
    code = "mac_mismatch"
    default_message = "MAC does not match"


class TagMismatch(AuthenticationFailed):
    code = "tag_mismatch"
    default_message = "authentication tag does not match (wrong key or altered token)"


class BadPadding(AuthenticationFailed):
    code = "bad_padding"
    default_message = "padding is invalid (wrong key or altered token)"


class SignatureMismatch(AuthenticationFailed):
    code = "signature_mismatch"
    http_status = 401
    default_message = "signature does not match"


# --- Gateway refusals: the request is understood but cannot be served --------------------------------------


class UnknownPartner(InputError):
    code = "unknown_partner"
    http_status = 404
    default_message = "unknown partner"


class NotFound(InputError):
    code = "not_found"
    http_status = 404
    default_message = "not found"


class PayloadTooLarge(InputError):
    code = "payload_too_large"
    http_status = 413
    default_message = "payload is too large"


class TooManyFields(InputError):
    """A request carries more protected values than one request may (each is a decryption or an encryption)."""

    code = "too_many_fields"
    http_status = 413
    default_message = "too many protected fields in one request"


class TooMuchWork(InputError):
    """Opening a request's tokens would take more distinct key derivations (AesBridge: salts) than allowed;
    refused before any is derived."""

    code = "too_much_work"
    http_status = 413
    default_message = "the request's tokens need too many key derivations"


class UnsupportedOperation(InputError):
    code = "unsupported_operation"
    default_message = "operation is not supported for this partner"


class InsecureUrl(InputError):
    code = "insecure_url"
    default_message = "only https:// partner URLs are allowed"


class MissingSignature(AuthenticationFailed):
    code = "missing_signature"
    http_status = 401
    default_message = "signature headers are missing"


class StaleRequest(SealgateError):
    """The signature is right but the notification's date is outside the window: another key would not help."""

    code = "stale_notification"
    exit_status = 1
    http_status = 401
    default_message = "X-Date is outside the accepted window"


class InProgress(InputError):
    code = "in_progress"
    http_status = 409
    default_message = "the same request is being processed; retry shortly"


class KeyRotated(InputError):
    """A queued message was protected with a key version that can no longer be matched to the current one."""

    code = "key_rotated"
    http_status = 409
    default_message = "the payload was protected with a key that has since been rotated; resubmit it"


class DuplicateNotification(InputError):
    code = "duplicate_notification"
    http_status = 409
    default_message = "notification was already accepted"


# --- Dependencies down: retry later -------------------------------------------------------------------------


class Unavailable(SealgateError):
    """A dependency (Secrets Manager, a partner, a queue) failed; the same request may succeed later."""

    http_status = 503
    code = "unavailable"
    default_message = "a dependency is unavailable; retry later"


class KeysUnavailable(Unavailable):
    code = "keys_unavailable"
    default_message = "partner keys could not be loaded; retry later"


class PartnerUnreachable(Unavailable):
    code = "partner_unreachable"
    http_status = 502
    default_message = "partner could not be reached"
