"""template.yaml after the SAM transform: handlers, layer, least privilege, encryption at rest, queues, alarms,
routes, events; and that its secret policies and events/ follow from the partner profiles (make generate)."""

from __future__ import annotations

import ast
import http.client
import json
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealgate import metric_names
from sealgate.errors import PayloadTooLarge
from sealgate.http_api import not_found_response
from sealgate.partners import Profile, load_profiles, served_by
from sealgate_local import generate
from sealgate_local.api_server import MAX_BODY_BYTES, ApiServer, routes_from_template
from sealgate_local.aws_stack import load_template
from sealgate_local.worker import Invocation
from tests.template.conftest import ROOT, TEMPLATE, Template

LAYER_SOURCE = ROOT / "layers" / "crypto"
PROFILES = LAYER_SOURCE / "sealgate" / "partners" / "profiles"
KEY = "AtRestKey"
SECRET_ARN = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:sealgate/${Stage}/%s-??????"
)
# The only managed policies SAM may attach (AWS-managed; logs, X-Ray and SQS polling have no narrower form).
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
XRAY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"
SQS_POLLER = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
EVENT_BODY_KEYS = {"partner", "operation", "payload", "idempotency_key"}
# Throttling, reserved concurrency and monitoring parameters: their defaults are checked in test_monitoring.py.
LIMITS_AND_MONITORING = (
    "ApiRateLimit",
    "ApiBurstLimit",
    "WebhookRateLimit",
    "WebhookBurstLimit",
    "EncryptReservedConcurrency",
    "SignReservedConcurrency",
    "ForwardReservedConcurrency",
    "OutboundMaxConcurrency",
    "ApiAccessLogRetentionDays",
    "ApiAuthFailureThreshold",
    "ApiClientErrorBurstThreshold",
)


# --- helpers over the translated template ---


def of_type(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def functions(cfn: Template) -> dict[str, dict[str, Any]]:
    """Lambda functions by logical id: their properties."""
    return {name: r["Properties"] for name, r in of_type(cfn, "AWS::Lambda::Function").items()}


def environment(function: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = function["Environment"]["Variables"]
    return variables


def short_name(logical_id: str) -> generate.Function:
    """``EncryptFunction`` -> ``encrypt``: the name ``served_by`` knows the function by."""
    name = logical_id.removesuffix("Function").lower()
    assert name in generate.FUNCTIONS, logical_id
    return name  # type: ignore[return-value]


def shipped_profiles() -> dict[str, Profile]:
    """The profiles the layer ships (none from SEALGATE_PROFILES_DIR: the template is generated from these)."""
    return load_profiles()


def partners(logical_id: str) -> set[str]:
    """The partners a function serves, as the profiles say."""
    return set(served_by(short_name(logical_id), shipped_profiles()))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(cfn: Template, role: str) -> list[dict[str, Any]]:
    """Every statement of the role's inline policies."""
    found = []
    for policy in cfn["Resources"][role]["Properties"].get("Policies", []):
        found.extend(as_list(policy["PolicyDocument"]["Statement"]))
    return found


def role_of(function: dict[str, Any]) -> str:
    getatt = function["Role"]["Fn::GetAtt"]
    assert getatt[1] == "Arn"
    return str(getatt[0])


def sub_text(value: Any) -> str:
    """The text of a (possibly nested) ``Fn::Sub``, with its local variables substituted."""
    if isinstance(value, str):
        return value
    sub = value["Fn::Sub"]
    if isinstance(sub, str):
        return sub
    text, variables = sub
    for name, inner in variables.items():
        text = text.replace(f"${{{name}}}", sub_text(inner))
    return str(text)


def getatt_targets(resources: Any) -> set[str]:
    """Logical ids of ``Fn::GetAtt [X, Arn]`` resources; fails on anything else (literal ARN, wildcard)."""
    targets = set()
    for resource in as_list(resources):
        assert set(resource) == {"Fn::GetAtt"}, resource
        assert resource["Fn::GetAtt"][1] == "Arn"
        targets.add(resource["Fn::GetAtt"][0])
    return targets


def env_refs(function: dict[str, Any]) -> set[str]:
    """Resources the function's environment names (``Ref``), i.e. the ones its code is told to use."""
    return {v["Ref"] for v in environment(function).values() if isinstance(v, dict) and "Ref" in v}


def api_routes(cfn: Template) -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path) -> the OpenAPI operation, from the one REST API."""
    (api,) = of_type(cfn, "AWS::ApiGateway::RestApi").values()
    return {
        (method.upper(), path): operation
        for path, methods in api["Properties"]["Body"]["paths"].items()
        for method, operation in methods.items()
    }


def route_function(operation: dict[str, Any]) -> str:
    uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
    match = re.search(r"\$\{(\w+)\.Arn\}", uri)
    assert match, uri
    return match.group(1)


def watched_metrics(alarm: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every metric an alarm reads: its own, or those of its metric-math queries."""
    if "MetricName" in alarm:
        yield {k: alarm.get(k, []) for k in ("Namespace", "MetricName", "Dimensions")}
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            yield {k: metric.get(k, []) for k in ("Namespace", "MetricName", "Dimensions")}


def alarms(cfn: Template) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in of_type(cfn, "AWS::CloudWatch::Alarm").items()}


