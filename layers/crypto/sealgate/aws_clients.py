"""boto3 clients, created once per process with short timeouts so an outage answers fast.

Endpoints come from boto3's own ``AWS_ENDPOINT_URL[_<SERVICE>]`` variables (moto's server locally).
"""

from __future__ import annotations

from functools import cache
from typing import Any

CONNECT_TIMEOUT = 2
READ_TIMEOUT = 3


@cache
def client(service: str) -> Any:
    """A boto3 client for ``service`` (cached: creating one costs tens of milliseconds)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": 2, "mode": "standard"},  # worst case well inside a 10 s function
    )
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
