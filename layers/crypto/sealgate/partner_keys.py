"""Partner secrets from AWS Secrets Manager: loaded at cold start, rotation-aware, refused when unusable.

One secret per partner, named ``<prefix><partner>`` (``sealgate/<stage>/<partner>``), holding one JSON object
whose values are all strings, e.g. Netcore::

    {"key": "<hex>", "iv": "<hex>", "api_key": "...", "asset_id": "..."}

Versions used:

- outbound work (:meth:`PartnerSecrets.current`): ``AWSCURRENT``;
- inbound verification and decryption (:meth:`PartnerSecrets.try_each`): ``AWSCURRENT``, then ``AWSPREVIOUS``
  (absent before the first rotation), then, at most once per ``refetch_interval`` per partner, both again
  fetched afresh. A version equal to one already attempted is not attempted again.

Values come through Powertools' ``SecretsProvider`` (cache of ``max_age`` seconds), kept with their
``VersionId`` so that a message protected before a rotation can be matched to its key version. Its cache
key ignores ``VersionStage``, so ``AWSPREVIOUS`` has a provider of its own. Both share the process's
Secrets Manager client (:mod:`sealgate.aws_clients`: short timeouts, so an outage answers within Lambda's init
phase); the endpoint comes from boto3's standard ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` variables.

No value of a secret ever reaches a message, a repr or an exception chain: messages name the partner, the
field, and the AWS error code at most.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from sealgate.errors import AuthenticationFailed, KeysUnavailable, UnknownPartner

if TYPE_CHECKING:
    from sealgate.settings import Settings

T = TypeVar("T")

CURRENT: Final = "AWSCURRENT"
PREVIOUS: Final = "AWSPREVIOUS"

DEFAULT_MAX_AGE: Final = 300


#: Secrets Manager's answers to a VersionId it will never find (besides ResourceNotFoundException)
_NO_SUCH_VERSION = frozenset({"InvalidParameterException", "InvalidRequestException", "ValidationException"})


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


class _FetchFailed(Exception):
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


def _fetch_failure(exc: BaseException) -> _FetchFailed:
    """Classify a failed GetSecretValue by the botocore error behind it (Powertools wraps it)."""
    for cause in (exc, exc.__cause__, exc.__context__):
        if isinstance(cause, ClientError):
            code = str(cause.response.get("Error", {}).get("Code", "ClientError"))
            code = "".join(c for c in code if c.isalnum() or c in "._-")[:64] or "ClientError"
            return _FetchFailed(code, not_found=code == "ResourceNotFoundException")
        if isinstance(cause, BotoCoreError):
            # Connection refused, timeouts, no credentials, no region: every secret fails the same way.
            return _FetchFailed(type(cause).__name__, unreachable=True)
    return _FetchFailed(type(exc).__name__)


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
        Monotonic seconds, for the refetch rate limit (injected by tests).
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
        self._providers: dict[str, SecretsProvider] = {}
        self._loaded: set[str] = set()
        # (partner, stage) -> (value Powertools returned, its validation): a cached value is not recounted.
        self._validated: dict[tuple[str, str], tuple[_VersionedText, SecretFields | str]] = {}
        self._no_previous_at: dict[str, float] = {}
        self._refetched_at: dict[str, float] = {}
        self._versions_by_id: dict[tuple[str, str], SecretFields] = {}
        # A batch's deliveries read secrets from several threads. Fetches run unlocked (Powertools' cache is a
        # dict: at worst two threads fetch one value, and an outage is not waited out once per thread); the
        # bookkeeping that reads then writes (providers, validations and their count, refetch times) is locked.
        # ``_versions_by_id`` and ``_loaded`` take single writes of equal values.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        partners: Iterable[str],
        required: Mapping[str, Collection[str]] | None = None,
    ) -> PartnerSecrets:
        """Build for ``partners`` with the prefix and cache age of ``settings``.

        Raises
        ------
        KeysUnavailable
            The prefix is missing while partners are served.
        """
        partners = list(partners)
        if partners and not settings.secret_prefix:
            raise KeysUnavailable("SEALGATE_SECRET_PREFIX is not set")
        return cls(
            partners, prefix=settings.secret_prefix, max_age=settings.secrets_max_age, required=required
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

    def secret_name(self, partner: str) -> str:
        """Name of the partner's secret in Secrets Manager."""
        return self.prefix + partner

    def load(self) -> None:
        """Fetch ``AWSCURRENT`` of every served partner not loaded yet; never raises.

        A failure is counted in ``load_failures`` and leaves ``ready`` False; the next :meth:`load` or
        :meth:`current` tries again. When Secrets Manager cannot be reached, the remaining partners are not
        tried: they would each wait for the same timeouts.
        """
        for partner in sorted(self.partners - self._loaded):
            try:
                self._fetch(partner, CURRENT, force=False)
            except _FetchFailed as failure:
                if failure.unreachable:
                    return
            except KeysUnavailable:
                continue

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
        except _FetchFailed as failure:
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
        except _FetchFailed as failure:
            raise failure.unavailable(partner) from None

    def _fetch(self, partner: str, stage: str, *, force: bool) -> SecretFields:
        """One version of the partner's secret (cached up to ``max_age`` unless ``force``).

        Raises ``_FetchFailed`` when Secrets Manager fails, :class:`KeysUnavailable` when the value is
        unusable; both count in ``load_failures``, except a cached value already counted and a missing
        ``AWSPREVIOUS``.
        """
        try:
            value = self._get_text(partner, stage, force=force)
        except _FetchFailed as failure:
            if not (stage == PREVIOUS and failure.not_found):  # no AWSPREVIOUS before the first rotation
                with self._lock:
                    self.load_failures += 1
            if stage == CURRENT:
                self._loaded.discard(partner)
            raise
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
        try:
            answer = self._client().get_secret_value(SecretId=self.secret_name(partner), VersionId=version_id)
        except ParamValidationError:  # not a VersionId at all: no version of it can ever be found
            return None
        except (ClientError, BotoCoreError, ValueError) as exc:
            failure = _fetch_failure(exc)
            if failure.not_found or failure.reason in _NO_SUCH_VERSION:
                return None
            raise failure.unavailable(partner) from None
        result = _validate(
            partner, _parse(answer.get("SecretString", "")), self._required[partner], version_id
        )
        if isinstance(result, str):
            raise KeysUnavailable(result)
        self._versions_by_id[(partner, version_id)] = result
        return result

    def _get_text(self, partner: str, stage: str, *, force: bool) -> _VersionedText:
        failure: _FetchFailed
        try:
            provider = self._provider(stage)
        except (BotoCoreError, ValueError) as exc:
            # No region, unknown profile, malformed endpoint URL: no secret can be fetched.
            failure = _FetchFailed(type(exc).__name__, unreachable=True)
        else:
            try:
                value = provider.get(
                    self.secret_name(partner), max_age=self.max_age, force_fetch=force, VersionStage=stage
                )
                return value if isinstance(value, _VersionedText) else _VersionedText(str(value))
            except (GetParameterError, ClientError, BotoCoreError) as exc:
                failure = _fetch_failure(exc)
        raise failure

    def _client(self) -> Any:
        from sealgate.aws_clients import client

        return client("secretsmanager")

    def _provider(self, stage: str) -> SecretsProvider:
        with self._lock:  # one pair per process: a second would start with an empty cache
            if not self._providers:
                client = self._client()
                # Two providers: Powertools' cache key ignores VersionStage.
                self._providers = {
                    version: _VersionedSecrets(boto3_client=client) for version in (CURRENT, PREVIOUS)
                }
            return self._providers[stage]


class _VersionedText(str):
    """A secret's text, carrying the ``VersionId`` Secrets Manager returned with it."""

    __slots__ = ("version_id",)
    version_id: str | None

    def __new__(cls, text: str, version_id: str | None = None) -> _VersionedText:
        made = super().__new__(cls, text)
        made.version_id = version_id
        return made

    def __repr__(self) -> str:
        return f"_VersionedText(version_id={self.version_id!r})"


class _VersionedSecrets(SecretsProvider):
    """Powertools' provider (cache, max age, force fetch), keeping the ``VersionId`` of what it fetched."""

    def _get(self, name: str, **sdk_options: Any) -> str:
        sdk_options["SecretId"] = name
        answer = self.client.get_secret_value(**sdk_options)
        return _VersionedText(answer.get("SecretString", ""), answer.get("VersionId"))


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
