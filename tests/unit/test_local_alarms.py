"""Alarm evaluation from template.yaml, and the collection of what the functions print (EMF, audit)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sealgate_local.alarms import evaluate
from sealgate_local.aws_stack import load_template
from sealgate_local.function_logs import FunctionLogs


def emf(name: str, value: float, **dimensions: str) -> str:
    return json.dumps(
        {
            "_aws": {
                "Timestamp": 0,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Sealgate",
                        "Dimensions": [list(dimensions)],
                        "Metrics": [{"Name": name, "Unit": "Count"}],
                    }
                ],
            },
            **dimensions,
            name: [value],
        }
    )


def states(logs: FunctionLogs, **parameters: str) -> dict[str, tuple[float | None, float, bool]]:
    def datapoint(namespace: str, name: str, dimensions: Mapping[str, str], statistic: str) -> float | None:
        return logs.metric_sum(namespace, name, dimensions)

    found = evaluate(load_template(), datapoint, parameters={"Stage": "dev", **parameters})
    return {a.logical_id: (a.value, a.threshold, a.firing) for a in found}


def test_signature_failures_fire_at_the_templates_threshold() -> None:
    logs = FunctionLogs()
    for _ in range(4):
        logs.feed("sign", emf("SignatureCheckFailed", 1, service="sealgate", stage="dev"))
        logs.feed("sign", emf("SignatureCheckFailed", 1, service="sealgate", stage="dev", partner="dlocal"))
    assert states(logs)["SignatureFailuresAlarm"] == (4.0, 5.0, False)

    logs.feed("sign", emf("SignatureCheckFailed", 1, service="sealgate", stage="dev"))
    assert states(logs)["SignatureFailuresAlarm"] == (5.0, 5.0, True)
    assert states(logs, SignatureFailureThreshold="6")["SignatureFailuresAlarm"][2] is False


def test_another_stages_metrics_do_not_count() -> None:
    logs = FunctionLogs()
    for _ in range(9):
        logs.feed("sign", emf("SignatureCheckFailed", 1, service="sealgate", stage="prod"))
    assert states(logs)["SignatureFailuresAlarm"] == (None, 5.0, False)


def test_forward_failure_rate_is_the_templates_metric_math() -> None:
    logs = FunctionLogs()
    assert states(logs)["ForwardFailureRateAlarm"][0] is None  # no data: not breaching

    logs.feed("forward", emf("ForwardFailed", 1, service="sealgate", stage="dev"))
    assert states(logs)["ForwardFailureRateAlarm"] == (100.0, 10.0, True)  # failures, no deliveries: 100 %

    logs.feed("forward", emf("ForwardDelivered", 19, service="sealgate", stage="dev"))
    assert states(logs)["ForwardFailureRateAlarm"] == (5.0, 10.0, False)


def test_audit_records_and_metrics_are_counted() -> None:
    logs = FunctionLogs()
    audit = {"action": "webhook", "partner": "dlocal", "outcome": "refused", "reason": "signature_mismatch"}
    logs.feed("sign", json.dumps({"level": "INFO", "message": "audit", "audit": audit}))
    logs.feed("sign", json.dumps({"level": "INFO", "message": "something else"}))
    logs.feed("sign", emf("SignatureCheckFailed", 1, service="sealgate", stage="dev"))
    logs.feed("sign", emf("SignatureCheckFailed", 1, service="sealgate", stage="dev", partner="dlocal"))
    logs.feed("sign", "Traceback (most recent call last):")
    logs.feed("sign", "not json {")

    summary = logs.summary()
    assert summary.audit == {("webhook", "refused"): 1}
    assert summary.metrics == {"SignatureCheckFailed": 1}
    assert summary.signature_failures == {"dlocal": 1}
    assert summary.unhandled_errors == 1
    assert logs.audits(outcome="refused")[0]["function"] == "sign"
    assert len(logs.lines) == 6
