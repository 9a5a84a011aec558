"""template.yaml's limits and monitoring, after the SAM transform: API throttling and reserved concurrency, the access
log, the unusual-access metrics and their alarms, the secret-change alert and its topic, and the dashboard.

EventBridge patterns are matched by moto's implementation of ``TestEventPattern`` (an implementation of the
pattern language that is not ours); JSON documents that CloudWatch parses (access-log lines, the Contributor
Insights rule, the dashboard) are rendered from the template and parsed here.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest

from sealgate import metric_names
from tests.template.conftest import Template
from tests.template.test_template import alarms, api_routes, functions, gateway_responses, of_type

STAGE = "dev"
STACK = "sealgate-dev"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PARTITION = "aws"
#: IAM refusals as API Gateway names them in $context.error.responseType (an unknown path is one of them)
IAM_REFUSALS = {
    "MISSING_AUTHENTICATION_TOKEN",
    "INVALID_SIGNATURE",
    "EXPIRED_TOKEN",
    "ACCESS_DENIED",
    "UNAUTHORIZED",
}
SECRET_CHANGES = {
    "PutSecretValue",
    "UpdateSecret",
    "RotateSecret",
    "DeleteSecret",
    "RestoreSecret",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
    "UpdateSecretVersionStage",
    "CreateSecret",
    "CancelRotateSecret",
}
FUNCTIONS = ("Encrypt", "Sign", "Forward")


def pseudo(name: str) -> str:
    return {
        "AWS::StackName": STACK,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": PARTITION,
        "AWS::URLSuffix": "amazonaws.com",
    }[name]


def resolve(value: Any, cfn: Template, names: dict[str, str] | None = None) -> Any:
    """``value`` with Ref/Fn::Sub/Fn::GetAtt resolved: parameters to their defaults (Stage: dev), pseudo
    parameters to fixed values, resources to ``<LogicalId>`` / ``<LogicalId.Attribute>`` placeholders."""
    names = names or {}
    if isinstance(value, list):
        return [resolve(item, cfn, names) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return reference(value["Ref"], cfn, names)
    if set(value) == {"Fn::GetAtt"}:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if set(value) == {"Fn::Sub"}:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else sub
        local = {**names, **{key: str(resolve(inner, cfn, names)) for key, inner in variables.items()}}
        return re.sub(r"\$\{([^}!]+)\}", lambda m: reference(m.group(1), cfn, local), text)
    return {key: resolve(inner, cfn, names) for key, inner in value.items()}


def reference(name: str, cfn: Template, names: dict[str, str]) -> str:
    if name in names:
        return names[name]
    if name.startswith("AWS::"):
        return pseudo(name)
    if name in cfn["Parameters"]:
        return STAGE if name == "Stage" else str(cfn["Parameters"][name]["Default"])
    assert name.split(".", maxsplit=1)[0] in cfn["Resources"], f"${{{name}}} names nothing in the template"
    return f"<{name}>"


def stage(cfn: Template) -> dict[str, Any]:
    (found,) = of_type(cfn, "AWS::ApiGateway::Stage").values()
    properties: dict[str, Any] = found["Properties"]
    return properties


def default(cfn: Template, parameter: str) -> int:
    return int(cfn["Parameters"][parameter]["Default"])


# --- throttling and concurrency ---


def test_the_stage_throttles_every_route_and_the_public_one_harder(cfn: Template) -> None:
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in stage(cfn)["MethodSettings"]}
    everything = settings[("/*", "*")]
    assert everything["ThrottlingRateLimit"] == {"Ref": "ApiRateLimit"}
    assert everything["ThrottlingBurstLimit"] == {"Ref": "ApiBurstLimit"}
    ((path, method),) = set(settings) - {("/*", "*")}
    # A method setting names its resource as "/" + the path with each "/" escaped as "~1".
    assert path.startswith("/~1")
    route = (method, path[1:].replace("~1", "/"))
    assert route in api_routes(cfn)
    assert route == ("POST", "/v1/webhooks/{partner}")
    webhook = settings[(path, method)]
    assert webhook["ThrottlingRateLimit"] == {"Ref": "WebhookRateLimit"}
    assert webhook["ThrottlingBurstLimit"] == {"Ref": "WebhookBurstLimit"}
    assert default(cfn, "WebhookRateLimit") < default(cfn, "ApiRateLimit")
    assert default(cfn, "WebhookBurstLimit") < default(cfn, "ApiBurstLimit")
    for name in ("ApiRateLimit", "ApiBurstLimit", "WebhookRateLimit", "WebhookBurstLimit"):
        assert cfn["Parameters"][name]["MinValue"] >= 1, name
        assert default(cfn, name.replace("Rate", "Burst")) >= default(cfn, name), name
    for setting in settings.values():
        # Execution logging at INFO (or data trace) writes bodies; the access log is the only request log.
        assert setting["DataTraceEnabled"] is False
        assert "LoggingLevel" not in setting
        assert setting["MetricsEnabled"] is True


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_has_reserved_concurrency_that_a_parameter_sets_or_lifts(
    cfn: Template, name: str
) -> None:
    parameter = f"{name}ReservedConcurrency"
    condition = f"Reserves{name}Concurrency"
    function = functions(cfn)[f"{name}Function"]
    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]
    }
    # -1 lifts the reservation (accounts whose concurrency limit is too low to reserve), 0 switches it off.
    assert cfn["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, -1]}]}
    assert cfn["Parameters"][parameter]["MinValue"] == -1
    assert default(cfn, parameter) >= 1


def test_reserved_concurrency_leaves_the_accounts_minimum_unreserved(cfn: Template) -> None:
    """Lambda keeps 100 executions unreserved: the defaults must fit a default (1000) account limit."""
    reserved = sum(default(cfn, f"{name}ReservedConcurrency") for name in FUNCTIONS)
    assert reserved <= 1000 - 100


def test_the_outbound_queue_cannot_use_all_of_the_forward_functions_reservation(cfn: Template) -> None:
    (mapping,) = of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "OutboundMaxConcurrency"}}
    # Lambda's floor for an SQS event source's maximum concurrency is 2.
    assert cfn["Parameters"]["OutboundMaxConcurrency"]["MinValue"] == 2
    assert default(cfn, "OutboundMaxConcurrency") < default(cfn, "ForwardReservedConcurrency")


# --- access log ---

#: a value for every $context variable the format may name, as API Gateway writes it (numbers unquoted)
CONTEXT_SAMPLE = {
    "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "extendedRequestId": "Jk1xYF0moAMFmJw=",
    "requestTime": "22/Nov/2025:08:41:12 +0000",
    "stage": STAGE,
    "identity.userArn": "arn:aws:sts::123456789012:assumed-role/orders-service-role/orders-service",
    "identity.accountId": ACCOUNT,
    "identity.sourceIp": "10.20.31.47",
    "httpMethod": "POST",
    "resourcePath": "/v1/sign/{partner}",
    "path": "/dev/v1/sign/dlocal",
    "status": "403",
    "error.responseType": "INVALID_SIGNATURE",
    "integration.status": "-",
    "responseLatency": "7",
    "integration.latency": "-",
    "responseLength": "93",
    "xrayTraceId": "Root=1-6921769c-0123456789abcdef01234567",
}


def access_log_line(cfn: Template, **overrides: str) -> dict[str, Any]:
    """One access-log line as API Gateway would write it for CONTEXT_SAMPLE (plus ``overrides``), parsed."""
    values = {**CONTEXT_SAMPLE, **overrides}
    fmt = stage(cfn)["AccessLogSetting"]["Format"]
    line = re.sub(r"\$context\.([A-Za-z.]+)", lambda m: values[m.group(1)], fmt)
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_the_access_log_is_one_json_line_of_who_what_outcome_and_latency(cfn: Template) -> None:
    setting = stage(cfn)["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fmt = setting["Format"]
    assert "\n" not in fmt
    # Only status goes unquoted: API Gateway always sets it, while it writes "-" for any value it lacks.
    assert re.findall(r":\$context\.([A-Za-z.]+)", fmt) == ["status"]
    used = set(re.findall(r"\$context\.([A-Za-z.]+)", fmt))
    assert used <= set(CONTEXT_SAMPLE), used - set(CONTEXT_SAMPLE)
    # Nothing a caller writes freely: no body ($input), no header, no user agent, no query string.
    assert not re.search(r"\$input|requestOverride|userAgent|header|querystring|body", fmt, re.IGNORECASE)
    line = access_log_line(cfn)
    assert {"caller", "accountId", "sourceIp", "method", "resource", "status", "errorType", "latency"} <= set(
        line
    )
    assert line["caller"] == CONTEXT_SAMPLE["identity.userArn"]
    assert line["errorType"] == "INVALID_SIGNATURE"
    assert line["status"] == 403  # a number: the filters compare it
    assert line["latency"] == "7"
    assert line["service"] == metric_names.SERVICE
    # An unsigned call: API Gateway writes "-" for what it does not know; the line is still JSON.
    anonymous = access_log_line(cfn, **{"identity.userArn": "-", "identity.accountId": "-"})
    assert anonymous["caller"] == "-"


def test_the_access_log_group_keeps_logs_encrypted_for_a_set_time_and_outlives_the_stack(
    cfn: Template,
) -> None:
    group = cfn["Resources"]["ApiAccessLogGroup"]
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Retain", "Retain")
    properties = group["Properties"]
    assert properties["RetentionInDays"] == {"Ref": "ApiAccessLogRetentionDays"}
    assert (
        default(cfn, "ApiAccessLogRetentionDays")
        in cfn["Parameters"]["ApiAccessLogRetentionDays"]["AllowedValues"]
    )
    assert properties["KmsKeyId"] == {"Fn::GetAtt": ["MonitoringKey", "Arn"]}


def test_every_log_group_is_encrypted_with_a_key_that_cloudwatch_logs_may_use_for_it(cfn: Template) -> None:
    key = cfn["Resources"]["MonitoringKey"]
    assert (key["DeletionPolicy"], key["Properties"]["EnableKeyRotation"]) == ("Retain", True)
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    logs = statements["CloudWatchLogsEncryptsTheStacksLogGroups"]
    assert resolve(logs["Principal"]["Service"], cfn) == f"logs.{REGION}.amazonaws.com"
    patterns = resolve(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"], cfn)
    groups = of_type(cfn, "AWS::Logs::LogGroup")
    assert len(groups) == 4
    for name, group in groups.items():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["MonitoringKey", "Arn"]}, name
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{resolve(group['Properties']['LogGroupName'], cfn)}"
        assert any(fnmatch.fnmatchcase(arn, pattern) for pattern in patterns), (name, arn)
    # Not any log group of the account.
    assert not any(
        fnmatch.fnmatchcase(f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/other", p) for p in patterns
    )


def test_api_gateway_has_the_accounts_cloudwatch_role_before_the_stage_logs(
    sam_template: Template, cfn: Template
) -> None:
    assert sam_template["Resources"]["SealgateApi"]["DependsOn"] == "ApiGatewayAccount"
    assert cfn["Resources"]["SealgateApi"]["DependsOn"] == "ApiGatewayAccount"
    account = cfn["Resources"]["ApiGatewayAccount"]
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}
    role = cfn["Resources"]["ApiGatewayCloudWatchRole"]
    # Both retained: deleting this stack must not leave the account's setting naming a deleted role.
    assert account["DeletionPolicy"] == role["DeletionPolicy"] == "Retain"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert resolve(role["Properties"]["ManagedPolicyArns"], cfn) == [
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    ]


# --- unusual access: metric filters, Contributor Insights, alarms ---


def metric_filter(cfn: Template, name: str) -> dict[str, Any]:
    properties: dict[str, Any] = cfn["Resources"][name]["Properties"]
    assert properties["LogGroupName"] == {"Ref": "ApiAccessLogGroup"}
    return properties


def selectors(pattern: str) -> set[str]:
    return set(re.findall(r"\$\.(\w+)", pattern))


def test_iam_refusals_are_counted_by_stage_from_the_access_log(cfn: Template) -> None:
    line = access_log_line(cfn)
    refusals = metric_filter(cfn, "ApiAuthFailuresMetricFilter")
    pattern = refusals["FilterPattern"]
    assert selectors(pattern) == {"errorType"}
    assert set(re.findall(r'"([A-Z_]+)"', pattern)) == IAM_REFUSALS
    # Each is a gateway response the template answers in the error contract.
    assert set(gateway_responses(cfn)) >= IAM_REFUSALS
    (transformation,) = refusals["MetricTransformations"]
    assert (transformation["MetricNamespace"], transformation["MetricName"]) == ("Sealgate/Api", "AuthFailed")
    assert {d["Key"]: d["Value"] for d in transformation["Dimensions"]} == {"stage": "$.stage"}
    assert {selector for d in transformation["Dimensions"] for selector in selectors(d["Value"])} <= set(line)


def test_4xx_are_counted_per_caller_from_the_access_log(cfn: Template) -> None:
    line = access_log_line(cfn)
    errors = metric_filter(cfn, "ApiClientErrorsMetricFilter")
    assert errors["FilterPattern"] == "{ ($.status >= 400) && ($.status < 500) }"
    assert isinstance(line["status"], int)
    (transformation,) = errors["MetricTransformations"]
    assert (transformation["MetricNamespace"], transformation["MetricName"]) == (
        "Sealgate/Api",
        "ClientError",
    )
    dimensions = {d["Key"]: d["Value"] for d in transformation["Dimensions"]}
    assert dimensions == {"stage": "$.stage", "caller": "$.caller"}
    assert {s for value in dimensions.values() for s in selectors(value)} <= set(line)


def test_the_contributor_insights_rule_ranks_callers_by_4xx(cfn: Template) -> None:
    rule = cfn["Resources"]["ApiClientErrorsByCallerRule"]["Properties"]
    assert rule["RuleState"] == "ENABLED"
    body = json.loads(resolve(rule["RuleBody"], cfn))
    assert body["Schema"] == {"Name": "CloudWatchLogRule", "Version": 1}
    assert body["LogGroupNames"] == ["<ApiAccessLogGroup>"]
    assert body["LogFormat"] == "JSON"
    contribution = body["Contribution"]
    assert contribution["Keys"] == ["$.caller", "$.sourceIp"]
    assert {key.removeprefix("$.") for key in contribution["Keys"]} <= set(access_log_line(cfn))
    assert contribution["Filters"] == [
        {"Match": "$.status", "GreaterThan": 399},
        {"Match": "$.status", "LessThan": 500},
    ]
    assert body["AggregateOn"] == "Count"


def test_the_access_alarms_watch_what_the_filters_and_the_rule_publish(cfn: Template) -> None:
    found = alarms(cfn)
    refusals = found["ApiAuthFailuresAlarm"]
    (transformation,) = cfn["Resources"]["ApiAuthFailuresMetricFilter"]["Properties"]["MetricTransformations"]
    assert (refusals["Namespace"], refusals["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )
    assert refusals["Dimensions"] == [{"Name": "stage", "Value": {"Ref": "Stage"}}]
    assert refusals["Threshold"] == {"Ref": "ApiAuthFailureThreshold"}
    assert (refusals["Statistic"], refusals["Period"]) == ("Sum", 300)

    burst = found["ApiClientErrorBurstAlarm"]
    assert burst["Threshold"] == {"Ref": "ApiClientErrorBurstThreshold"}
    (query,) = burst["Metrics"]
    assert query["ReturnData"] is True
    assert query["Period"] == 300
    assert resolve(query["Expression"], cfn) == (
        "INSIGHT_RULE_METRIC('<ApiClientErrorsByCallerRule.RuleName>', 'MaxContributorValue')"
    )
    for alarm in (refusals, burst):
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


# --- critical changes: the secret-change rule and the topic it notifies ---


def pattern_matches(pattern: dict[str, Any], event: str) -> bool:
    """EventBridge's matching (prefix, wildcard, $or), as moto implements it for its rules."""
    from moto.events.models import EventPattern

    return bool(EventPattern.load(json.dumps(pattern)).matches_event(json.loads(event)))