def profile(partner: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PROFILES / f"{partner}.json").read_text(encoding="utf-8"))
    return data


def defines(source: Path, name: str) -> bool:
    """Whether the module binds ``name`` at top level (def, assignment, import), read without importing it."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return True
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return True
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            return True
    return False


# --- what follows from the partner profiles (make generate) ---


def test_the_template_and_events_follow_from_the_profiles() -> None:
    """``make generate --check``: the secret policies between the markers and every file in events/."""
    stale = [change.describe(ROOT, done=False) for change in generate.plan()]
    assert stale == [], "run `make generate`"


def test_each_function_has_one_generated_block_of_its_secret_policies() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    begins = re.findall(r"# BEGIN generated from partner profiles \((\w+)\): make generate", text)
    assert sorted(begins) == sorted(generate.FUNCTIONS)
    assert text.count(generate.END) == len(begins)


# --- functions and layer ---


def test_every_handler_resolves_to_a_file_with_the_handler(sam_template: Template, cfn: Template) -> None:
    assert set(functions(cfn)) == {"EncryptFunction", "SignFunction", "ForwardFunction"}
    for name, function in functions(cfn).items():
        code_uri = ROOT / sam_template["Resources"][name]["Properties"]["CodeUri"]
        module, _, attribute = function["Handler"].rpartition(".")
        source = code_uri / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{name}: {source} is missing"
        assert defines(source, attribute), f"{name}: {source} has no {attribute}"


def test_every_function_runs_python313_on_arm64_with_the_layer(sam_template: Template, cfn: Template) -> None:
    (layer_id,) = of_type(cfn, "AWS::Lambda::LayerVersion")
    assert layer_id.startswith("CryptoLayer")
    for name, function in functions(cfn).items():
        assert function["Runtime"] == "python3.13", name
        assert function["Architectures"] == ["arm64"], name
        extension = {
            "Fn::If": ["HasSecretsExtension", {"Ref": "SecretsExtensionLayerArn"}, {"Ref": "AWS::NoValue"}]
        }
        assert function["Layers"] == [{"Ref": layer_id}, extension], name
        assert function["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}, name
        assert function["TracingConfig"] == {"Mode": "Active"}, name
        assert function["MemorySize"] == 512, name
        assert function["Timeout"] == (30 if name == "ForwardFunction" else 10), name
        log_group = cfn["Resources"][function["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        assert log_group["Properties"]["RetentionInDays"] > 0
        # Dependencies come from the layer only: a function's requirements.txt lists nothing.
        requirements = ROOT / sam_template["Resources"][name]["Properties"]["CodeUri"] / "requirements.txt"
        lines = requirements.read_text(encoding="utf-8").splitlines()
        assert [line for line in lines if line.strip() and not line.lstrip().startswith("#")] == []


def test_the_layer_builds_the_sealgate_package_for_python313_arm64(sam_template: Template) -> None:
    layer = sam_template["Resources"]["CryptoLayer"]
    # Built by layers/crypto/Makefile: python3.13 arm64 wheels plus precompiled 3.13 bytecode (see test_sam_tools).
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    content = ROOT / layer["Properties"]["ContentUri"]
    assert content.resolve() == LAYER_SOURCE.resolve()
    assert (content / "sealgate" / "__init__.py").is_file()
    assert (content / "requirements.txt").is_file()
    assert (content / "Makefile").is_file()


def test_environment_names_what_each_function_uses(cfn: Template) -> None:
    common = {
        "STAGE",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "SEALGATE_SECRET_PREFIX",
        "SEALGATE_SECRETS_MAX_AGE",
        "SEALGATE_CA_BUNDLE",
        # the Parameters and Secrets Lambda Extension (its layer is optional: SecretsExtensionLayerArn)
        "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT",
        "PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED",
        "SECRETS_MANAGER_TIMEOUT_MILLIS",
    }
    expected = {
        "EncryptFunction": common,
        "SignFunction": common | {"INBOUND_QUEUE_URL", "IDEMPOTENCY_TABLE"},
        "ForwardFunction": common
        | {
            "OUTBOUND_QUEUE_URL",
            "OUTBOUND_DLQ_URL",
            "OUTBOUND_MAX_ATTEMPTS",
            "OUTBOUND_MAX_WAIT_SECONDS",
            "OUTBOUND_BACKOFF_BASE_SECONDS",
            "OUTBOUND_BACKOFF_CAP_SECONDS",
            "OUTCOMES_TABLE",
            "IDEMPOTENCY_TABLE",
            "FORWARD_TIMEOUT_SECONDS",
            "OUTCOME_TTL_DAYS",
        },
    }
    for name, function in functions(cfn).items():
        env = environment(function)
        assert set(env) == expected[name], name
        # The metrics the code emits land where the alarms look.
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == metric_names.NAMESPACE
        assert env["POWERTOOLS_SERVICE_NAME"] == metric_names.SERVICE
        assert env["SEALGATE_SECRET_PREFIX"] == {"Fn::Sub": "sealgate/${Stage}/"}
        # Which partners a function serves follows from the profiles, not from a list in the template.
        assert "SEALGATE_PARTNERS" not in env, name


# --- least privilege ---


def readable_secrets(cfn: Template, function: dict[str, Any]) -> set[str]:
    """The secret ARN patterns a function's role may read."""
    arns: set[str] = set()
    for statement in statements(cfn, role_of(function)):
        if any(action.startswith("secretsmanager:") for action in as_list(statement["Action"])):
            assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"]
            arns.update(sub_text(resource) for resource in as_list(statement["Resource"]))
    return arns


