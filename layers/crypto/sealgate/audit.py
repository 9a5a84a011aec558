"""One structured audit record per action (Powertools Logger, JSON).

A record holds who did what to which partner and how it ended, with field NAMES only: never values, keys,
MD5 receipts of values (an MD5 of an 11-digit CPF is as good as the CPF), card numbers or CVVs. The
signature is keyword-only and typed so that a value cannot slip in by position.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from sealgate.telemetry import logger

Outcome = Literal["ok", "refused", "failed", "queued", "retry", "duplicate"]


def record(
    *,
    action: str,
    partner: str | None,
    outcome: Outcome,
    reason: str,
    request_id: str | None,
    caller: str | None,
    fields: Iterable[str] = (),
    status: int | None = None,
    **flags: bool,
) -> None:
    """Emit the audit record of one action. ``reason`` is a stable code (``ok``, ``mac_mismatch``...)."""
    entry: dict[str, object] = {
        "action": action,
        "partner": partner,
        "outcome": outcome,
        "reason": reason,
        "request_id": request_id,
        "caller": caller,
        "fields": sorted(set(fields)),
    }
    if status is not None:
        entry["status"] = status
    entry.update(flags)  # e.g. credentials_released: a fact about the action, never a value
    logger.info("audit", audit=entry)
