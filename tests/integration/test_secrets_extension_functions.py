"""The functions' cold start reads the partners' keys through the Parameters and Secrets Lambda Extension when the
template attaches it (the local stack's server of its protocol in front of moto), and through boto3 when it
does not: same answers, and with the extension no Secrets Manager client is ever made in the function.

Every key is a throwaway test key made by :mod:`sealgate_local.aws_stack`; credentials are dummies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import boto3
import pytest

from sealgate import aws_clients
from sealgate_local.aws_stack import StackResources
from sealgate_local.secrets_extension import SecretsExtension
from tests.integration.conftest import REGION, Function, event

TOKEN = "THROWAWAY-function-session-token"


@pytest.fixture
def extension(stack: StackResources) -> Iterator[SecretsExtension]:
    with SecretsExtension(lambda: boto3.client("secretsmanager", region_name=REGION), token=TOKEN) as served:
        yield served


@pytest.mark.parametrize("function", ["encrypt", "sign"])
def test_cold_start_reads_every_served_partner_through_the_extension(
    cold_start: Callable[..., Function], extension: SecretsExtension, stack: StackResources, function: str
) -> None:
    started = cold_start(
        function, PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(extension.port), AWS_SESSION_TOKEN=TOKEN
    )
    runtime = started.module.runtime

    assert runtime.secrets.ready
    assert runtime.secrets.via_extension
    assert extension.requests == len(runtime.secrets.partners)
    assert aws_clients._made.cache_info().currsize == 0, "no boto3 client made at cold start"
    name = "encrypt-netcore" if function == "encrypt" else "sign-dlocal"
    answer = started.call(event(name))
    assert answer.status == 200, answer.text
    assert extension.requests == len(runtime.secrets.partners), "the first answer used the cached keys"


def test_without_the_extension_the_same_answer_comes_through_boto3(
    cold_start: Callable[..., Function], stack: StackResources
) -> None:
    from tests.integration.conftest import closed_port

    started = cold_start("encrypt", PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(closed_port()))

    assert started.module.runtime.secrets.ready
    assert not started.module.runtime.secrets.via_extension
    answer = started.call(event("encrypt-netcore"))
    assert answer.status == 200, answer.text
    assert json.loads(answer.text)
