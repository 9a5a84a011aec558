"""CloudWatch on moto: the template's alarms as declared, EMF lines as metric data, alarm verdicts read back.

In-process moto (the ``stack`` fixture); the local stack test runs the same path on moto's server with the
functions' own EMF lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sealgate_local.alarms import AlarmState, judge
from sealgate_local.aws_stack import AwsClients, StackResources, build_stack, load_template
from sealgate_local.emf_to_cloudwatch import EmfToCloudWatch, Series, statistics, totals
from sealgate_local.function_logs import FunctionLogs
from tests.integration.conftest import REGION

STAGE_DIMENSIONS = (("service", "sealgate"), ("stage", "dev"))
STAGE = {"stage": "dev", "service": "sealgate"}
PARTNER = {**STAGE, "partner": "dlocal"}


def declared_alarms() -> dict[str, dict[str, Any]]:
    template = load_template()
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def expected(value: Any, stack: StackResources) -> Any:
    """What the template's value should have become (written out here, not with aws_stack's resolver)."""
    parameters = load_template()["Parameters"]
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name == "Stage":
            return stack.stage
        if name in parameters:
            return parameters[name]["Default"]
        return next(f.lambda_name for f in stack.functions.values() if f.logical_id == name)
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        queue, attribute = value["Fn::GetAtt"]
        assert attribute == "QueueName"
        return stack.queues[queue].name
    if isinstance(value, dict) and "Fn::Sub" in value:
        # The busiest-caller alarm quotes the Contributor Insights rule, named after the stack.
        rule = f"{stack.stack_name}-api-4xx-by-caller"
        return (
            value["Fn::Sub"]
            .replace("${AWS::StackName}", stack.stack_name)
            .replace("${ApiClientErrorsByCallerRule.RuleName}", rule)
        )
    return value


def dimensions(declared: list[dict[str, Any]], stack: StackResources) -> dict[str, str]:
    return {d["Name"]: expected(d["Value"], stack) for d in declared}


def emf_line(name: str, members: Mapping[str, str], value: float = 1.0, *, at: datetime | None = None) -> str:
    """An EMF line as Powertools prints it, ``members`` its dimensions."""
    when = at or datetime.now(UTC)
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(when.timestamp() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Sealgate",
                        "Dimensions": [list(members)],
                        "Metrics": [{"Name": name, "Unit": "Count"}],
                    }
                ],
            },
            **members,
            name: [value],
        }
    )


def feed(stack: StackResources, *lines: str) -> EmfToCloudWatch:
    assert stack.clients is not None
    publisher = EmfToCloudWatch(stack.clients.cloudwatch)
    logs = FunctionLogs(emf_sink=publisher)
    for line in lines:
        logs.feed("sign", line)
    return publisher


def verdicts(stack: StackResources) -> dict[str, tuple[float | None, float, bool]]:
    assert stack.clients is not None
    states: list[AlarmState] = judge(
        stack.clients.cloudwatch, stack.alarms, service_metric=lambda series: None
    )
    return {s.logical_id: (s.value, s.threshold, s.firing) for s in states}


# --- alarms -----------------------------------------------------------------------------------------------------


def test_every_template_alarm_is_in_cloudwatch_as_declared(stack: StackResources) -> None:
    assert stack.clients is not None
    declared = declared_alarms()
    assert list(stack.alarms) == list(declared)  # template order
    described = stack.clients.cloudwatch.describe_alarms(AlarmNames=list(stack.alarms.values()))[
        "MetricAlarms"
    ]
    by_name = {alarm.get("AlarmName"): alarm for alarm in described}
    topic = stack.topics["AlarmTopic"]
    assert topic in [t["TopicArn"] for t in stack.clients.sns.list_topics()["Topics"]]

    for logical_id, properties in declared.items():
        alarm = by_name[stack.alarms[logical_id]]
        assert alarm.get("AlarmName") == expected(properties["AlarmName"], stack)
        assert alarm.get("AlarmDescription") == properties["AlarmDescription"]
        assert alarm.get("Threshold") == float(expected(properties["Threshold"], stack))
        assert alarm.get("ComparisonOperator") == properties["ComparisonOperator"]
        assert alarm.get("EvaluationPeriods") == properties["EvaluationPeriods"]
        assert alarm.get("TreatMissingData") == properties["TreatMissingData"]
        assert alarm.get("AlarmActions") == alarm.get("OKActions") == [topic]
        if "Metrics" in properties:
            queries = alarm.get("Metrics", [])
            assert [q["Id"] for q in queries] == [q["Id"] for q in properties["Metrics"]]
            for query, want in zip(queries, properties["Metrics"], strict=True):
                assert query.get("ReturnData") == want["ReturnData"]
                assert query.get("Expression") == expected(want.get("Expression"), stack)
                if "MetricStat" in want:
                    stat, metric = query["MetricStat"], want["MetricStat"]["Metric"]
                    assert (stat["Stat"], stat["Period"]) == (
                        want["MetricStat"]["Stat"],
                        want["MetricStat"]["Period"],
                    )
                    assert stat["Metric"].get("MetricName") == metric["MetricName"]
                    assert stat["Metric"].get("Namespace") == metric["Namespace"]
                    got = {d["Name"]: d["Value"] for d in stat["Metric"].get("Dimensions", [])}
                    assert got == dimensions(metric["Dimensions"], stack)
        else:
            assert alarm.get("Namespace") == properties["Namespace"]
            assert alarm.get("MetricName") == properties["MetricName"]
            assert alarm.get("Statistic") == properties["Statistic"]
            assert alarm.get("Period") == properties["Period"]
            got = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
            assert got == dimensions(properties["Dimensions"], stack)


def test_parameters_and_stage_reach_the_alarms(aws: None) -> None:
    built = build_stack(
        AwsClients.create(region=REGION), stage="qa", parameters={"SignatureFailureThreshold": "7"}
    )
    assert built.clients is not None

    [alarm] = built.clients.cloudwatch.describe_alarms(AlarmNames=[built.alarms["SignatureFailuresAlarm"]])[
        "MetricAlarms"
    ]

    assert alarm.get("AlarmName") == "sealgate-qa-signature-failures"
    assert alarm.get("Threshold") == 7.0
    assert {"Name": "stage", "Value": "qa"} in alarm.get("Dimensions", [])


# --- EMF -> metric data -------------------------------------------------------------------------------------------


def test_emf_lines_become_the_series_lambda_would_create(stack: StackResources) -> None:
    assert stack.clients is not None
    start = datetime.now(UTC)

    publisher = feed(
        stack,
        emf_line("SignatureCheckFailed", STAGE),
        emf_line("SignatureCheckFailed", PARTNER),
        emf_line("SignatureCheckFailed", STAGE),
        emf_line("ForwardDelivered", STAGE, 3.0),
        json.dumps({"level": "INFO", "message": "not a metric"}),
    )

    assert (publisher.published, publisher.failed) == (4, 0)
    assert totals(stack.clients.cloudwatch, start=start, end=datetime.now(UTC), namespace="Sealgate") == {
        Series("Sealgate", "SignatureCheckFailed", STAGE_DIMENSIONS): 2.0,
        Series("Sealgate", "SignatureCheckFailed", (("partner", "dlocal"), *STAGE_DIMENSIONS)): 1.0,
        Series("Sealgate", "ForwardDelivered", STAGE_DIMENSIONS): 3.0,
    }


def test_the_emf_timestamp_places_the_datum(stack: StackResources) -> None:
    assert stack.clients is not None
    now = datetime.now(UTC)
    feed(stack, emf_line("ForwardFailed", STAGE, 5.0, at=now - timedelta(minutes=20)))
    series = Series("Sealgate", "ForwardFailed", STAGE_DIMENSIONS)

    def total(minutes: int) -> float | None:
        assert stack.clients is not None
        start = now - timedelta(minutes=minutes)
        return statistics(stack.clients.cloudwatch, [series], "Sum", start=start, end=now).get(series)

    assert total(5) is None
    assert total(30) == 5.0


# --- alarm verdicts from CloudWatch --------------------------------------------------------------------------------


def test_signature_failures_fire_at_the_templates_threshold(stack: StackResources) -> None:
    feed(stack, *[emf_line("SignatureCheckFailed", STAGE) for _ in range(4)])
    feed(stack, *[emf_line("SignatureCheckFailed", PARTNER) for _ in range(4)])
    assert verdicts(stack)["SignatureFailuresAlarm"] == (4.0, 5.0, False)  # the partner series is not counted

    feed(stack, emf_line("SignatureCheckFailed", STAGE))
    assert verdicts(stack)["SignatureFailuresAlarm"] == (5.0, 5.0, True)


def test_another_stages_metrics_and_older_ones_do_not_count(stack: StackResources) -> None:
    long_ago = datetime.now(UTC) - timedelta(minutes=6)
    feed(stack, *[emf_line("SignatureCheckFailed", {**STAGE, "stage": "prod"}) for _ in range(9)])
    feed(stack, *[emf_line("KeyLoadFailed", STAGE, at=long_ago) for _ in range(3)])

    found = verdicts(stack)

    assert found["SignatureFailuresAlarm"] == (None, 5.0, False)
    assert found["KeyLoadFailuresAlarm"] == (None, 1.0, False)  # outside the alarm's 5-minute period


def test_forward_failure_rate_is_the_templates_metric_math(stack: StackResources) -> None:
    assert verdicts(stack)["ForwardFailureRateAlarm"][0] is None  # no data: not breaching

    feed(stack, emf_line("ForwardFailed", STAGE))
    assert verdicts(stack)["ForwardFailureRateAlarm"] == (100.0, 10.0, True)  # failures, no deliveries: 100 %

    feed(stack, emf_line("ForwardDelivered", STAGE, 19.0))
    assert verdicts(stack)["ForwardFailureRateAlarm"] == (5.0, 10.0, False)


def test_service_metrics_come_from_the_caller(stack: StackResources) -> None:
    assert stack.clients is not None
    asked: list[Series] = []

    def service_metric(series: Series) -> float | None:
        asked.append(series)
        return 1.0 if series.namespace == "AWS/SQS" else None

    states = judge(stack.clients.cloudwatch, stack.alarms, service_metric=service_metric)

    firing = {s.logical_id for s in states if s.firing}
    assert firing == {"OutboundDeadLetterAlarm", "InboundDeadLetterAlarm", "NotificationDeadLettersAlarm"}
    assert {s.namespace for s in asked} == {"AWS/SQS", "AWS/Lambda"}
    assert Series("AWS/Lambda", "Errors", (("FunctionName", "sealgate-dev-ForwardFunction"),)) in asked


def test_a_missing_alarm_is_an_error(stack: StackResources) -> None:
    assert stack.clients is not None
    with pytest.raises(KeyError, match="not in CloudWatch"):
        judge(stack.clients.cloudwatch, {"Nope": "sealgate-dev-nope"}, service_metric=lambda series: None)


def test_the_busiest_caller_alarm_has_no_data_locally(stack: StackResources) -> None:
    # Contributor Insights ranks the API's access-log lines, which only a deployed stage writes: locally the
    # alarm's INSIGHT_RULE_METRIC is judged as "no data" (not breaching), never as an error.
    feed(stack, emf_line("SignatureCheckFailed", STAGE, 50.0))
    value, threshold, firing = verdicts(stack)["ApiClientErrorBurstAlarm"]
    assert value is None
    assert not firing
    declared = declared_alarms()["ApiClientErrorBurstAlarm"]["Threshold"]
    assert threshold == float(expected(declared, stack))
