"""BENCHMARK BASELINE, not part of Sealgate: an encrypt handler written the obvious way, for ``make bench``.

What a first Lambda handler for a partner API commonly looks like, and what the cold start of the encrypt,
sign and forward functions is compared with (scripts/function_bench.py): Powertools' resolver, logger and
metrics at module scope, ``boto3`` and ``jwcrypto`` imported at the top whether or not the route needs them,
the partner's secret fetched at module scope with ``parameters.get_secret``, and the payload encrypted with
``cryptography``'s AES-GCM under the secret's ``key`` (32 characters, used as the AES-256 key's bytes).

It answers ``POST /v1/encrypt/{partner}`` for one partner (``PLAIN_PARTNER``, default ``netcore``; its secret
is ``<SEALGATE_SECRET_PREFIX><partner>``) with ``{"partner", "payload": base64(nonce[12] . ciphertext .
tag[16])}``. Never deploy it: no limits, no audit, no error mapping.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import boto3  # noqa: F401 - the obvious handler imports boto3 at the top, whether or not it calls it
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jwcrypto import jwe, jwk  # noqa: F401 - the obvious handler imports every library it might use, at the top

PARTNER = os.environ.get("PLAIN_PARTNER", "netcore")

app = APIGatewayRestResolver()
logger = Logger()
metrics = Metrics()
secret: Any = parameters.get_secret(os.environ.get("SEALGATE_SECRET_PREFIX", "") + PARTNER, transform="json")
cipher = AESGCM(secret["key"].encode())


@app.post("/v1/encrypt/<partner>")
def encrypt(partner: str) -> dict[str, Any]:
    if partner != PARTNER:
        raise NotFoundError(f"unknown partner {partner}")
    payload = app.current_event.json_body["payload"]
    nonce = os.urandom(12)
    sealed = cipher.encrypt(nonce, json.dumps(payload, separators=(",", ":")).encode(), None)
    metrics.add_metric(name="Encrypted", unit=MetricUnit.Count, value=1)
    logger.info("encrypted", partner=partner)
    return {"partner": partner, "payload": base64.b64encode(nonce + sealed).decode("ascii")}


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
