"""Which of ``template.yaml``'s CloudWatch alarms would fire, judged on what CloudWatch (moto's) holds.

The local stack creates the template's alarms in moto (:mod:`sealgate_local.aws_stack`), but moto stores alarms
without ever evaluating them, so this module does (:func:`judge`). Each alarm's definition comes from
``DescribeAlarms`` (:func:`describe`: threshold, comparison, metric or metric-math queries); each metric's
value from ``GetMetricData`` on moto for the functions' own metrics (their EMF lines, published by
:mod:`sealgate_local.emf_to_cloudwatch`), and from the caller for the AWS service metrics (``AWS/...``), which
moto does not produce.

An alarm is judged on one evaluation period, its ``Period`` up to now (``EvaluationPeriods`` is 1 for every
alarm of the template; a demo lasts well under its 5 minutes). Metric math is evaluated here as well: moto's
``GetMetricData`` computes an expression only when it is a bare query id (no arithmetic, no ``FILL``).
``INSIGHT_RULE_METRIC`` (Contributor Insights over the API's access logs) has no data locally.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sealgate_local.emf_to_cloudwatch import Series, statistics

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricAlarmTypeDef

#: ``datapoint(series, statistic, period)``: the statistic of the series over the period up to now, None
#: without data.
Datapoint = Callable[[Series, str, int], float | None]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


@dataclass(frozen=True)
class AlarmState:
    """One alarm: the value observed (None: no data), its threshold, and whether it would fire."""

    logical_id: str
    name: str
    description: str
    value: float | None
    threshold: float
    firing: bool


def judge(
    cloudwatch: CloudWatchClient,
    names: Mapping[str, str],
    *,
    service_metric: Callable[[Series], float | None],
    now: datetime | None = None,
) -> list[AlarmState]:
    """The alarms ``names`` lists (logical id -> alarm name), as CloudWatch holds them, judged on what it holds
    over each alarm's period up to ``now``; ``service_metric`` answers for the ``AWS/...`` namespaces."""
    end = now or datetime.now(UTC)

    def datapoint(series: Series, statistic: str, period: int) -> float | None:
        if series.namespace.startswith("AWS/"):
            return service_metric(series)
        start = end - timedelta(seconds=period)
        return statistics(cloudwatch, [series], statistic, start=start, end=end).get(series)

    return evaluate(describe(cloudwatch, names), datapoint)


def describe(cloudwatch: CloudWatchClient, names: Mapping[str, str]) -> dict[str, MetricAlarmTypeDef]:
    """The alarms ``names`` lists (logical id -> alarm name) as CloudWatch holds them, by logical id, in the
    order of ``names``; :class:`KeyError` if one is missing."""
    held: dict[str, MetricAlarmTypeDef] = {}
    listed = list(names.values())
    for offset in range(0, len(listed), 100):  # DescribeAlarms takes at most 100 names
        paginator = cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmNames=listed[offset : offset + 100], AlarmTypes=["MetricAlarm"]):
            held.update((alarm.get("AlarmName", ""), alarm) for alarm in page.get("MetricAlarms", []))
    missing = sorted(set(listed) - set(held))
    if missing:
        raise KeyError(f"alarms not in CloudWatch: {missing}")
    return {logical_id: held[name] for logical_id, name in names.items()}


def evaluate(alarms: Mapping[str, Mapping[str, Any]], datapoint: Datapoint) -> list[AlarmState]:
    """Judge each alarm (by logical id, in CloudWatch's ``MetricAlarm`` shape) on the numbers ``datapoint``
    gives; in the order of ``alarms``."""
    states: list[AlarmState] = []
    for logical_id, alarm in alarms.items():
        threshold = float(alarm["Threshold"])
        if alarm.get("Metrics"):
            value = _metric_math(alarm["Metrics"], datapoint)
        else:
            value = datapoint(Series.of(alarm), str(alarm.get("Statistic", "Sum")), int(alarm["Period"]))
        compare = _COMPARE[str(alarm.get("ComparisonOperator", "GreaterThanOrEqualToThreshold"))]
        firing = value is not None and compare(value, threshold)
        name, description = str(alarm.get("AlarmName", logical_id)), str(alarm.get("AlarmDescription", ""))
        states.append(AlarmState(logical_id, name, description, value, threshold, firing))
    return states


def _metric_math(queries: list[Mapping[str, Any]], datapoint: Datapoint) -> float | None:
    """The value of the query with ``ReturnData: true``, its expression over the other queries' values."""
    known: dict[str, float | None] = {}
    result: float | None = None
    for query in queries:
        if "MetricStat" in query:
            metric = query["MetricStat"]
            value = datapoint(Series.of(metric["Metric"]), str(metric["Stat"]), int(metric["Period"]))
        else:
            value = _expression(str(query["Expression"]), known)
        known[str(query["Id"])] = value
        if query.get("ReturnData", True):
            result = value
    return result


def _divide(left: float, right: float) -> float | None:
    return None if right == 0 else left / right


_BINARY: dict[type[ast.operator], Callable[[float, float], float | None]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide,
}


def _expression(text: str, known: Mapping[str, float | None]) -> float | None:
    """Arithmetic over query ids with ``FILL(id, constant)``; None when a term has no data or divides by 0."""

    def walk(node: ast.expr) -> float | None:
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            return float(node.value)
        if isinstance(node, ast.Name):
            return known.get(node.id)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "INSIGHT_RULE_METRIC"
        ):
            # Contributor Insights ranks the API's access-log lines, which only a deployed stage writes (to
            # CloudWatch Logs): locally such an alarm has no data, as a deployed one has before any traffic.
            return None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "FILL":
            filled = walk(node.args[0])
            return walk(node.args[1]) if filled is None else filled
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            return None if left is None or right is None else _BINARY[type(node.op)](left, right)
        raise ValueError(f"unsupported metric math: {text!r}")

    return walk(ast.parse(text, mode="eval").body)
