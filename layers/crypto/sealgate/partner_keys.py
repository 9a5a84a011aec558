"""Partner secrets from AWS Secrets Manager: loaded at cold start, rotation-aware, refused when unusable.

One secret per partner, named ``<prefix><partner>`` (``sealgate/<stage>/<partner>``), holding one JSON object
whose values are all strings, e.g. Netcore::

    {"key": "<hex>", "iv": "<hex>", "api_key": "...", "asset_id": "..."}

Versions used:

- outbound work (:meth:`PartnerSecrets.current`): ``AWSCURRENT``;
- inbound verification and decryption (:meth:`PartnerSecrets.try_each`): ``AWSCURRENT``, then ``AWSPREVIOUS``
  (absent before the first rotation), then, at most once per ``refetch_interval`` per partner, both again
  fetched afresh. A version equal to one already attempted is not attempted again.

Where values come from: the AWS Parameters and Secrets Lambda Extension when the function is configured for
it (``PARAMETERS_SECRETS_EXTENSION_HTTP_PORT``: an HTTP GET on 127.0.0.1, so the process never imports boto3
for its keys), else, or once nothing listens on that port, ``GetSecretValue`` through the process's boto3
client (:mod:`sealgate.aws_clients`: short timeouts, endpoint from boto3's ``AWS_ENDPOINT_URL[_SECRETS_MANAGER]``).
Either way a value keeps its ``VersionId`` (a message protected before a rotation is matched to its key
version) and is served from this module's cache for ``max_age`` seconds per (partner, version stage); the
extension's own cache is switched off in the template, so that age is the only one. The cold start fetches
the served partners concurrently (one round trip of wall time, not one per partner).

No value of a secret ever reaches a message, a repr or an exception chain: messages name the partner, the
field, and the AWS error code at most.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import urlencode

from sealgate.errors import AuthenticationFailed, KeysUnavailable, UnknownPartner

if TYPE_CHECKING:
    from sealgate.settings import Settings

T = TypeVar("T")

CURRENT: Final = "AWSCURRENT"
PREVIOUS: Final = "AWSPREVIOUS"

DEFAULT_MAX_AGE: Final = 300

#: the extension's address: it listens on the loopback interface of the execution environment
EXTENSION_HOST: Final = "127.0.0.1"
#: seconds to wait for the extension (it bounds its own Secrets Manager call, SECRETS_MANAGER_TIMEOUT_MILLIS)
EXTENSION_TIMEOUT: Final = 4.0
#: the header carrying the function's session token, as the extension requires
TOKEN_HEADER: Final = "X-Aws-Parameters-Secrets-Token"  # noqa: S105 - a header name

#: Secrets Manager's answers to a VersionId it will never find (besides ResourceNotFoundException)
_NO_SUCH_VERSION = frozenset({"InvalidParameterException", "InvalidRequestException", "ValidationException"})
#: an AWS error code as the extension passes it on (``ResourceNotFoundException: ...`` or ``{"__type": ...}``)
_ERROR_CODE = re.compile(r"\b([A-Z][A-Za-z]{2,60}(?:Exception|Error))\b")


class FetchFailed(Exception):
    """Secrets Manager did not return the value (internal: callers turn it into KeysUnavailable)."""

    def __init__(self, reason: str, *, unreachable: bool = False, not_found: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        self.not_found = not_found

    def unavailable(self, partner: str) -> KeysUnavailable:
        return KeysUnavailable(
            f"secret of partner {partner!r} could not be fetched ({self.reason}); retry later"
        )


def _fetch_failure(exc: BaseException) -> FetchFailed:
    """Classify a failed GetSecretValue by the botocore error behind it."""
    from botocore.exceptions import BotoCoreError, ClientError

    for cause in (exc, exc.__cause__, exc.__context__):
        if isinstance(cause, ClientError):
            return _coded(str(cause.response.get("Error", {}).get("Code", "ClientError")))
        if isinstance(cause, BotoCoreError):
            # Connection refused, timeouts, no credentials, no region: every secret fails the same way.
            return FetchFailed(type(cause).__name__, unreachable=True)
    return FetchFailed(type(exc).__name__)


def _coded(code: str) -> FetchFailed:
    code = "".join(c for c in code if c.isalnum() or c in "._-")[:64] or "ClientError"
    return FetchFailed(code, not_found=code == "ResourceNotFoundException")


class VersionedText(str):
    """A secret's text, carrying the ``VersionId`` Secrets Manager returned with it."""

    __slots__ = ("version_id",)
    version_id: str | None

    def __new__(cls, text: str, version_id: str | None = None) -> VersionedText:
        made = super().__new__(cls, text)
        made.version_id = version_id
        return made

    def __repr__(self) -> str:
        return f"VersionedText(version_id={self.version_id!r})"