def test_each_role_reads_exactly_the_secrets_of_the_partners_it_serves(cfn: Template) -> None:
    for name, function in functions(cfn).items():
        assert readable_secrets(cfn, function) == {SECRET_ARN % partner for partner in partners(name)}, name


def test_the_sign_role_cannot_read_a_partner_that_neither_signs_nor_sends_webhooks(cfn: Template) -> None:
    profiles = shipped_profiles()
    assert profiles["infosimples"].signing is None
    assert profiles["infosimples"].webhook is None
    sign = readable_secrets(cfn, functions(cfn)["SignFunction"])
    assert SECRET_ARN % "infosimples" not in sign
    assert SECRET_ARN % "dlocal" in sign
    assert SECRET_ARN % "infosimples" in readable_secrets(cfn, functions(cfn)["EncryptFunction"])


def test_no_wildcard_in_any_generated_policy(cfn: Template) -> None:
    roles = of_type(cfn, "AWS::IAM::Role")
    assert roles
    for name in roles:
        for statement in statements(cfn, name):
            assert statement["Effect"] == "Allow"
            assert not {"NotAction", "NotResource", "Principal"} & set(statement), (name, statement)
            assert "*" not in json.dumps(statement["Action"]), (name, statement["Action"])
            assert "*" not in json.dumps(statement["Resource"]), (name, statement["Resource"])


def test_managed_policies_are_only_the_ones_sam_requires(cfn: Template) -> None:
    for name, function in functions(cfn).items():
        managed = cfn["Resources"][role_of(function)]["Properties"]["ManagedPolicyArns"]
        expected = [BASIC, XRAY] + ([SQS_POLLER] if name == "ForwardFunction" else [])
        assert sorted(managed) == sorted(expected), name


def test_roles_touch_only_the_queues_and_tables_their_environment_names(cfn: Template) -> None:
    touched: dict[str, set[str]] = defaultdict(set)
    for name, function in functions(cfn).items():
        for statement in statements(cfn, role_of(function)):
            services = {action.split(":")[0] for action in as_list(statement["Action"])}
            if services & {"sqs", "dynamodb"}:
                targets = getatt_targets(statement["Resource"])
                assert targets <= env_refs(function), (name, targets)
                touched[name] |= targets
    assert touched["EncryptFunction"] == set()
    assert touched["SignFunction"] == {"InboundQueue", "IdempotencyTable"}
    assert touched["ForwardFunction"] == {
        "OutboundQueue",
        "OutboundDeadLetterQueue",
        "OutcomesTable",
        "IdempotencyTable",
    }


