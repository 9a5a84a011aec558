"""The leak detector (``tests/leak_detector.py``) fails a test on a planted leak, and only on a leak.

The planted cases run in a separate pytest (``pytester``, in a subprocess: the plugin patches capture and keeps
per-process state) with the plugin loaded as ``tests/conftest.py`` loads it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.leak_detector import Needles, example_plaintexts, luhn

CHECKOUT = Path(__file__).resolve().parents[2]

PLANTED = """
import json, logging, uuid

import boto3
import pytest
from moto import mock_aws

CARD = "4111111111111111"
KEY = "THROWAWAY-" + uuid.uuid4().hex


@pytest.fixture
def aws():
    with mock_aws():  # held until the test's teardown, when the detector reads moto
        yield

def test_prints_a_card_number():
    print("charged", CARD)


def test_logs_a_secret_of_moto_secrets_manager(aws):
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name="sealgate/test/p", SecretString=json.dumps({"secret_key": KEY}))
    logging.getLogger("app").warning("using %s", KEY)


def test_reads_a_marker_through_capsys(capsys):
    print("PLAINTEXT-MARKER-" + uuid.uuid4().hex)
    assert "MARKER" in capsys.readouterr().out


def test_queues_a_cvv_in_the_clear(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="outbound")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"card": {"cvv": "123"}}))


def test_registers_its_own_value(sensitive):
    value = "CPF-" + uuid.uuid4().hex
    sensitive(value, "cpf")
    print({"cpf": value})


@pytest.mark.reveals_plaintext(reason="prints what a decrypt answered, on purpose")
def test_marked_prints_a_card_number():
    print(json.dumps({"card": {"number": CARD, "cvv": "123"}}))


@pytest.mark.reveals_plaintext(reason="a key is never excused")
def test_marked_still_may_not_print_a_key(aws):
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name="sealgate/test/q", SecretString=json.dumps({"secret_key": KEY}))
    print(KEY)


def test_a_message_a_function_consumed_is_not_at_rest(aws):
    from tests import leak_detector

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="producer")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"card": {"number": CARD, "cvv": "123"}}))
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    leak_detector.consumed([message["MessageId"]])  # Lambda's event source would delete it


def test_clean_output_passes():
    print("order 123, amount 4111, id", uuid.uuid4(), "digits 4111111111111112", '"cvv":"<token>"')
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose subprocess imports this checkout's ``tests``, ``sealgate`` and ``sealgate_local``."""
    paths = [str(CHECKOUT), str(CHECKOUT / "layers" / "crypto"), str(CHECKOUT / "local")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    pytester.makeconftest('pytest_plugins = ["tests.leak_detector"]\n')
    return pytester


@pytest.mark.reveals_plaintext(reason="pytester echoes the planted run's output, plaintexts included")
def test_planted_leaks_fail_their_tests_and_nothing_else(run: pytest.Pytester) -> None:
    run.makepyfile(test_planted=PLANTED)

    result = run.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-rA")

    text = result.stdout.str()
    errors = {
        line.split("::")[1].split(" ")[0]
        for line in result.stdout.lines
        if line.startswith("ERROR test_planted.py::")
    }
    assert errors == {
        "test_prints_a_card_number",
        "test_logs_a_secret_of_moto_secrets_manager",
        "test_reads_a_marker_through_capsys",
        "test_queues_a_cvv_in_the_clear",
        "test_registers_its_own_value",
        "test_marked_still_may_not_print_a_key",
    }, text
    result.assert_outcomes(passed=9, errors=6)
    assert "card number in captured call stdout" in text
    assert "key in captured call log" in text
    assert "plaintext marker in output read through capsys" in text
    assert "cvv in queue outbound" in text
    assert "cpf in captured call stdout" in text
    assert "tests marked reveals_plaintext" in text
    assert "in 6 tests" in text
    assert "4111111111111111" not in "".join(line for line in result.stdout.lines if "leak detector" in line)


def test_a_reveals_plaintext_mark_without_a_reason_stops_the_run(run: pytest.Pytester) -> None:
    run.makepyfile(
        test_unexplained="""
import pytest

@pytest.mark.reveals_plaintext
def test_prints():
    print("4111111111111111")
"""
    )

    result = run.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "needs a reason=" in result.stderr.str()


# --- matching, in-process --------------------------------------------------------------------------------------


def test_card_numbers_are_luhn_valid_and_standing_alone() -> None:
    needles = Needles()

    assert luhn("4111111111111111")
    assert not luhn("4111111111111112")
    assert needles.find("pan=4111111111111111.") == {"card number"}
    assert needles.find("378282246310005") == {"card number"}
    assert needles.find("4111111111111112") == set()
    assert needles.find("a94111111111111111f") == set()  # inside a hex digest
    assert needles.find("14111111111111111") == set()  # inside a longer number
    assert needles.find("1732000000000.4111111111111111") == set()  # a decimal's fraction


def test_in_what_stacks_hold_a_card_number_counts_only_as_a_card_number_fields_value() -> None:
    needles = Needles()

    assert needles.find('{"amount": 4111111111111111}', bare_cards=False) == set()
    assert needles.find('{"card": {"number": "4111111111111111"}}', bare_cards=False) == {"card number"}
    assert needles.find('{\\"card_number\\": 4111111111111111}', bare_cards=False) == {"card number"}
    assert needles.find('{"number": "4111111111111112"}', bare_cards=False) == set()


def test_a_cvv_counts_only_as_the_value_of_a_cvv_field() -> None:
    needles = Needles()

    for text in ('{"cvv": "123"}', "{'cvc': 1234}", "security_code=987", '{\\"cvv\\":\\"123\\"}'):
        assert needles.find(text) == {"cvv"}, text
    for text in ("order 123", '"fields":["card.cvv"]', '"cvv":"eyJhbGciOi.x"', "cvv: 12345"):
        assert needles.find(text) == set(), text


def test_short_values_are_skipped_and_pems_are_searched_by_their_lines() -> None:
    needles = Needles()
    body = uuid.uuid4().hex * 2
    pem = f"-----BEGIN PRIVATE KEY-----\n{body[:40]}\n{body[40:]}\n-----END PRIVATE KEY-----\n"

    needles.add("short", "key")
    needles.add_secret(pem)
    needles.add_secret('{"api_key": "THROWAWAY-0123456789", "iv": "0123"}')

    assert "short" not in needles.values
    assert needles.find(f"...{body[:40]}...") == {"key"}
    assert needles.find("x THROWAWAY-0123456789 x") == {"key"}
    assert needles.find("iv 0123 and -----BEGIN PRIVATE KEY-----") == set()


def test_the_examples_protected_values_are_searched_but_not_those_sent_in_the_clear() -> None:
    values = example_plaintexts()

    assert "4111111111111111" in values  # dLocal's card number
    assert "1990-01-15" in values  # Infosimples' birthdate
    # Infosimples protects the CPF; dLocal sends the same value in the clear as the payer's document.
    assert "52998224725" not in values
