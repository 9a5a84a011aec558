"""EMF records as PutMetricData arguments, and what the function-log collector does with each kind of line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from botocore.exceptions import ClientError

from sealgate_local.emf_to_cloudwatch import EmfToCloudWatch, Series, metric_data
from sealgate_local.function_logs import FunctionLogs

# 2025-01-01T00:00:00.250Z, in EMF's milliseconds since the epoch.
TIMESTAMP_MS = 1735689600250


def emf(
    metrics: Mapping[str, Any], dimension_sets: list[list[str]], namespace: str = "Sealgate", **members: Any
) -> dict[str, Any]:
    """A record as Powertools prints it: one directive, its members beside ``_aws``."""
    return {
        "_aws": {
            "Timestamp": TIMESTAMP_MS,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": dimension_sets,
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in metrics],
                }
            ],
        },
        **members,
        **metrics,
    }


def test_a_powertools_record_is_one_datum_per_metric_and_dimension_set() -> None:
    record = emf(
        {"SignatureCheckFailed": [1.0], "WebhookAccepted": 2},
        [["stage", "service"], ["stage", "service", "partner"]],
        stage="dev",
        service="sealgate",
        partner="dlocal",
    )

    [(namespace, data)] = metric_data(record)

    assert namespace == "Sealgate"
    assert [(d["MetricName"], d["Values"], d.get("Unit")) for d in data] == [
        ("SignatureCheckFailed", [1.0], "Count"),
        ("WebhookAccepted", [2.0], "Count"),
        ("SignatureCheckFailed", [1.0], "Count"),
        ("WebhookAccepted", [2.0], "Count"),
    ]
    assert data[0]["Dimensions"] == [
        {"Name": "stage", "Value": "dev"},
        {"Name": "service", "Value": "sealgate"},
    ]
    assert {"Name": "partner", "Value": "dlocal"} in data[2]["Dimensions"]
    assert data[0]["Timestamp"] == datetime(2025, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)


def test_each_value_of_a_list_is_an_observation_and_non_numbers_are_dropped() -> None:
    record = emf({"Latency": [3, 4.5, "x", True, float("nan")], "Missing": None}, [["stage"]], stage="dev")
    record["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["StorageResolution"] = 1

    [(_, data)] = metric_data(record)

    assert [(d["MetricName"], d["Values"]) for d in data] == [("Latency", [3.0, 4.5])]
    assert data[0]["StorageResolution"] == 1


def test_a_dimension_set_naming_a_missing_member_yields_nothing() -> None:
    record = emf({"ForwardFailed": 1}, [["stage", "partner"], ["stage"]], stage="dev")

    [(_, data)] = metric_data(record)

    assert [d["Dimensions"] for d in data] == [[{"Name": "stage", "Value": "dev"}]]


def test_no_dimension_set_is_the_metric_without_dimensions_and_no_timestamp_is_now() -> None:
    record = emf({"KeyLoadFailed": 1}, [])
    del record["_aws"]["Timestamp"]

    [(_, [datum])] = metric_data(record)

    assert datum["Dimensions"] == []
    assert "Timestamp" not in datum


def test_what_is_not_emf_yields_nothing() -> None:
    assert metric_data({"level": "INFO", "message": "audit"}) == []
    assert metric_data({"_aws": "not a mapping"}) == []
    assert metric_data(emf({"ForwardDelivered": 1}, [["stage"]], namespace="", stage="dev")) == []
    malformed: list[Any] = [
        "text",
        {"Namespace": "Sealgate", "Dimensions": ["stage", 5], "Metrics": ["x", 1]},
    ]
    assert metric_data({"_aws": {"CloudWatchMetrics": malformed}, "x": 1}) == []


def test_a_series_reads_cloudwatch_shapes_and_sorts_its_dimensions() -> None:
    metric = {
        "Namespace": "Sealgate",
        "MetricName": "ForwardFailed",
        "Dimensions": [{"Name": "stage", "Value": "dev"}, {"Name": "service", "Value": "sealgate"}],
    }

    series = Series.of(metric)

    assert series.dimensions == (("service", "sealgate"), ("stage", "dev"))
    assert Series.of(series.metric) == series
    assert series.dimension("stage") == "dev"
    assert series.dimension("partner") is None


def test_function_logs_count_audit_records_and_hand_emf_records_on() -> None:
    published: list[Mapping[str, Any]] = []
    logs = FunctionLogs(emf_sink=published.append)
    audit = {"action": "webhook", "partner": "dlocal", "outcome": "refused", "reason": "signature_mismatch"}
    record = emf({"SignatureCheckFailed": [1.0]}, [["stage", "service"]], stage="dev", service="sealgate")

    logs.feed("sign", json.dumps({"level": "INFO", "message": "audit", "audit": audit}))
    logs.feed("sign", json.dumps({"level": "INFO", "message": "something else"}))
    logs.feed("sign", json.dumps(record))
    logs.feed("sign", "Traceback (most recent call last):")
    logs.feed("sign", "not json {")

    summary = logs.summary()
    assert summary.audit == {("webhook", "refused"): 1}
    assert summary.emf_records == 1
    assert summary.unhandled_errors == 1
    assert published == [record]
    assert logs.audits(outcome="refused")[0]["function"] == "sign"
    assert len(logs.lines) == 5


class RefusingCloudWatch:
    """Answers PutMetricData as CloudWatch does when it refuses the data."""

    def put_metric_data(self, **arguments: Any) -> None:
        raise ClientError({"Error": {"Code": "InvalidParameterValue", "Message": "refused"}}, "PutMetricData")


def test_a_refused_put_is_counted_not_raised() -> None:
    publisher = EmfToCloudWatch(cast(Any, RefusingCloudWatch()))
    record = emf({"ForwardFailed": 1, "ForwardDelivered": 2}, [["stage"]], stage="dev")

    publisher(record)  # on a worker's log reader: raising would stop it reading

    assert (publisher.published, publisher.failed) == (0, 2)
