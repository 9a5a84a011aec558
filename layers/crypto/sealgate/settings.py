"""The functions' configuration, read once from the environment the SAM template sets.

This is the only module of the layer that reads environment variables (Powertools and boto3 read their own:
``POWERTOOLS_*``, ``AWS_*``). Wire formats and actions take everything as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from sealgate.errors import KeysUnavailable

DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_SECRETS_MAX_AGE = 300
BASE_URL_PREFIX = "SEALGATE_BASE_URL_"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()):
        raise KeysUnavailable(f"{name} is not a whole number")  # a deployment error: refuse to serve
    return int(value)


@dataclass(frozen=True)
class Settings:
    stage: str = "dev"
    service: str = "sealgate"
    metrics_namespace: str = "Sealgate"
    secret_prefix: str = ""
    secrets_max_age: int = DEFAULT_SECRETS_MAX_AGE
    #: the Parameters and Secrets Lambda Extension's port when the template attaches it (None: boto3 only)
    secrets_extension_port: int | None = None
    profiles_dir: str | None = None
    inbound_queue_url: str = ""
    outbound_queue_url: str = ""
    outbound_dlq_url: str = ""
    outcomes_table: str = ""
    idempotency_table: str = ""
    forward_timeout: float = 10.0
    outcome_ttl_days: int = 30
    #: outbound delivery (see sealgate.actions.deliver): requests per message before it is dead-lettered, how
    #: long a message may wait untried, and the backoff between tries (whole seconds; SQS delays at most 900)
    max_attempts: int = 5
    max_wait_seconds: int = 86400
    backoff_base_seconds: int = 5
    backoff_cap_seconds: int = 900
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    webhook_ttl_seconds: int = 86400
    ca_bundle: str | None = None
    base_url_overrides: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        overrides = {
            k[len(BASE_URL_PREFIX) :].lower(): v
            for k, v in env.items()
            if k.startswith(BASE_URL_PREFIX) and v
        }
        return cls(
            stage=env.get("STAGE", "dev"),
            service=env.get("POWERTOOLS_SERVICE_NAME") or "sealgate",
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "Sealgate",
            secret_prefix=env.get("SEALGATE_SECRET_PREFIX", ""),
            secrets_max_age=_int(env, "SEALGATE_SECRETS_MAX_AGE", DEFAULT_SECRETS_MAX_AGE),
            secrets_extension_port=_int(env, "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", 0) or None,
            profiles_dir=env.get("SEALGATE_PROFILES_DIR") or None,
            inbound_queue_url=env.get("INBOUND_QUEUE_URL", ""),
            outbound_queue_url=env.get("OUTBOUND_QUEUE_URL", ""),
            outbound_dlq_url=env.get("OUTBOUND_DLQ_URL", ""),
            outcomes_table=env.get("OUTCOMES_TABLE", ""),
            idempotency_table=env.get("IDEMPOTENCY_TABLE", ""),
            forward_timeout=float(env.get("FORWARD_TIMEOUT_SECONDS") or 10),
            outcome_ttl_days=_int(env, "OUTCOME_TTL_DAYS", 30),
            max_attempts=max(1, _int(env, "OUTBOUND_MAX_ATTEMPTS", 5)),
            max_wait_seconds=_int(env, "OUTBOUND_MAX_WAIT_SECONDS", 86400),
            backoff_base_seconds=_int(env, "OUTBOUND_BACKOFF_BASE_SECONDS", 5),
            backoff_cap_seconds=min(900, _int(env, "OUTBOUND_BACKOFF_CAP_SECONDS", 900)),
            max_body_bytes=_int(env, "SEALGATE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            ca_bundle=env.get("SEALGATE_CA_BUNDLE") or None,
            base_url_overrides=overrides,
        )

    def base_url(self, partner: str, default: str) -> str:
        """The partner's base URL: the profile's, unless the deployment overrides it (``SEALGATE_BASE_URL_<P>``)."""
        url = self.base_url_overrides.get(partner, default)
        return url if url.endswith("/") else url + "/"