class _ExtensionAbsent(Exception):
    """Nothing listens on the extension's port (the layer is not attached): use the SDK instead."""


class ExtensionSource:
    """``GetSecretValue`` through the Parameters and Secrets Lambda Extension: ``GET /secretsmanager/get`` with
    ``secretId`` and ``versionStage`` or ``versionId``; the answer is GetSecretValue's JSON. A new connection
    per fetch (loopback: well under a millisecond), so threads share nothing."""

    def __init__(self, port: int, timeout: float = EXTENSION_TIMEOUT) -> None:
        self.port = port
        self.timeout = timeout

    def get(self, name: str, *, stage: str | None = None, version_id: str | None = None) -> VersionedText:
        query = {"secretId": name, **({"versionId": version_id} if version_id else {"versionStage": stage})}
        # The token is the function's own session token, read at each call: credentials change after a
        # SnapStart restore, and boto3 reads the same variable.
        headers = {TOKEN_HEADER: os.environ.get("AWS_SESSION_TOKEN", "")}
        connection = http.client.HTTPConnection(EXTENSION_HOST, self.port, timeout=self.timeout)
        try:
            connection.request("GET", "/secretsmanager/get?" + urlencode(query), headers=headers)
            answer = connection.getresponse()
            status, body = answer.status, answer.read()
        except ConnectionRefusedError:
            raise _ExtensionAbsent from None
        except (OSError, http.client.HTTPException) as exc:  # timeout, reset, malformed answer
            raise FetchFailed(f"extension {type(exc).__name__}", unreachable=True) from None
        finally:
            connection.close()
        if status == 200:
            try:
                found = json.loads(body)
                return VersionedText(str(found.get("SecretString") or ""), found.get("VersionId"))
            except (ValueError, AttributeError):
                raise FetchFailed("extension answer is not GetSecretValue's JSON", unreachable=True) from None
        code = _ERROR_CODE.search(body[:2048].decode("utf-8", "replace"))
        if code is not None:
            failure = _coded(code.group(1))
            failure.unreachable = status >= 500
            raise failure
        raise FetchFailed(f"extension HTTP {status}", unreachable=status >= 500 or status in (401, 403))


class SdkSource:
    """``GetSecretValue`` through the process's boto3 client (imported on first use only)."""

    def get(self, name: str, *, stage: str | None = None, version_id: str | None = None) -> VersionedText:
        from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

        from sealgate.aws_clients import client

        try:
            sdk = client("secretsmanager")
        except (BotoCoreError, ValueError) as exc:
            # No region, unknown profile, malformed endpoint URL: no secret can be fetched.
            raise FetchFailed(type(exc).__name__, unreachable=True) from None
        try:
            if version_id:
                answer = sdk.get_secret_value(SecretId=name, VersionId=version_id)
            else:
                answer = sdk.get_secret_value(SecretId=name, VersionStage=stage or CURRENT)
        except ParamValidationError:  # refused before sending (a VersionId of the wrong shape): never found
            raise FetchFailed("ValidationException") from None
        except (ClientError, BotoCoreError, ValueError) as exc:
            raise _fetch_failure(exc) from None
        return VersionedText(answer.get("SecretString", ""), answer.get("VersionId"))


class SecretFields(Mapping[str, str]):
    """One version of a partner's secret: read-only, and its repr names the fields, never the values."""

    __slots__ = ("_fields", "version_id")

    def __init__(self, fields: Mapping[str, str], version_id: str | None = None) -> None:
        self._fields = dict(fields)
        #: Secrets Manager's ``VersionId`` of this version (not secret: it names a version, holds no value)
        self.version_id = version_id

    def __getitem__(self, field: str) -> str:
        return self._fields[field]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"SecretFields(fields={sorted(self._fields)!r}, version_id={self.version_id!r})"


