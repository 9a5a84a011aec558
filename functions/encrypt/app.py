"""Encrypt function: ``POST /v1/encrypt/{partner}`` and ``POST /v1/decrypt/{partner}`` (IAM).

Thin on purpose: parse the event, call one action of the layer, map errors to responses (:mod:`sealgate.http_api`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from sealgate import http_api, route_docs
from sealgate.actions import encrypt
from sealgate.runtime import Runtime, reporting_key_failures
from sealgate.telemetry import logger, metrics

app = APIGatewayRestResolver()
http_api.install_error_handlers(app)
runtime = Runtime.start("encrypt")  # cold start: profiles, and the secrets of the partners it serves


@app.post("/v1/encrypt/<partner>", **route_docs.ENCRYPT)
def encrypt_payload(partner: str) -> Response[str]:
    return http_api.respond(
        200,
        encrypt.encrypt(runtime, partner, http_api.Request.from_event(app.current_event, app.lambda_context)),
    )


@app.post("/v1/decrypt/<partner>", **route_docs.DECRYPT)
def decrypt_payload(partner: str) -> Response[str]:
    return http_api.respond(
        200,
        encrypt.decrypt(runtime, partner, http_api.Request.from_event(app.current_event, app.lambda_context)),
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@reporting_key_failures(runtime)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