SERVICE_OF_KEY_USE = {
    "sqs": "sqs.${AWS::Region}.${AWS::URLSuffix}",
    "dynamodb": "dynamodb.${AWS::Region}.${AWS::URLSuffix}",
}
# What each service needs of the caller when a queue or table is encrypted with a customer-managed key: sending
# to a queue needs a data key (GenerateDataKey, Decrypt), receiving decrypts it; DynamoDB uses the key on the
# caller's behalf (Decrypt, Encrypt, GenerateDataKey, DescribeKey).
KMS_ACTIONS = {
    "sqs": {"kms:GenerateDataKey", "kms:Decrypt"},
    "dynamodb": {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"},
}


def kms_uses(cfn: Template, function: dict[str, Any]) -> dict[str, set[str]]:
    """Service (through ``kms:ViaService``) -> the KMS actions the role may call with the key, and only the key."""
    uses: dict[str, set[str]] = defaultdict(set)
    for statement in statements(cfn, role_of(function)):
        actions = as_list(statement["Action"])
        if not any(action.startswith("kms:") for action in actions):
            continue
        assert all(action.startswith("kms:") for action in actions), statement
        assert getatt_targets(statement["Resource"]) == {KEY}, statement
        via = sub_text(statement["Condition"]["StringEquals"]["kms:ViaService"])
        (service,) = [name for name, text in SERVICE_OF_KEY_USE.items() if text == via]
        uses[service] |= set(actions)
    return dict(uses)


def test_roles_may_use_the_key_exactly_as_their_queues_and_tables_need(cfn: Template) -> None:
    polled = {
        mapping["Properties"]["FunctionName"]["Ref"]
        for mapping in of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    }
    for name, function in functions(cfn).items():
        needed: set[str] = set()
        for statement in statements(cfn, role_of(function)):
            needed |= {action.split(":")[0] for action in as_list(statement["Action"])} & set(KMS_ACTIONS)
        if name in polled:
            needed.add("sqs")
        assert kms_uses(cfn, function) == {service: KMS_ACTIONS[service] for service in needed}, name
    assert kms_uses(cfn, functions(cfn)["EncryptFunction"]) == {}
    assert set(kms_uses(cfn, functions(cfn)["SignFunction"])) == {"sqs", "dynamodb"}
    assert set(kms_uses(cfn, functions(cfn)["ForwardFunction"])) == {"sqs", "dynamodb"}


# --- encryption at rest ---


def test_the_key_rotates_outlives_the_stack_and_is_governed_by_iam_in_the_account(cfn: Template) -> None:
    # MonitoringKey (logs, alarm topic) is the other: tests/template/test_monitoring.py.
    assert set(of_type(cfn, "AWS::KMS::Key")) == {KEY, "MonitoringKey"}
    key = cfn["Resources"][KEY]
    # OutcomesTable is retained: its key must be too, or what it (and its backups) hold becomes unreadable.
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert cfn["Resources"]["OutcomesTable"]["DeletionPolicy"] == "Retain"
    properties = key["Properties"]
    assert properties["EnableKeyRotation"] is True
    (statement,) = properties["KeyPolicy"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert "Condition" not in statement
    assert cfn["Outputs"]["AtRestKeyArn"]["Value"] == {"Fn::GetAtt": [KEY, "Arn"]}


def test_every_queue_and_table_is_encrypted_with_the_key(cfn: Template) -> None:
    queues = of_type(cfn, "AWS::SQS::Queue")
    # Undelivered notifications carry no payload data: MonitoringKey, which EventBridge and SNS may use
    # (tests/template/test_monitoring.py).
    assert queues.pop("NotificationDeadLetterQueue")["Properties"]["KmsMasterKeyId"] == {
        "Ref": "MonitoringKey"
    }
    tables = of_type(cfn, "AWS::DynamoDB::Table")
    assert len(queues) == 4
    assert len(tables) == 2
    for name, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [KEY, "Arn"]}, name
        assert "SqsManagedSseEnabled" not in queue["Properties"], name
    for name, table in tables.items():
        assert table["Properties"]["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": {"Fn::GetAtt": [KEY, "Arn"]},
        }, name


# --- queues and tables ---


def test_outbound_queue_feeds_forward_with_partial_batch_failures(cfn: Template) -> None:
    (mapping,) = of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["FunctionName"] == {"Ref": "ForwardFunction"}
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["OutboundQueue", "Arn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BatchSize"] == 10


def test_outbound_visibility_covers_six_forward_timeouts(cfn: Template) -> None:
    forward = functions(cfn)["ForwardFunction"]
    queue = cfn["Resources"]["OutboundQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * forward["Timeout"]
    # One partner call must fit in the function's time, with room for the queue and table calls around it.
    assert cfn["Parameters"]["ForwardTimeoutSeconds"]["MaxValue"] < forward["Timeout"]


@pytest.mark.parametrize(
    ("queue", "dead_letter", "receives"),
    [("OutboundQueue", "OutboundDeadLetterQueue", 20), ("InboundQueue", "InboundDeadLetterQueue", 5)],
)
def test_queues_dead_letter_after_their_receives(
    cfn: Template, queue: str, dead_letter: str, receives: int
) -> None:
    redrive = cfn["Resources"][queue]["Properties"]["RedrivePolicy"]
    assert redrive == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_letter, "Arn"]},
        "maxReceiveCount": receives,
    }
    assert cfn["Resources"][dead_letter]["Properties"]["MessageRetentionPeriod"] == 14 * 86400