def _validate(
    partner: str, value: object, required: Collection[str], version_id: str | None = None
) -> SecretFields | str:
    """The secret's fields, or the message saying why they are unusable (names fields, never values)."""
    if not isinstance(value, dict):
        return _not_an_object(partner)
    for field, text in value.items():
        if not isinstance(text, str):
            # Only a field we asked for is named: a stray key of a malformed secret could be a value.
            which = f"field {field!r}" if field in required else "a field"
            return f"secret of partner {partner!r}: {which} is not a string"
    missing = sorted(field for field in required if not value.get(field))
    if missing:
        return f"secret of partner {partner!r} lacks field(s) {', '.join(map(repr, missing))}"
    return SecretFields(value, version_id)


class PartnerSecrets:
    """The secrets of the partners one function serves, and only those.

    Parameters
    ----------
    partners
        Partners this function serves; a secret of any other partner is never fetched.
    prefix
        Secret name prefix, e.g. ``"sealgate/dev/"``.
    max_age
        Seconds a fetched value is served from the cache.
    refetch_interval
        Minimum seconds between two forced refetches of one partner's secret by :meth:`try_each`.
    required
        partner -> fields its secret must hold (non-empty strings).
    clock
        Monotonic seconds, for the cache's age and the refetch rate limit (injected by tests).
    extension_port
        Port of the Parameters and Secrets Lambda Extension; None: the SDK only.
    """

    def __init__(
        self,
        partners: Iterable[str],
        *,
        prefix: str,
        max_age: int = DEFAULT_MAX_AGE,
        refetch_interval: float = 30.0,
        required: Mapping[str, Collection[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        extension_port: int | None = None,
    ) -> None:
        self.partners: frozenset[str] = frozenset(partners)
        if any(not partner or partner != partner.strip() for partner in self.partners):
            raise ValueError("partner names must be non-empty and carry no surrounding spaces")
        if max_age < 0 or refetch_interval < 0:
            raise ValueError("max_age and refetch_interval must not be negative")
        self.prefix = prefix
        self.max_age = max_age
        self.refetch_interval = refetch_interval
        required = required or {}
        self._required: dict[str, tuple[str, ...]] = {
            partner: _field_names(required.get(partner, ())) for partner in self.partners
        }
        self._clock = clock
        self.load_failures = 0
        self.extension: ExtensionSource | None = (
            None if extension_port is None else ExtensionSource(extension_port)
        )
        self._sdk = SdkSource()
        self._loaded: set[str] = set()
        # (partner, stage) -> (when fetched, the text): served while younger than max_age
        self._cache: dict[tuple[str, str], tuple[float, VersionedText]] = {}
        # (partner, stage) -> (the text, its validation): a cached value is not recounted.
        self._validated: dict[tuple[str, str], tuple[VersionedText, SecretFields | str]] = {}
        self._no_previous_at: dict[str, float] = {}
        self._refetched_at: dict[str, float] = {}
        self._versions_by_id: dict[tuple[str, str], SecretFields] = {}
        # A batch's deliveries read secrets from several threads. Fetches run unlocked (at worst two threads
        # fetch one value, and an outage is not waited out once per thread); the bookkeeping that reads then
        # writes (validations and their count, refetch times) is locked. ``_cache``, ``_versions_by_id`` and
        # ``_loaded`` take single writes of equal values.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        partners: Iterable[str],
        required: Mapping[str, Collection[str]] | None = None,
    ) -> PartnerSecrets:
        """Build for ``partners`` with the prefix, cache age and extension port of ``settings``.

        Raises
        ------
        KeysUnavailable
            The prefix is missing while partners are served.
        """
        partners = list(partners)
        if partners and not settings.secret_prefix:
            raise KeysUnavailable("SEALGATE_SECRET_PREFIX is not set")
        return cls(
            partners,
            prefix=settings.secret_prefix,
            max_age=settings.secrets_max_age,
            required=required,
            extension_port=settings.secrets_extension_port,
        )

    def __repr__(self) -> str:
        return (
            f"PartnerSecrets(prefix={self.prefix!r}, partners={sorted(self.partners)!r}, ready={self.ready}, "
            f"load_failures={self.load_failures})"
        )

    @property
    def ready(self) -> bool:
        """Whether the last fetch of every served partner's ``AWSCURRENT`` succeeded."""
        return self.partners <= self._loaded

    @property
    def via_extension(self) -> bool:
        """Whether fetches go through the Lambda extension (configured, and it answered or was not tried)."""
        return self.extension is not None

    def secret_name(self, partner: str) -> str:
        """Name of the partner's secret in Secrets Manager."""
        return self.prefix + partner

    def load(self) -> None:
        """Fetch ``AWSCURRENT`` of every served partner not loaded yet, concurrently; never raises.

        A failure is counted in ``load_failures`` and leaves ``ready`` False; the next :meth:`load` or
        :meth:`current` tries again. Secrets Manager out of reach counts once, not once per partner: the
        fetches failed together, waiting out the same timeouts side by side.
        """
        missing = sorted(self.partners - self._loaded)
        found: dict[str, VersionedText | FetchFailed] = {}

        def fetch(partner: str) -> None:
            try:
                found[partner] = self._get_text(partner, CURRENT, force=False)
            except FetchFailed as failure:
                found[partner] = failure

        if self.extension is None and len(missing) > 1:
            self._sdk_ready()
        threads = [threading.Thread(target=fetch, args=(partner,), daemon=True) for partner in missing[1:]]
        for thread in threads:
            thread.start()
        if missing:
            fetch(missing[0])  # this thread's share
        for thread in threads:
            thread.join()
        unreachable_counted = False
        for partner in missing:
            outcome = found[partner]
            if isinstance(outcome, FetchFailed) and outcome.unreachable:
                if unreachable_counted:
                    continue
                unreachable_counted = True
            try:
                self._accept(partner, CURRENT, outcome)
            except (FetchFailed, KeysUnavailable):
                continue

    def forget(self) -> None:
        """Drop every cached value (a SnapStart restore: whatever the snapshot holds may be past its age)."""
        self._cache.clear()
        self._loaded.clear()
        self._no_previous_at.clear()

    def current(self, partner: str) -> SecretFields:
        """The partner's ``AWSCURRENT`` secret, for outbound work.

        Raises
        ------
        UnknownPartner
            This function does not serve the partner.
        KeysUnavailable
            Secrets Manager failed (the next call retries), or the secret is malformed or lacks a field.
        """
        self._check_served(partner)
        return self._fields(partner, CURRENT, force=False)

    def try_each(self, partner: str, attempt: Callable[[Mapping[str, str]], T]) -> T:
        """``attempt`` with ``AWSCURRENT``, then ``AWSPREVIOUS``, then both refetched (rate-limited).

        Only :class:`AuthenticationFailed` moves on to the next version; when none authenticates, the last
        one is raised. Any other error propagates at once.

        Raises
        ------
        UnknownPartner
            This function does not serve the partner.
        KeysUnavailable
            A version could not be fetched, so the token cannot be judged yet.
        AuthenticationFailed
            No version authenticates.
        """
        self._check_served(partner)
        tried: list[SecretFields] = []
        failure: AuthenticationFailed | None = None
        for force in (False, True):
            if force and not self._may_refetch(partner):
                break
            for fields in self._versions(partner, force=force):
                if fields in tried:
                    continue
                tried.append(fields)
                try:
                    return attempt(fields)
                except AuthenticationFailed as exc:
                    failure = exc
        if failure is None:  # pragma: no cover - the first pass always attempts AWSCURRENT
            raise KeysUnavailable
        raise failure

    def _check_served(self, partner: str) -> None:
        if partner not in self.partners:
            raise UnknownPartner

    def _may_refetch(self, partner: str) -> bool:
        with self._lock:
            now = self._clock()
            last = self._refetched_at.get(partner)
            if last is not None and now - last < self.refetch_interval:
                return False
            self._refetched_at[partner] = now
            return True

    def _versions(self, partner: str, *, force: bool) -> Iterator[SecretFields]:
        yield self._fields(partner, CURRENT, force=force)
        absent_since = self._no_previous_at.get(partner)
        if not force and absent_since is not None and self._clock() - absent_since < self.max_age:
            return
        try:
            previous = self._fetch(partner, PREVIOUS, force=force)
        except FetchFailed as failure:
            if not failure.not_found:
                raise failure.unavailable(partner) from None
            # Before the first rotation there is no AWSPREVIOUS: remember that, not ask on every bad token.
            self._no_previous_at[partner] = self._clock()
            return
        self._no_previous_at.pop(partner, None)
        yield previous

    def _fields(self, partner: str, stage: str, *, force: bool) -> SecretFields:
        try:
            return self._fetch(partner, stage, force=force)
        except FetchFailed as failure:
            raise failure.unavailable(partner) from None

    def _fetch(self, partner: str, stage: str, *, force: bool) -> SecretFields:
        """One version of the partner's secret (cached up to ``max_age`` unless ``force``).

        Raises ``FetchFailed`` when Secrets Manager fails, :class:`KeysUnavailable` when the value is
        unusable; both count in ``load_failures``, except a cached value already counted and a missing
        ``AWSPREVIOUS``.
        """
        try:
            value: VersionedText | FetchFailed = self._get_text(partner, stage, force=force)
        except FetchFailed as failure:
            value = failure
        return self._accept(partner, stage, value)

    def _accept(self, partner: str, stage: str, value: VersionedText | FetchFailed) -> SecretFields:
        """Count and raise a failed fetch, or validate (once per fetched value) and return its fields."""
        if isinstance(value, FetchFailed):
            if not (stage == PREVIOUS and value.not_found):  # no AWSPREVIOUS before the first rotation
                with self._lock:
                    self.load_failures += 1
            if stage == CURRENT:
                self._loaded.discard(partner)
            raise value
        with self._lock:
            seen = self._validated.get((partner, stage))
            if seen is not None and seen[0] is value:
                result = seen[1]
            else:
                result = _validate(partner, _parse(value), self._required[partner], value.version_id)
                self._validated[(partner, stage)] = (value, result)
                if isinstance(result, str):
                    self.load_failures += 1
        if isinstance(result, str):
            if stage == CURRENT:
                self._loaded.discard(partner)
            raise KeysUnavailable(result)
        if stage == CURRENT:
            self._loaded.add(partner)
        return result

    def by_version(self, partner: str, version_id: str) -> SecretFields | None:
        """The version ``version_id`` of the partner's secret, or None when Secrets Manager no longer has it.

        For a message protected before a rotation: versions are immutable, so each is fetched once.

        Raises
        ------
        KeysUnavailable
            Secrets Manager failed; the caller retries later.
        """
        self._check_served(partner)
        cached = self._versions_by_id.get((partner, version_id))
        if cached is not None:
            return cached
        if not 32 <= len(version_id) <= 64:  # GetSecretValue's own bound: no version of it can ever be found
            return None
        try:
            text = self._get(self.secret_name(partner), version_id=version_id)
        except FetchFailed as failure:
            if failure.not_found or failure.reason in _NO_SUCH_VERSION:
                return None
            raise failure.unavailable(partner) from None
        result = _validate(partner, _parse(text), self._required[partner], version_id)
        if isinstance(result, str):
            raise KeysUnavailable(result)
        self._versions_by_id[(partner, version_id)] = result
        return result

    def _get_text(self, partner: str, stage: str, *, force: bool) -> VersionedText:
        key = (partner, stage)
        cached = self._cache.get(key)
        now = self._clock()
        if not force and cached is not None and now - cached[0] < self.max_age:
            return cached[1]
        value = self._get(self.secret_name(partner), stage=stage)
        self._cache[key] = (now, value)
        return value

    def _get(self, name: str, *, stage: str | None = None, version_id: str | None = None) -> VersionedText:
        """One fetch: through the extension while it is configured and listening, else through the SDK."""
        extension = self.extension
        if extension is not None:
            try:
                return extension.get(name, stage=stage, version_id=version_id)
            except _ExtensionAbsent:
                self.extension = None  # not attached here: the SDK from now on
        return self._sdk.get(name, stage=stage, version_id=version_id)

    def _sdk_ready(self) -> None:
        """Make the SDK client before concurrent fetches (each would otherwise wait for the one making it)."""
        from sealgate.aws_clients import client

        try:
            client("secretsmanager")
        except Exception:  # the fetches report it, classified, each in its own way
            return


def _parse(text: str) -> object:
    """The secret's JSON, or None when it is not JSON (the caller names the partner, never the text)."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def _not_an_object(partner: str) -> str:
    return f"secret of partner {partner!r} is not a JSON object"


def _field_names(fields: Collection[str]) -> tuple[str, ...]:
    return (fields,) if isinstance(fields, str) else tuple(fields)
