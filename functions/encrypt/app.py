"""Encrypt function: ``POST /v1/encrypt/{partner}`` and ``POST /v1/decrypt/{partner}`` (IAM).

Thin on purpose: parse, call the layer's :class:`~sealgate.gateway.Gateway`, map errors to responses.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from sealgate import http_api
from sealgate.gateway import Gateway
from sealgate.telemetry import logger, metrics

app = APIGatewayRestResolver()
http_api.install_error_handlers(app)
gateway = Gateway.from_environment()  # cold start: secrets of this function's partners


@app.post("/v1/encrypt/<partner>")
def encrypt(partner: str) -> Response[str]:
    return http_api.respond(200, gateway.encrypt(partner, http_api.Request.from_event(app.current_event)))


@app.post("/v1/decrypt/<partner>")
def decrypt(partner: str) -> Response[str]:
    return http_api.respond(200, gateway.decrypt(partner, http_api.Request.from_event(app.current_event)))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    gateway.report_key_failures()
    return app.resolve(event, context)
