"""What one function holds from its cold start on: settings, the partners it serves, their keys.

Built once per process by :meth:`Runtime.start` (the handler's module scope): it loads the profiles, keeps the
partners the function serves (:func:`sealgate.partners.served_by`) and fetches their secrets' ``AWSCURRENT``
(concurrently, through the Parameters and Secrets Lambda Extension where attached: :mod:`sealgate.partner_keys`).
An outage never makes the start fail: the keys are fetched again on the next use.

Under Lambda SnapStart (the template's ``SnapStart`` parameter) the start runs once per published version and
its memory is snapshotted. :func:`before_snapshot` and :func:`after_restore`, registered with the runtime's
``snapshot_restore_py`` hooks, keep what a snapshot must not carry out of it: no partner key and no AesBridge
salt lease is in the snapshot (each restored environment fetches its keys afresh and draws its own salts), and
no AWS client or partner connection pooled before the snapshot is reused after it (their peers long closed).
Nothing else holds random state: nonces, IVs, salts and ids come from ``os.urandom`` at each use.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sealgate import audit, metric_names
from sealgate.errors import SealgateError, Unavailable, UnknownPartner
from sealgate.outcomes import OutcomeStore
from sealgate.partner_keys import PartnerSecrets
from sealgate.partners import Function, Profile, load_profiles, served_by
from sealgate.settings import Settings
from sealgate.telemetry import count, metrics


@dataclass
class AuditEntry:
    """What an action says of itself for its audit record (names only, never values)."""

    fields: list[str] = field(default_factory=list)
    outcome: audit.Outcome = "ok"
    reason: str = "ok"
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Caller:
    """Who asked: the API Gateway request id and IAM caller, or the SQS message id."""

    request_id: str | None = None
    caller: str | None = None


class Runtime:
    """One function's partners, keys and stores."""

    def __init__(
        self, function: Function, settings: Settings, profiles: Mapping[str, Profile], secrets: PartnerSecrets
    ) -> None:
        self.function = function
        self.settings = settings
        self.profiles = dict(profiles)
        self.secrets = secrets
        self._reported_load_failures = 0
        self._once: dict[str, Any] = {}
        # A batch's records are delivered from several threads: an object is built by the first to need it.
        self._once_lock = threading.RLock()

    @classmethod
    def start(cls, function: Function, settings: Settings | None = None) -> Runtime:
        """Cold start: read the settings and profiles, load the served partners' secrets (never raises on an
        outage; a malformed profile raises, failing the deployment's first invocation and its tests)."""
        settings = Settings.from_environment() if settings is None else settings
        extra = (settings.profiles_dir,) if settings.profiles_dir else ()
        profiles = served_by(function, load_profiles(extra))
        required = {name: profile.secret_fields for name, profile in profiles.items()}
        secrets = PartnerSecrets.from_settings(settings, profiles, required)
        metrics.namespace = settings.metrics_namespace
        metrics.service = settings.service
        metrics.set_default_dimensions(stage=settings.stage)
        runtime = cls(function, settings, profiles, secrets)
        secrets.load()
        register_snapstart_hooks(runtime)
        return runtime

    @cached_property  # not locked (3.12+): two threads may build one each, equal and stateless
    def outcomes(self) -> OutcomeStore:
        return OutcomeStore(self.settings.outcomes_table, ttl_days=self.settings.outcome_ttl_days)

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

    def once(self, name: str, build: Callable[[], Any]) -> Any:
        """A per-process object built on first use (idempotent functions hold their persistence layer), once
        even when several threads ask at the same time."""
        if name not in self._once:  # entries are never removed: a hit needs no lock
            with self._once_lock:  # re-entrant: a build may itself ask for another object
                if name not in self._once:
                    self._once[name] = build()
        return self._once[name]

    def report_key_failures(self) -> None:
        """Emit ``KeyLoadFailed`` for the Secrets Manager failures since the last report."""
        failures = self.secrets.load_failures
        if failures > self._reported_load_failures:
            count(metric_names.KEY_LOAD_FAILED, value=failures - self._reported_load_failures)
            self._reported_load_failures = failures

    @contextmanager
    def audited(self, action: str, partner: str | None, caller: Caller) -> Iterator[AuditEntry]:
        """One audit record for the action in the ``with`` block, however it ends."""
        entry = AuditEntry()
        try:
            yield entry
        except SealgateError as error:
            entry.outcome = "failed" if isinstance(error, Unavailable) else "refused"
            entry.reason = error.code
            entry.status = error.http_status
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
                request_id=caller.request_id,
                caller=caller.caller,
                fields=entry.fields,
                status=entry.status,
                **entry.extra,
            )


def reporting_key_failures(runtime: Runtime) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Handler middleware: after every invocation, emit ``KeyLoadFailed`` for the Secrets Manager failures
    since the last one (the cold start's included), whatever the invocation did."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapped(event: Any, context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                runtime.report_key_failures()

        return wrapped

    return decorate


def before_snapshot(runtime: Runtime) -> None:
    """SnapStart, before the snapshot: drop the partner keys and AesBridge salt leases (nothing secret in it)."""
    runtime.secrets.forget()
    _clear_aesbridge_leases()


def after_restore(runtime: Runtime) -> None:
    """SnapStart, after a restore: new AWS clients and partner connections on first use, the keys fetched
    afresh now (concurrently; an outage is retried on the next use, as at a cold start)."""
    from sealgate import aws_clients

    aws_clients.reset()
    partner_http = sys.modules.get("sealgate.partner_http")
    for manager in list(getattr(partner_http, "_pool_managers", {}).values()):
        manager.clear()  # closes the pooled connections; the next request opens its own
    runtime.secrets.forget()
    _clear_aesbridge_leases()
    runtime.secrets.load()


def register_snapstart_hooks(runtime: Runtime) -> bool:
    """Register :func:`before_snapshot` and :func:`after_restore` with Lambda's runtime hooks; False where the
    runtime has none (``snapshot_restore_py`` ships with Lambda's Python 3.12+ runtimes, not elsewhere)."""
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return False
    register_before_snapshot(before_snapshot, runtime)
    register_after_restore(after_restore, runtime)
    return True


def _clear_aesbridge_leases() -> None:
    kdf = sys.modules.get("sealgate.schemes.aesbridge_kdf")  # loaded only where an AesBridge partner was used
    if kdf is not None:
        kdf.DEFAULT_ENCRYPTION_KEYS.clear()