def test_the_outbound_redrive_policy_is_a_backstop_behind_the_forward_functions_own_limits(
    cfn: Template,
) -> None:
    """The forward function dead-letters by itself (attempts, waiting time); the queue's redrive policy only
    counts receives the function could not settle, so it must not fire first."""
    parameters = cfn["Parameters"]
    redrive = cfn["Resources"]["OutboundQueue"]["Properties"]["RedrivePolicy"]
    forward = environment(functions(cfn)["ForwardFunction"])
    assert forward["OUTBOUND_DLQ_URL"] == {"Ref": "OutboundDeadLetterQueue"}
    assert forward["OUTBOUND_MAX_ATTEMPTS"] == {"Ref": "DeliveryMaxAttempts"}
    assert forward["OUTBOUND_MAX_WAIT_SECONDS"] == {"Ref": "DeliveryMaxWaitSeconds"}
    assert redrive["maxReceiveCount"] > parameters["DeliveryMaxAttempts"]["Default"]
    # SQS delays a message at most 900 s, and an untried message may wait at most the queue's retention.
    assert parameters["DeliveryBackoffCapSeconds"]["MaxValue"] <= 900
    retention = cfn["Resources"]["OutboundQueue"]["Properties"]["MessageRetentionPeriod"]
    assert parameters["DeliveryMaxWaitSeconds"]["MaxValue"] <= retention


