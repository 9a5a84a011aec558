"""What the functions print, collected: Powertools JSON log lines, audit records and EMF metric lines.

Every line a worker writes to stderr comes here (:meth:`FunctionLogs.feed`). Lines are kept in memory only;
:meth:`FunctionLogs.summary` counts audit records by action and outcome, and metric values by name, which
is what ``make demo`` shows. Audit records hold field names, never values (see :mod:`sealgate.audit`).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetricPoint:
    """One metric value from an EMF line, with the dimensions it was published under."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class Summary:
    """Counts over everything collected so far."""

    audit: Counter[tuple[str, str]]
    metrics: Counter[str]
    signature_failures: Counter[str]
    unhandled_errors: int


class FunctionLogs:
    """Collects the lines of every worker; thread-safe. ``echo`` sees each line as it arrives."""

    def __init__(self, echo: Callable[[str, str], None] | None = None) -> None:
        self._echo = echo
        self._lock = threading.Lock()
        self.lines: list[tuple[str, str]] = []
        self.audit_records: list[dict[str, Any]] = []
        self.metric_points: list[MetricPoint] = []
        self.tracebacks = 0

    def feed(self, function: str, line: str) -> None:
        """Take one line printed by ``function``."""
        record = _json_object(line)
        with self._lock:
            self.lines.append((function, line))
            if record is None:
                if line.startswith("Traceback "):
                    self.tracebacks += 1
            elif isinstance(record.get("_aws"), dict):
                self.metric_points.extend(_emf_points(record))
            elif record.get("message") == "audit" and isinstance(record.get("audit"), dict):
                self.audit_records.append({**record["audit"], "function": function})
        if self._echo is not None:
            self._echo(function, line)

    def audits(self, **match: Any) -> list[dict[str, Any]]:
        """Audit records whose fields equal every ``match`` (e.g. ``action="webhook", outcome="ok"``)."""
        with self._lock:
            records = list(self.audit_records)
        return [r for r in records if all(r.get(k) == v for k, v in match.items())]

    def metric_sum(
        self, namespace: str, name: str, dimensions: Mapping[str, str] | None = None
    ) -> float | None:
        """Sum of ``name`` published under exactly ``dimensions`` (any, if None); None without data."""
        wanted = None if dimensions is None else tuple(sorted(dimensions.items()))
        with self._lock:
            values = [
                p.value
                for p in self.metric_points
                if p.namespace == namespace and p.name == name and (wanted is None or p.dimensions == wanted)
            ]
        return sum(values) if values else None

    def summary(self) -> Summary:
        with self._lock:
            audit = Counter((str(r.get("action")), str(r.get("outcome"))) for r in self.audit_records)
            metrics: Counter[str] = Counter()
            signature: Counter[str] = Counter()
            for point in self.metric_points:
                dims = dict(point.dimensions)
                if "partner" not in dims:
                    metrics[point.name] += int(point.value)
                elif point.name == "SignatureCheckFailed":
                    signature[dims["partner"]] += int(point.value)
            return Summary(audit, metrics, signature, self.tracebacks)


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _emf_points(record: Mapping[str, Any]) -> list[MetricPoint]:
    """The metric values of one EMF line, one point per value per dimension set."""
    points: list[MetricPoint] = []
    for directive in record["_aws"].get("CloudWatchMetrics") or []:
        namespace = str(directive.get("Namespace", ""))
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = tuple(sorted((str(d), str(record.get(d, ""))) for d in dimension_set))
            for metric in directive.get("Metrics") or []:
                name = str(metric.get("Name", ""))
                raw = record.get(name)
                values = raw if isinstance(raw, list) else [raw]
                points.extend(
                    MetricPoint(namespace, name, dimensions, float(v))
                    for v in values
                    if isinstance(v, int | float)
                )
    return points
