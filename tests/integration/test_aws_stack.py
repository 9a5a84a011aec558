"""sealgate_local.aws_stack on moto: what it creates is what template.yaml declares, with throwaway secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sealgate.profiles import load_profiles
from sealgate_local.aws_stack import THROWAWAY, AwsClients, StackResources, build_stack, load_template


def resources(kind: str) -> dict[str, dict[str, Any]]:
    template = load_template()
    return {name: r.get("Properties") or {} for name, r in template["Resources"].items() if r["Type"] == kind}


def test_queues_as_declared(stack: StackResources) -> None:
    assert stack.clients is not None
    declared = resources("AWS::SQS::Queue")
    assert set(stack.queues) == set(declared)
    for logical_id, properties in declared.items():
        queue = stack.queues[logical_id]
        attributes = stack.clients.sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])[
            "Attributes"
        ]
        assert attributes["QueueArn"] == queue.arn
        assert attributes["VisibilityTimeout"] == str(properties.get("VisibilityTimeout", 30))
        assert attributes["MessageRetentionPeriod"] == str(properties["MessageRetentionPeriod"])
        assert attributes["SqsManagedSseEnabled"] == "true"
        redrive = properties.get("RedrivePolicy")
        if redrive is None:
            assert "RedrivePolicy" not in attributes
        else:
            target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert json.loads(attributes["RedrivePolicy"]) == {
                "deadLetterTargetArn": stack.queues[target].arn,
                "maxReceiveCount": redrive["maxReceiveCount"],
            }


def test_tables_as_declared(stack: StackResources) -> None:
    assert stack.clients is not None
    declared = resources("AWS::DynamoDB::Table")
    assert set(stack.tables) == set(declared)
    for logical_id, properties in declared.items():
        name = stack.tables[logical_id]
        table = stack.clients.dynamodb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == properties["KeySchema"]
        ttl = stack.clients.dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl == {
            "TimeToLiveStatus": "ENABLED",
            "AttributeName": properties["TimeToLiveSpecification"]["AttributeName"],
        }


def test_each_function_gets_the_template_environment_resolved(stack: StackResources) -> None:
    assert set(stack.functions) == {"encrypt", "sign", "forward"}
    forward = stack.environment("forward")
    assert forward["OUTBOUND_QUEUE_URL"] == stack.queue_url("OutboundQueue")
    assert forward["OUTBOUND_DLQ_URL"] == stack.queue_url("OutboundDeadLetterQueue")
    assert forward["OUTCOMES_TABLE"] == stack.tables["OutcomesTable"]
    assert forward["FORWARD_TIMEOUT_SECONDS"] == "10"
    assert stack.environment("SignFunction")["INBOUND_QUEUE_URL"] == stack.queue_url("InboundQueue")
    for function in stack.functions.values():
        assert function.environment["SEALGATE_SECRET_PREFIX"] == "sealgate/dev/"
        assert function.environment["STAGE"] == "dev"
        assert function.environment["SEALGATE_PARTNERS"]
        assert (function.code_dir / "app.py").is_file()
    assert stack.environment("sign")["SEALGATE_PARTNERS"] == "dlocal,netcore"


def test_secrets_are_fresh_throwaway_keys_shaped_by_the_profiles(stack: StackResources, aws: None) -> None:
    assert stack.clients is not None
    profiles = load_profiles()
    assert set(stack.secrets) == set(profiles)
    for partner, secret in stack.secrets.items():
        stored = stack.clients.secretsmanager.get_secret_value(SecretId=f"sealgate/dev/{partner}")
        assert json.loads(stored["SecretString"]) == secret.value
        assert set(secret.value) == set(profiles[partner].secret_fields)
        described = stack.clients.secretsmanager.describe_secret(SecretId=secret.name)
        assert described["Description"] == THROWAWAY
        assert {"Key": "throwaway", "Value": "true"} in described["Tags"]
        assert "value" not in repr(secret)
    netcore = stack.secrets["netcore"].value
    assert (len(netcore["key"]), len(netcore["iv"])) == (32, 16)
    assert stack.secrets["paykun"].value["encryption_key"].startswith("base64:")
    assert "BEGIN PUBLIC KEY" in stack.secrets["dlocal"].value["jwe_public_key"]
    assert "BEGIN PRIVATE KEY" in stack.secrets["dlocal"].partner_side["jwe_private_key"]
    again = build_stack(AwsClients.create())  # fresh keys every time, even on the same endpoint
    assert again.secrets["infosimples"].value != stack.secrets["infosimples"].value


def test_rotate_makes_the_old_keys_awsprevious_and_keeps_the_account(stack: StackResources) -> None:
    assert stack.clients is not None
    old = stack.secrets["dlocal"]

    new = stack.rotate("dlocal")

    def stored(stage: str) -> dict[str, str]:
        assert stack.clients is not None
        answer = stack.clients.secretsmanager.get_secret_value(SecretId=old.name, VersionStage=stage)
        value: dict[str, str] = json.loads(answer["SecretString"])
        return value

    assert stored("AWSCURRENT") == new.value == stack.secrets["dlocal"].value
    assert stored("AWSPREVIOUS") == old.value == stack.previous_secrets["dlocal"].value
    assert new.value["x_login"] == old.value["x_login"]
    assert new.value["secret_key"] != old.value["secret_key"]


def test_parameters_override_the_defaults(aws: None) -> None:
    built = build_stack(AwsClients.create(), stage="qa", parameters={"ForwardTimeoutSeconds": "7"})

    assert built.environment("forward")["FORWARD_TIMEOUT_SECONDS"] == "7"
    assert built.environment("encrypt")["SEALGATE_SECRET_PREFIX"] == "sealgate/qa/"
    assert set(built.secrets) == {"infosimples", "netcore", "paykun", "dlocal"}
    assert all(secret.name.startswith("sealgate/qa/") for secret in built.secrets.values())
    with pytest.raises(KeyError):
        built.environment("nonexistent")