def cloudtrail_event(name: str, detail: dict[str, Any], kind: str = "AWS API Call via CloudTrail") -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": kind,
            "source": "aws.secretsmanager",
            "account": ACCOUNT,
            "time": "2025-11-22T08:41:12Z",
            "region": REGION,
            "resources": [],
            "detail": {"eventSource": "secretsmanager.amazonaws.com", "eventName": name, **detail},
        }
    )


ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:%s-AbCdEf"


@pytest.mark.parametrize(
    ("event", "matches"),
    [
        (
            cloudtrail_event("PutSecretValue", {"requestParameters": {"secretId": "sealgate/dev/netcore"}}),
            True,
        ),
        (
            cloudtrail_event(
                "UpdateSecretVersionStage", {"requestParameters": {"secretId": ARN % "sealgate/dev/dlocal"}}
            ),
            True,
        ),
        # A partial ARN (no random suffix) names the secret too.
        (
            cloudtrail_event(
                "DeleteSecret", {"requestParameters": {"secretId": (ARN % "sealgate/dev/paykun")[:-7]}}
            ),
            True,
        ),
        (
            cloudtrail_event(
                "PutResourcePolicy", {"requestParameters": {"secretId": "sealgate/dev/infosimples"}}
            ),
            True,
        ),
        (cloudtrail_event("CreateSecret", {"requestParameters": {"name": "sealgate/dev/newpartner"}}), True),
        (
            cloudtrail_event(
                "RotationFailed",
                {"additionalEventData": {"SecretId": ARN % "sealgate/dev/netcore"}},
                "AWS Service Event via CloudTrail",
            ),
            True,
        ),
        # Another stage, a stage whose name starts alike, another application: not this stack's secrets.
        (
            cloudtrail_event("PutSecretValue", {"requestParameters": {"secretId": "sealgate/prod/netcore"}}),
            False,
        ),
        (
            cloudtrail_event("PutSecretValue", {"requestParameters": {"secretId": "sealgate/devx/netcore"}}),
            False,
        ),
        (
            cloudtrail_event(
                "PutSecretValue", {"requestParameters": {"secretId": ARN % "billing/dev/netcore"}}
            ),
            False,
        ),
        # Reading is not a change.
        (
            cloudtrail_event("GetSecretValue", {"requestParameters": {"secretId": "sealgate/dev/netcore"}}),
            False,
        ),
    ],
)
def test_the_rule_matches_changes_to_this_stages_secrets_only(
    cfn: Template, event: str, matches: bool
) -> None:
    pattern = resolve(cfn["Resources"]["SecretChangesRule"]["Properties"]["EventPattern"], cfn)
    assert pattern_matches(pattern, event) is matches