@pytest.mark.parametrize(
    ("table", "ttl"), [("OutcomesTable", "expires_at"), ("IdempotencyTable", "expiration")]
)
def test_tables(cfn: Template, table: str, ttl: str) -> None:
    properties = cfn["Resources"][table]["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


# --- alarms ---


def test_alarms_watch_metrics_the_code_emits(cfn: Template) -> None:
    constants = {value: key for key, value in vars(metric_names).items() if key.isupper() and key != "ALL"}
    sources = [
        path
        for base in (ROOT / "layers" / "crypto" / "sealgate", ROOT / "functions")
        for path in base.rglob("*.py")
        if path.name != "metric_names.py"
    ]
    code = "\n".join(path.read_text(encoding="utf-8") for path in sources)
    watched = set()
    for name, alarm in alarms(cfn).items():
        for metric in watched_metrics(alarm):
            if metric["Namespace"] != metric_names.NAMESPACE:
                continue
            assert metric["MetricName"] in metric_names.ALL, (name, metric["MetricName"])
            assert metric["Dimensions"] == [
                {"Name": "service", "Value": metric_names.SERVICE},
                {"Name": "stage", "Value": {"Ref": "Stage"}},
            ], name
            watched.add(metric["MetricName"])
    assert watched == {
        metric_names.SIGNATURE_CHECK_FAILED,
        metric_names.FORWARD_DELIVERED,
        metric_names.FORWARD_FAILED,
        metric_names.KEY_LOAD_FAILED,
    }
    for metric in watched:
        emitted = re.search(rf"\b{constants[metric]}\b|[\"']{metric}[\"']", code)
        assert emitted, f"{metric} is alarmed on but nothing in the layer or the functions emits it"


def test_alarm_thresholds_and_windows(cfn: Template) -> None:
    found = alarms(cfn)
    signature = found["SignatureFailuresAlarm"]
    assert signature["Threshold"] == {"Ref": "SignatureFailureThreshold"}
    assert (signature["Statistic"], signature["Period"], signature["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert signature["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert signature["TreatMissingData"] == "notBreaching"

    rate = found["ForwardFailureRateAlarm"]
    assert rate["Threshold"] == {"Ref": "ForwardFailureRatePercent"}
    queries = {query["Id"]: query for query in rate["Metrics"]}
    (expression,) = [query for query in rate["Metrics"] if query.get("ReturnData")]
    assert expression["Expression"] == "100 * FILL(failed, 0) / (FILL(delivered, 0) + FILL(failed, 0))"
    assert queries["failed"]["MetricStat"]["Metric"]["MetricName"] == metric_names.FORWARD_FAILED
    assert queries["delivered"]["MetricStat"]["Metric"]["MetricName"] == metric_names.FORWARD_DELIVERED
    assert {queries[i]["MetricStat"]["Period"] for i in ("failed", "delivered")} == {300}

    dead_letter_alarms = {
        "OutboundDeadLetterAlarm": "OutboundDeadLetterQueue",
        "InboundDeadLetterAlarm": "InboundDeadLetterQueue",
    }
    for alarm, queue in dead_letter_alarms.items():
        properties = found[alarm]
        assert properties["Namespace"] == "AWS/SQS"
        assert properties["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert properties["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
        ]
        assert (properties["Threshold"], properties["ComparisonOperator"]) == (
            1,
            "GreaterThanOrEqualToThreshold",
        )

    assert found["KeyLoadFailuresAlarm"]["Threshold"] == 1
    for function in functions(cfn):
        errors = found[f"{function}ErrorsAlarm"]
        assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
        assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
        assert (errors["Threshold"], errors["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_every_alarm_notifies_the_topic_and_email_is_optional(cfn: Template) -> None:
    for name, alarm in alarms(cfn).items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], name
    subscription = cfn["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert cfn["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


# --- API ---


def test_only_the_webhook_route_is_unauthenticated(cfn: Template) -> None:
    public = set()
    for route, operation in api_routes(cfn).items():
        # No integration credentials: API Gateway invokes through the function's resource policy.
        assert "credentials" not in operation["x-amazon-apigateway-integration"], route
        if operation.get("security") != [{"AWS_IAM": []}]:
            public.add(route)
    assert public == {("POST", "/v1/webhooks/{partner}")}


def test_routes_and_the_functions_behind_them(cfn: Template) -> None:
    assert {route: route_function(op) for route, op in api_routes(cfn).items()} == {
        ("POST", "/v1/encrypt/{partner}"): "EncryptFunction",
        ("POST", "/v1/decrypt/{partner}"): "EncryptFunction",
        ("POST", "/v1/sign/{partner}"): "SignFunction",
        ("POST", "/v1/webhooks/{partner}"): "SignFunction",
        ("POST", "/v1/forward/{target}"): "ForwardFunction",
        ("GET", "/v1/forward/{target}"): "ForwardFunction",
    }


def test_no_two_path_variables_share_a_level(cfn: Template) -> None:
    """API Gateway refuses /a/{x} beside /a/{y} when deploying ("only one is allowed"); cfn-lint misses it."""
    variables: dict[str, set[str]] = defaultdict(set)
    for _, path in api_routes(cfn):
        parts = path.strip("/").split("/")
        for depth, part in enumerate(parts):
            if part.startswith("{"):
                variables["/".join(parts[:depth])].add(part)
    for parent, names in variables.items():
        assert len(names) == 1, f"/{parent} has sibling path variables {sorted(names)}"


# --- API Gateway's own answers (gateway responses) ---

# The client contract: a code, once published, does not change. Statuses are API Gateway's own for each type.
GATEWAY_RESPONSES = {
    # type: (status, code)
    "DEFAULT_4XX": (None, "request_refused"),
    "DEFAULT_5XX": (None, "gateway_error"),
    "ACCESS_DENIED": ("403", "access_denied"),
    "UNAUTHORIZED": ("401", "unauthorized"),
    "MISSING_AUTHENTICATION_TOKEN": ("403", "missing_authentication"),
    "INVALID_SIGNATURE": ("403", "invalid_signature"),
    "EXPIRED_TOKEN": ("403", "expired_credentials"),
    "BAD_REQUEST_BODY": ("400", "bad_request_body"),
    "BAD_REQUEST_PARAMETERS": ("400", "bad_request_parameters"),
    "RESOURCE_NOT_FOUND": ("404", "not_found"),
    "REQUEST_TOO_LARGE": ("413", "payload_too_large"),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "unsupported_media_type"),
    "THROTTLED": ("429", "throttled"),
    "QUOTA_EXCEEDED": ("429", "quota_exceeded"),
    "INTEGRATION_FAILURE": ("504", "integration_failure"),
    "INTEGRATION_TIMEOUT": ("504", "timed_out"),
}
CODE_LITERAL = re.compile(r'(?:\bcode = |"code": )"([a-z_]+)"')  # an error class's code, a literal answer's
LOCAL_NAMES = {"EncryptFunction": "encrypt", "SignFunction": "sign", "ForwardFunction": "forward"}


def gateway_responses(cfn: Template) -> dict[str, dict[str, Any]]:
    """The REST API's ``x-amazon-apigateway-gateway-responses``, as SAM writes them into its OpenAPI body."""
    (api,) = of_type(cfn, "AWS::ApiGateway::RestApi").values()
    responses: dict[str, dict[str, Any]] = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
    return responses


def gateway_body(response: dict[str, Any]) -> Any:
    return json.loads(response["responseTemplates"]["application/json"])


def test_every_gateway_response_answers_code_and_message_as_json(cfn: Template) -> None:
    responses = gateway_responses(cfn)

    assert set(responses) == set(GATEWAY_RESPONSES)
    for kind, response in responses.items():
        template = response["responseTemplates"]
        assert set(template) == {"application/json"}, kind
        # API Gateway fills in $context / $input values: none may appear, nothing of the request is echoed.
        assert "$" not in template["application/json"], kind
        body = gateway_body(response)
        assert set(body) == {"code", "message"}, kind
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", body["code"]), kind
        assert isinstance(body["message"], str), kind
        assert body["message"].strip(), kind
        assert (response.get("statusCode"), body["code"]) == GATEWAY_RESPONSES[kind]
        assert response["responseParameters"] == {"gatewayresponse.header.Cache-Control": "'no-store'"}, kind


def test_gateway_codes_are_unique_and_shared_with_the_functions_only_where_the_meaning_is(
    cfn: Template,
) -> None:
    codes = {kind: gateway_body(response)["code"] for kind, response in gateway_responses(cfn).items()}
    function_codes = set()
    for source in [*(LAYER_SOURCE / "sealgate").rglob("*.py"), *(ROOT / "functions").glob("*/app.py")]:
        function_codes |= set(CODE_LITERAL.findall(source.read_text(encoding="utf-8")))

    assert len(set(codes.values())) == len(codes)
    assert {
        "bad_json",
        "mac_mismatch",
        "not_found",
        "payload_too_large",
    } <= function_codes  # the scan reads them
    assert {kind for kind, code in codes.items() if code in function_codes} == {
        "RESOURCE_NOT_FOUND",
        "REQUEST_TOO_LARGE",
    }
    assert gateway_body(gateway_responses(cfn)["RESOURCE_NOT_FOUND"]) == json.loads(
        str(not_found_response().body)
    )
    assert codes["REQUEST_TOO_LARGE"] == PayloadTooLarge.code


def failing(invocation: Invocation) -> ApiServer:
    """The local API over template.yaml's routes, every function answering ``invocation``."""
    return ApiServer(
        routes_from_template(load_template(), LOCAL_NAMES),
        lambda _function, _event, _request_id: invocation,
        stage="dev",
        account_id="123456789012",
    )


def assert_answered_as(
    cfn: Template, kind: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    response = gateway_responses(cfn)[kind]
    assert status == int(response.get("statusCode") or status)
    assert json.loads(body) == gateway_body(response)
    assert ("Content-Type", "application/json") in headers
    assert ("Cache-Control", "no-store") in headers


@pytest.mark.parametrize(
    ("target", "invocation", "status", "kind"),
    [
        ("/dev/v1/nowhere", Invocation(ok=True, result={"statusCode": 200}), 404, "RESOURCE_NOT_FOUND"),
        ("/dev/v1/sign/dlocal", Invocation(ok=False, error_type="TimedOut"), 504, "INTEGRATION_TIMEOUT"),
        ("/dev/v1/sign/dlocal", Invocation(ok=False, error_type="KeyError"), 502, "DEFAULT_5XX"),
        ("/dev/v1/sign/dlocal", Invocation(ok=True, result={"no": "statusCode"}), 502, "DEFAULT_5XX"),
    ],
)
def test_the_local_api_answers_its_own_refusals_as_the_gateway_responses(
    cfn: Template, target: str, invocation: Invocation, status: int, kind: str
) -> None:
    answered, headers, body = failing(invocation).handle("POST", target, [], b"{}", "127.0.0.1")

    assert answered == status
    assert_answered_as(cfn, kind, answered, headers, body)


@pytest.mark.parametrize(
    ("content_length", "status", "kind"),
    [(str(MAX_BODY_BYTES + 1), 413, "REQUEST_TOO_LARGE"), ("many", 400, "DEFAULT_4XX")],
)
def test_the_local_api_refuses_a_body_it_will_not_read_as_the_gateway_responses(
    cfn: Template, content_length: str, status: int, kind: str
) -> None:
    with failing(Invocation(ok=True, result={"statusCode": 200})) as api:
        host, port = api.base_url.removeprefix("http://").split("/", 1)[0].split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            connection.putrequest("POST", "/dev/v1/encrypt/netcore")
            connection.putheader("Content-Length", content_length)
            connection.endheaders()  # no body follows: the answer comes from the header alone
            response = connection.getresponse()
            answered, headers, body = response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    assert answered == status
    assert_answered_as(cfn, kind, answered, headers, body)


# --- events/ ---


def api_events(events: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: event for name, event in events.items() if "httpMethod" in event}


def test_every_route_and_partner_has_an_event(cfn: Template, events: dict[str, dict[str, Any]]) -> None:
    covered = defaultdict(set)
    for event in api_events(events).values():
        parameters = event["pathParameters"] or {}
        route = (event["httpMethod"], event["resource"])
        # POST /v1/forward/{target} names a partner; GET /v1/forward/{target} names an outcome id.
        partner = parameters.get("partner") or (parameters.get("target") if route[0] == "POST" else None)
        covered[route].add(partner)
    routes = api_routes(cfn)
    with_webhook = {name for name, profile in shipped_profiles().items() if profile.webhook is not None}
    for route, operation in routes.items():
        served = partners(route_function(operation))
        if route == ("POST", "/v1/webhooks/{partner}"):
            assert covered[route] == with_webhook, route
        elif route[0] == "POST":
            assert covered[route] == served, route
        else:
            assert covered[route], f"no event in events/ for {route}"
    assert set(covered) <= set(routes), f"events for routes the template lacks: {set(covered) - set(routes)}"


def test_api_events_are_consistent_rest_proxy_events(
    cfn: Template, events: dict[str, dict[str, Any]]
) -> None:
    routes = api_routes(cfn)
    assert api_events(events)
    for name, event in api_events(events).items():
        route = (event["httpMethod"], event["resource"])
        context = event["requestContext"]
        assert (context["httpMethod"], context["resourcePath"]) == route, name
        path = event["resource"]
        for key, value in event["pathParameters"].items():
            path = path.replace(f"{{{key}}}", value)
        assert event["path"] == path, name
        assert context["path"] == f"/{context['stage']}{path}", name
        assert set(re.findall(r"\{(\w+)\}", event["resource"])) == set(event["pathParameters"]), name
        assert context["requestId"], name
        assert context["identity"]["sourceIp"], name
        assert event["isBase64Encoded"] is False, name
        if routes[route].get("security") == [{"AWS_IAM": []}]:
            assert context["identity"]["userArn"].startswith("arn:aws:sts::"), name
            assert context["identity"]["caller"], name
            assert event["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 "), name
        else:
            assert context["identity"]["userArn"] is None, name
        if event["httpMethod"] == "GET":
            assert event["body"] is None, name
        else:
            assert isinstance(json.loads(event["body"]), dict | list), name


def test_sqs_batch_event_carries_forward_messages(cfn: Template, events: dict[str, dict[str, Any]]) -> None:
    records = events["sqs-forward-batch.json"]["Records"]
    served = partners("ForwardFunction")
    assert len(records) == min(len(served), 10)
    assert len(records) > 1
    assert len({record["messageId"] for record in records}) == len(records)
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].startswith("arn:aws:sqs:")
        body = json.loads(record["body"])
        assert set(body) == EVENT_BODY_KEYS
        assert body["partner"] in served
        assert body["operation"] in profile(body["partner"])["operations"]
    assert {json.loads(record["body"])["partner"] for record in records} <= served


def test_forward_events_name_operations_their_partner_has(events: dict[str, dict[str, Any]]) -> None:
    enqueues = [
        e
        for e in api_events(events).values()
        if e["resource"] == "/v1/forward/{target}" and e["httpMethod"] == "POST"
    ]
    assert enqueues
    for event in enqueues:
        operation = json.loads(event["body"])["operation"]
        assert operation in profile(event["pathParameters"]["target"])["operations"]


# --- parameters, outputs, samconfig ---


def test_parameters_and_outputs(cfn: Template) -> None:
    parameters = cfn["Parameters"]
    assert {name: parameters[name]["Default"] for name in parameters} == {
        "Stage": "dev",
        "AlarmEmail": "",
        "SignatureFailureThreshold": 5,
        "ForwardFailureRatePercent": 10,
        "ForwardTimeoutSeconds": 10,
        "SecretsMaxAgeSeconds": 300,
        "OutcomeTtlDays": 30,
        "DeliveryMaxAttempts": 5,
        "DeliveryMaxWaitSeconds": 86400,
        "DeliveryBackoffBaseSeconds": 5,
        "DeliveryBackoffCapSeconds": 900,
        "SecretsExtensionLayerArn": "",
        "SnapStart": "None",
        **{name: parameters[name]["Default"] for name in LIMITS_AND_MONITORING},
    }
    assert re.fullmatch(parameters["Stage"]["AllowedPattern"], "dev")
    assert not re.fullmatch(parameters["Stage"]["AllowedPattern"], "Prod")
    assert {
        "ApiUrl",
        "OutboundQueueUrl",
        "OutboundDeadLetterQueueUrl",
        "InboundQueueUrl",
        "OutcomesTableName",
        "AlarmTopicArn",
    } <= set(cfn["Outputs"])


def test_samconfig_environments() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    for env, stage, confirm in (("default", "dev", False), ("prod", "prod", True)):
        deploy = config[env]["deploy"]["parameters"]
        assert config[env]["global"]["parameters"]["stack_name"] == f"sealgate-{stage}"
        assert deploy["parameter_overrides"] == f"Stage={stage}"
        assert deploy["confirm_changeset"] is confirm
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True
    text = json.dumps(config)
    for key in ("region", "profile", "s3_bucket"):
        assert f'"{key}"' not in text, f"samconfig.toml pins {key}; it belongs to the user's profile"
    assert not re.search(r"\b\d{12}\b", text), "samconfig.toml names an account"
