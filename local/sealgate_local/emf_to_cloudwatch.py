"""The functions' EMF lines into CloudWatch (moto's, locally), as Lambda's log extraction would put them, and back.

In Lambda, CloudWatch Logs turns every line in the Embedded Metric Format into metric data. Locally
:class:`EmfToCloudWatch` does the same with ``PutMetricData``, for each EMF record that
:class:`sealgate_local.function_logs.FunctionLogs` collects:

- one datum per metric per dimension set of each ``_aws.CloudWatchMetrics`` directive, in its ``Namespace``;
  a dimension's value is the record's member of that name (a dimension set naming a member that is missing or
  not a string yields nothing, as CloudWatch would reject it);
- the metric's member as ``Values`` (EMF allows one number or a list; each is one observation), with the
  ``Unit`` and ``StorageResolution`` of the metric's definition;
- ``Timestamp`` from ``_aws.Timestamp`` (milliseconds since the epoch).

Reading back, :func:`statistics` asks ``GetMetricData`` for one value per series over a time window, and
:func:`totals` sums every series there is. ``GetMetricData`` matches dimensions exactly, as CloudWatch does;
moto's ``GetMetricStatistics`` matches any series holding the dimensions asked for, so it would add the
partner-dimensioned series of a metric to its stage-wide one.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.literals import StandardUnitType
    from mypy_boto3_cloudwatch.type_defs import (
        DimensionTypeDef,
        MetricDataQueryTypeDef,
        MetricDatumTypeDef,
        MetricTypeDef,
    )

#: CloudWatch's limits: data per ``PutMetricData`` call, queries per ``GetMetricData`` call.
PUT_BATCH = 1000
QUERY_BATCH = 500

_COMBINE: dict[str, Callable[[Sequence[float]], float]] = {
    "Sum": math.fsum,
    "SampleCount": math.fsum,
    "Maximum": max,
    "Minimum": min,
}


@dataclass(frozen=True, order=True)
class Series:
    """One CloudWatch metric: namespace, name and dimensions (sorted by name)."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, metric: Mapping[str, Any]) -> Series:
        """From CloudWatch's shape (``Namespace``, ``MetricName``, ``Dimensions``), as an alarm or
        ``ListMetrics`` gives it."""
        dimensions = tuple(sorted((str(d["Name"]), str(d["Value"])) for d in metric.get("Dimensions") or []))
        return cls(str(metric["Namespace"]), str(metric["MetricName"]), dimensions)

    @property
    def metric(self) -> MetricTypeDef:
        """CloudWatch's shape, for a query."""
        return {
            "Namespace": self.namespace,
            "MetricName": self.name,
            "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
        }

    def dimension(self, name: str) -> str | None:
        return dict(self.dimensions).get(name)


# --- EMF -> PutMetricData -----------------------------------------------------------------------------------


def metric_data(record: Mapping[str, Any]) -> list[tuple[str, list[MetricDatumTypeDef]]]:
    """The ``PutMetricData`` arguments (namespace, data) of one EMF record; empty if it is not one. Whatever
    does not have EMF's shape is skipped, never raised on."""
    aws = record.get("_aws")
    if not isinstance(aws, Mapping):
        return []
    timestamp = _timestamp(aws.get("Timestamp"))
    found: list[tuple[str, list[MetricDatumTypeDef]]] = []
    for directive in aws.get("CloudWatchMetrics") or []:
        namespace = directive.get("Namespace") if isinstance(directive, Mapping) else None
        if not isinstance(namespace, str) or not namespace:
            continue
        data: list[MetricDatumTypeDef] = []
        for dimension_set in directive.get("Dimensions") or [[]]:
            if not isinstance(dimension_set, list):
                continue
            members = {str(name): record.get(str(name)) for name in dimension_set}
            if not all(isinstance(value, str) and value for value in members.values()):
                continue
            dimensions: list[DimensionTypeDef] = [
                {"Name": name, "Value": str(value)} for name, value in members.items()
            ]
            for definition in directive.get("Metrics") or []:
                name = definition.get("Name") if isinstance(definition, Mapping) else None
                values = _values(record.get(name)) if isinstance(name, str) else []
                if not values:
                    continue
                datum: MetricDatumTypeDef = {
                    "MetricName": str(name),
                    "Dimensions": dimensions,
                    "Values": values,
                }
                if timestamp is not None:
                    datum["Timestamp"] = timestamp
                if isinstance(definition.get("Unit"), str):
                    datum["Unit"] = cast("StandardUnitType", definition["Unit"])
                if isinstance(definition.get("StorageResolution"), int):
                    datum["StorageResolution"] = definition["StorageResolution"]
                data.append(datum)
        if data:
            found.append((namespace, data))
    return found


