"""Once-only work through Powertools Idempotency (DynamoDB): the gateway's one de-duplication mechanism.

Forward requests (per partner and idempotency key), deliveries to partners and partner notifications (per
partner and the notification's own id) each run at most once while their record lives. :func:`run_once`
also says whether this call did the work or found it done: the work returns the caller's ``token``, and a
replay returns the first caller's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sealgate.errors import InProgress, Unavailable


@dataclass(frozen=True)
class Once:
    """An idempotent function and its config (built once per process: they hold the persistence layer)."""

    function: Callable[..., Any]
    config: Any


def build(table: str, name: str, work: Callable[..., dict[str, Any]], *, expires_after_seconds: int) -> Once:
    """``work(key=..., job=...)`` made idempotent on ``key`` (a JSON object), records in ``table``."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from sealgate.aws_clients import client

    config = IdempotencyConfig(
        event_key_jmespath="@", raise_on_no_idempotency_key=True, expires_after_seconds=expires_after_seconds
    )
    store = DynamoDBPersistenceLayer(table_name=table, boto3_client=client("dynamodb"))

    def run(key: dict[str, Any], job: Any) -> dict[str, Any]:
        # Powertools deep-copies ``key`` (the record's source): plain JSON only; the job travels beside it.
        return work(job)

    run.__name__ = run.__qualname__ = name  # the record key names the work
    # Thread safety (a batch's records run this from several threads): every call makes its own
    # IdempotencyHandler and DataRecord, the DynamoDB client is thread-safe and the local cache stays off. What
    # is shared is the store's configuration, which Powertools sets on the first call, marking it configured
    # before setting it: a second thread would then use the defaults (a 1-hour expiry). So configure it now,
    # once, as the first call would (same function name); later calls find it done.
    store.configure(config=config, function_name=f"{run.__module__}.{run.__qualname__}")
    return Once(
        idempotent_function(data_keyword_argument="key", config=config, persistence_store=store)(run), config
    )


def run_once(
    once: Once, key: dict[str, Any], job: Any, lambda_context: Any = None
) -> tuple[dict[str, Any], bool]:
    """Run ``job`` once for ``key``: (its result, True) the first time, (the first result, False) after.

    Raises
    ------
    InProgress
        The same key is being worked on right now.
    Unavailable
        The idempotency table cannot be reached: nothing was done.
    """
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
    )

    if lambda_context is not None:  # the invocation's context: the same one from every thread of a batch
        once.config.register_lambda_context(lambda_context)
    token = uuid.uuid4().hex
    job.token = token
    try:
        result = once.function(key=key, job=job)
    except IdempotencyAlreadyInProgressError:
        raise InProgress() from None
    except IdempotencyPersistenceLayerError:
        raise Unavailable("idempotency store is unavailable") from None
    return result, result.get("token") == token
