"""sealgate_local.aws_stack on moto: what it creates is what template.yaml declares, with a throwaway secret per
partner profile (shipped, or added with SEALGATE_PROFILES_DIR) made by the profile's cipher."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from sealgate.partners import load_profiles
from sealgate_local.aws_stack import THROWAWAY, AwsClients, StackResources, build_stack, load_template

# A partner on existing schemes only: its profile is all it takes.
ACME = {
    "name": "acme",
    "base_url": "https://api.acme.example/",
    "secret_fields": ["events_key", "api_key"],
    "protection": {"scheme": "aes-gcm", "layout": "wrap", "key": "events_key", "wrap_field": "data"},
    "signing": {"scheme": "static-headers", "headers": {"X-Api-Key": "api_key"}},
    "operations": {"events": {"method": "POST", "path": "v1/events"}},
}
ACMECARD = {
    "name": "acmecard",
    "base_url": "https://api.acmecard.example/",
    "secret_fields": ["card_key"],
    "protection": {"scheme": "jwe", "layout": "card", "key": "card_key", "card_field": "card"},
    "operations": {"charges": {"method": "POST", "path": "v1/charges"}},
}


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
        named = properties["KmsMasterKeyId"]
        if "Fn::GetAtt" in named:  # the key's ARN
            assert attributes["KmsMasterKeyId"] == stack.keys[named["Fn::GetAtt"][0]]
        else:  # Ref: the key's id
            assert attributes["KmsMasterKeyId"] == stack.keys[named["Ref"]].split("/")[-1]
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
        key = properties["SSESpecification"]["KMSMasterKeyId"]["Fn::GetAtt"][0]
        assert table["SSEDescription"] == {
            "Status": "ENABLED",
            "SSEType": "KMS",
            "KMSMasterKeyArn": stack.keys[key],
        }


def test_kms_keys_as_declared_and_found_again(stack: StackResources) -> None:
    assert stack.clients is not None
    kms = stack.clients.kms
    declared = resources("AWS::KMS::Key")
    assert set(stack.keys) == set(declared) == {"AtRestKey", "MonitoringKey"}
    arn = stack.keys["AtRestKey"]
    account = arn.split(":")[4]
    assert kms.describe_key(KeyId="alias/sealgate-dev-AtRestKey")["KeyMetadata"]["Arn"] == arn
    assert (
        kms.describe_key(KeyId=arn)["KeyMetadata"]["Description"] == "Sealgate dev queues and tables at rest"
    )
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True
    policy = json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}
    assert build_stack(stack.clients).keys == stack.keys  # built again: the same key


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
        assert "SEALGATE_PARTNERS" not in function.environment  # the profiles say whom a function serves
        assert (function.code_dir / "app.py").is_file()


def test_secrets_are_fresh_throwaway_keys_shaped_by_the_profiles(stack: StackResources, aws: None) -> None:
    assert stack.clients is not None
    profiles = load_profiles()
    assert set(stack.secrets) == set(profiles) == set(stack.profiles)
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
    assert set(built.secrets) == set(load_profiles()) >= {"infosimples", "netcore", "paykun", "dlocal"}
    assert all(secret.name.startswith("sealgate/qa/") for secret in built.secrets.values())
    with pytest.raises(KeyError):
        built.environment("nonexistent")


# --- a partner added with SEALGATE_PROFILES_DIR --------------------------------------------------------------


@pytest.fixture
def profiles_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir()
    for document in (ACME, ACMECARD):
        (folder / f"{document['name']}.json").write_text(json.dumps(document), encoding="utf-8")
    monkeypatch.setenv("SEALGATE_PROFILES_DIR", str(folder))
    return folder


def test_a_profile_in_the_profiles_dir_gets_a_secret_with_keys_from_its_cipher(
    aws: None, profiles_dir: Path
) -> None:
    built = build_stack(AwsClients.create())
    assert built.clients is not None

    assert set(built.secrets) == set(load_profiles([profiles_dir]))
    acme = built.secrets["acme"]
    stored = built.clients.secretsmanager.get_secret_value(SecretId="sealgate/dev/acme")["SecretString"]
    assert json.loads(stored) == acme.value
    assert set(acme.value) == {"events_key", "api_key"}
    assert len(base64.b64decode(acme.value["events_key"], validate=True)) == 32  # aes-gcm's raw 256-bit key
    assert acme.partner_side == {}
    # The keys work through the registry, as the gateway uses them.
    protection = built.profiles["acme"].protection
    sealed = protection.protect({"event": "signup"}, acme.value)
    assert protection.reveal(sealed.payload, acme.value)[0] == {"event": "signup"}

    card = built.secrets["acmecard"]
    assert "BEGIN PUBLIC KEY" in card.value["card_key"]
    assert set(card.partner_side) == {"jwe_private_key"}  # the cipher's keygen, beyond its key slot
    cipher = built.profiles["acmecard"].protection.cipher
    options = built.profiles["acmecard"].protection.cipher_options
    token = cipher.encrypt(
        b"4111111111111111", cipher.prepare({"key": card.value["card_key"]}, decrypting=False), options
    )
    private = cipher.prepare({"key": card.partner_side["jwe_private_key"]}, decrypting=True)
    assert cipher.decrypt(token, private, options) == b"4111111111111111"


def test_the_functions_are_pointed_at_the_profiles_dir(aws: None, profiles_dir: Path) -> None:
    built = build_stack(AwsClients.create())

    for function in built.functions.values():
        assert built.environment(function.name)["SEALGATE_PROFILES_DIR"] == str(profiles_dir.resolve())


def test_without_a_profiles_dir_the_functions_get_none(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEALGATE_PROFILES_DIR", raising=False)
    built = build_stack(AwsClients.create())

    assert set(built.secrets) == set(load_profiles())
    for function in built.functions.values():
        assert "SEALGATE_PROFILES_DIR" not in function.environment


def test_a_profiles_dir_given_explicitly_wins(aws: None, tmp_path: Path, profiles_dir: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "acme.json").write_text(json.dumps(ACME), encoding="utf-8")

    built = build_stack(AwsClients.create(), profiles_dir=other)

    assert "acme" in built.secrets
    assert "acmecard" not in built.secrets
    assert built.environment("sign")["SEALGATE_PROFILES_DIR"] == str(other.resolve())