class EmfToCloudWatch:
    """Publishes EMF records with ``PutMetricData``; a call that fails is counted in ``failed``, never raised
    (the caller is a worker's log reader, which must keep reading). Thread-safe."""

    def __init__(self, cloudwatch: CloudWatchClient) -> None:
        self._cloudwatch = cloudwatch
        self._lock = threading.Lock()
        self.published = 0
        self.failed = 0

    def __call__(self, record: Mapping[str, Any]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for namespace, data in metric_data(record):
            for batch in _batches(data, PUT_BATCH):
                try:
                    self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)
                except (BotoCoreError, ClientError):
                    with self._lock:
                        self.failed += len(batch)
                else:
                    with self._lock:
                        self.published += len(batch)


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return None


def _values(raw: Any) -> list[float]:
    """An EMF metric member as numbers: one number or a list of them (anything else, or NaN, is dropped)."""
    items = raw if isinstance(raw, list) else [raw]
    return [
        float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]


# --- CloudWatch -> numbers ----------------------------------------------------------------------------------


def statistics(
    cloudwatch: CloudWatchClient,
    series: Collection[Series],
    statistic: str,
    *,
    start: datetime,
    end: datetime,
) -> dict[Series, float]:
    """``statistic`` of each series over [start, end] (whole seconds, widened outwards), as one period; a series
    without data in the window is left out."""
    start = start.replace(microsecond=0)
    end = end.replace(microsecond=0) + timedelta(seconds=1)
    # One period covers the window: the smallest multiple of 60 s that holds it.
    period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
    ids = {f"m{index}": one for index, one in enumerate(dict.fromkeys(series))}
    values: dict[str, list[float]] = {}
    chunks = [list(ids)[offset : offset + QUERY_BATCH] for offset in range(0, len(ids), QUERY_BATCH)]
    for chunk in chunks:
        queries: list[MetricDataQueryTypeDef] = [
            {
                "Id": query_id,
                "MetricStat": {"Metric": ids[query_id].metric, "Period": period, "Stat": statistic},
                "ReturnData": True,
            }
            for query_id in chunk
        ]
        for page in cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end
        ):
            for result in page.get("MetricDataResults", []):
                values.setdefault(result["Id"], []).extend(result.get("Values", []))
    combine = _COMBINE.get(statistic, _only)
    return {ids[query_id]: float(combine(found)) for query_id, found in values.items() if found}


def _only(values: Sequence[float]) -> float:
    """The one value of a one-period window (an average or percentile does not add up across periods)."""
    return values[0]


def totals(
    cloudwatch: CloudWatchClient, *, start: datetime, end: datetime, namespace: str | None = None
) -> dict[Series, float]:
    """The sum of every series CloudWatch lists (in ``namespace``, or all) over [start, end]."""
    listed: set[Series] = set()
    paginator = cloudwatch.get_paginator("list_metrics")
    pages = paginator.paginate() if namespace is None else paginator.paginate(Namespace=namespace)
    for page in pages:
        listed.update(Series.of(metric) for metric in page.get("Metrics", []))  # moto repeats series
    return statistics(cloudwatch, sorted(listed), "Sum", start=start, end=end)


def _batches(data: list[MetricDatumTypeDef], size: int) -> Iterator[list[MetricDatumTypeDef]]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]
