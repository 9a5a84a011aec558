"""What the functions print, collected: Powertools JSON log lines, audit records and EMF metric lines.

Every line a worker writes to stderr comes here (:meth:`FunctionLogs.feed`). Lines and audit records are kept
in memory; :meth:`FunctionLogs.summary` counts audit records by action and outcome, which is what ``make demo``
shows. Audit records hold field names, never values (see :mod:`sealgate.audit`).

EMF records go on to ``emf_sink``: the local stack points it at moto's CloudWatch
(:class:`sealgate_local.emf_to_cloudwatch.EmfToCloudWatch`), where the metric counts and the alarms' numbers
are then read, as they would be in AWS. The sink runs on the worker's log reader, before the invocation that
printed the line returns, so a metric is in CloudWatch once its invocation has answered.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

EmfSink = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Summary:
    """Counts over everything collected so far."""

    audit: Counter[tuple[str, str]]
    emf_records: int
    unhandled_errors: int


class FunctionLogs:
    """Collects the lines of every worker; thread-safe. ``echo`` sees each line as it arrives, ``emf_sink``
    each EMF record."""

    def __init__(
        self, echo: Callable[[str, str], None] | None = None, emf_sink: EmfSink | None = None
    ) -> None:
        self._echo = echo
        self.emf_sink = emf_sink
        self._lock = threading.Lock()
        self.lines: list[tuple[str, str]] = []
        self.audit_records: list[dict[str, Any]] = []
        self.emf_records = 0
        self.tracebacks = 0

    def feed(self, function: str, line: str) -> None:
        """Take one line printed by ``function``."""
        record = _json_object(line)
        emf = record if record is not None and isinstance(record.get("_aws"), dict) else None
        with self._lock:
            self.lines.append((function, line))
            if record is None:
                if line.startswith("Traceback "):
                    self.tracebacks += 1
            elif emf is not None:
                self.emf_records += 1
            elif record.get("message") == "audit" and isinstance(record.get("audit"), dict):
                self.audit_records.append({**record["audit"], "function": function})
        sink = self.emf_sink
        if emf is not None and sink is not None:
            sink(emf)
        if self._echo is not None:
            self._echo(function, line)

    def audits(self, **match: Any) -> list[dict[str, Any]]:
        """Audit records whose fields equal every ``match`` (e.g. ``action="webhook", outcome="ok"``)."""
        with self._lock:
            records = list(self.audit_records)
        return [r for r in records if all(r.get(k) == v for k, v in match.items())]

    def summary(self) -> Summary:
        with self._lock:
            audit = Counter((str(r.get("action")), str(r.get("outcome"))) for r in self.audit_records)
            return Summary(audit, self.emf_records, self.tracebacks)


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
