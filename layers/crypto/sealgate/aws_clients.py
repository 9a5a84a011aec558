"""The process's boto3 clients, created once each with short timeouts so an outage answers fast.

Every AWS call of the layer goes through :func:`client` (typed with the boto3 stubs). Endpoints come from
boto3's own ``AWS_ENDPOINT_URL[_<SERVICE>]`` variables (moto's server locally).
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

CONNECT_TIMEOUT = 2
READ_TIMEOUT = 3
TOTAL_ATTEMPTS = 2  # botocore's "max_attempts" would count retries only: 3 attempts, 9 s


@overload
def client(service: Literal["sqs"]) -> SQSClient: ...
@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
def client(service: str) -> Any:
    """A boto3 client for ``service``, made once per process (creating one costs tens of milliseconds).

    A client is thread-safe once made, but neither ``functools.cache`` (it calls on a miss without a lock) nor
    boto3's session is safe while one is being made: the lock makes each exactly once, even when a batch's
    concurrent deliveries ask for it at the same time.
    """
    with _making:
        return _made(service)


_making = threading.Lock()


@cache
def _made(service: str) -> Any:
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": TOTAL_ATTEMPTS, "mode": "standard"},  # well inside a 10 s function
    )
    return _session().client(service, config=config)


@cache
def _session() -> Any:
    """One boto3 session for every client: its loader reads the endpoint rules, partitions and the list of
    services once, where a session per client read them again for each (tens of milliseconds per client at
    a cold start that makes two)."""
    import boto3

    return boto3.session.Session()


def _forget() -> None:
    _made.cache_clear()
    _session.cache_clear()


client.cache_clear = _forget  # type: ignore[attr-defined]  # what tests have always called


def reset() -> None:
    """Forget the clients and their session (tests that point boto3 at another endpoint)."""
    _forget()