def test_the_rule_covers_every_kind_of_change_and_notifies_the_alarm_topic(cfn: Template) -> None:
    rule = cfn["Resources"]["SecretChangesRule"]["Properties"]
    assert rule["State"] == "ENABLED"
    assert set(rule["EventPattern"]["detail"]["eventName"]) >= SECRET_CHANGES
    assert not [
        name
        for name in rule["EventPattern"]["detail"]["eventName"]
        if name.startswith(("Get", "List", "Describe"))
    ]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "AlarmTopic"}
    # The whole CloudTrail record goes out (CloudTrail never records a secret's value).
    assert not {"Input", "InputPath", "InputTransformer"} & set(target)


def test_the_topic_is_encrypted_and_only_alarms_and_the_rule_may_publish(cfn: Template) -> None:
    topic = cfn["Resources"]["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "MonitoringKey"}
    (policy,) = of_type(cfn, "AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": "AlarmTopic"}]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    for statement in statements.values():
        assert (statement["Effect"], statement["Action"], statement["Resource"]) == (
            "Allow",
            "sns:Publish",
            {"Ref": "AlarmTopic"},
        )
    rule = statements["SecretChangesRulePublishes"]
    assert rule["Principal"] == {"Service": "events.amazonaws.com"}
    assert rule["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["SecretChangesRule", "Arn"]}}}
    alarm = statements["AlarmsPublish"]
    assert alarm["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert resolve(alarm["Condition"], cfn) == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }
    assert set(statements) == {"SecretChangesRulePublishes", "AlarmsPublish"}
    # Both publishers need the topic's key (SNS asks them for a data key).
    key = {s["Sid"]: s for s in cfn["Resources"]["MonitoringKey"]["Properties"]["KeyPolicy"]["Statement"]}
    publishers = key["AlarmsAndEventsPublishToTheEncryptedTopic"]
    assert set(publishers["Principal"]["Service"]) >= {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    assert set(publishers["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


# --- dashboard ---


def dashboard(cfn: Template) -> tuple[dict[str, Any], str]:
    (found,) = of_type(cfn, "AWS::CloudWatch::Dashboard").values()
    text = found["Properties"]["DashboardBody"]["Fn::Sub"]
    body: dict[str, Any] = json.loads(resolve(found["Properties"]["DashboardBody"], cfn))
    return body, text


def test_the_dashboard_is_json_and_names_only_what_the_template_has(cfn: Template) -> None:
    body, text = dashboard(cfn)
    for reference_ in re.findall(r"\$\{([^}]+)\}", text):
        name = reference_.split(".")[0]
        assert name in cfn["Resources"] or name in cfn["Parameters"] or name.startswith("AWS::"), reference_
    for widget in body["widgets"]:
        assert {"type", "x", "y", "width", "height", "properties"} <= set(widget)
        assert widget["x"] + widget["width"] <= 24


def test_the_dashboard_shows_every_alarm(cfn: Template) -> None:
    body, _ = dashboard(cfn)
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(widget["properties"]["alarms"]) == sorted(f"<{name}.Arn>" for name in alarms(cfn))


def test_the_dashboard_graphs_the_gateways_metrics_functions_and_queues(cfn: Template) -> None:
    body, _ = dashboard(cfn)
    graphed: set[tuple[str, str]] = set()
    dimensions: dict[tuple[str, str], list[Any]] = {}
    expressions: list[str] = []
    for widget in body["widgets"]:
        namespace = ""
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], dict):
                expressions.append(metric[0]["expression"])
                continue
            row = [part for part in metric if not isinstance(part, dict)]
            if row[0] not in {".", "..."}:
                namespace = row[0]
            if row[0] == "...":
                continue
            name = row[1]
            graphed.add((namespace, name))
            dimensions.setdefault((namespace, name), row[2:])
    for name in metric_names.ALL:
        assert (metric_names.NAMESPACE, name) in graphed, name
    assert dimensions[(metric_names.NAMESPACE, metric_names.FORWARD_DELIVERED)] == [
        "service",
        metric_names.SERVICE,
        "stage",
        STAGE,
    ]
    for metric in ("Count", "4XXError", "5XXError", "Latency"):
        assert ("AWS/ApiGateway", metric) in graphed, metric
    assert dimensions[("AWS/ApiGateway", "Count")] == ["ApiName", STACK, "Stage", STAGE]
    # The REST API's name is the stack's: its OpenAPI title.
    (api,) = of_type(cfn, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["Body"]["info"]["title"] == {"Ref": "AWS::StackName"}
    for metric in ("Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"):
        assert ("AWS/Lambda", metric) in graphed, metric
    assert ("Sealgate/Api", "AuthFailed") in graphed
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in graphed
    # Per-caller 4xx and the ranked callers: the metric filter's and the rule's.
    assert any('MetricName="ClientError"' in e and "Sealgate/Api,caller,stage" in e for e in expressions)
    insight = [w for w in body["widgets"] if "insightRule" in w["properties"]]
    assert [w["properties"]["insightRule"]["ruleName"] for w in insight] == [
        "<ApiClientErrorsByCallerRule.RuleName>"
    ]


def test_outputs_name_the_access_log_and_the_dashboard(cfn: Template) -> None:
    assert cfn["Outputs"]["ApiAccessLogGroupName"]["Value"] == {"Ref": "ApiAccessLogGroup"}
    assert cfn["Outputs"]["DashboardName"]["Value"] == {"Ref": "Dashboard"}


def test_undelivered_notifications_wait_in_a_dead_letter_queue_with_an_alarm(cfn: Template) -> None:
    queue_arn = {"Fn::GetAtt": ["NotificationDeadLetterQueue", "Arn"]}
    (target,) = cfn["Resources"]["SecretChangesRule"]["Properties"]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": queue_arn}
    subscription = cfn["Resources"]["AlarmEmailSubscription"]["Properties"]
    assert subscription["RedrivePolicy"] == {"deadLetterTargetArn": queue_arn}
    queue = cfn["Resources"]["NotificationDeadLetterQueue"]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Ref": "MonitoringKey"}
    assert queue["MessageRetentionPeriod"] == 14 * 86400
    (policy,) = of_type(cfn, "AWS::SQS::QueuePolicy").values()
    assert policy["Properties"]["Queues"] == [{"Ref": "NotificationDeadLetterQueue"}]
    senders = {
        statement["Principal"]["Service"]: statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "sqs:SendMessage" and statement["Resource"] == queue_arn
    }
    assert senders == {
        "events.amazonaws.com": {"Fn::GetAtt": ["SecretChangesRule", "Arn"]},
        "sns.amazonaws.com": {"Ref": "AlarmTopic"},
    }
    # Both senders need the queue's key.
    key = {s["Sid"]: s for s in cfn["Resources"]["MonitoringKey"]["Properties"]["KeyPolicy"]["Statement"]}
    assert {"events.amazonaws.com", "sns.amazonaws.com"} <= set(
        key["AlarmsAndEventsPublishToTheEncryptedTopic"]["Principal"]["Service"]
    )
    alarm = alarms(cfn)["NotificationDeadLettersAlarm"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["NotificationDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
