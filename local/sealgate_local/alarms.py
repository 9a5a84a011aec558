"""Which of ``template.yaml``'s CloudWatch alarms would fire, judged from what the local stack observed.

Each ``AWS::CloudWatch::Alarm`` is read from the template (threshold, comparison, metric or metric-math
expression); the numbers come from a ``datapoint(namespace, name, dimensions, statistic)`` callable that the
local stack answers from the functions' EMF lines, the workers' unhandled errors and the queues' depths.
The whole local run counts as one evaluation period (a demo lasts well under the alarms' 5 minutes).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Datapoint = Callable[[str, str, Mapping[str, str], str], float | None]

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
    description: str
    value: float | None
    threshold: float
    firing: bool


def evaluate(
    template: Mapping[str, Any],
    datapoint: Datapoint,
    *,
    parameters: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> list[AlarmState]:
    """Every alarm of the template, in template order. ``parameters`` override the template's defaults;
    ``names`` give the physical names of resources that dimensions refer to (``Ref`` / ``Fn::GetAtt``)."""
    values = {
        name: str(spec["Default"])
        for name, spec in (template.get("Parameters") or {}).items()
        if "Default" in spec
    }
    values.update(parameters or {})

    def resolve(value: Any) -> str:
        if isinstance(value, dict) and "Ref" in value:
            return values.get(value["Ref"]) or (names or {}).get(value["Ref"], value["Ref"])
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id = value["Fn::GetAtt"][0]
            return (names or {}).get(logical_id, logical_id)
        return str(value)

    def stat(spec: Mapping[str, Any], statistic: str) -> float | None:
        dimensions = {str(d["Name"]): resolve(d["Value"]) for d in spec.get("Dimensions") or []}
        return datapoint(str(spec["Namespace"]), str(spec["MetricName"]), dimensions, statistic)

    states: list[AlarmState] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        properties = resource.get("Properties") or {}
        threshold = float(resolve(properties["Threshold"]))
        if "Metrics" in properties:
            value = _metric_math(properties["Metrics"], stat)
        else:
            value = stat(properties, str(properties.get("Statistic", "Sum")))
        compare = _COMPARE[str(properties.get("ComparisonOperator", "GreaterThanOrEqualToThreshold"))]
        firing = value is not None and compare(value, threshold)
        description = str(properties.get("AlarmDescription", ""))
        states.append(AlarmState(logical_id, description, value, threshold, firing))
    return states


def _metric_math(
    queries: list[Mapping[str, Any]], stat: Callable[[Mapping[str, Any], str], float | None]
) -> float | None:
    """The value of the query with ``ReturnData: true``, its expression over the other queries' values."""
    known: dict[str, float | None] = {}
    result: float | None = None
    for query in queries:
        if "MetricStat" in query:
            metric = query["MetricStat"]
            value = stat(metric["Metric"], str(metric.get("Stat", "Sum")))
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
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "FILL":
            filled = walk(node.args[0])
            return walk(node.args[1]) if filled is None else filled
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            return None if left is None or right is None else _BINARY[type(node.op)](left, right)
        raise ValueError(f"unsupported metric math: {text!r}")

    return walk(ast.parse(text, mode="eval").body)
